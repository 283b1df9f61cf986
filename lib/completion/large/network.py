r"""The compressed network from the observed entries: sparse first gradient, subspace iteration.

See :mod:`lib.completion.large`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lib._checks import check_int
from lib.completion.large.problem import CHUNK, LargeProblem, _check_large
from lib.completion.problem import _check_real

__all__ = ["compress_large", "sparse_first_gradient"]


def _check_depth_scale(depth: object, scale: object) -> tuple[int, float]:
    return check_int("depth", depth, 1), _check_real("scale", scale, 0.0, low_open=True)


def _gradient_values(problem: LargeProblem, depth: int, scale: float) -> Tensor:
    diag = (problem.rows == problem.cols).to(problem.values.dtype)
    E = scale**depth * diag - problem.values  # Ω ⊙ (ε^L I − Φ) at the observed entries
    return E * (scale ** (depth - 1) / problem.d**2)


def sparse_first_gradient(problem: LargeProblem, depth: int = 3, scale: float = 1e-3) -> Tensor:
    r"""The original network's first gradient at :math:`W_l(0) = \varepsilon I`, at the entries.

    .. math::

        \nabla_{W_1}\ell\,(0) = W_{L:2}(0)^\top \tfrac{1}{d^2}\Omega\odot(W_{L:1}(0) - \Phi)
        = \frac{\varepsilon^{L-1}}{d^2}\,\Omega\odot\big(\varepsilon^L I - \Phi\big),

    zero off :math:`\Omega`: its values at ``(problem.rows, problem.cols)``.

    Args:
        problem: from :func:`make_large_problem`.
        depth: ``L >= 1``.
        scale: ε > 0.

    Returns:
        ``(|Ω|,)`` in the problem's dtype and device.

    Reference:
        Yaras et al. 2023, section 5; :func:`lib.completion.first_gradient` (dense).

    Example:
        >>> from lib.completion.large import make_large_problem
        >>> P = make_large_problem(30, 2, 0.3, generator=torch.Generator().manual_seed(0))
        >>> sparse_first_gradient(P).shape == P.rows.shape
        True
    """
    problem = _check_large(problem)
    depth, scale = _check_depth_scale(depth, scale)
    return _gradient_values(problem, depth, scale)


def _spmm(rows: Tensor, cols: Tensor, vals: Tensor, X: Tensor) -> Tensor:
    """``G X`` for the sparse ``G`` with ``vals`` at ``(rows, cols)``: gathers and index_add."""
    out = X.new_zeros(X.shape)
    for s in range(0, rows.numel(), CHUNK):
        e = s + CHUNK
        out.index_add_(0, rows[s:e], vals[s:e, None] * X[cols[s:e]])
    return out


def _top_singular(
    problem: LargeProblem, G: Tensor, k: int, iterations: int
) -> tuple[Tensor, Tensor]:
    """Top-k left and right singular vectors of the sparse G: randomized subspace iteration."""
    d, i, j = problem.d, problem.rows, problem.cols
    q = min(d, 2 * k + 10)
    gen = torch.Generator().manual_seed(problem.seed % 2**63)
    X = torch.randn(d, q, generator=gen, dtype=torch.float64).to(G)  # (d, q)
    for _ in range(iterations):
        Y, _ = torch.linalg.qr(_spmm(i, j, G, X))  # G X, (d, q)
        X, _ = torch.linalg.qr(_spmm(j, i, G, Y))  # Gᵀ Y
    Y, _ = torch.linalg.qr(_spmm(i, j, G, X))
    Qz, Rz = torch.linalg.qr(_spmm(j, i, G, Y))  # Gᵀ Y = Qz Rz, so Yᵀ G = Rzᵀ Qzᵀ
    Ur, _, Vrh = torch.linalg.svd(Rz.T)  # (q, q)
    return Y @ Ur[:, :k], Qz @ Vrh[:k].T


def compress_large(
    problem: LargeProblem,
    depth: int = 3,
    scale: float = 1e-3,
    rank_hat: int | None = None,
    iterations: int = 20,
) -> list[Tensor]:
    r"""The compressed network of the original one started at :math:`W_l(0) = \varepsilon I`.

    :func:`lib.completion.compress` at ``weights0 = [ε I] * L`` from the observed entries: with the
    top :math:`\hat r` singular vectors :math:`U_g, V_g` of :func:`sparse_first_gradient` (randomized
    subspace iteration, ``iterations`` rounds of sparse ``G X`` and :math:`G^\top Y`),

    .. math::

        V_{1,1} = \text{orthonormal basis of } \operatorname{span}(V_g, U_g),\qquad
        U_{L,1}(0) = V_{1,1},\qquad \widetilde W_l(0) = \varepsilon I_{2\hat r},

    since :math:`W_1(0)^\top U_g/\varepsilon = U_g` and :math:`W_{L:1}(0)/\varepsilon^L = I`.
    Args:
        problem: from :func:`make_large_problem`.
        depth: ``L >= 1``.
        scale: ε > 0.
        rank_hat: :math:`\hat r` (default ``problem.rank``), ``2 r̂ <= d``.
        iterations: subspace-iteration rounds, ``>= 1``.

    Returns:
        ``L + 2`` weights in :mod:`lib.dln`'s convention: :math:`V_{1,1}^\top` ``(2r̂, d)``,
        ``L`` times :math:`\varepsilon I_{2\hat r}`, :math:`U_{L,1}` ``(d, 2r̂)``.

    Reference:
        Yaras et al. 2023, section 5 and Thm. 1; Lecture 6, section 4.

    Example:
        >>> from lib.completion.large import make_large_problem
        >>> P = make_large_problem(40, 2, 0.3, generator=torch.Generator().manual_seed(0))
        >>> [tuple(W.shape) for W in compress_large(P)]
        [(4, 40), (4, 4), (4, 4), (4, 4), (40, 4)]
    """
    problem = _check_large(problem)
    depth, scale = _check_depth_scale(depth, scale)
    r_hat = _check_rank_hat(problem, rank_hat)
    return _compress(problem, depth, scale, r_hat, check_int("iterations", iterations, 1))


def _compress(problem: LargeProblem, depth: int, scale: float, r_hat: int, iterations: int):
    G = _gradient_values(problem, depth, scale)
    Ug, Vg = _top_singular(problem, G, r_hat, iterations)  # (d, r̂) each
    V11, _ = torch.linalg.qr(torch.cat([Vg, Ug], dim=1))  # (d, 2r̂), orthonormal
    eye = torch.eye(2 * r_hat, dtype=V11.dtype, device=V11.device)
    return [V11.T.contiguous()] + [scale * eye for _ in range(depth)] + [V11.clone()]


def _check_rank_hat(problem: LargeProblem, rank_hat: object) -> int:
    r_hat = problem.rank if rank_hat is None else check_int("rank_hat", rank_hat, 1)
    if 2 * r_hat > problem.d:
        raise ValueError(
            f"rank_hat is too large: the compressed network has width 2*rank_hat = {2 * r_hat}, "
            f"which must be <= d = {problem.d}; pass rank_hat <= {problem.d // 2}"
        )
    return r_hat
