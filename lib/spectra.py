r"""SVD diagnostics of weight matrices over training: the law-of-parsimony measurements.

Pure tensor functions, batched over any leading axes (time ``T``, runs ``B``, ...), device and
dtype following the input. SVD dynamics need float64: singular values that coincide to
:math:`10^{-14}` in float64 only coincide to about :math:`10^{-6}` in float32.

* :func:`singular_values` — :math:`\sigma_i(W)` over time;
* :func:`singular_vector_angles` — :math:`\angle(v_i(t), v_i(t_{\mathrm{ref}}))` (sign-invariant);
* :func:`principal_angles`, :func:`largest_principal_angle` — between subspaces;
* :func:`coinciding_singular_values`, :func:`coinciding_subspaces` — the cluster of equal
  singular values and its singular subspaces;
* :func:`balancedness_gap` — :math:`\|W_{l+1}^\top W_{l+1} - W_l W_l^\top\|_F`;
* :func:`numerical_rank`.

SVDs follow PyTorch's convention ``U, S, Vh`` (:math:`W = U\,\mathrm{diag}(S)\,V_h`, rows of
``Vh`` are the right singular vectors :math:`v_i^\top`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from lib._checks import check_not_meta, check_option, check_real, check_type

__all__ = [
    "Cluster",
    "balancedness_gap",
    "coinciding_singular_values",
    "coinciding_subspaces",
    "largest_principal_angle",
    "numerical_rank",
    "principal_angles",
    "singular_values",
    "singular_vector_angles",
    "vector_angle",
]

Side = Literal["right", "left"]
_SIDES = ("right", "left")


def _check_matrix(name: str, W: object, min_ndim: int = 2, *, svd=False, finite=False) -> Tensor:
    """``W`` if it is a real floating tensor with data and ``>= min_ndim`` dimensions; ``svd``:
    also not float16/bfloat16; ``finite``: then no NaN/Inf (one host sync, values read last)."""
    if not isinstance(W, Tensor) or W.ndim < min_ndim:
        got = tuple(W.shape) if isinstance(W, Tensor) else type(W).__name__
        dims = "dimension" if min_ndim == 1 else "dimensions"
        raise ValueError(f"{name} must be a tensor with at least {min_ndim} {dims}, got {got}")
    if not W.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {W.dtype}")
    if svd and W.dtype in (torch.float16, torch.bfloat16):  # torch has no SVD kernel for them
        raise ValueError(f"{name} must be float32 or float64 (torch has no SVD for {W.dtype}); "
                         f"convert it: {name}.double()")  # fmt: skip
    check_not_meta(name, W)
    if finite:
        _check_finite(name, W)
    return W


def _check_finite(name: str, W: Tensor) -> None:
    """Refuse NaN/Inf in ``W`` (one host sync), naming it."""
    if not bool(torch.isfinite(W).all()):
        n = int((~torch.isfinite(W)).sum())
        raise ValueError(f"{name} contains {n} non-finite value(s) (NaN or Inf); did the "
                         "training diverge?")  # fmt: skip


def _check_pair(name: str, W: Tensor, ref_name: str, ref: Tensor, tail: int) -> None:
    """Refuse ``W`` on another device than ``ref`` or not batch-broadcastable with it."""
    if W.device != ref.device:
        raise ValueError(f"{name} is on {W.device} but {ref_name} is on {ref.device}; move one, "
                         f"e.g. {name}.to({ref_name}.device)")  # fmt: skip
    batch, ref_batch = W.shape[: W.ndim - tail], ref.shape[: ref.ndim - tail]
    try:
        torch.broadcast_shapes(batch, ref_batch)
    except RuntimeError:
        raise ValueError(f"{name} has batch shape {tuple(batch)}, which does not broadcast with "
                         f"{ref_name}'s {tuple(ref_batch)}") from None  # fmt: skip


def _check_orthonormal(name: str, Q: Tensor) -> None:
    r"""Raise unless the columns of ``Q`` ``(..., n, k)`` are orthonormal to rounding.

    Accepts :math:`\|Q^\top Q - I\|_F \le 100\,\varepsilon\,k\sqrt n` (``ε`` of ``Q``'s dtype,
    the rounding of ``k^2`` inner products of length ``n`` with a margin of 100) in every batch
    entry; NaN/Inf fail too. One host synchronisation, at entry.
    """
    n, k = Q.shape[-2:]
    if k == 0 or Q.numel() == 0:
        return
    eye = torch.eye(k, dtype=Q.dtype, device=Q.device)
    err = float(torch.linalg.matrix_norm(Q.mT @ Q - eye).max())
    tol = 100 * torch.finfo(Q.dtype).eps * k * max(1.0, n**0.5)
    if not err <= tol:  # also catches NaN
        raise ValueError(
            f"{name} must have orthonormal columns (principal angles are defined for orthonormal "
            f"bases); got ||{name}^T {name} - I||_F = {err:.3g} > {tol:.3g}. Orthonormalise it "
            f"first: {name} = torch.linalg.qr({name}).Q"
        )


def _check_tol(name: str, tol: object) -> float:
    return check_real(name, tol, 0.0, strict=False)


def singular_values(W: Tensor) -> Tensor:
    r"""Singular values, largest first, of a matrix or a stack of matrices.

    .. math::

        W = U\,\mathrm{diag}(\sigma_1 \ge \dots \ge \sigma_k)\,V_h,\qquad k = \min(m, n).

    Args:
        W: ``(..., m, n)``, e.g. ``history.trajectory(0)`` ``(T, d_1, d_0)``; float32 or
            float64 (torch has no half-precision SVD), finite, not meta (else ``ValueError``).

    Returns:
        ``(..., k)`` on ``W``'s device (empty when ``k == 0``).

    Reference:
        Lecture 6, section 2, figure "Evolution of SVD of the weight matrix", left panel.

    Example:
        >>> singular_values(torch.diag(torch.tensor([1.0, 3.0, 2.0])))
        tensor([3., 2., 1.])
    """
    return torch.linalg.svdvals(_check_matrix("W", W, svd=True, finite=True))


def vector_angle(a: Tensor, b: Tensor, sign_invariant: bool = True) -> Tensor:
    r"""Angle between vectors, accurate for tiny angles; optionally blind to the sign.

    .. math::

        \angle(a, b) = 2\operatorname{atan2}\big(\|\hat a - s\hat b\|, \|\hat a + s\hat b\|\big),
        \quad s = \operatorname{sign}\langle a, b\rangle \ (\text{or } 1),

    equal to :math:`\arccos |\langle\hat a,\hat b\rangle|` in exact arithmetic but without the
    :math:`\sqrt{\epsilon_{\mathrm{mach}}}` loss of ``arccos`` near 0. Singular vectors are only
    defined up to sign, hence ``sign_invariant=True`` (result in :math:`[0, \pi/2]`).

    Args:
        a: ``(..., n)``, real floating (half precision included), finite, no zero vector.
        b: ``(..., n)``, batch-broadcastable with ``a``, on its device; the same conditions.
        sign_invariant: ``bool``, treat ``b`` and ``-b`` as the same direction.

    Returns:
        ``(...)`` radians (one host sync checks the norms).

    Example:
        >>> vector_angle(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0]))
        tensor(0.7854)
    """
    a, b = _check_matrix("a", a, min_ndim=1), _check_matrix("b", b, min_ndim=1)
    check_type("sign_invariant", sign_invariant, bool)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"a and b must have the same length n: a has shape {tuple(a.shape)}, "
                         f"b has {tuple(b.shape)}")  # fmt: skip
    _check_pair("b", b, "a", a, tail=1)
    norm_a, norm_b = (torch.linalg.vector_norm(v, dim=-1, keepdim=True) for v in (a, b))
    _check_norms(norm_a, norm_b)
    a, b = a / norm_a, b / norm_b
    if sign_invariant:
        s = torch.where((a * b).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(a.dtype)
        b = s * b
    return 2 * torch.atan2(
        torch.linalg.vector_norm(a - b, dim=-1), torch.linalg.vector_norm(a + b, dim=-1)
    )


def _check_norms(norm_a: Tensor, norm_b: Tensor) -> None:
    """Refuse zero, NaN or infinite vector norms (one host sync; diagnosed only on failure)."""
    ok = [torch.isfinite(v) & (v > 0) for v in (norm_a, norm_b)]
    if bool(ok[0].all() & ok[1].all()):
        return
    name, norms = ("a", norm_a) if not bool(ok[0].all()) else ("b", norm_b)
    zeros = int((norms == 0).sum())
    what = f"{zeros} zero vector(s)" if zeros else "NaN or Inf entries (or a norm overflows)"
    raise ValueError(f"{name} has {what}; the angle is undefined")


def singular_vector_angles(W: Tensor, W_ref: Tensor, side: Side = "right") -> Tensor:
    r"""Angle between the i-th singular vector of ``W`` and the i-th singular vector of ``W_ref``.

    .. math::

        \theta_i = \angle\big(v_i(W), v_i(W_{\mathrm{ref}})\big) \ (\texttt{"right"}), \qquad
        \theta_i = \angle\big(u_i(W), u_i(W_{\mathrm{ref}})\big) \ (\texttt{"left"}),

    sign-invariant (:func:`vector_angle`), singular vectors ordered by decreasing singular value.
    Where singular values of ``W_ref`` coincide (at :math:`t = 0` all equal ε under ε-orthogonal
    init) its singular vectors are not unique and the angle is meaningless: take the reference at
    a step where the spectrum has separated, and compare subspaces of a coinciding cluster with
    :func:`largest_principal_angle` instead.

    Args:
        W: ``(..., m, n)``, e.g. a trajectory ``(T, m, n)``; float32 or float64, finite.
        W_ref: ``(m, n)`` or batch-broadcastable with ``W``, on its device; the same conditions.
        side: ``"right"`` (:math:`v_i`, rows of ``Vh``) or ``"left"`` (:math:`u_i`, columns of ``U``).

    Returns:
        ``(..., k)`` radians in :math:`[0, \pi/2]`, ``k = min(m, n)``.

    Reference:
        Lecture 6, section 2, figure "Evolution of SVD of the weight matrix", middle and right
        panels.

    Example:
        >>> W = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64))
        >>> singular_vector_angles(W, -W)
        tensor([0., 0., 0.], dtype=torch.float64)
    """
    check_option("side", side, _SIDES)
    W, W_ref = _check_matrix("W", W, svd=True), _check_matrix("W_ref", W_ref, svd=True)
    if W.shape[-2:] != W_ref.shape[-2:]:
        raise ValueError(f"W is {tuple(W.shape[-2:])} but W_ref is {tuple(W_ref.shape[-2:])}")
    _check_pair("W_ref", W_ref, "W", W, tail=2)
    _check_finite("W", W)
    _check_finite("W_ref", W_ref)
    U, _, Vh = torch.linalg.svd(W, full_matrices=False)  # (..., m, k), (..., k, n)
    U0, _, Vh0 = torch.linalg.svd(W_ref, full_matrices=False)
    if side == "right":
        return vector_angle(Vh, Vh0)  # rows are v_iᵀ: (..., k)
    return vector_angle(U.mT, U0.mT)


def principal_angles(A: Tensor, B: Tensor) -> Tensor:
    r"""Principal angles between the column spaces of ``A`` and ``B`` (orthonormal columns).

    .. math::

        \cos\theta_i = \sigma_i(A^\top B), \qquad \sin\theta_{k+1-i} = \sigma_i\big((I - AA^\top)B\big),

    combined as :math:`\theta_i = \operatorname{atan2}(\sin\theta_i, \cos\theta_i)`, accurate for
    small and large angles alike (Knyazev & Argentati 2002).

    Args:
        A: ``(..., n, p)`` with orthonormal columns (checked: a ``ValueError`` names the
            argument otherwise; orthonormalise a spanning set with ``torch.linalg.qr(A).Q``).
        B: ``(..., n, q)`` with orthonormal columns, batch-broadcastable with ``A``.

    Returns:
        ``(..., min(p, q))`` radians, ascending (the last one is the largest).

    Reference:
        Björck & Golub, *Numerical methods for computing angles between linear subspaces*, 1973;
        Knyazev & Argentati, SIAM J. Sci. Comput. 23(6), 2002 (sine-based small angles).

    Example:
        >>> A = torch.eye(3, dtype=torch.float64)[:, :2]
        >>> B = torch.tensor([[1.0], [0.0], [1.0]], dtype=torch.float64) / 2**0.5
        >>> principal_angles(A, B)
        tensor([0.7854], dtype=torch.float64)
    """
    A, B = _check_matrix("A", A, svd=True), _check_matrix("B", B, svd=True)
    _check_pair("B", B, "A", A, tail=2)
    if A.shape[-2] != B.shape[-2]:
        raise ValueError(
            f"A and B must live in the same space: {A.shape[-2]} vs {B.shape[-2]} rows"
        )
    _check_orthonormal("A", A)
    _check_orthonormal("B", B)
    if A.shape[-1] < B.shape[-1]:
        A, B = B, A  # p >= q
    q = B.shape[-1]
    if q == 0:
        return A.new_zeros(*torch.broadcast_shapes(A.shape[:-2], B.shape[:-2]), 0)
    cos = torch.linalg.svdvals(A.mT @ B).clamp(max=1.0)  # (..., q) descending
    sin = torch.linalg.svdvals(B - A @ (A.mT @ B)).clamp(max=1.0)  # (..., q) descending
    return torch.atan2(sin.flip(-1), cos)  # (..., q) ascending


def largest_principal_angle(A: Tensor, B: Tensor) -> Tensor:
    r"""The largest principal angle between two subspaces of equal dimension.

    .. math::

        \theta_{\max}(A, B) = \arcsin \|(I - AA^\top) B\|_2 \quad (p = q),

    zero iff the column spaces coincide; the distance used to say "the untouched singular
    subspaces do not move".

    Args:
        A: ``(..., n, p)`` with orthonormal columns (checked, as in :func:`principal_angles`).
        B: ``(..., n, q)`` with orthonormal columns.

    Returns:
        ``(...)`` radians (0 when ``min(p, q) == 0``).

    Reference:
        Lecture 6, section 2, "Invariance of subspaces in the weights".

    Example:
        >>> A = torch.eye(3, dtype=torch.float64)[:, :2]
        >>> float(largest_principal_angle(A, A.flip(-1)))
        0.0
    """
    angles = principal_angles(A, B)
    if angles.shape[-1] == 0:
        return angles.sum(-1)
    return angles[..., -1]


class Cluster(NamedTuple):
    """The largest group of coinciding singular values (see :func:`coinciding_singular_values`).

    Attributes:
        count: ``(...)`` int64, how many singular values coincide.
        spread: ``(...)``, largest minus smallest value of the group (``<= tol``).
        value: ``(...)``, their mean.
        start: ``(...)`` int64, index (in descending order) of the group's largest value.
    """

    count: Tensor
    spread: Tensor
    value: Tensor
    start: Tensor


def coinciding_singular_values(S: Tensor, tol: float = 1e-10) -> Cluster:
    r"""The largest group of singular values lying within an interval of width ``tol``.

    .. math::

        \mathrm{count} = \max_i\, \#\{j : \sigma_i - \mathrm{tol} \le \sigma_j \le \sigma_i\},

    the group being consecutive in sorted order; ties between equally large groups go to the
    larger singular values. The law of parsimony predicts ``count = d - 2r`` for every layer at
    every step (square layers, whitened data), with spread at rounding level in float64.

    Args:
        S: ``(..., k)`` finite singular values in descending order (from
            :func:`singular_values`); ascending or unsorted input raises a ``ValueError`` (it
            means something other than ``svdvals`` output was passed).
        tol: absolute width of the interval (``>= 0``).

    Returns:
        A :class:`Cluster` of ``(...)`` tensors: ``count``, ``spread``, ``value``, ``start``.

    Reference:
        Lecture 6, section 2, Thm. (Yaras et al. '23): the :math:`\rho(t) I_m` block.

    Example:
        >>> c = coinciding_singular_values(torch.tensor([3.0, 1.0, 1.0, 1.0, 0.5]), tol=1e-6)
        >>> int(c.count), int(c.start), float(c.value)
        (3, 1, 1.0)
    """
    S = _check_matrix("S", S, min_ndim=1)
    tol = _check_tol("tol", tol)
    k = S.shape[-1]
    if k == 0:
        raise ValueError("S is empty")
    _check_finite("S", S)
    if not bool((S[..., :-1] >= S[..., 1:]).all()):
        raise ValueError(
            "S must be in descending order (largest first), as torch.linalg.svdvals and "
            "singular_values return it; got an ascending or unsorted S. Pass singular values, "
            "e.g. S.sort(dim=-1, descending=True).values if the order is all that is wrong"
        )
    a = S.flip(-1).contiguous()  # ascending (..., k)
    idx = torch.arange(k, device=S.device)
    # for each i: the number of j >= i with a_j <= a_i + tol
    end = torch.searchsorted(a, a + tol, right=True)  # (..., k)
    counts = end - idx
    # ties -> larger values: scan from the top (reverse), argmax takes the first maximum
    counts_rev = counts.flip(-1)
    j_rev = counts_rev.argmax(-1, keepdim=True)  # (..., 1)
    count = counts_rev.gather(-1, j_rev)  # (..., 1)
    i_lo = (k - 1) - j_rev  # ascending index of the smallest member
    i_hi = i_lo + count - 1
    lo, hi = a.gather(-1, i_lo), a.gather(-1, i_hi)
    members = (idx >= i_lo) & (idx <= i_hi)
    value = (a * members).sum(-1) / count.squeeze(-1).to(a.dtype)
    start = (k - 1) - i_hi  # descending index of the largest member
    return Cluster(count.squeeze(-1), (hi - lo).squeeze(-1), value, start.squeeze(-1))


def coinciding_subspaces(W: Tensor, tol: float = 1e-10) -> tuple[Tensor, Tensor]:
    r"""Left and right singular subspaces of the largest group of coinciding singular values of ``W``.

    .. math::

        W = U\,\mathrm{diag}(S)\,V_h, \qquad
        U_c = U_{:,\,s:s+m}, \quad V_{h,c} = (V_h)_{s:s+m,\,:},

    with ``s, m`` = ``start, count`` of :func:`coinciding_singular_values`. Inside the group the
    individual vectors are arbitrary; only the spans mean something (compare them with
    :func:`largest_principal_angle`, e.g. ``largest_principal_angle(Vh_c.mT, V2)``).

    Args:
        W: ``(m, n)`` one non-empty matrix, float32 or float64, finite.
        tol: as in :func:`coinciding_singular_values`.

    Returns:
        ``U_c`` ``(m, count)`` and ``Vh_c`` ``(count, n)``, orthonormal columns / rows.

    Reference:
        Lecture 6, section 2, "Invariance of subspaces in the weights".

    Example:
        >>> W = torch.diag(torch.tensor([3.0, 1.0, 1.0, 0.5], dtype=torch.float64))
        >>> U_c, Vh_c = coinciding_subspaces(W, tol=1e-9)
        >>> tuple(U_c.shape), tuple(Vh_c.shape)
        ((4, 2), (2, 4))
    """
    W = _check_matrix("W", W, svd=True)
    if W.ndim != 2:
        raise ValueError(f"W must be one (m, n) matrix, got shape {tuple(W.shape)}")
    _check_tol("tol", tol)
    if W.numel() == 0:
        raise ValueError(f"W is empty (shape {tuple(W.shape)}): it has no singular values")
    _check_finite("W", W)
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    c = coinciding_singular_values(S, tol)
    s, m = int(c.start), int(c.count)
    return U[:, s : s + m], Vh[s : s + m]


def balancedness_gap(weights: Sequence[Tensor]) -> Tensor:
    r"""How far consecutive layers are from balanced.

    .. math::

        g_l = \|W_{l+1}^\top W_{l+1} - W_l W_l^\top\|_F, \qquad l = 1, \dots, L-1.

    Gradient flow conserves :math:`W_{l+1}^\top W_{l+1} - W_l W_l^\top`; ε-orthogonal init of
    square layers makes it zero, and GD with a small step keeps it small (weight decay shrinks it).

    Args:
        weights: a list (or tuple, not a stacked tensor) of ``L >= 2`` finite real floating
            tensors ``(..., d_l, d_{l-1})`` on one device, batch shapes broadcastable (e.g. a
            :class:`lib.dln.History` entry, or ``[h.trajectory(i) for i in range(L)]``).

    Returns:
        ``(..., L - 1)``.

    Reference:
        Arora, Cohen & Hazan, *On the optimization of deep networks: implicit acceleration by
        overparameterization*, ICML 2018 (balancedness); Yaras et al. 2023.

    Example:
        >>> I = torch.eye(3)
        >>> balancedness_gap([I, 2 * I])
        tensor([5.1962])
    """
    Ws = _check_weight_list(weights)
    gaps = [torch.linalg.matrix_norm(B.mT @ B - A @ A.mT) for A, B in zip(Ws[:-1], Ws[1:])]
    return torch.stack(gaps, dim=-1)


def _check_weight_list(weights: object) -> list[Tensor]:
    """The matrices of :func:`balancedness_gap`, checked: type, shapes, device, then values."""
    if isinstance(weights, Tensor) or (isinstance(weights, (list, tuple)) and len(weights) < 2):
        got = f"shape {tuple(weights.shape)}" if isinstance(weights, Tensor) else len(weights)
        raise ValueError(f"weights must be a list of at least 2 weight matrices, got {got} "
                         "(for a stacked tensor pass list(W))")  # fmt: skip
    check_type("weights", weights, (list, tuple), "the L weight matrices W_1, ..., W_L")
    Ws = [_check_matrix(f"W_{i + 1}", W) for i, W in enumerate(weights)]
    for i in range(1, len(Ws)):
        A, B = Ws[i - 1], Ws[i]
        if B.shape[-1] != A.shape[-2]:
            raise ValueError(f"shape mismatch: W_{i + 1} has {B.shape[-1]} columns, W_{i} has "
                             f"{A.shape[-2]} rows")  # fmt: skip
        _check_pair(f"W_{i + 1}", B, f"W_{i}", A, tail=2)
    for i, W in enumerate(Ws):
        _check_finite(f"W_{i + 1}", W)
    return Ws


def numerical_rank(W: Tensor, rtol: float = 1e-6) -> Tensor:
    r"""Number of singular values above ``rtol`` times the largest.

    .. math::

        \operatorname{rank}_{\mathrm{rtol}}(W) = \#\{i : \sigma_i > \mathrm{rtol}\cdot\sigma_1\}.

    The "implicit low-rank bias": as ε → 0 the end-to-end :math:`W_{L:1}` has rank at most
    :math:`2r` at any ``rtol`` above :math:`\rho^L/\sigma_1`.

    Args:
        W: ``(..., m, n)``, float32 or float64, finite (as in :func:`singular_values`).
        rtol: relative threshold (``>= 0``).

    Returns:
        ``(...)`` int64; 0 for a zero matrix (no value exceeds ``rtol * 0``) or an empty one.

    Reference:
        Lecture 6, section 2, "Implicit low-rank bias".

    Example:
        >>> int(numerical_rank(torch.diag(torch.tensor([1.0, 1e-3, 1e-9]))))
        2
    """
    rtol = _check_tol("rtol", rtol)
    S = singular_values(W)
    return (S > rtol * S[..., :1]).sum(-1)
