r"""One gradient-descent step, in place: the arithmetic every step mode of ``fit`` replays.

Each step function updates the weights and ``flags = [steps taken, go]`` in place and never
synchronises with the host (see :func:`_gate`), so that it can be captured as a CUDA graph or
compiled. The networks:

* the original one, dense (:func:`_step_original`);
* a thin one ``U · W̃_L ⋯ W̃_1 · Vᵀ`` (compressed or narrow), its loss and gradient evaluated

  - on the observed entries stored as padded rows and columns (:func:`_step_thin_padded`,
    layout :class:`_Padded`: gathers and row sums, no atomics),
  - on the observed entries as one list with a scatter-add (:func:`_step_thin_observed`),
  - through the dense ``(d, d)`` matrix (:func:`_step_thin_dense`, the reference path):

  :math:`O(|\Omega|\,\hat r + d\hat r^2)` per step on the observed entries, :math:`O(d^2\hat r)`
  dense. On a GPU the padded step also exists as three Triton kernels
  (:mod:`lib.completion._triton`, the same arithmetic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lib.completion.problem import Problem

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
