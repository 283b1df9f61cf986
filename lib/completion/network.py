r"""The three networks of deep matrix completion, and the construction of the compressed one.

All start from ε-orthogonal weights (stored as in :mod:`lib.dln`: ``W_l`` of shape
``(d_l, d_{l-1})``):

* ``"original"`` — ``L`` square layers of width ``d`` (:func:`init_original`; :math:`L d^2`
  parameters);
* ``"compressed"`` — the law of parsimony says that gradient descent on the original network only
  moves a :math:`2\hat r`-dimensional subspace of every layer. Keep that subspace, found from the
  SVD of the first gradient (:func:`first_gradient`) and the initial weights (:func:`compress`):
  :math:`W_{L:1}(t) \approx U_{L,1}\,\widetilde W_L(t)\cdots\widetilde W_1(t)\,V_{1,1}^\top` with
  inner factors :math:`\widetilde W_l(0) = \varepsilon I_{2\hat r}` and thin outer factors
  :math:`V_{1,1}, U_{L,1} \in \mathbb R^{d\times 2\hat r}` (:math:`L(2\hat r)^2 + 4 d\hat r`
  parameters);
* ``"narrow"`` — ``L`` layers of width :math:`2\hat r` from a fresh ε-orthogonal initialisation
  (:func:`init_narrow`).

The first weight of the compressed and narrow networks is ``(k, d)``, the last ``(d, k)``, the
inner ones ``(k, k)`` with ``k = 2 r̂``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from lib import dln
from lib._checks import check_int as _check_int
from lib.completion.problem import (
    Problem,
    _check_problem,
    _check_rank_hat,
    _check_real,
    _check_weights,
)

__all__ = ["compress", "first_gradient", "init_narrow", "init_original"]

#: Largest ``d`` for which :func:`first_gradient`'s subspace comes from a full SVD; above it a
#: randomized block power iteration finds the top ``r̂`` singular vectors.
EXACT_SVD_MAX_D = 2048


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
    problem = _check_problem(problem, "compress")
    Ws = _check_weights(weights0, problem, square=True)
    rank_hat = _check_rank_hat(problem, rank_hat)
    k, L = 2 * rank_hat, len(Ws)
    eps = float(torch.linalg.matrix_norm(Ws[0]) / math.sqrt(problem.d))  # ε of an ε-orthogonal W_1
    if eps == 0.0:
        raise ValueError(
            "weights0: W_1 is zero, so it has no scale ε to compress with; pass the ε-orthogonal "
            "initial weights of init_original (scale > 0)"
        )
    G = first_gradient(problem, Ws)  # (d, d)
    g = torch.Generator().manual_seed(problem.seed % 2**63)
    Ug, Vg = _top_singular_vectors(G, rank_hat, g)  # (d, r̂) each
    span = torch.cat([Vg, Ws[0].T @ Ug / eps], dim=1)  # (d, 2r̂)
    V11, _, _ = torch.linalg.svd(span, full_matrices=False)  # (d, 2r̂) orthonormal basis
    Q = dln.end_to_end([W / eps for W in Ws])  # W_{L:1}(0) / ε^L, orthogonal
    UL1 = Q @ V11  # (d, 2r̂)
    eye = torch.eye(k, dtype=V11.dtype, device=V11.device)
    return [V11.T.contiguous()] + [eps * eye for _ in range(L)] + [UL1]
