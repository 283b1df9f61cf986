r"""The matrix-completion problem: a low-rank target, its observed entries, the loss.

Lecture section 4, *Efficient deep matrix completion*. A rank-``r`` matrix :math:`\Phi` of side
``d`` is observed on a set :math:`\Omega` of entries; a deep linear network with end-to-end matrix
:math:`W_{L:1}` is fitted to those entries with the loss

.. math::

    \ell(\Theta) = \frac{1}{2d^2}\,\big\|\Omega\odot(W_{L:1} - \Phi)\big\|_F^2 ,

the convention of the public code (``½ · mean`` over all :math:`d^2` entries of the masked
residual), whose learning rates are tuned for it. The *test* loss is the same with
:math:`1-\Omega` in place of :math:`\Omega`.

Here: :class:`Problem`, :func:`make_problem`, :func:`losses`, :func:`default_lr` (a learning rate
at half the edge of stability), :func:`parameter_count`, and the argument checks the other
modules of :mod:`lib.completion` share.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from lib import dln
from lib._checks import check_device as _check_device
from lib._checks import check_dtype as _check_dtype
from lib._checks import check_generator as _check_generator
from lib._checks import check_int as _check_int
from lib._checks import check_option as _check_option
from lib._checks import check_real

__all__ = ["Problem", "default_lr", "losses", "make_problem", "parameter_count"]

Method = Literal["original", "compressed", "narrow"]

_METHODS = ("original", "compressed", "narrow")

#: Elements per block when a dense ``(d, d)`` quantity is evaluated block of rows by block of rows.
_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------------------------
# the problem
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    r"""A matrix-completion problem: a rank-``r`` target, a mask, and the seed of the networks' init.

    Attributes:
        target: :math:`\Phi`, ``(d, d)``.
        mask: :math:`\Omega`, ``(d, d)`` boolean, ``True`` where an entry is observed.
        rank: ``r``.
        rows: ``(|Ω|,)`` int64 row indices of the observed entries (row-major order).
        cols: ``(|Ω|,)`` int64 column indices of the observed entries.
        values: ``(|Ω|,)`` :math:`\Phi` at the observed entries.
        seed: seed of the initial weights :func:`fit` uses when it is given no generator, so that
            every method started from one problem shares one original initialisation.
    """

    target: Tensor
    mask: Tensor
    rank: int
    rows: Tensor
    cols: Tensor
    values: Tensor
    seed: int

    @property
    def d(self) -> int:
        """``d``, the side of the square target."""
        return self.target.shape[0]

    @property
    def n_observed(self) -> int:
        r""":math:`|\Omega|`."""
        return self.rows.numel()

    @property
    def observed_fraction(self) -> float:
        r""":math:`|\Omega| / d^2`."""
        return self.n_observed / self.d**2


def make_problem(
    d: int,
    rank: int,
    observed_fraction: float,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Problem:
    r"""A random rank-``r`` matrix and a uniformly random set of observed entries.

    .. math::

        \Phi = \frac{2}{\sqrt d}\, A B^\top,\quad A, B \in \mathbb R^{d\times r},\
        A_{ij}, B_{ij} \sim \mathcal N(0, 1), \qquad
        |\Omega| = \operatorname{round}(p\, d^2) \text{ entries, uniformly without replacement.}

    The scale matches the public code's target (the best rank-``r`` approximation of a
    :math:`d\times d` standard Gaussian matrix): the ``r`` singular values of :math:`\Phi` are
    close to :math:`2\sqrt d`, so the paper's learning rates apply. ``observed_fraction = 1``
    observes every entry: deep matrix *factorization*.

    Sampling happens in float64 on the generator's device (CPU when ``None``), then the result is
    cast and moved, so one seed gives the same problem on every device.

    Args:
        d: side of the square matrix, ``>= 2``.
        rank: ``r``, ``1 <= r < d``.
        observed_fraction: ``p`` in ``(0, 1]``.
        generator: random source (target, mask, and the seed of the networks' initialisation).
        dtype: dtype of the target (default: torch's default dtype); float64 for exact checks.
        device: device of every tensor of the problem (default: CPU).

    Returns:
        A :class:`Problem` with ``target`` ``(d, d)`` and ``mask`` ``(d, d)`` boolean.

    Reference:
        Yaras et al., *The law of parsimony in gradient descent for learning deep linear
        networks*, 2023, section 5 (deep matrix completion: d = 1000, r = 5, 20 % observed).

    Example:
        >>> P = make_problem(50, 3, 0.3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> int(torch.linalg.matrix_rank(P.target)), P.n_observed
        (3, 750)
    """
    d = _check_int("d", d, 2)
    rank = _check_int("rank", rank, 1)
    if rank >= d:
        raise ValueError(f"rank must be < d (a rank-{rank} target needs d > {rank}), got d={d}")
    if not (
        isinstance(observed_fraction, numbers.Real) and not isinstance(observed_fraction, bool)
    ):
        raise ValueError(f"observed_fraction must be a number in (0, 1], got {observed_fraction!r}")
    p = float(observed_fraction)
    if not (0.0 < p <= 1.0):
        raise ValueError(f"observed_fraction must be in (0, 1], got {observed_fraction!r}")
    n_obs = round(p * d * d)
    if n_obs < 1:
        raise ValueError(
            f"observed_fraction={p:g} observes no entry of a {d}x{d} matrix; raise it or d"
        )
    _check_generator(generator)
    _check_dtype(dtype)
    _check_device(device)
    dtype = dln._resolve_dtype(dtype)
    gdev = torch.device("cpu") if generator is None else generator.device
    A = torch.randn(d, rank, generator=generator, dtype=torch.float64, device=gdev)
    B = torch.randn(d, rank, generator=generator, dtype=torch.float64, device=gdev)
    target = (A @ B.T) * (2.0 / math.sqrt(d))  # (d, d), rank r
    if n_obs == d * d:
        flat = torch.ones(d * d, dtype=torch.bool, device=gdev)
    else:
        idx = torch.randperm(d * d, generator=generator, device=gdev)[:n_obs]
        flat = torch.zeros(d * d, dtype=torch.bool, device=gdev)
        flat[idx] = True
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=gdev).item())
    mask = flat.view(d, d).to(device)
    target = target.to(dtype=dtype, device=device)
    rows, cols = mask.nonzero(as_tuple=True)  # row-major order
    return Problem(
        target=target,
        mask=mask,
        rank=rank,
        rows=rows,
        cols=cols,
        values=target[rows, cols],
        seed=seed,
    )


def _check_real(name: str, value: object, low: float, low_open: bool) -> float:
    return check_real(name, value, low, strict=low_open)


#: The dtypes the linear algebra of :func:`default_lr`, :func:`lib.completion.compress` and
#: :func:`lib.completion.fit` supports (QR and SVD have no float16/bfloat16 kernels).
_LINALG_DTYPES = (torch.float32, torch.float64)


def _check_problem(problem: object, linalg: str | None = None) -> Problem:
    """Check a :class:`Problem` at a public entry point: structure, device and dtype, then values.

    ``linalg`` names the caller when it needs float32/float64 (QR, SVD); the dtype is checked
    before any value is touched. One host sync (the finiteness of ``target`` and ``values``).
    """
    if not isinstance(problem, Problem):
        raise ValueError(
            f"problem must be a lib.completion.Problem (from make_problem), got {type(problem).__name__}"
        )
    T, M = problem.target, problem.mask
    if not isinstance(T, Tensor) or T.ndim != 2 or T.shape[0] != T.shape[1]:
        got = tuple(T.shape) if isinstance(T, Tensor) else type(T).__name__
        raise ValueError(f"problem.target must be a square (d, d) tensor, got {got}")
    if not T.is_floating_point():
        raise ValueError(f"problem.target must be a floating-point tensor, got dtype {T.dtype}")
    if not isinstance(M, Tensor) or M.shape != T.shape:
        got = tuple(M.shape) if isinstance(M, Tensor) else type(M).__name__
        raise ValueError(
            f"problem.mask must be a ({T.shape[0]}, {T.shape[1]}) tensor like problem.target, "
            f"got {got}"
        )
    if M.dtype != torch.bool:
        raise ValueError(
            f"problem.mask must be a boolean tensor (True = observed), got dtype {M.dtype}; "
            "convert a 0/1 mask with mask.bool() and rebuild rows, cols, values from it"
        )
    for name in ("mask", "rows", "cols", "values"):
        t = getattr(problem, name)
        if not isinstance(t, Tensor) or t.device != T.device:
            where = t.device if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(
                f"problem.{name} must be a tensor on problem.target's device {T.device}, got {where}"
            )
    if T.is_meta:
        raise ValueError("problem.target is a meta tensor (no values); build it with data")
    for name in ("rows", "cols"):
        if getattr(problem, name).dtype != torch.int64:
            raise ValueError(
                f"problem.{name} must be int64 indices of the observed entries, got dtype "
                f"{getattr(problem, name).dtype}; rebuild them with problem.mask.nonzero(as_tuple=True)"
            )
    _check_int("problem.rank", problem.rank, 1)
    _check_int("problem.seed", problem.seed, 0)
    n = problem.rows.numel()
    if any(getattr(problem, k).shape != (n,) for k in ("rows", "cols", "values")):
        raise ValueError(
            "problem.rows, problem.cols and problem.values must be 1-D of one length |Ω|, got "
            f"{[tuple(getattr(problem, k).shape) for k in ('rows', 'cols', 'values')]}"
        )
    if problem.values.dtype != T.dtype:
        raise ValueError(
            f"problem.values has dtype {problem.values.dtype} but problem.target has {T.dtype}"
        )
    if linalg is not None and T.dtype not in _LINALG_DTYPES:
        raise ValueError(
            f"{linalg} needs a float32 or float64 problem, got problem.target of dtype {T.dtype}; "
            "build it with make_problem(..., dtype=torch.float32) or float64"
        )
    if not bool(torch.isfinite(T).all()) or not bool(torch.isfinite(problem.values).all()):
        raise ValueError(
            "problem.target (or problem.values) contains NaN or infinite entries; the loss would "
            "be NaN from the first step. Rebuild the problem with make_problem, or fix the "
            "entries you edited"
        )
    return problem


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------


def _row_blocks(d: int, k: int = 1) -> list[tuple[int, int]]:
    step = max(1, _BLOCK_ELEMENTS // max(1, d * k))
    return [(i, min(d, i + step)) for i in range(0, d, step)]


def _losses_factored(problem: Problem, A: Tensor, V: Tensor) -> tuple[Tensor, Tensor]:
    """(train, test) of the end-to-end matrix A @ V.T, A and V (d, k), block of rows by block."""
    c = 0.5 / problem.d**2
    train = A.new_zeros(())
    test = A.new_zeros(())
    for i, j in _row_blocks(problem.d):
        R2 = (A[i:j] @ V.T - problem.target[i:j]).square()  # (b, d)
        m = problem.mask[i:j]
        train = train + torch.where(m, R2, 0.0).sum()
        test = test + torch.where(m, 0.0, R2).sum()
    return c * train, c * test


def losses(problem: Problem, end_to_end: Tensor) -> tuple[Tensor, Tensor]:
    r"""Train and test loss of an end-to-end matrix.

    .. math::

        \ell_{\text{train}} = \frac{1}{2d^2}\|\Omega\odot(W - \Phi)\|_F^2, \qquad
        \ell_{\text{test}} = \frac{1}{2d^2}\|(1-\Omega)\odot(W - \Phi)\|_F^2 .

    Args:
        problem: from :func:`make_problem`.
        end_to_end: :math:`W = W_{L:1}`, ``(d, d)``, on the problem's device and dtype.

    Returns:
        ``(train, test)``, two 0-dim tensors on the problem's device; NaN (or inf) when
        ``end_to_end`` holds NaN (or inf): a diverged matrix is reported as such, not refused.

    Reference:
        The loss of the public code behind the lecture's figures (``create_loss``, ``"mean"``).

    Example:
        >>> P = make_problem(20, 2, 0.5, generator=torch.Generator().manual_seed(0))
        >>> train, test = losses(P, P.target)
        >>> float(train), float(test)
        (0.0, 0.0)
    """
    problem = _check_problem(problem)
    if not isinstance(end_to_end, Tensor) or end_to_end.shape != problem.target.shape:
        got = (
            tuple(end_to_end.shape) if isinstance(end_to_end, Tensor) else type(end_to_end).__name__
        )
        raise ValueError(f"end_to_end must be a ({problem.d}, {problem.d}) tensor, got {got}")
    T = problem.target
    if end_to_end.dtype != T.dtype or end_to_end.device != T.device:
        raise ValueError(
            f"end_to_end has dtype {end_to_end.dtype} on {end_to_end.device}, but the problem has "
            f"{T.dtype} on {T.device}; move it with end_to_end.to(problem.target)"
        )
    R2 = (end_to_end - problem.target).square()
    c = 0.5 / problem.d**2
    return c * R2[problem.mask].sum(), c * R2[~problem.mask].sum()


# --------------------------------------------------------------------------------------------
# learning rate, size, shared checks
# --------------------------------------------------------------------------------------------


def default_lr(problem: Problem, depth: int = 3) -> float:
    r"""A learning rate at half the edge of stability of the fitted network.

    Near a balanced solution of deep matrix factorization the sharpness of the sum-loss is
    :math:`L\,\sigma_1(\Phi)^{2-2/L}` (gradient descent is stable below twice its inverse); the
    mask scales it by about :math:`p = |\Omega|/d^2`, and this module's loss carries
    :math:`1/d^2`. Hence

    .. math::

        \eta = \frac{d^2}{p\,L\,\sigma_1(\Phi)^{2-2/L}},

    about 5e3 in the paper's setting (``d = 1000``, ``r = 5``, 20 % observed, ``L = 3``), where
    the public code uses 5e3. At ``L = 1`` (gradient descent on the matrix itself) the Hessian of
    the loss is the mask over :math:`d^2`, whatever :math:`\Phi` and ``p``: the edge is exactly
    :math:`2d^2`, and :math:`\eta = d^2` (one step fits the observed entries exactly).

    Args:
        problem: from :func:`make_problem`.
        depth: ``L >= 1``.

    Returns:
        η as a Python float.

    Raises:
        ValueError: a problem that is not float32/float64 (QR and SVD have no half-precision
            kernels; :func:`losses` and the initialisations do accept float16/bfloat16), or
            a non-finite ``problem.target``.

    Reference:
        Yaras et al. 2023, section 5 (step size 5e3 at ``d = 1000``).

    Example:
        >>> P = make_problem(1000, 5, 0.2, generator=torch.Generator().manual_seed(0))
        >>> 3e3 < default_lr(P, 3) < 8e3
        True
    """
    problem = _check_problem(problem, "default_lr")
    depth = _check_int("depth", depth, 1)
    if depth == 1:  # the loss is quadratic in W with Hessian Ω/d²: no 1/p, no σ₁
        return float(problem.d**2)
    # Φ has rank r: a random sketch of r + 4 columns spans its range, so this σ₁ is exact.
    T = problem.target
    # The sketch is fixed (seed 0) so that η is a function of the problem alone; any sketch gives
    # the same σ₁, so no generator is taken.
    X = torch.randn(problem.d, problem.rank + 4, generator=torch.Generator().manual_seed(0))
    Q, _ = torch.linalg.qr(T @ X.to(T))  # (d, r + 4)
    sigma1 = float(torch.linalg.svdvals(Q.T @ T)[0])
    return problem.d**2 / (problem.observed_fraction * depth * sigma1 ** (2 - 2 / depth))


def parameter_count(method: Method, d: int, depth: int = 3, rank_hat: int = 1) -> int:
    r"""Number of trainable parameters.

    .. math::

        \text{original: } L d^2, \qquad \text{compressed: } L k^2 + 2dk, \qquad
        \text{narrow: } (L-2) k^2 + 2dk, \qquad k = 2\hat r .

    Args:
        method: ``"original"``, ``"compressed"`` or ``"narrow"``.
        d: side of the target.
        depth: ``L``.
        rank_hat: :math:`\hat r` (ignored for ``"original"``).

    Returns:
        The count as a Python int.

    Example:
        >>> parameter_count("original", 1000, 3), parameter_count("compressed", 1000, 3, 5)
        (3000000, 20300)
    """
    _check_option("method", method, _METHODS)
    d = _check_int("d", d, 1)
    depth = _check_int("depth", depth, 2 if method == "narrow" else 1)
    k = 2 * _check_int("rank_hat", rank_hat, 1)
    if method == "original":
        return depth * d * d
    if method == "compressed":
        return depth * k * k + 2 * d * k
    return (depth - 2) * k * k + 2 * d * k


def _check_rank_hat(problem: Problem, rank_hat: object, needed: bool = True) -> int:
    """``r̂`` (default ``problem.rank``), checked: ``2 r̂ <= d`` wherever the width is used."""
    if rank_hat is None:
        if needed and 2 * problem.rank > problem.d:
            raise ValueError(
                f"rank_hat is too large: it defaults to problem.rank = {problem.rank}, and the "
                f"compressed and narrow networks have width 2*rank_hat = {2 * problem.rank}, which "
                f"must be <= d = {problem.d}; pass rank_hat <= {problem.d // 2}"
            )
        return problem.rank
    r_hat = _check_int("rank_hat", rank_hat, 1)
    if 2 * r_hat > problem.d:
        raise ValueError(
            f"rank_hat is too large: the compressed and narrow networks have width 2*rank_hat = "
            f"{2 * r_hat}, which must be <= d = {problem.d}"
        )
    return r_hat


def _check_weights(weights: Sequence[Tensor], problem: Problem, square: bool) -> list[Tensor]:
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError("weights must be a non-empty list of tensors [W_1, ..., W_L]")
    d = problem.d
    for i, W in enumerate(weights):
        if not isinstance(W, Tensor) or W.ndim != 2:
            raise ValueError(f"W_{i + 1} must be a 2-D tensor")
        if W.dtype != problem.target.dtype or W.device != problem.target.device:
            raise ValueError(
                f"W_{i + 1} has dtype {W.dtype} on {W.device}; the problem has "
                f"{problem.target.dtype} on {problem.target.device}"
            )
        if W.is_meta or not bool(torch.isfinite(W).all()):
            raise ValueError(
                f"W_{i + 1} contains NaN or infinite entries (or is a meta tensor without values)"
            )
        if square and W.shape != (d, d):
            raise ValueError(
                f"W_{i + 1} must be ({d}, {d}) (the original network), got {tuple(W.shape)}"
            )
    if weights[0].shape[1] != d or weights[-1].shape[0] != d:
        raise ValueError(f"the network must map R^{d} to R^{d}")
    for i in range(1, len(weights)):
        if weights[i].shape[1] != weights[i - 1].shape[0]:
            raise ValueError(f"shape mismatch between W_{i} and W_{i + 1}")
    return [W.detach() for W in weights]
