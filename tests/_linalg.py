"""Small float64 matrices with known structure, and small deep-linear-network problems, for the tests."""

from __future__ import annotations

import math

import torch

from lib import dln


def orth(n: int, seed: int) -> torch.Tensor:
    """A random ``(n, n)`` orthogonal matrix in float64."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return Q


def plane_rotation(n: int, i: int, j: int, theta: float) -> torch.Tensor:
    """The ``(n, n)`` rotation by ``theta`` in the ``(i, j)`` coordinate plane."""
    R = torch.eye(n, dtype=torch.float64)
    R[i, i] = R[j, j] = math.cos(theta)
    R[i, j], R[j, i] = -math.sin(theta), math.sin(theta)
    return R


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def deep_linear_problem(d, d_out, r, L, eps, seed, n_samples=None):
    """Square hidden layers, X = I (n_samples None) or whitened X, rank-r targets, ε-orthogonal init."""
    g = generator(seed)
    N = d if n_samples is None else n_samples
    X = (
        torch.eye(d, dtype=torch.float64)
        if n_samples is None
        else dln.whitened_inputs(N, d, generator=g, dtype=torch.float64)
    )
    Y = dln.low_rank_targets(N, d_out, r, generator=g, dtype=torch.float64)
    Ws = dln.init_weights([d] * L + [d_out], eps, generator=g, dtype=torch.float64)
    return Ws, X, Y


def dense_reference(H, y, K, variant="lecture"):
    """The textbook formulas with p x p matrices and an explicit float64 pseudo-inverse."""
    H = H.to(torch.float64)
    N = H.shape[0]
    M = torch.stack([H[y == k].mean(0) for k in range(K)])  # (K, p)
    n = torch.bincount(y, minlength=K).to(torch.float64)
    C = M - H.mean(0)  # (K, p)
    R = H - M[y]  # (N, p)
    Sw = R.T @ R / N
    w = n / N if variant == "he_su" else torch.full((K,), 1.0 / K, dtype=torch.float64)
    Sb = C.T @ (C * w[:, None])
    value = torch.trace(Sw @ torch.linalg.pinv(Sb))
    if variant == "papyan":
        value = value / K
    ratio = torch.trace(Sw) / torch.trace(C.T @ C / K)
    return value, ratio
