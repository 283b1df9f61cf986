r"""Deep matrix completion with compressed deep linear networks.

Lecture section 4, *Efficient deep matrix completion* (Yaras et al. '23; Kwon et al. '23). A deep
linear network with weights ``Ws = [W_1, ..., W_L]`` (``W_l`` of shape ``(d_l, d_{l-1})``, as in
:mod:`lib.dln`) is fitted to the observed entries of a low-rank matrix :math:`\Phi` by full-batch
gradient descent on

.. math::

    \ell(\Theta) = \frac{1}{2d^2}\,\big\|\Omega\odot(W_{L:1} - \Phi)\big\|_F^2 ,

the loss convention of the public code (``½ · mean`` over all :math:`d^2` entries of the masked
residual), whose learning rates are tuned for it. The *test* loss is the same with
:math:`1-\Omega` in place of :math:`\Omega`.

Three networks, all started from ε-orthogonal weights:

* ``"original"`` — ``L`` square layers of width ``d`` (:math:`L d^2` parameters);
* ``"compressed"`` — the law of parsimony says that gradient descent on the original network only
  moves a :math:`2\hat r`-dimensional subspace of every layer. Keep that subspace, found from the
  SVD of the first gradient and the initial weights:
  :math:`W_{L:1}(t) \approx U_{L,1}\,\widetilde W_L(t)\cdots\widetilde W_1(t)\,V_{1,1}^\top` with
  inner factors :math:`\widetilde W_l(0) = \varepsilon I_{2\hat r}` and thin outer factors
  :math:`V_{1,1}, U_{L,1} \in \mathbb R^{d\times 2\hat r}` trained at the *discrepant* rate
  :math:`\gamma\eta` (:math:`L(2\hat r)^2 + 4 d\hat r` parameters);
* ``"narrow"`` — ``L`` layers of width :math:`2\hat r` from a fresh ε-orthogonal initialisation
  (same parameter count as the compressed network up to :math:`2(2\hat r)^2`).

Compressed and narrow networks are stored like any network of :mod:`lib.dln`: the first weight is
``(k, d)``, the last ``(d, k)``, the inner ones ``(k, k)`` with ``k = 2 r̂``. Their loss and
gradient are evaluated **on the observed entries only** — gather rows of the thin outer factors,
one dot product per observed entry, sum back along each row and each column of Φ (the entries
stored as padded rows and columns: no atomics) — in :math:`O(|\Omega|\,\hat r + d\hat r^2)` per
step; a dense path (:math:`O(d^2\hat r)`) is kept as a reference and for small ``d``. On a GPU the
observed-entry step is three Triton kernels (:mod:`lib._fused_completion`) replayed as CUDA graphs.

Functional core: :func:`make_problem`, :func:`init_original`, :func:`first_gradient`,
:func:`compress`, :func:`init_narrow`, :func:`losses`, :func:`default_lr`,
:func:`parameter_count`, :func:`project_trajectories`; the public contract on top is :func:`fit`
(gradient descent, sync-free on the device; on a GPU its steps replay as CUDA graphs).

Measured (``bench/completion.py``, H200, float32, the paper's d = 1000, r = 5, 20 % observed,
L = 3, to train loss 1e-9): original 7.76 s; compressed, fused Triton step 0.80 s (0.10 x),
``compile+graph`` 1.05 s, ``graph`` 3.3 s, ``eager`` 16.6 s; d = 10,000 fused: 22.2 s. In float64
the fused and PyTorch steps agree to 1e-15 and stop at the same step (19,950); in float32 their
rounding differs, which shifts the escapes from the saddles of incremental learning (the end-to-end
matrices differ by 1 % on the 2e-3 loss plateau): the fused run stops after 21,198 steps.
"""

from __future__ import annotations

import math
import numbers
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from lib import dln
from lib._checks import check_int as _check_int
from lib._checks import check_option as _check_option

__all__ = [
    "FitResult",
    "Problem",
    "compress",
    "default_lr",
    "first_gradient",
    "fit",
    "init_narrow",
    "init_original",
    "losses",
    "make_problem",
    "parameter_count",
    "project_trajectories",
]

Method = Literal["original", "compressed", "narrow"]
Evaluation = Literal["auto", "observed", "dense"]
StepMode = Literal["auto", "eager", "graph", "compile", "compile+graph", "fused"]
Layout = Literal["auto", "padded", "scatter"]

_METHODS = ("original", "compressed", "narrow")
_EVALUATIONS = ("auto", "observed", "dense")
_STEP_MODES = ("auto", "eager", "graph", "compile", "compile+graph", "fused")
_LAYOUTS = ("auto", "padded", "scatter")

#: ``layout="auto"`` pads the observed entries (rows and columns) while the padded slots number
#: at most this many times the ``2|Ω|`` entries they hold; a very uneven mask uses the scatter.
_MAX_PADDING = 1.5

#: Products of the thin factors in the padded observed step: ``None`` (default) uses broadcast
#: sums under ``torch.compile`` and BLAS otherwise; ``True``/``False`` force one (benchmarks).
_BROADCAST_MM: bool | None = None

#: Largest ``d`` for which :func:`first_gradient`'s subspace comes from a full SVD; above it a
#: randomized block power iteration finds the top ``r̂`` singular vectors.
EXACT_SVD_MAX_D = 2048

#: Elements per block when a dense ``(d, d)`` quantity is evaluated block of rows by block of rows.
_BLOCK_ELEMENTS = 1 << 22

#: ``evaluation="auto"`` on the CPU uses the dense path up to this ``d``: there BLAS matmuls beat
#: the scatter-add of the observed-entry path (on accelerators the observed path is the default).
_DENSE_ON_CPU_MAX_D = 1024

# A CUDA graph holds this many GD steps (and a second one holds a single step for remainders).
_GRAPH_STEPS = 50


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _check_real(name: str, value: object, low: float, low_open: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low)
    if not ok:
        raise ValueError(
            f"{name} must be a finite number {'>' if low_open else '>='} {low:g}, got {value!r}"
        )
    return float(value)


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


