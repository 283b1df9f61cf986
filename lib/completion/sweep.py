r"""Depth and sample complexity: recovery error against the observed fraction.

Lecture section 4, *benefits of depth* (Arora et al. 2019): a deeper factorization has a stronger
implicit bias towards low rank, so it recovers :math:`\Phi` from fewer observed entries. For each
observed fraction ``p`` and seed, :func:`sample_complexity` draws one problem
(:func:`lib.completion.make_problem`), fits it with :func:`lib.completion.fit` (original networks
of several depths, compressed networks) and, optionally, solves the convex baseline of the paper,
the minimum-nuclear-norm completion (:func:`min_nuclear_norm`), and records the relative recovery
error

.. math::

    \frac{\|W - \Phi\|_F}{\|\Phi\|_F} .

At ``L = 1`` gradient descent acts on the matrix itself: the loss does not depend on the
unobserved entries, so they keep their initial (ε-small) values and the error is
:math:`\approx\|(1-\Omega)\odot\Phi\|_F/\|\Phi\|_F\approx\sqrt{1-p}` — nothing is recovered.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lib._checks import check_device, check_dtype, check_int, check_real, check_type
from lib.completion.problem import Problem, _check_problem, default_lr, make_problem
from lib.completion.train import fit

__all__ = ["SampleComplexity", "min_nuclear_norm", "relative_error", "sample_complexity"]

#: Label of the convex baseline in :attr:`SampleComplexity.labels`.
NUCLEAR = "min nuclear norm"


@dataclass(frozen=True)
class SampleComplexity:
    r"""What :func:`sample_complexity` returns.

    Attributes:
        observed_fractions: the fractions ``p`` (x axis), as given.
        seeds: the seeds of the problems (one problem per fraction and seed).
        labels: one per method: ``"original, L = 2"``, ``"compressed, L = 3"``,
            ``"min nuclear norm"``.
        errors: ``(n_methods, n_fractions, n_seeds)`` float64 CPU tensor,
            :math:`\|W-\Phi\|_F/\|\Phi\|_F`.
        converged: same shape, bool: the fit reached ``tol`` (the baseline: its solver met its
            tolerance).
        d: side of the targets.
        rank: their rank ``r``.
    """

    observed_fractions: tuple[float, ...]
    seeds: tuple[int, ...]
    labels: tuple[str, ...]
    errors: Tensor
    converged: Tensor
    d: int
    rank: int

    @property
    def mean_error(self) -> Tensor:
        """``(n_methods, n_fractions)``: the errors averaged over the seeds."""
        return self.errors.mean(dim=-1)

    def error(self, label: str) -> Tensor:
        """``(n_fractions,)``: the mean error of the method ``label`` (one of :attr:`labels`)."""
        if label not in self.labels:
            raise ValueError(f"label must be one of {list(self.labels)}, got {label!r}")
        return self.mean_error[self.labels.index(label)]


def relative_error(problem: Problem, end_to_end: Tensor) -> float:
    r"""Relative recovery error :math:`\|W - \Phi\|_F / \|\Phi\|_F`, in float64.

    Args:
        problem: from :func:`lib.completion.make_problem`.
        end_to_end: :math:`W`, ``(d, d)``, any floating dtype, on the problem's device.

    Returns:
        The error as a Python float (NaN when ``end_to_end`` holds NaN).

    Example:
        >>> P = make_problem(20, 2, 0.5, generator=torch.Generator().manual_seed(0))
        >>> relative_error(P, P.target), relative_error(P, torch.zeros(20, 20))
        (0.0, 1.0)
    """
    problem = _check_problem(problem)
    check_type("end_to_end", end_to_end, Tensor, "the (d, d) matrix W, e.g. FitResult.end_to_end")
    if end_to_end.shape != problem.target.shape or not end_to_end.is_floating_point():
        raise ValueError(
            f"end_to_end must be a floating ({problem.d}, {problem.d}) tensor, got "
            f"{tuple(end_to_end.shape)} {end_to_end.dtype}"
        )
    if end_to_end.device != problem.target.device:
        raise ValueError(
            f"end_to_end is on {end_to_end.device} but the problem on {problem.target.device}; "
            "move it with end_to_end.to(problem.target.device)"
        )
    T = problem.target.double()
    return float(torch.linalg.matrix_norm(end_to_end.double() - T) / torch.linalg.matrix_norm(T))


def min_nuclear_norm(problem: Problem, tol: float = 1e-7, max_iter: int = 5000) -> Tensor:
    r"""The minimum-nuclear-norm completion, the convex baseline of deep matrix factorization.

    .. math::

        \min_X \|X\|_* \quad\text{subject to}\quad \Omega\odot X = \Omega\odot\Phi ,

    solved by ADMM on the split :math:`X = Z` (Boyd et al. 2011, section 5): singular-value
    thresholding of :math:`Z - U` at :math:`\tau`, then :math:`Z` = that matrix with the observed
    entries reset to :math:`\Phi`, then the scaled dual update :math:`U \leftarrow U + X - Z`;
    :math:`\tau = \sigma_1(\Omega\odot\Phi)/\sqrt d` (the solution does not depend on it, the
    speed does). Stops when both the primal residual :math:`\|X-Z\|_F` and the change of
    :math:`Z` fall below ``tol`` relative to :math:`\|Z\|_F`. Float64 throughout.

    Args:
        problem: from :func:`lib.completion.make_problem`.
        tol: relative tolerance, ``> 0``.
        max_iter: most iterations (one ``(d, d)`` SVD each), ``>= 1``.

    Returns:
        ``(d, d)`` float64 on the problem's device: :math:`Z`, which matches :math:`\Phi` on the
        observed entries exactly.

    Reference:
        Arora et al., *Implicit regularization in deep matrix factorization*, NeurIPS 2019,
        figure 2 (the "min nuclear norm" curve); Candès and Recht 2009 (exact recovery).

    Example:
        >>> P = make_problem(30, 2, 0.6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> relative_error(P, min_nuclear_norm(P)) < 1e-5
        True
    """
    return _min_nuclear_norm(problem, tol, max_iter)[0]


def _min_nuclear_norm(problem: Problem, tol: float, max_iter: int) -> tuple[Tensor, bool]:
    problem = _check_problem(problem)
    tol = check_real("tol", tol, 0.0, strict=True)
    max_iter = check_int("max_iter", max_iter, 1)
    T, M = problem.target.double(), problem.mask
    Z = torch.where(M, T, 0.0)  # (d, d): observed entries fixed, the others free
    U = torch.zeros_like(Z)  # scaled dual variable
    tau = float(torch.linalg.matrix_norm(Z, ord=2)) / problem.d**0.5
    for _ in range(max_iter):
        Us, S, Vh = torch.linalg.svd(Z - U, full_matrices=False)
        X = (Us * (S - tau).clamp_min(0.0)) @ Vh  # singular-value thresholding
        Z_new = torch.where(M, T, X + U)
        U = U + X - Z_new
        size = torch.linalg.matrix_norm(Z_new)
        primal = torch.linalg.matrix_norm(X - Z_new) / size
        change = torch.linalg.matrix_norm(Z_new - Z) / size
        Z = Z_new
        if float(torch.maximum(primal, change)) < tol:
            return Z, True
    return Z, False


def _check_list(name: str, values: object, what: str, allow_empty: bool = False) -> list:
    if isinstance(values, np.ndarray) and values.ndim == 1:  # NumPy numbers pass the checks
        values = list(values)
    if isinstance(values, (str, bytes, Tensor)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a list of {what}s, got {type(values).__name__}")
    if not values and not allow_empty:
        raise ValueError(f"{name} is empty; pass at least one {what}")
    return list(values)


def _check_fractions(fractions: object) -> tuple[float, ...]:
    out = []
    for i, p in enumerate(_check_list("observed_fractions", fractions, "fraction in (0, 1]")):
        ok = isinstance(p, numbers.Real) and not isinstance(p, bool) and 0.0 < float(p) <= 1.0
        if not ok:
            raise ValueError(f"observed_fractions[{i}] must be a number in (0, 1], got {p!r}")
        out.append(float(p))
    return tuple(out)


def _check_depths(name: str, values: object) -> list[int]:
    return [check_int(f"{name}[{i}]", L, 1) for i, L in enumerate(_check_list(name, values, "depth", True))]  # fmt: skip


def sample_complexity(
    d: int,
    rank: int,
    observed_fractions: Sequence[float],
    depths: Sequence[int] = (1, 2, 3),
    compressed_depths: Sequence[int] = (3,),
    seeds: Sequence[int] = (0,),
    nuclear_norm: bool = True,
    *,
    scale: float = 1e-3,
    lr_scale: float = 1.0,
    gamma: float = 0.01,
    tol: float = 1e-8,
    max_steps: int = 8000,
    record_every: int = 100,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> SampleComplexity:
    r"""Relative recovery error against the observed fraction, for several depths and methods.

    For every fraction ``p`` and seed ``s``: ``problem = make_problem(d, rank, p,
    generator=torch.Generator().manual_seed(s))`` (one seed gives one :math:`\Phi` at every
    ``p``: the factors are drawn before the mask), then for each depth ``L`` of ``depths``
    ``fit(problem, "original", depth=L, lr=lr_scale * default_lr(problem, L), ...)``, for each
    of ``compressed_depths`` the same with ``"compressed"`` and ``gamma``, and, with
    ``nuclear_norm``, :func:`min_nuclear_norm`. Each error is :func:`relative_error` of the final
    end-to-end matrix.

    Args:
        d: side of the targets, ``>= 2``.
        rank: ``r``, ``1 <= r < d`` (``2r <= d`` with compressed networks).
        observed_fractions: the fractions ``p``, each in ``(0, 1]``.
        depths: depths ``L >= 1`` of the original networks (may be empty).
        compressed_depths: depths of the compressed networks (may be empty).
        seeds: integer seeds ``>= 0``, one problem per seed and fraction (errors are averaged
            over them by :attr:`SampleComplexity.mean_error`).
        nuclear_norm: also solve the minimum-nuclear-norm baseline.
        scale: ε of every network's initialisation.
        lr_scale: η as a multiple of :func:`lib.completion.default_lr` at each depth; below the
            chapter's 1.8 because at a small ``p`` the mask raises the sharpness by more than ``p``.
        gamma: γ of the compressed networks.
        tol, max_steps, record_every: passed to :func:`lib.completion.fit`.
        dtype, device: of the problems (and the fits).

    Returns:
        A :class:`SampleComplexity`: ``errors`` ``(n_methods, n_fractions, n_seeds)`` on the CPU.

    Reference:
        Arora et al., *Implicit regularization in deep matrix factorization*, NeurIPS 2019,
        figure 2 (d = 100, rank 5, depths 2 to 4 against the minimum nuclear norm).

    Example:
        >>> res = sample_complexity(12, 1, [0.5], depths=[1, 2], compressed_depths=[], max_steps=200)
        >>> res.labels, tuple(res.errors.shape)
        (('original, L = 1', 'original, L = 2', 'min nuclear norm'), (3, 1, 1))
    """
    d, rank = check_int("d", d, 2), check_int("rank", rank, 1)
    fractions = _check_fractions(observed_fractions)
    depths, comp = _check_depths("depths", depths), _check_depths("compressed_depths", compressed_depths)  # fmt: skip
    seeds = tuple(check_int(f"seeds[{i}]", s, 0) for i, s in enumerate(_check_list("seeds", seeds, "seed")))  # fmt: skip
    if not isinstance(nuclear_norm, bool):
        raise ValueError(f"nuclear_norm must be True or False, got {nuclear_norm!r}")
    if not depths and not comp and not nuclear_norm:
        raise ValueError(
            "nothing to sweep: depths and compressed_depths are empty and nuclear_norm is False; "
            "pass at least one method"
        )
    if comp and 2 * rank > d:
        raise ValueError(
            f"rank must be <= d / 2 with compressed networks (width 2r = {2 * rank} > d = {d}); "
            "lower rank or pass compressed_depths=[]"
        )
    opts = dict(
        scale=check_real("scale", scale, 0.0, strict=True),
        tol=check_real("tol", tol, 0.0, strict=False),
        max_steps=check_int("max_steps", max_steps, 0),
        record_every=check_int("record_every", record_every, 1),
    )
    lr_scale = check_real("lr_scale", lr_scale, 0.0, strict=True)
    gamma = check_real("gamma", gamma, 0.0, strict=False)
    check_dtype(dtype)
    check_device(device)
    runs = [("original", L) for L in depths] + [("compressed", L) for L in comp]
    labels = tuple(f"{m}, L = {L}" for m, L in runs) + ((NUCLEAR,) if nuclear_norm else ())
    errors = torch.zeros(len(labels), len(fractions), len(seeds), dtype=torch.float64)
    converged = torch.zeros(errors.shape, dtype=torch.bool)
    for j, p in enumerate(fractions):
        for k, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(seed)
            problem = make_problem(d, rank, p, generator=gen, dtype=dtype, device=device)
            for i, (method, L) in enumerate(runs):
                lr = lr_scale * default_lr(problem, L)
                kw = dict(gamma=gamma) if method == "compressed" else {}
                res = fit(problem, method, depth=L, lr=lr, **kw, **opts)
                errors[i, j, k] = relative_error(problem, res.end_to_end)
                converged[i, j, k] = res.converged
            if nuclear_norm:
                X, ok = _min_nuclear_norm(problem, 1e-7, 5000)
                errors[-1, j, k], converged[-1, j, k] = relative_error(problem, X), ok
    return SampleComplexity(fractions, seeds, labels, errors, converged, d, rank)
