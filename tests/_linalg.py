"""Small float64 matrices with known structure, for the spectral tests."""

from __future__ import annotations

import math

import torch


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
