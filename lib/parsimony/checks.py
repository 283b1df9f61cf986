r"""The law of parsimony checked and measured on trained weights.

Lecture section 2 (Yaras et al. '23). :mod:`lib.dln` trains deep linear networks,
:mod:`lib.parsimony.theory` predicts :math:`\rho(t)` and the invariant subspaces, and
:mod:`lib.spectra` measures singular values and subspaces. This module puts them together into the
quantities the chapter prints and plots:

* :func:`check_law` — the theorem, checked on one recorded run (whitened data): how many singular
  values coincide, how far they are from :math:`\rho(t)`, whether their subspaces moved, and the
  rank of what was learned;
* :func:`svd_evolution` — the lecture's three-panel figure as numbers: :math:`\sigma_i(t)` and the
  angles of the singular vectors to a reference step;
* :func:`rho_measured` — :math:`\rho(t)` read off the weights: the value of the coinciding group;
* :func:`block_spread`, :func:`block_drift`, :func:`deviation` — how far the middle
  :math:`d - 2r` block is from the theorem's exact structure when its assumptions fail
  (non-whitened data);
* :func:`floor_small` — print a value, or ``"< floor"`` when it is at rounding level.

The middle block: with singular values sorted in decreasing order, indices :math:`r, \dots, k-r-1`
(0-based, :math:`k = \min(d_l, d_{l-1})`) — the :math:`d-2r` values the theorem keeps at
:math:`\rho(t)`, between the :math:`r` that grow and the :math:`r` that shrink.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from lib import dln, spectra
from lib._checks import check_option, check_real, check_tensor, check_type
from lib.parsimony._validate import check_history, check_svd_input
from lib.parsimony.theory import invariant_subspaces

__all__ = [
    "Deviation",
    "LawCheck",
    "SvdEvolution",
    "block_drift",
    "block_spread",
    "check_law",
    "deviation",
    "floor_small",
    "rho_measured",
]

Side = Literal["right", "left"]
_SIDES = ("right", "left")


def _check_rank(rank: object, k: int) -> int:
    """``rank`` as an ``int`` if the middle block of ``k`` singular values is not empty."""
    if not isinstance(rank, numbers.Integral) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank must be an integer >= 1, got {rank!r}")
    if k - 2 * int(rank) < 1:
        raise ValueError(
            f"the middle block needs min(d_l, d_(l-1)) - 2r >= 1, got {k} - 2*{rank} = {k - 2 * rank}"
        )
    return int(rank)


# --------------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------------


def block_spread(S: Tensor, rank: int) -> Tensor:
    r"""Relative spread of the middle :math:`k - 2r` singular values.

    .. math::

        \delta = \frac{\sigma_{r+1} - \sigma_{k-r}}{\operatorname{mean}(\sigma_{r+1},\dots,\sigma_{k-r})},

    zero when the middle block is one repeated value :math:`\rho(t)` (the theorem) — also when
    that value is 0 (a block of zeros has no spread; :math:`0/0` is not returned as NaN).

    Args:
        S: ``(..., k)`` singular values in decreasing order (:func:`lib.spectra.singular_values`),
            floating point.
        rank: ``r``, with ``k - 2r >= 1``.

    Returns:
        ``(...)`` on ``S``'s device.

    Reference:
        Lecture 6, section 2, Thm. (Yaras et al. '23): the :math:`\rho(t) I_m` block.

    Example:
        >>> block_spread(torch.tensor([9.0, 2.0, 1.0, 0.5]), 1)
        tensor(0.6667)
    """
    if not isinstance(S, Tensor) or S.ndim < 1:
        raise ValueError("S must be a tensor (..., k) of singular values")
    check_tensor("S", S, finite=False)
    rank = _check_rank(rank, S.shape[-1])
    mid = S[..., rank : S.shape[-1] - rank]  # (..., k - 2r)
    width = mid.amax(-1) - mid.amin(-1)
    # one repeated value has spread 0, zero included (0/0 would read as NaN)
    return torch.where(width == 0, torch.zeros_like(width), width / mid.mean(-1))


def block_drift(W: Tensor, W_ref: Tensor, rank: int, side: Side = "right") -> Tensor:
    r"""Largest principal angle between the middle-block singular subspaces of ``W`` and ``W_ref``.

    .. math::

        \theta = \theta_{\max}\big(\operatorname{span}\{v_{r+1},\dots,v_{k-r}\}(W),\
        \operatorname{span}\{v_{r+1},\dots,v_{k-r}\}(W_{\mathrm{ref}})\big)

    (left singular vectors :math:`u_i` for ``side="left"``). Only the span is compared: inside a
    block of equal singular values the individual vectors are arbitrary. Zero when the block's
    subspace does not move (the theorem).

    Args:
        W: ``(..., m, n)``, e.g. a trajectory ``(T, m, n)`` or ``(T, B, m, n)``.
        W_ref: ``(m, n)`` or broadcastable to ``W``.
        rank: ``r``, with ``min(m, n) - 2r >= 1``.
        side: ``"right"`` or ``"left"``.

    Returns:
        ``(...)`` radians.

    Reference:
        Lecture 6, section 2, "Invariance of subspaces in the weights".

    Example:
        >>> W = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64))
        >>> float(block_drift(W, 2 * W, 1))
        0.0
    """
    check_option("side", side, _SIDES)
    for name, t in (("W", W), ("W_ref", W_ref)):
        if not isinstance(t, Tensor) or t.ndim < 2:
            raise ValueError(f"{name} must be a tensor (..., m, n)")
        check_svd_input(name, t)
    if W_ref.shape[-2:] != W.shape[-2:] or W_ref.dtype != W.dtype or W_ref.device != W.device:
        raise ValueError(
            f"W_ref must be a matrix like W's: W is (..., {W.shape[-2]}, {W.shape[-1]}) "
            f"{W.dtype} on {W.device}, W_ref is {tuple(W_ref.shape)} {W_ref.dtype} on "
            f"{W_ref.device}"
        )
    k = min(W.shape[-2:])
    rank = _check_rank(rank, k)
    U, _, Vh = torch.linalg.svd(W, full_matrices=False)  # (..., m, k), (..., k, n)
    U0, _, Vh0 = torch.linalg.svd(W_ref, full_matrices=False)
    if side == "right":
        A, B = Vh[..., rank : k - rank, :].mT, Vh0[..., rank : k - rank, :].mT  # (..., n, k-2r)
    else:
        A, B = U[..., rank : k - rank], U0[..., rank : k - rank]  # (..., m, k-2r)
    return spectra.largest_principal_angle(A, B)


def rho_measured(history: dln.History, tol: float = 1e-10) -> Tensor:
    r""":math:`\rho(t)` measured in the weights: the value of each layer's coinciding singular values.

    .. math::

        \hat\rho_l(t) = \operatorname{mean}\{\sigma_i(W_l(t)) : i \text{ in the largest group
        of values equal within tol}\}

    (:func:`lib.spectra.coinciding_singular_values`). Under the theorem the group is the middle
    :math:`d - 2r` block and :math:`\hat\rho_l(t) = \rho(t)` for every layer; at :math:`t = 0`
    all values equal ε.

    Args:
        history: from :func:`lib.dln.train` or :func:`lib.dln.train_batched`.
        tol: width within which singular values count as equal (float64: ``1e-10``).

    Returns:
        ``(L, T)``, or ``(L, T, B)`` for a batched history, on the weights' device.

    Reference:
        Yaras et al. 2023, Thm. 1 (the :math:`\rho(t) I_m` block).

    Example:
        >>> from lib.parsimony import simulate
        >>> run = simulate(0.3, width=8, rank=2, n_samples=8, steps=20)
        >>> tuple(rho_measured(run.history).shape)
        (3, 3)
    """
    check_history("history", history)
    L = len(history.weights[0])
    return torch.stack(
        [
            spectra.coinciding_singular_values(
                spectra.singular_values(history.trajectory(i)), tol
            ).value
            for i in range(L)
        ]
    )


class Deviation(NamedTuple):
    """How far each layer's middle block is from exact (see :func:`deviation`).

    Attributes:
        spread: ``(L, T', ...)`` relative spread of the middle singular values
            (:func:`block_spread`), records ``ref, ref + 1, ...``.
        right: ``(L, T', ...)`` largest principal angle of the middle right singular subspace to
            the reference record (:func:`block_drift`).
        left: ``(L, T', ...)`` the same for the left singular subspace.
    """

    spread: Tensor
    right: Tensor
    left: Tensor


def deviation(history: dln.History, rank: int, ref: int = 1) -> Deviation:
    r"""Spread and drift of every layer's middle :math:`d - 2r` block, from a reference record on.

    .. math::

        \delta_l(t) = \frac{\sigma_{r+1} - \sigma_{k-r}}{\operatorname{mean}\sigma_{r+1..k-r}}\big(W_l(t)\big),
        \qquad
        \theta_l(t) = \theta_{\max}\big(V_{l,\rm mid}(t), V_{l,\rm mid}(t_{\rm ref})\big),

    for the records from ``ref`` on (the reference must come after :math:`t = 0`, where the SVD
    is not unique). Both vanish under the theorem's assumptions; without them they say how
    approximately its structure holds.

    Args:
        history: from :func:`lib.dln.train` or :func:`lib.dln.train_batched`.
        rank: ``r``.
        ref: index of the reference record (``>= 1``).

    Returns:
        A :class:`Deviation` of ``(L, T - ref)`` or ``(L, T - ref, B)`` tensors; their steps are
        ``history.steps[ref:]``.

    Reference:
        Lecture 6, section 2, "The evolution of singular spaces in more generic settings".

    Example:
        >>> from lib.parsimony import simulate
        >>> run = simulate([0.1, 0.1], width=8, rank=2, n_samples=8, steps=20, condition=[1.0, 3.0])
        >>> dev = deviation(run.history, 2)
        >>> tuple(dev.spread.shape), bool(dev.right[:, :, 0].max() < 1e-10)
        ((3, 2, 2), True)
    """
    check_history("history", history)
    T = len(history.weights)
    if not isinstance(ref, numbers.Integral) or isinstance(ref, bool) or not 1 <= ref < T:
        raise ValueError(f"ref must be a record index in [1, {T - 1}], got {ref!r}")
    spread, right, left = [], [], []
    for i in range(len(history.weights[0])):
        traj = history.trajectory(i)[ref:]  # (T - ref, ..., m, n)
        spread.append(block_spread(spectra.singular_values(traj), rank))
        right.append(block_drift(traj, traj[0], rank, "right"))
        left.append(block_drift(traj, traj[0], rank, "left"))
    return Deviation(torch.stack(spread), torch.stack(right), torch.stack(left))


class SvdEvolution(NamedTuple):
    r"""The lecture's three panels as numbers (see :func:`svd_evolution`).

    Attributes:
        values: ``(T, k)`` singular values :math:`\sigma_i(t)`, decreasing.
        right: ``(T, 2r + 1)`` angles (radians) of :math:`v_1, \dots, v_r` to the reference step,
            then the middle block's largest principal angle, then :math:`v_{k-r+1}, \dots, v_k`.
        left: ``(T, 2r + 1)``, the same for the left singular vectors :math:`u_i`.
    """

    values: Tensor
    right: Tensor
    left: Tensor


def svd_evolution(trajectory: Tensor, rank: int, ref: int) -> SvdEvolution:
    r"""Singular values over time and the angles of the singular vectors to a reference step.

    .. math::

        \sigma_i(t),\qquad \angle\big(v_i(t), v_i(t_{\mathrm{ref}})\big),\qquad
        \angle\big(u_i(t), u_i(t_{\mathrm{ref}})\big)\quad (i \le r \text{ or } i > k - r),

    and, for the middle block :math:`r < i \le k - r`, whose vectors are not individually defined
    (the values coincide), the largest principal angle of its span (:func:`block_drift`). The
    reference must be a step where the spectrum has split into its three groups (not
    :math:`t = 0`, where every singular value equals ε).

    Args:
        trajectory: ``(T, m, n)`` one layer over the records (``History.trajectory(i)``).
        rank: ``r``.
        ref: index into the ``T`` records of the reference step (negative counts from the end).

    Returns:
        An :class:`SvdEvolution` with ``values`` ``(T, k)``, ``right`` and ``left``
        ``(T, 2r + 1)``.

    Reference:
        Lecture 6, section 2, figure "Evolution of SVD of the weight matrix"
        :math:`W_1(t) = U_1(t)\Sigma_1(t)V_1^\top(t)`.

    Example:
        >>> W = torch.diag(torch.tensor([4.0, 2.0, 2.0, 1.0], dtype=torch.float64))
        >>> ev = svd_evolution(torch.stack([W, W]), 1, ref=0)
        >>> tuple(ev.right.shape), float(ev.right.abs().max())
        ((2, 3), 0.0)
    """
    if not isinstance(trajectory, Tensor) or trajectory.ndim != 3:
        raise ValueError("trajectory must be one layer over time, shape (T, m, n)")
    check_svd_input("trajectory", trajectory)
    T, k = trajectory.shape[0], min(trajectory.shape[-2:])
    rank = _check_rank(rank, k)
    if not isinstance(ref, numbers.Integral) or isinstance(ref, bool) or not -T <= ref < T:
        raise ValueError(f"ref must index one of the {T} records, got {ref!r}")
    W_ref = trajectory[ref]
    U, S, Vh = torch.linalg.svd(trajectory, full_matrices=False)  # (T, m, k), (T, k), (T, k, n)
    U0, _, Vh0 = torch.linalg.svd(W_ref, full_matrices=False)
    outer = [*range(rank), *range(k - rank, k)]

    def angles(vecs: Tensor, vecs0: Tensor, side: Side) -> Tensor:  # vecs (T, k, n): rows
        each = spectra.vector_angle(vecs[:, outer], vecs0[outer])  # (T, 2r)
        mid = block_drift(trajectory, W_ref, rank, side)  # (T,)
        return torch.cat([each[:, :rank], mid[:, None], each[:, rank:]], dim=1)

    return SvdEvolution(S, angles(Vh, Vh0, "right"), angles(U.mT, U0.mT, "left"))


class LawCheck(NamedTuple):
    r"""The theorem checked layer by layer (see :func:`check_law`); every field is ``(L,)``.

    Attributes:
        count_min: fewest coinciding singular values over the steps ``t >= 1`` (int64).
        count_max: most coinciding singular values over the steps ``t >= 1`` (int64).
        spread: largest spread (max - min) of the coinciding group over ``t >= 1``.
        rho_error: largest :math:`|\text{group value} - \rho(t)|` over ``t >= 1``.
        angle: largest principal angle, over ``t >= 1`` and both sides, between the group's
            singular subspaces at ``t`` and the invariant subspaces computed from ``t = 0``.
        learned_rank: largest numerical rank (``rtol``) over ``t >= 1`` of
            :math:`W_l(t) - \frac{\rho(t)}{\varepsilon} W_l(0)`, the part that was learned.
    """

    count_min: Tensor
    count_max: Tensor
    spread: Tensor
    rho_error: Tensor
    angle: Tensor
    learned_rank: Tensor


def check_law(
    history: dln.History,
    X: Tensor,
    Y: Tensor,
    rho: Tensor,
    tol: float = 1e-10,
    rtol: float = 1e-12,
) -> LawCheck:
    r"""Check the law of parsimony on one recorded run, layer by layer, at every recorded step.

    In the theorem's setting (square layers, :math:`X^\top X = I`, ε-orthogonal init, GD with
    weight decay, optionally momentum) every layer is

    .. math::

        W_l(t) = U_l\begin{bmatrix}\widetilde W_l(t) & 0\\ 0 & \rho(t) I_{d-2r}\end{bmatrix}V_l^\top,
        \qquad V_{l+1} = U_l \text{ fixed},

    so: ``count`` = :math:`d - 2r` singular values coincide (within ``tol``) at every
    :math:`t \ge 1`; their value is :math:`\rho(t)`; their singular subspaces are the ones
    :func:`lib.parsimony.theory.invariant_subspaces` computes from :math:`t = 0` (angle 0); and what changed,
    :math:`W_l(t) - \frac{\rho(t)}{\varepsilon}W_l(0) = U_l\,\mathrm{diag}(\widetilde W_l(t) -
    \rho(t) I_{2r}, 0)\,V_l^\top`, has rank at most :math:`2r`. At :math:`t = 0` all
    :math:`d` values coincide, so the counts start at the first record after it.

    Args:
        history: one run of :func:`lib.dln.train` (unbatched), float64 for ``tol = 1e-10``, with
            at least two records.
        X: ``(N, d_0)`` the whitened inputs it was trained on.
        Y: ``(N, d_L)`` its targets.
        rho: ``(T,)`` the prediction of :func:`lib.parsimony.theory.rho_recursion` for the same records.
        tol: width within which singular values count as equal.
        rtol: relative threshold of the learned part's numerical rank. Its :math:`2r` values
            start at about :math:`\eta c\,\varepsilon^{2L-1}\|M\|` per step while rounding
            leaves about :math:`10^{-16}\varepsilon` in the others: record after a few steps
            (``record_every`` of 10 or more) so that the gap is wide, and keep ``rtol`` inside it.

    Returns:
        A :class:`LawCheck` of ``(L,)`` tensors on the CPU.

    Reference:
        Yaras et al., *The law of parsimony in gradient descent for learning deep linear
        networks*, 2023, Thm. 1; Lecture 6, section 2.

    Example:
        >>> from lib.parsimony.theory import rho_recursion
        >>> g = torch.Generator().manual_seed(0)
        >>> X, Y = torch.eye(8, dtype=torch.float64), dln.low_rank_targets(8, 8, 2, generator=g, dtype=torch.float64)
        >>> Ws = dln.init_weights([8] * 4, 0.3, generator=g, dtype=torch.float64)
        >>> h = dln.train(Ws, X, Y, 0.05, 100, reduction="sum", record_every=10)
        >>> rho = rho_recursion(0.3, 0.05, 100, 3, reduction="sum", record_every=10)
        >>> check_law(h, X, Y, rho).count_min.tolist()
        [4, 4, 4]
    """
    check_history("history", history, batched=False)
    T = len(history.weights)
    if T < 2:
        raise ValueError("history needs at least two records (t = 0 and a later step)")
    if not isinstance(rho, Tensor) or rho.shape != (T,):
        raise ValueError(f"rho must be a ({T},) tensor, one value per record")
    check_tensor("rho", rho)
    tol, rtol = (
        check_real("tol", tol, 0.0, strict=False),
        check_real("rtol", rtol, 0.0, strict=False),
    )
    W0 = history.weights[0]
    scale = torch.linalg.matrix_norm(W0[0], ord=2)  # ε
    subspaces = invariant_subspaces(W0, X, Y)
    rho = rho.to(dtype=W0[0].dtype, device=W0[0].device)
    fields: dict[str, list] = {name: [] for name in LawCheck._fields}
    for i, (U2, V2) in enumerate(subspaces):
        traj = history.trajectory(i)[1:]  # (T-1, d_l, d_{l-1})
        S = spectra.singular_values(traj)  # (T-1, k)
        c = spectra.coinciding_singular_values(S, tol)
        angle = traj.new_zeros(())
        for W in traj:
            U_c, Vh_c = spectra.coinciding_subspaces(W, tol)
            if U_c.shape[1] != U2.shape[1]:
                angle = traj.new_tensor(float("inf"))  # wrong dimension: not the theorem's block
                break
            angle = torch.maximum(angle, spectra.largest_principal_angle(U_c, U2))
            angle = torch.maximum(angle, spectra.largest_principal_angle(Vh_c.mT, V2))
        learned = traj - (rho[1:] / scale)[:, None, None] * W0[i]  # (T-1, d_l, d_{l-1})
        fields["count_min"].append(c.count.min())
        fields["count_max"].append(c.count.max())
        fields["spread"].append(c.spread.max())
        fields["rho_error"].append((c.value - rho[1:]).abs().max())
        fields["angle"].append(angle)
        fields["learned_rank"].append(spectra.numerical_rank(learned, rtol).max())
    return LawCheck(**{k: torch.stack(v).cpu() for k, v in fields.items()})


# --------------------------------------------------------------------------------------------
# printing
# --------------------------------------------------------------------------------------------


def floor_small(value: float | Tensor, floor: float = 1e-10) -> float | str:
    """``value`` as a float, or the text ``"< floor"`` when it is below ``floor``.

    NaN and infinities are returned as they are (``float('nan')``, ``inf``): a diverged
    measurement must stay visible, never turn into the bound. Values at rounding level
    (``3.1e-15`` here, ``2.9e-15`` with another BLAS thread count) are not reproducible digit
    for digit; printing the bound instead keeps stored outputs stable.

    Args:
        value: a number or a 0-dim tensor (``>= 0``).
        floor: the bound, a finite number ``> 0``.

    Returns:
        ``float(value)``, or the text ``"< 1e-10"`` (``floor`` written without a zero-padded
        exponent); ``nan``/``inf``/``-inf`` unchanged.

    Example:
        >>> floor_small(3e-15), floor_small(0.25), floor_small(1e-9, 1e-8)
        ('< 1e-10', 0.25, '< 1e-8')
    """
    floor = check_real("floor", floor, 0.0, strict=True)
    if isinstance(value, Tensor):
        check_tensor("value", value, (0,), floating=False, finite=False)
    elif not isinstance(value, numbers.Real) or isinstance(value, bool):
        check_type("value", value, (float, Tensor), "a number or a 0-dim tensor")
    v = float(value)
    if v >= floor or not abs(v) < math.inf:  # NaN and ±inf stay visible
        return v
    mantissa, exponent = f"{floor:e}".split("e")
    bound = f"{float(mantissa):g}e{int(exponent)}" if floor < 1e-3 else f"{floor:g}"
    return f"< {bound}"