def _check_problem(problem: object) -> Problem:
    if not isinstance(problem, Problem):
        raise ValueError(
            f"problem must be a lib.completion.Problem (from make_problem), got {type(problem).__name__}"
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
        ``(train, test)``, two 0-dim tensors on the problem's device.

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
    R2 = (end_to_end - problem.target).square()
    c = 0.5 / problem.d**2
    return c * R2[problem.mask].sum(), c * R2[~problem.mask].sum()


# --------------------------------------------------------------------------------------------
# the three networks
# --------------------------------------------------------------------------------------------


def _init_generator(
    problem: Problem, generator: torch.Generator | None, offset: int
) -> torch.Generator:
    """The caller's generator, or one seeded from ``problem.seed``.

    The default generator lives on the CPU (one seed, one network on every device) except for
    ``d > EXACT_SVD_MAX_D`` on an accelerator, where sampling ``d × d`` orthogonal matrices on the
    CPU would dominate the run; there it lives on the problem's device.
    """
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return generator
    device = problem.target.device
    if device.type == "cpu" or problem.d <= EXACT_SVD_MAX_D:
        device = torch.device("cpu")
    return torch.Generator(device=device).manual_seed((problem.seed + offset) % 2**63)


def init_original(
    problem: Problem,
    depth: int = 3,
    scale: float = 1e-3,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    r"""ε-orthogonal initial weights of the original network: ``L`` square layers of width ``d``.

    .. math::

        W_l(0)^\top W_l(0) = \varepsilon^2 I_d, \qquad l = 1, \dots, L.

    :func:`fit` with ``method="original"`` or ``"compressed"`` starts from exactly these weights
    when it is given the same generator (by default one seeded with ``problem.seed``).

    Args:
        problem: from :func:`make_problem`.
        depth: ``L >= 1``.
        scale: ε > 0.
        generator: random source (default: seeded with ``problem.seed``).

    Returns:
        ``L`` tensors ``(d, d)`` on the problem's device and dtype.

    Reference:
        Lecture 6, section 2, "Orthogonal initialization" (via :func:`lib.dln.init_weights`).

    Example:
        >>> P = make_problem(10, 2, 0.5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> Ws = init_original(P, depth=2, scale=0.1)
        >>> bool(torch.allclose(Ws[0].T @ Ws[0], 0.01 * torch.eye(10, dtype=torch.float64)))
        True
    """
    problem = _check_problem(problem)
    depth = _check_int("depth", depth, 1)
    scale = _check_real("scale", scale, 0.0, low_open=True)
    g = _init_generator(problem, generator, 0)
    t = problem.target
    return dln.init_weights([problem.d] * (depth + 1), scale, "orthogonal", g, t.dtype, t.device)


def init_narrow(
    problem: Problem,
    width: int,
    depth: int = 3,
    scale: float = 1e-3,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    r"""ε-orthogonal initial weights of a narrow network: ``L`` layers of width ``k``.

    .. math::

        W_1 \in \mathbb R^{k\times d},\ W_2,\dots,W_{L-1} \in \mathbb R^{k\times k},\
        W_L \in \mathbb R^{d\times k}, \qquad W_l W_l^\top = \varepsilon^2 I \text{ or }
        W_l^\top W_l = \varepsilon^2 I .

    Args:
        problem: from :func:`make_problem`.
        width: ``k`` (``2 r̂`` in :func:`fit`), ``1 <= k <= d``.
        depth: ``L >= 2``.
        scale: ε > 0.
        generator: random source (default: seeded from ``problem.seed``, a stream different
            from :func:`init_original`'s).

    Returns:
        ``L`` tensors: ``(k, d)``, ``(k, k)`` × ``(L-2)``, ``(d, k)``.

    Reference:
        Yaras et al. 2023, section 5 ("narrow" networks of width r and 2r).

    Example:
        >>> P = make_problem(10, 2, 0.5, generator=torch.Generator().manual_seed(0))
        >>> [tuple(W.shape) for W in init_narrow(P, 4, depth=3)]
        [(4, 10), (4, 4), (10, 4)]
    """
    problem = _check_problem(problem)
    width = _check_int("width", width, 1)
    if width > problem.d:
        raise ValueError(f"width must be <= d = {problem.d}, got {width}")
    depth = _check_int("depth (of a narrow network)", depth, 2)
    scale = _check_real("scale", scale, 0.0, low_open=True)
    g = _init_generator(problem, generator, 1)
    dims = [problem.d] + [width] * (depth - 1) + [problem.d]
    t = problem.target
    return dln.init_weights(dims, scale, "orthogonal", g, t.dtype, t.device)


def first_gradient(problem: Problem, weights0: Sequence[Tensor]) -> Tensor:
    r"""The gradient of the original network's loss with respect to :math:`W_1` at initialisation.

    .. math::

        \nabla_{W_1}\ell\,(0) = W_{L:2}(0)^\top\, \tfrac{1}{d^2}\,\Omega\odot\big(W_{L:1}(0) - \Phi\big).

    Args:
        problem: from :func:`make_problem`.
        weights0: the original network's initial weights, ``L`` tensors ``(d, d)``.

    Returns:
        ``(d, d)``.

    Reference:
        Yaras et al. 2023, section 5, construction of the compressed network.

    Example:
        >>> P = make_problem(10, 2, 1.0, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> tuple(first_gradient(P, init_original(P)).shape)
        (10, 10)
    """
    problem = _check_problem(problem)
    Ws = _check_weights(weights0, problem, square=True)
    E = problem.mask * (dln.end_to_end(Ws) - problem.target) / problem.d**2  # (d, d)
    for W in reversed(Ws[1:]):
        E = W.T @ E
    return E


def _top_singular_vectors(G: Tensor, k: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Top-k left and right singular vectors of G (d, d): full SVD for small d, else block power."""
    d = G.shape[0]
    if d <= EXACT_SVD_MAX_D:
        U, _, Vh = torch.linalg.svd(G, full_matrices=False)
        return U[:, :k], Vh[:k].mT
    q = min(d, 2 * k + 10)
    X = torch.randn(d, q, generator=generator, dtype=torch.float64).to(G)  # (d, q)
    for _ in range(8):  # subspace iteration on G Gᵀ with re-orthonormalisation
        X, _ = torch.linalg.qr(G @ (G.T @ X))
    B = X.T @ G  # (q, d)
    Ub, _, Vh = torch.linalg.svd(B, full_matrices=False)
    return (X @ Ub)[:, :k], Vh[:k].mT


def compress(
    problem: Problem, weights0: Sequence[Tensor], rank_hat: int | None = None
) -> list[Tensor]:
    r"""The compressed network of width :math:`2\hat r` built from the first gradient and the init.

    With :math:`\nabla_{W_1}\ell(0) = U_g\Sigma_g V_g^\top` (top :math:`\hat r` singular vectors
    :math:`U_{g,1}, V_{g,1}`), the subspace in which learning happens is

    .. math::

        \mathcal V = \operatorname{span}\big(V_{g,1},\ W_1(0)^\top U_{g,1}/\varepsilon\big),\qquad
        V_{1,1} = \text{orthonormal basis of } \mathcal V \in \mathbb R^{d\times 2\hat r},

    and the compressed network is

    .. math::

        W_{L:1}^{\mathrm c}(t) = U_{L,1}(t)\,\widetilde W_L(t)\cdots\widetilde W_1(t)\,V_{1,1}(t)^\top,
        \quad \widetilde W_l(0) = \varepsilon I_{2\hat r},\quad
        U_{L,1}(0) = W_{L:1}(0)\,V_{1,1}/\varepsilon^L .

    For full observation (deep matrix factorization) with :math:`\hat r = r`, :math:`\mathcal V`
    is exactly the invariant subspace of the law of parsimony, and with fixed outer factors the
    compressed end-to-end matrix equals the original one up to the untouched part
    :math:`\rho(t)^L U_{L,2}V_{1,2}^\top` (of size :math:`\le\varepsilon^L`). For ``d`` above
    :data:`EXACT_SVD_MAX_D` the top singular vectors come from a randomized block power iteration.

    Args:
        problem: from :func:`make_problem`.
        weights0: the original network's ε-orthogonal initial weights (:func:`init_original`),
            ``L`` tensors ``(d, d)``.
        rank_hat: :math:`\hat r` (default ``problem.rank``), ``1 <= 2 r̂ <= d``.

    Returns:
        ``L + 2`` weights in :mod:`lib.dln`'s convention: :math:`V_{1,1}^\top` ``(2r̂, d)``,
        ``L`` inner :math:`\varepsilon I_{2\hat r}`, :math:`U_{L,1}` ``(d, 2r̂)``; so
        ``lib.dln.end_to_end(compress(...))`` is :math:`W_{L:1}^{\mathrm c}(0)`.

    Reference:
        Yaras et al. 2023, section 5 and Thm. 1 (``compute_factor``, ``compress_network`` in
        cjyaras/law-of-parsimony); Lecture 6, section 4.

    Example:
        >>> P = make_problem(20, 2, 1.0, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> [tuple(W.shape) for W in compress(P, init_original(P, depth=3))]
        [(4, 20), (4, 4), (4, 4), (4, 4), (20, 4)]
    """
    problem = _check_problem(problem)
    Ws = _check_weights(weights0, problem, square=True)
    rank_hat = _check_rank_hat(problem, rank_hat)
    k, L = 2 * rank_hat, len(Ws)
    eps = float(torch.linalg.matrix_norm(Ws[0]) / math.sqrt(problem.d))  # ε of an ε-orthogonal W_1
    G = first_gradient(problem, Ws)  # (d, d)
    g = torch.Generator().manual_seed(problem.seed % 2**63)
    Ug, Vg = _top_singular_vectors(G, rank_hat, g)  # (d, r̂) each
    span = torch.cat([Vg, Ws[0].T @ Ug / eps], dim=1)  # (d, 2r̂)
    V11, _, _ = torch.linalg.svd(span, full_matrices=False)  # (d, 2r̂) orthonormal basis
    Q = dln.end_to_end([W / eps for W in Ws])  # W_{L:1}(0) / ε^L, orthogonal
    UL1 = Q @ V11  # (d, 2r̂)
    eye = torch.eye(k, dtype=V11.dtype, device=V11.device)
    return [V11.T.contiguous()] + [eps * eye for _ in range(L)] + [UL1]


def default_lr(problem: Problem, depth: int = 3) -> float:
    r"""A learning rate at half the edge of stability of the fitted network.

    Near a balanced solution of deep matrix factorization the sharpness of the sum-loss is
    :math:`L\,\sigma_1(\Phi)^{2-2/L}` (gradient descent is stable below twice its inverse); the
    mask scales it by about :math:`p = |\Omega|/d^2`, and this module's loss carries
    :math:`1/d^2`. Hence

    .. math::

        \eta = \frac{d^2}{p\,L\,\sigma_1(\Phi)^{2-2/L}},

    about 5e3 in the paper's setting (``d = 1000``, ``r = 5``, 20 % observed, ``L = 3``), where
    the public code uses 5e3.

    Args:
        problem: from :func:`make_problem`.
        depth: ``L >= 1``.

    Returns:
        η as a Python float.

    Reference:
        Yaras et al. 2023, section 5 (step size 5e3 at ``d = 1000``).

    Example:
        >>> P = make_problem(1000, 5, 0.2, generator=torch.Generator().manual_seed(0))
        >>> 3e3 < default_lr(P, 3) < 8e3
        True
    """
    problem = _check_problem(problem)
    depth = _check_int("depth", depth, 1)
    # Φ has rank r: a random sketch of r + 4 columns spans its range, so this σ₁ is exact.
    T = problem.target
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


def _check_rank_hat(problem: Problem, rank_hat: object) -> int:
    if rank_hat is None:
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


# --------------------------------------------------------------------------------------------
# one GD step, in place (shared by every step mode)
# --------------------------------------------------------------------------------------------


MatMul = Callable[[Tensor, Tensor], Tensor]


def _broadcast_mm(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` as a broadcast product and a sum, for thin operands (an inner size ``k``).

    Under :func:`torch.compile` this is one fusible reduction instead of a BLAS call: at
    ``k = 2 r̂ ≈ 10`` the step is made of kernel launches, not of flops.
    """
    return (a.unsqueeze(2) * b.unsqueeze(0)).sum(1)


def _prefix_products(Ws: Sequence[Tensor], mm: MatMul = torch.matmul) -> list[Tensor]:
    """pre[l] = W_l ⋯ W_1 (pre[0] = W_1); pre[-1] is the end-to-end matrix."""
    pre = [Ws[0]]
    for W in Ws[1:]:
        pre.append(mm(W, pre[-1]))
    return pre


def _backprop(
    Ws: Sequence[Tensor], pre: Sequence[Tensor], E: Tensor, mm: MatMul = torch.matmul
) -> list[Tensor]:
    r"""∇_{W_l} of a loss whose gradient w.r.t. W_{L:1} is E: W_{L:l+1}ᵀ E W_{l-1:1}ᵀ."""
    L = len(Ws)
    grads: list[Tensor] = [E] * L
    S = E  # W_{L:l+1}ᵀ E
    for i in range(L - 1, -1, -1):
        grads[i] = mm(S, pre[i - 1].T) if i > 0 else S
        if i > 0:
            S = mm(Ws[i].T, S)
    return grads


def _gate(sq: Tensor, threshold: float, flags: Tensor) -> Tensor:
    """Stop for good at the first step whose loss is below tol; count the steps taken.

    ``flags = [steps taken, go]`` lives on the device and is updated in place (no host sync):
    ``go`` drops from 1 to 0 at the first step with ``sq < threshold`` (or a NaN) and stays 0.
    Returns the ``go`` view, which scales every update of the step.
    """
    go = flags[1]
    go.mul_(sq >= threshold)
    flags[0].add_(go)
    return go


def _step_original(Ws, target, maskf, c, lr, threshold, flags):
    """One GD step of the dense original network; updates Ws and flags in place."""
    pre = _prefix_products(Ws)
    R = maskf * (pre[-1] - target)  # (d, d), the gradient w.r.t. W_{L:1} divided by c
    go = _gate(R.square().sum(), threshold, flags)  # 2ℓ/c
    grads = _backprop(Ws, pre, R)
    torch._foreach_add_(Ws, torch._foreach_mul(grads, go * (-lr * c)))


def _inner_product(
    inner: Sequence[Tensor], like: Tensor, mm: MatMul = torch.matmul
) -> tuple[Tensor, list[Tensor]]:
    if not inner:
        k = like.shape[1]
        return torch.eye(k, dtype=like.dtype, device=like.device), []
    pre = _prefix_products(inner, mm)
    return pre[-1], pre


def _thin_update(U, inner, V, B, C, P, pre, go, c, lr_in, lr_out, mm=torch.matmul) -> None:
    """GD update of U · inner · Vᵀ from B = G V and C = Gᵀ U P (G = ∇ w.r.t. W_{L:1}, over c)."""
    params, steps = [], []
    if inner:
        params += list(inner)
        g_inner = _backprop(inner, pre, mm(U.T, B), mm)  # (k, k) each, from Uᵀ G V
        steps += torch._foreach_mul(g_inner, go * (-lr_in * c))
    if lr_out != 0.0:  # γ = 0 keeps the outer factors exactly fixed
        params += [U, V]
        steps += torch._foreach_mul([mm(B, P.T), C], go * (-lr_out * c))  # (d, k) each
    torch._foreach_add_(params, steps)


def _step_thin_observed(U, inner, AV, gather, scatter, vals, c, lr_in, lr_out, threshold, flags):
    r"""One GD step of U · inner · Vᵀ with the loss and gradient at the observed entries only.

    ``AV`` is a ``(2d, k)`` buffer: rows ``[0, d)`` receive ``A = U P``, rows ``[d, 2d)`` *are*
    ``V``. ``gather = [rows, d + cols]`` and ``scatter = [cols, d + rows]`` (``(2|Ω|,)`` each), so
    one gather and one scatter-add serve both factors: :math:`O(|\Omega| k)` per step.
    """
    d, k = U.shape
    n = vals.shape[0]
    P, pre = _inner_product(inner, U)
    torch.mm(U, P, out=AV[:d])  # A = U P
    X = AV.index_select(0, gather).view(2, n, k)  # [A[rows]; V[cols]]
    res = (X[0] * X[1]).sum(1) - vals  # (n,): entries of (W - Φ) on Ω
    go = _gate(res.dot(res), threshold, flags)
    S = (X * res.view(1, n, 1)).view(2 * n, k)  # [res A[rows]; res V[cols]]
    BC = torch.zeros_like(AV).index_add_(0, scatter, S)  # [Gᵀ A; G V] / c, (2d, k)
    _thin_update(U, inner, AV[d:], BC[d:], BC[:d], P, pre, go, c, lr_in, lr_out)


@dataclass(frozen=True)
class _Padded:
    """The observed entries as padded rows and padded columns (ELLPACK): no atomics per step.

    Row ``i`` of ``cols`` lists the columns observed in row ``i`` of Φ, padded with ``d`` up to
    the fullest row's count ``m``; ``vals`` holds Φ there (0 at padding). ``rows_t``/``vals_t``
    are the same for the columns of Φ. Index ``d`` points at a zero row appended to each thin
    factor, so padding contributes exactly 0.
    """

    cols: Tensor  # (d, m) int32
    vals: Tensor  # (d, m)
    rows_t: Tensor  # (d, m_t) int32
    vals_t: Tensor  # (d, m_t)

    @property
    def slots(self) -> int:
        return self.cols.numel() + self.rows_t.numel()


def _pad_by(major: Tensor, minor: Tensor, values: Tensor, d: int) -> tuple[Tensor, Tensor]:
    """Group ``(major, minor, value)`` triples by ``major``: ``(d, m)`` minor indices and values."""
    order = torch.argsort(major * d + minor)  # by major, then minor (unique keys: stable)
    major, minor, values = major[order], minor[order], values[order]
    counts = torch.bincount(major, minlength=d)
    start = torch.cumsum(counts, 0) - counts
    pos = torch.arange(major.numel(), device=major.device) - start[major]
    m = max(1, int(counts.max()))
    idx = torch.full((d, m), d, dtype=torch.int32, device=major.device)
    idx[major, pos] = minor.to(torch.int32)
    val = values.new_zeros(d, m)
    val[major, pos] = values
    return idx, val


def _padded(problem: Problem) -> _Padded:
    d = problem.d
    cols, vals = _pad_by(problem.rows, problem.cols, problem.values, d)
    rows_t, vals_t = _pad_by(problem.cols, problem.rows, problem.values, d)
    return _Padded(cols, vals, rows_t, vals_t)


def _step_thin_padded(U, inner, A1, V1, pad, c, lr_in, lr_out, threshold, flags, mm):
    r"""The observed-entry step on padded rows and columns: gathers and row sums, no scatter.

    ``A1`` and ``V1`` are ``(d + 1, k)`` with a zero last row; ``V1[:d]`` *is* ``V`` and
    ``A1[:d]`` receives ``A = U P``. Row ``i`` of ``res`` holds the residuals of row ``i`` of Φ,
    so ``G V`` is a sum along rows; ``Gᵀ A`` is the same over the padded columns (the residuals
    recomputed there: reading them back through a permutation would cost as much). ``mm``
    multiplies the thin and small factors (``torch.matmul``, or :func:`_broadcast_mm` when
    compiled).
    """
    d, k = U.shape
    P, pre = _inner_product(inner, U, mm)
    A1[:d].copy_(mm(U, P))  # A = U P
    A, V = A1[:d], V1[:d]
    Vg = V1[pad.cols]  # (d, m, k): V at the observed columns of each row
    res = (Vg * A.unsqueeze(1)).sum(2) - pad.vals  # (d, m): W − Φ on Ω, by rows
    go = _gate(res.square().sum(), threshold, flags)
    B = (res.unsqueeze(2) * Vg).sum(1)  # G V / c
    Ag = A1[pad.rows_t]  # (d, m_t, k): A at the observed rows of each column
    res_t = (Ag * V.unsqueeze(1)).sum(2) - pad.vals_t  # W − Φ on Ω, by columns
    C = (res_t.unsqueeze(2) * Ag).sum(1)  # Gᵀ A / c
    _thin_update(U, inner, V, B, C, P, pre, go, c, lr_in, lr_out, mm)


def _step_thin_dense(U, inner, V, target, maskf, c, lr_in, lr_out, threshold, flags):
    """The same step through the dense (d, d) end-to-end matrix (reference path)."""
    P, pre = _inner_product(inner, U)
    A = U @ P  # (d, k)
    R = maskf * (A @ V.T - target)  # (d, d), G / c
    go = _gate(R.square().sum(), threshold, flags)
    _thin_update(U, inner, V, R @ V, R.T @ A, P, pre, go, c, lr_in, lr_out)


# --------------------------------------------------------------------------------------------
# runners: eager, CUDA graphs, torch.compile
# --------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class _Runner:
    """Runs ``n`` GD steps of a step closure whose tensors (``state``) are updated in place.

    ``"graph"`` modes (and ``"fused"`` on CUDA) capture :data:`_GRAPH_STEPS` steps (and one
    step, for remainders) as CUDA graphs and replay them; ``"compile"`` modes wrap the step in
    :func:`torch.compile`; ``"fused"`` steps are Triton kernels (``step``), with the same
    arithmetic in PyTorch as ``eager_step``. Should compilation or capture fail, the runner warns
    and falls back to ``eager_step`` (``mode`` says what actually runs).
    """

    def __init__(
        self,
        step: Callable[[], None],
        state: list[Tensor],
        mode: str,
        device: torch.device,
        eager_step: Callable[[], None] | None = None,
    ):
        self.state, self.mode, self.device = state, mode, device
        self.step, self.eager_step = step, eager_step or step
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        saved = [t.clone() for t in state]
        try:
            if mode in ("compile", "compile+graph"):
                self.step = torch.compile(step)  # recompiles once, dynamically, for a new d
            if "graph" in mode or (mode == "fused" and device.type == "cuda"):
                self._capture()
            else:
                self.step()  # warm-up: compilation, kernels, allocator
        except Exception as err:  # noqa: BLE001 - any compiler/capture failure falls back
            warnings.warn(
                f"step_mode={mode!r} failed ({type(err).__name__}: {err}); running eager steps",
                RuntimeWarning,
                stacklevel=3,
            )
            self.graphs, self.step, self.mode = {}, self.eager_step, "eager"
        for t, s in zip(state, saved):  # undo the warm-up steps
            t.copy_(s)
        _sync(device)

    def _capture(self) -> None:
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up on a side stream before capture
                self.step()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        pool = None  # the two graphs never run at once: they share one memory pool
        for n in (_GRAPH_STEPS, 1):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                for _ in range(n):
                    self.step()
            pool = graph.pool()
            self.graphs[n] = graph

    def run(self, n: int) -> None:
        if self.graphs:
            for _ in range(n // _GRAPH_STEPS):
                self.graphs[_GRAPH_STEPS].replay()
            for _ in range(n % _GRAPH_STEPS):
                self.graphs[1].replay()
        else:
            for _ in range(n):
                self.step()


def _triton_interpreter() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _fused_module():
    """:mod:`lib._fused_completion`, or ``None`` where Triton is not installed."""
    try:
        from lib import _fused_completion
    except ImportError:
        return None
    return _fused_completion


def _resolve_step_mode(mode: str, device: torch.device) -> str:
    _check_option("step_mode", mode, _STEP_MODES)
    if mode == "auto":
        return "auto"  # fit decides, once the evaluation and the layout are known
    if "graph" in mode and device.type != "cuda":
        raise ValueError(
            f"step_mode={mode!r} needs a CUDA device (CUDA graphs); use 'eager' or 'compile'"
        )
    if mode == "fused":
        if device.type != "cuda" and not _triton_interpreter():
            raise ValueError(
                "step_mode='fused' runs Triton kernels: it needs a CUDA device (or the "
                "environment variable TRITON_INTERPRET=1 to emulate them on the CPU, for tests); "
                "use 'eager' or 'compile'"
            )
        if _fused_module() is None:
            raise ValueError(
                "step_mode='fused' needs Triton (installed with PyTorch's CUDA wheels; "
                "`pip install triton`); use 'graph'"
            )
    return mode


# --------------------------------------------------------------------------------------------
# fit: the public contract
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitResult:
    r"""What :func:`fit` returns.

    Attributes:
        method: ``"original"``, ``"compressed"`` or ``"narrow"``.
        train_loss: train loss at each recorded step (Python floats).
        test_loss: test loss at each recorded step.
        record_steps: the recorded steps: 0, ``record_every``, ``2·record_every``, ... and
            the last one.
        record_seconds: training seconds elapsed at each recorded step (for loss-vs-time plots).
        steps: number of GD updates done (fewer than ``max_steps`` when the train loss fell
            below ``tol``: it is the first step at which it did).
        seconds: wall-clock seconds of the training loop, device-synchronised, without the
            one-off set-up (initialisation, compression, compilation, graph capture; see
            ``setup_seconds``) — as the public code times its compiled loop.
        setup_seconds: wall-clock seconds of that set-up.
        end_to_end: the final :math:`W_{L:1}`, ``(d, d)``.
        weights: the final weights, :mod:`lib.dln` convention (``W_l`` of shape
            ``(d_l, d_{l-1})``; compressed: ``V_{1,1}ᵀ``, inner, ``U_{L,1}``).
        weights0: the initial weights, same layout.
        n_params: number of trainable parameters.
        converged: whether the train loss fell below ``tol``.
        trajectory: ``(T, d, d)`` end-to-end matrices at the recorded steps when ``fit`` was
            called with ``keep_trajectory=True``, else ``None``.
        step_mode: how the steps ran (``"eager"``, ``"graph"``, ``"compile"``,
            ``"compile+graph"``, ``"fused"``).
        evaluation: ``"observed"`` or ``"dense"``.
        layout: ``"padded"`` or ``"scatter"`` (observed evaluation), ``None`` (dense).
    """

    method: str
    train_loss: list[float]
    test_loss: list[float]
    record_steps: list[int]
    record_seconds: list[float]
    steps: int
    seconds: float
    setup_seconds: float
    end_to_end: Tensor
    weights: list[Tensor]
    weights0: list[Tensor]
    n_params: int
    converged: bool
    trajectory: Tensor | None = field(default=None, repr=False)
    step_mode: str = "eager"
    evaluation: str = "dense"
    layout: str | None = None


def fit(
    problem: Problem,
    method: Method,
    depth: int = 3,
    scale: float = 1e-3,
    lr: float | None = None,
    max_steps: int = 20_000,
    tol: float = 0.0,
    rank_hat: int | None = None,
    gamma: float = 0.01,
    record_every: int = 100,
    *,
    evaluation: Evaluation = "auto",
    step_mode: StepMode = "auto",
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    time_limit: float | None = None,
    layout: Layout = "auto",
) -> FitResult:
    r"""Fit the original, compressed or narrow deep linear network to the observed entries.

    Full-batch gradient descent on

    .. math::

        \ell = \frac{1}{2d^2}\|\Omega\odot(W_{L:1} - \Phi)\|_F^2, \qquad
        W \leftarrow W - \eta\,\nabla_W \ell \ \text{(inner and original layers)},\qquad
        W \leftarrow W - \gamma\eta\,\nabla_W \ell \ \text{(outer factors of the compressed network)},

    stopping at the first step where :math:`\ell < \text{tol}` (or after ``max_steps``).

    * ``"original"``: ``L`` square layers from :func:`init_original` (dense evaluation).
    * ``"compressed"``: :func:`compress` applied to those same initial weights (width
      :math:`2\hat r`); its outer factors :math:`V_{1,1}, U_{L,1}` learn at :math:`\gamma\eta`
      (``gamma = 0`` keeps them fixed).
    * ``"narrow"``: width :math:`2\hat r`, fresh ε-orthogonal weights (:func:`init_narrow`), every
      layer at :math:`\eta`.

    The steps run sync-free on the device: a step whose loss is below ``tol`` changes nothing, and
    the loop looks at the loss every ``record_every`` steps. On CUDA the default ``step_mode``
    replays CUDA graphs of :data:`_GRAPH_STEPS` steps (per-step launch overhead dominates at
    :math:`d\approx 1000`), each step being three Triton kernels (``"fused"``) for the compressed
    and narrow networks; ``"compile"`` uses :func:`torch.compile`, ``"compile+graph"`` both.

    Args:
        problem: from :func:`make_problem`.
        method: ``"original"``, ``"compressed"`` or ``"narrow"``.
        depth: ``L`` (``>= 2`` for ``"narrow"``).
        scale: ε > 0, the initialisation scale.
        lr: η > 0; default :func:`default_lr` (half the edge of stability; about the paper's
            5e3 at ``d = 1000``).
        max_steps: most GD updates, ``>= 0``.
        tol: stop when the train loss falls below it (``0`` never stops early).
        rank_hat: :math:`\hat r` (default ``problem.rank``); width :math:`2\hat r \le d`. Ignored
            by ``"original"``.
        gamma: γ >= 0, the discrepant learning-rate factor of the compressed outer factors.
        record_every: record the losses every this many steps (also how often the stopping rule
            is checked).
        evaluation: ``"observed"`` (loss and gradient at the observed entries only,
            :math:`O(|\Omega|\hat r)` per step), ``"dense"`` (through the :math:`d\times d`
            matrix, :math:`O(d^2\hat r)`) or ``"auto"``: observed, except on the CPU for
            ``d <= 1024`` where BLAS makes the dense path faster. Both give the same numbers (to
            1e-10 in float64). The original network is always dense.
        step_mode: ``"auto"`` (on CUDA ``"fused"`` for the padded observed-entry path when
            Triton is installed, else ``"graph"``; ``"eager"`` elsewhere), ``"eager"``,
            ``"graph"``, ``"compile"``, ``"compile+graph"`` or ``"fused"`` (Triton kernels:
            CUDA, or Triton's CPU interpreter under ``TRITON_INTERPRET=1``; observed entries,
            padded layout).
        generator: random source of the initial weights (default: seeded from ``problem.seed``,
            so original and compressed start from the same weights).
        keep_trajectory: also return the end-to-end matrix at every recorded step.
        time_limit: stop at the first recorded step after this many seconds of training
            (``None``: no limit); the result then has ``converged=False``.
        layout: how ``evaluation="observed"`` stores the observed entries. ``"padded"``: each
            row (and each column) of Φ as a list padded to the fullest one's length, so that
            ``G V`` and ``Gᵀ A`` are sums along rows — gathers and reductions, no atomics;
            ``"scatter"``: one list of entries, gradients by scatter-add (atomics, contended on a
            GPU); ``"auto"``: padded unless padding would exceed :data:`_MAX_PADDING` times the
            entries (a very uneven mask).

    Returns:
        A :class:`FitResult` (``.train_loss``, ``.test_loss``, ``.steps``, ``.seconds``,
        ``.end_to_end`` ``(d, d)`` on the problem's device, ...).

    Raises:
        ValueError: unknown method / option, bad hyperparameters, ``2 r̂ > d``, or divergence (the
            message names the learning rate).

    Reference:
        Yaras et al. 2023, section 5 (compressed deep matrix completion, discrepant learning
        rates); Kwon et al. 2023 (efficient compression of overparameterized DLNs); Lecture 6,
        section 4.

    Example:
        >>> P = make_problem(30, 2, 0.5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> res = fit(P, "compressed", scale=0.1, max_steps=3000, tol=1e-8)
        >>> res.converged, res.steps, res.test_loss[-1] < 1e-5 * res.test_loss[0]
        (True, 2110, True)
    """
    problem = _check_problem(problem)
    _check_option("method", method, _METHODS)
    _check_option("evaluation", evaluation, _EVALUATIONS)
    _check_option("layout", layout, _LAYOUTS)
    depth = _check_int("depth", depth, 2 if method == "narrow" else 1)
    scale = _check_real("scale", scale, 0.0, low_open=True)
    d = problem.d
    lr = default_lr(problem, depth) if lr is None else _check_real("lr", lr, 0.0, low_open=True)
    max_steps = _check_int("max_steps", max_steps, 0)
    if problem.target.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"fit needs a float32 or float64 problem, got {problem.target.dtype}")
    if max_steps > 2**24 and problem.target.dtype == torch.float32:
        raise ValueError("max_steps must be <= 2**24 for a float32 problem (the step counter)")
    tol = _check_real("tol", tol, 0.0, low_open=False)
    gamma = _check_real("gamma", gamma, 0.0, low_open=False)
    record_every = _check_int("record_every", record_every, 1)
    if time_limit is not None:
        time_limit = _check_real("time_limit", time_limit, 0.0, low_open=True)
    r_hat = _check_rank_hat(problem, rank_hat)
    device = problem.target.device
    mode = _resolve_step_mode(step_mode, device)
    if method == "original" and evaluation == "observed":
        raise ValueError(
            "evaluation='observed' applies to the compressed and narrow networks; the original "
            "network's end-to-end matrix is dense (use 'auto' or 'dense')"
        )
    if mode == "fused":
        if method == "original":
            raise ValueError(
                "step_mode='fused' steps the compressed and narrow networks on their observed "
                "entries; the original network is dense (use 'graph' or 'eager')"
            )
        if evaluation == "dense" or layout == "scatter":
            raise ValueError(
                "step_mode='fused' evaluates the observed entries in the padded layout; use "
                "evaluation='observed' and layout='padded' (or 'auto')"
            )
        evaluation, layout = "observed", "padded"
    if evaluation == "auto":
        cpu_small = device.type == "cpu" and d <= _DENSE_ON_CPU_MAX_D
        evaluation = "dense" if method == "original" or cpu_small else "observed"

    _sync(device)
    t_setup = time.perf_counter()
    c = 1.0 / d**2
    # [steps taken, go], in the weights' dtype so that the updates stay single-dtype (fused
    # multi-tensor kernels on the GPU); float32 counts steps exactly up to 2^24
    flags = torch.tensor([0.0, 1.0], dtype=problem.target.dtype, device=device)
    threshold = 2.0 * tol / c  # the steps compare ‖Ω ⊙ (W − Φ)‖² = 2ℓ/c with it
    maskf = problem.mask.to(problem.target.dtype) if evaluation == "dense" else None
    pad = None  # the padded observed entries (compressed and narrow networks)
    if method == "original":
        Ws = [W.clone() for W in init_original(problem, depth, scale, generator)]
        state = [*Ws, flags]

        def step() -> None:
            _step_original(Ws, problem.target, maskf, c, lr, threshold, flags)

        def end_to_end() -> Tensor:
            return dln.end_to_end(Ws)

        def current_losses() -> tuple[Tensor, Tensor]:
            return losses(problem, end_to_end())

    else:
        if method == "compressed":
            W0 = compress(problem, init_original(problem, depth, scale, generator), r_hat)
            lr_out = gamma * lr
        else:
            W0 = init_narrow(problem, 2 * r_hat, depth, scale, generator)
            lr_out = lr
        k = W0[0].shape[0]
        U = W0[-1].clone(memory_format=torch.contiguous_format)  # (d, k), row-major
        # the inner factors, (k, k) each, as views of one (L', k, k) tensor (the fused kernels'
        # operand)
        inner_stack = torch.stack(W0[1:-1]) if len(W0) > 2 else U.new_zeros(0, k, k)
        inner = list(inner_stack.unbind(0))
        # under torch.compile the thin products fuse as broadcast sums (k is small: launches
        # dominate); eager steps call BLAS
        broadcast = _BROADCAST_MM if _BROADCAST_MM is not None else "compile" in mode
        mm = _broadcast_mm if broadcast else torch.matmul
        if evaluation == "observed" and layout != "scatter":
            pad = _padded(problem)
            if layout == "auto" and pad.slots > _MAX_PADDING * 2 * problem.n_observed:
                pad = None  # a very uneven mask: padding would cost more than the atomics
            layout = "scatter" if pad is None else "padded"
        if pad is not None:
            A1 = U.new_zeros(d + 1, k)  # rows [0, d): A = U P (scratch); row d: zero (padding)
            V1 = U.new_zeros(d + 1, k)  # rows [0, d): V; row d: zero (padding)
            V = V1[:d]  # (d, k), a view: updating V updates V1
            V.copy_(W0[0].T)
            state = [U, A1, V1, *inner, flags]

            def step() -> None:
                _step_thin_padded(U, inner, A1, V1, pad, c, lr, lr_out, threshold, flags, mm)

        else:
            AV = U.new_zeros(2 * d, k)  # rows [0, d): A = U P (scratch); rows [d, 2d): V
            V = AV[d:]  # (d, k), a view: updating V updates AV
            V.copy_(W0[0].T)
            state = [U, AV, *inner, flags]
            if evaluation == "observed":
                gather = torch.cat([problem.rows, problem.cols + d])  # (2|Ω|,)
                scatter = torch.cat([problem.cols, problem.rows + d])

                def step() -> None:
                    _step_thin_observed(
                        U, inner, AV, gather, scatter, problem.values, c, lr, lr_out,
                        threshold, flags,
                    )  # fmt: skip

            else:

                def step() -> None:
                    _step_thin_dense(
                        U, inner, V, problem.target, maskf, c, lr, lr_out, threshold, flags
                    )

        def end_to_end() -> Tensor:
            return (U @ _inner_product(inner, U)[0]) @ V.T

        def current_losses() -> tuple[Tensor, Tensor]:
            return _losses_factored(problem, U @ _inner_product(inner, U)[0], V)

        Ws = None
    if mode == "auto":  # on CUDA: Triton kernels for the padded path, CUDA graphs otherwise
        fusable = pad is not None and _fused_module() is not None
        mode = "eager" if device.type != "cuda" else "fused" if fusable else "graph"
    fast_step = step
    if mode == "fused":
        fast_step = _fused_module().FusedStep(
            U, inner_stack, A1, V1, pad, flags, c * lr, c * lr_out, threshold
        )
    weights0 = [W.clone() for W in (Ws if method == "original" else W0)]
    runner = _Runner(fast_step, state, mode, device, step) if max_steps > 0 else None
    _sync(device)
    setup_seconds = time.perf_counter() - t_setup

    train_hist: list[Tensor] = []
    test_hist: list[Tensor] = []
    rec_steps: list[int] = []
    rec_seconds: list[float] = []
    traj: list[Tensor] = []

    def record(t: int) -> float:
        tr, te = current_losses()
        train_hist.append(tr)
        test_hist.append(te)
        rec_steps.append(t)
        rec_seconds.append(seconds)
        if keep_trajectory:
            traj.append(end_to_end().clone())
        value = float(tr)
        if not math.isfinite(value):
            raise ValueError(
                f"training diverged: the train loss became non-finite by step {t}; the learning "
                f"rate lr={lr:g} is too large for this problem (d={d}, depth={depth}, "
                f"scale={scale:g}{f', gamma={gamma:g}' if method == 'compressed' else ''}); lower lr"
            )
        return value

    seconds = 0.0
    done = 0
    converged = record(0) < tol
    while not converged and done < max_steps:
        n = min(record_every, max_steps - done)
        _sync(device)
        t0 = time.perf_counter()
        runner.run(n)
        taken = int(flags[0].item())  # synchronises
        seconds += time.perf_counter() - t0
        converged = taken < done + n
        done = taken
        if record(done) < tol:
            converged = True
        if time_limit is not None and seconds >= time_limit:
            break

    if method == "original":
        weights = [W.clone() for W in Ws]
    else:
        weights = [V.T.contiguous()] + [W.clone() for W in inner] + [U.clone()]
    n_params = sum(W.numel() for W in weights)
    return FitResult(
        method=method,
        train_loss=[float(v) for v in train_hist],
        test_loss=[float(v) for v in test_hist],
        record_steps=rec_steps,
        record_seconds=rec_seconds,
        steps=done,
        seconds=seconds,
        setup_seconds=setup_seconds,
        end_to_end=end_to_end().clone(),
        weights=weights,
        weights0=weights0,
        n_params=n_params,
        converged=converged,
        trajectory=torch.stack(traj) if keep_trajectory else None,
        step_mode=runner.mode if runner is not None else mode,
        evaluation=evaluation,
        layout=layout if evaluation == "observed" else None,
    )


# --------------------------------------------------------------------------------------------
# trajectories
# --------------------------------------------------------------------------------------------


def project_trajectories(*trajectories: Tensor, n_components: int = 2) -> list[Tensor]:
    r"""Project end-to-end trajectories onto the principal directions of the first one.

    The matrices :math:`W_{L:1}(t)` of the first trajectory, flattened and centred at their
    mean :math:`\bar W`, give principal directions :math:`Z_1, Z_2, \dots` (right singular
    vectors); every trajectory is mapped to :math:`\big(\langle W(t) - \bar W, Z_i\rangle\big)_i`.
    Coinciding trajectories give coinciding curves.

    Args:
        *trajectories: ``(T_j, d, d)`` each (e.g. ``FitResult.trajectory``).
        n_components: number of coordinates, ``>= 1``.

    Returns:
        One ``(T_j, n_components)`` tensor per trajectory, on its device.

    Example:
        >>> T = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(0))
        >>> [tuple(z.shape) for z in project_trajectories(T, T, n_components=2)]
        [(5, 2), (5, 2)]
    """
    if not trajectories:
        raise ValueError("project_trajectories needs at least one trajectory")
    n_components = _check_int("n_components", n_components, 1)
    for T in trajectories:
        if not isinstance(T, Tensor) or T.ndim != 3 or T.shape[1:] != trajectories[0].shape[1:]:
            raise ValueError("every trajectory must be a (T, d, d) tensor of one shape")
    X = trajectories[0].flatten(1)  # (T, d²)
    mean = X.mean(0)
    _, _, Vh = torch.linalg.svd(X - mean, full_matrices=False)
    Z = Vh[:n_components]  # (n, d²)
    return [(T.flatten(1) - mean) @ Z.T for T in trajectories]
