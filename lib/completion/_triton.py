r"""One gradient step of a thin network on the observed entries in three Triton kernels.

The GPU fast path of :func:`lib.completion.fit` (``step_mode="fused"``). Triton is optional:
:mod:`lib.completion._engine` imports this module only when the fused step mode is asked for.
At ``k = 2 r̂ ≈ 10`` the step is not made of flops but of kernel launches and index traffic, so
it is written as

1. ``_rows_kernel`` — a block of rows ``i`` per program: :math:`P = \widetilde W_L\cdots\widetilde
   W_1`, :math:`A_i = U_i P` (stored), then, over the padded observed columns of row ``i``, the
   residuals :math:`r_{ij} = A_i\cdot V_j - \Phi_{ij}`, :math:`B_i = \sum_j r_{ij} V_j` (the rows of
   :math:`GV`), the block's share of :math:`\|r\|^2` and of :math:`U^\top B`;
2. ``_cols_kernel`` — a block of columns ``j`` per program: :math:`C_j = \sum_i r_{ij} A_i` (the
   rows of :math:`G^\top A`), the residuals recomputed from the padded observed rows;
3. ``_update_kernel`` — the stopping gate from the summed loss, the updates
   :math:`U \mathrel{-}= \gamma\eta c\, B P^\top`, :math:`V \mathrel{-}= \gamma\eta c\, C`, and, in
   program 0, the gradients of the inner factors from :math:`U^\top G V = \sum U^\top B` and
   their update.

Each observed entry's index and value is read once per side; partial sums are reduced in a fixed
order (no atomics), so a step is deterministic. The same arithmetic as
``lib.completion._steps._step_thin_padded``; the tests compare the two (on a CPU through
Triton's interpreter, ``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor

__all__ = ["FusedStep"]


@triton.jit
def _mm(a, b):
    """(n, p) @ (p, q) as a broadcast product and a sum (sizes below tl.dot's minimum)."""
    return tl.sum(a[:, :, None] * b[None, :, :], axis=1)


@triton.jit
def _load_square(ptr, kk, k, KP: tl.constexpr):
    """A (k, k) row-major matrix at ptr, zero-padded to (KP, KP)."""
    m = (kk[:, None] < k) & (kk[None, :] < k)
    return tl.load(ptr + kk[:, None] * k + kk[None, :], mask=m, other=0.0)


@triton.jit
def _inner_product(win_ptr, kk, k, NI: tl.constexpr, KP: tl.constexpr):
    """P = W_NI ⋯ W_1 (the identity when there is no inner factor), (KP, KP)."""
    if NI == 0:
        P = ((kk[:, None] == kk[None, :]) & (kk[:, None] < k)).to(win_ptr.dtype.element_ty)
    else:
        P = _load_square(win_ptr, kk, k, KP)
        for j in tl.static_range(1, NI):
            P = _mm(_load_square(win_ptr + j * k * k, kk, k, KP), P)
    return P


@triton.jit
def _rows_kernel(
    u_ptr, win_ptr, a1_ptr, v1_ptr, cols_ptr, vals_ptr, b_ptr, p_ptr, loss_ptr, g_ptr,
    d, m, k,
    NI: tl.constexpr, BR: tl.constexpr, BM: tl.constexpr, KP: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    r = pid * BR + tl.arange(0, BR)
    rmask = r < d
    kk = tl.arange(0, KP)
    kmask = kk < k
    rk = r.to(tl.int64)[:, None] * k + kk[None, :]
    rkmask = rmask[:, None] & kmask[None, :]
    P = _inner_product(win_ptr, kk, k, NI, KP)
    if pid == 0:
        pm = kmask[:, None] & kmask[None, :]
        tl.store(p_ptr + kk[:, None] * k + kk[None, :], P, mask=pm)
    u = tl.load(u_ptr + rk, mask=rkmask, other=0.0)
    a = _mm(u, P)  # (BR, KP): A = U P on this block of rows
    tl.store(a1_ptr + rk, a, mask=rkmask)
    b = tl.zeros((BR, KP), dtype=a.dtype)
    sq = tl.zeros((BR,), dtype=a.dtype)
    row0 = r.to(tl.int64)[:, None] * m
    for s0 in range(0, m, BM):
        s = s0 + tl.arange(0, BM)
        sm = rmask[:, None] & (s[None, :] < m)
        idx = tl.load(cols_ptr + row0 + s[None, :], mask=sm, other=d)  # d: the zero row
        val = tl.load(vals_ptr + row0 + s[None, :], mask=sm, other=0.0)
        vg = tl.load(
            v1_ptr + idx.to(tl.int64)[:, :, None] * k + kk[None, None, :],
            mask=kmask[None, None, :],
            other=0.0,
        )  # (BR, BM, KP): V at the observed columns of each row
        res = tl.sum(vg * a[:, None, :], axis=2) - val  # W − Φ on Ω
        sq += tl.sum(res * res, axis=1)
        b += tl.sum(res[:, :, None] * vg, axis=1)
    tl.store(b_ptr + rk, b, mask=rkmask)
    tl.store(loss_ptr + pid, tl.sum(sq, axis=0))
    g = tl.sum(u[:, :, None] * b[:, None, :], axis=0)  # (KP, KP): this block's Uᵀ B
    tl.store(g_ptr + pid * KP * KP + kk[:, None] * KP + kk[None, :], g)


@triton.jit
def _cols_kernel(
    a1_ptr, v1_ptr, rows_ptr, vals_ptr, c_ptr,
    d, m, k,
    BR: tl.constexpr, BM: tl.constexpr, KP: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    r = pid * BR + tl.arange(0, BR)
    rmask = r < d
    kk = tl.arange(0, KP)
    kmask = kk < k
    rk = r.to(tl.int64)[:, None] * k + kk[None, :]
    rkmask = rmask[:, None] & kmask[None, :]
    v = tl.load(v1_ptr + rk, mask=rkmask, other=0.0)  # V_j on this block of columns
    cacc = tl.zeros((BR, KP), dtype=v.dtype)
    row0 = r.to(tl.int64)[:, None] * m
    for s0 in range(0, m, BM):
        s = s0 + tl.arange(0, BM)
        sm = rmask[:, None] & (s[None, :] < m)
        idx = tl.load(rows_ptr + row0 + s[None, :], mask=sm, other=d)
        val = tl.load(vals_ptr + row0 + s[None, :], mask=sm, other=0.0)
        ag = tl.load(
            a1_ptr + idx.to(tl.int64)[:, :, None] * k + kk[None, None, :],
            mask=kmask[None, None, :],
            other=0.0,
        )  # (BR, BM, KP): A at the observed rows of each column
        res = tl.sum(ag * v[:, None, :], axis=2) - val
        cacc += tl.sum(res[:, :, None] * ag, axis=1)
    tl.store(c_ptr + rk, cacc, mask=rkmask)


@triton.jit
def _update_kernel(
    u_ptr, v1_ptr, win_ptr, b_ptr, c_ptr, p_ptr, loss_ptr, g_ptr, flags_ptr, pre_ptr, hyper_ptr,
    d, k, nb,
    NI: tl.constexpr, BR: tl.constexpr, KP: tl.constexpr, BL: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    kk = tl.arange(0, KP)
    kmask = kk < k
    # [c·η, c·γη, threshold] in the weights' dtype (a Python float would arrive as float32)
    lr_in = tl.load(hyper_ptr)
    lr_out = tl.load(hyper_ptr + 1)
    threshold = tl.load(hyper_ptr + 2)
    # the gate: stop for good at the first step whose loss is below the threshold (or NaN)
    total = tl.zeros((BL,), dtype=p_ptr.dtype.element_ty)
    for j0 in range(0, nb, BL):
        j = j0 + tl.arange(0, BL)
        total += tl.load(loss_ptr + j, mask=j < nb, other=0.0)
    sq = tl.sum(total, axis=0)
    go = tl.load(flags_ptr + 1) * (sq >= threshold).to(total.dtype)  # idempotent: see FusedStep
    # outer factors: U -= go·γη·c · B Pᵀ, V -= go·γη·c · C
    r = pid * BR + tl.arange(0, BR)
    rk = r.to(tl.int64)[:, None] * k + kk[None, :]
    rkmask = (r < d)[:, None] & kmask[None, :]
    P = _load_square(p_ptr, kk, k, KP)
    b = tl.load(b_ptr + rk, mask=rkmask, other=0.0)
    step_u = tl.sum(b[:, None, :] * P[None, :, :], axis=2)  # B Pᵀ
    u = tl.load(u_ptr + rk, mask=rkmask, other=0.0)
    tl.store(u_ptr + rk, u - (go * lr_out) * step_u, mask=rkmask)
    cg = tl.load(c_ptr + rk, mask=rkmask, other=0.0)
    v = tl.load(v1_ptr + rk, mask=rkmask, other=0.0)
    tl.store(v1_ptr + rk, v - (go * lr_out) * cg, mask=rkmask)
    if pid == 0:
        tl.store(flags_ptr + 1, go)
        tl.store(flags_ptr, tl.load(flags_ptr) + go)
        if NI > 0:
            # Uᵀ G V = Σ over row blocks of Uᵀ B, in a fixed order
            G = tl.zeros((KP, KP), dtype=P.dtype)
            bl = tl.arange(0, BL)
            sq_off = kk[:, None] * KP + kk[None, :]
            for j0 in range(0, nb, BL):
                jb = j0 + bl
                tile = tl.load(
                    g_ptr + jb[:, None, None] * KP * KP + sq_off[None, :, :],
                    mask=(jb < nb)[:, None, None],
                    other=0.0,
                )
                G += tl.sum(tile, axis=0)
            # prefix products W_l ⋯ W_1 into scratch, then back-propagate from the top
            pre = _load_square(win_ptr, kk, k, KP)
            tl.store(pre_ptr + sq_off, pre)
            for q in tl.static_range(1, NI):
                pre = _mm(_load_square(win_ptr + q * k * k, kk, k, KP), pre)
                tl.store(pre_ptr + q * KP * KP + sq_off, pre)
            tl.debug_barrier()
            S = G  # (W_{NI} ⋯ W_{l+1})ᵀ Uᵀ G V
            sqmask = kmask[:, None] & kmask[None, :]
            for t in tl.static_range(NI):
                i = NI - 1 - t
                W = _load_square(win_ptr + i * k * k, kk, k, KP)
                if i > 0:
                    below = tl.load(pre_ptr + (i - 1) * KP * KP + sq_off)
                    grad = _mm(S, tl.trans(below))
                    S = _mm(tl.trans(W), S)
                else:
                    grad = S
                off = win_ptr + i * k * k + kk[:, None] * k + kk[None, :]
                tl.store(off, W - (go * lr_in) * grad, mask=sqmask)


def _pow2(n: int, low: int = 1) -> int:
    return max(low, 1 << (max(1, n) - 1).bit_length())


class FusedStep:
    """Callable GD step on the tensors of ``lib.completion.fit``'s padded observed-entry path.

    ``U`` ``(d, k)``, ``V1``/``A1`` ``(d + 1, k)`` with a zero last row (``V1[:d]`` is ``V``),
    ``inner`` ``(NI, k, k)`` contiguous (``fit``'s inner factors are views of it), ``pad`` the
    padded rows/columns, ``flags = [steps taken, go]``. Learning rates come already multiplied by
    ``c = 1/d²``. Every tensor is updated in place, so the step replays as a CUDA graph.

    Program ``p > 0`` of the update kernel may read ``go`` after program 0 rewrote it; since the
    new value is ``go · [loss >= threshold]`` with the same loss, reading it again gives the same
    product — the race is harmless by construction.
    """

    def __init__(
        self, U: Tensor, inner: Tensor, A1: Tensor, V1: Tensor, pad, flags: Tensor,
        lr_in: float, lr_out: float, threshold: float,
        rows_per_program: int | None = None, tile: int = 8192,
    ):  # fmt: skip
        d, k = U.shape
        operands = dict(U=U, inner=inner, A1=A1, V1=V1, flags=flags, **vars(pad))
        for name, t in operands.items():
            if not t.is_contiguous():  # the kernels index row-major memory
                raise ValueError(f"FusedStep: {name} must be contiguous (row-major)")
        self.U, self.inner, self.A1, self.V1, self.pad, self.flags = U, inner, A1, V1, pad, flags
        self.d, self.k, self.ni = d, k, inner.shape[0]
        self.hyper = U.new_tensor([lr_in, lr_out, threshold])
        self.win = inner if self.ni else U.new_zeros(1, k, k)  # a valid pointer when NI = 0
        self.kp = _pow2(k, 2)
        # rows per program and tile size (BR·BM·KP elements): measured on an H200 by
        # bench/fused_tiles.py (d = 1000: 8 rows, 37 µs/step vs 43-65; d = 10,000: 16 rows)
        self.br = rows_per_program or (8 if d <= 4096 else 16)
        self.bm = max(16, min(128, _pow2(pad.cols.shape[1]), tile // (self.br * self.kp)))
        self.nb = triton.cdiv(d, self.br)
        self.br3 = 64
        self.bl = 16
        like = U.new_empty
        self.B, self.C = like(d, k), like(d, k)
        self.P = like(k, k)
        self.loss = like(self.nb)
        self.G = like(self.nb, self.kp, self.kp)
        self.pre = like(max(1, self.ni), self.kp, self.kp)

    def __call__(self) -> None:
        d, k, kp, pad = self.d, self.k, self.kp, self.pad
        _rows_kernel[(self.nb,)](
            self.U, self.win, self.A1, self.V1, pad.cols, pad.vals, self.B, self.P,
            self.loss, self.G, d, pad.cols.shape[1], k,
            NI=self.ni, BR=self.br, BM=self.bm, KP=kp,
        )  # fmt: skip
        _cols_kernel[(self.nb,)](
            self.A1, self.V1, pad.rows_t, pad.vals_t, self.C, d, pad.rows_t.shape[1], k,
            BR=self.br, BM=self.bm, KP=kp,
        )  # fmt: skip
        _update_kernel[(triton.cdiv(d, self.br3),)](
            self.U, self.V1, self.win, self.B, self.C, self.P, self.loss, self.G, self.flags,
            self.pre, self.hyper, d, k, self.nb,
            NI=self.ni, BR=self.br3, KP=kp, BL=self.bl,
        )  # fmt: skip
