r"""The theory of the law of parsimony: :math:`\rho(t)` and the subspaces GD never moves.

Yaras et al. '23, Thm. 1, in the row convention of :mod:`lib.dln` (``X`` is ``(N, d_0)``): with
whitened inputs, square hidden layers and an ε-orthogonal initialisation, every layer of a deep
linear network keeps a block :math:`\rho(t) I_m` on fixed singular subspaces.

* :func:`rho_recursion` — :math:`\rho(t)` by its scalar recursion (per run, for sweeps);
* :func:`invariant_subspaces` — the fixed subspaces :math:`(U_{l,2}, V_{l,2})`, from the data and
  the initialisation.

:mod:`lib.parsimony.checks` compares both with trained weights. The old names
``lib.dln.rho_recursion`` and ``lib.dln.invariant_subspaces`` resolve to these functions too.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from lib._checks import check_int as _check_int
from lib._checks import check_option as _check_option
from lib._checks import check_real as _check_real
from lib.dln._common import _REDUCTIONS, PerRun, Reduction, _validate_data, _validate_weights
from lib.dln.training import _record_steps, loss_coefficient
from lib.dln.weights import end_to_end

__all__ = ["Group", "invariant_subspaces", "rho_recursion"]

Group = Literal["coupled", "decoupled"]
_GROUPS = ("coupled", "decoupled")


def rho_recursion(
    scale: PerRun,
    lr: PerRun,
    steps: int,
    depth: int,
    n_samples: int | None = None,
    d_out: int | None = None,
    weight_decay: PerRun = 0.0,
    momentum: PerRun = 0.0,
    reduction: Reduction = "mean",
    group: Group = "coupled",
    record_every: int = 1,
) -> Tensor:
    r"""The shared singular value :math:`\rho(t)` of the untouched directions, by its scalar recursion.

    Setting (Yaras et al. '23, Thm. 1, in the row convention of :mod:`lib.dln`): linear network,
    whitened inputs :math:`X^\top X = I_{d_0}` (``X = I`` included), hidden layers square
    :math:`d_0 = d_1 = \dots = d_{L-1} = d`, ε-orthogonal initialisation
    (:func:`lib.dln.init_weights` with ``kind="orthogonal"``), full-batch GD with weight decay λ and,
    optionally, heavy-ball momentum μ as in :func:`lib.dln.train`, targets with
    :math:`M = Y^\top X` of rank ``r``.

    Under these assumptions every layer keeps a block :math:`\rho(t) I_m` on directions that GD
    never moves, and

    .. math::

        \rho(t+1) = (1-\eta\lambda)\,\rho(t) - \eta\, c\, \rho(t)^{2L-1}, \qquad \rho(0) = \varepsilon,

    * ``group="coupled"``: :math:`c = 1/(N d_L)` (``"mean"``) or :math:`1` (``"sum"``); **all L
      layers**. Square network (:math:`d_L = d`): exactly :math:`d - 2r` singular values of every
      layer equal :math:`\rho(t)` (generic data and init) — the lecture's Case 2. Non-square last
      layer (:math:`d_L < d`): :math:`d_L - 2r` of them, when positive (none in Case 1,
      :math:`d_L = r`).
    * ``group="decoupled"`` (only when :math:`d_L < d`): :math:`c = 0`, directions whose chain the
      last layer annihilates; **layers 1..L−1 only**, :math:`d - d_L - r` directions (in Case 1,
      :math:`d_L = r`, the lecture's :math:`m = d - 2d_y`).

    With momentum: :math:`b(t+1) = \mu b(t) + \lambda\rho(t) + c\rho(t)^{2L-1}` and
    :math:`\rho(t+1) = \rho(t) - \eta b(t+1)`. The directions themselves are
    :func:`invariant_subspaces`; they never move.

    Derivation: book, Notation page, Notes § The ρ(t) recursion of the untouched directions.

    Computed in float64; every argument but ``steps``, ``depth``, ``n_samples``, ``d_out``,
    ``reduction``, ``group`` and ``record_every`` may be a number or a ``(B,)`` tensor/sequence
    (runs of a sweep).

    Args:
        scale: ε, the initial scale.
        lr: η > 0.
        steps: number of GD updates.
        depth: ``L >= 1``.
        n_samples: ``N`` (needed for ``reduction="mean"``).
        d_out: ``d_L`` (needed for ``reduction="mean"``).
        weight_decay: λ >= 0.
        momentum: μ in ``[0, 1)``.
        reduction: ``"mean"`` or ``"sum"``, as passed to :func:`lib.dln.train`.
        group: ``"coupled"`` or ``"decoupled"`` (see above).
        record_every: as in :func:`lib.dln.train`, so that ``rho[k]`` belongs to ``history.weights[k]``.

    Returns:
        ``(T,)`` float64 on the CPU, or ``(T, B)`` when any argument is per-run.

    Raises:
        ValueError: bad arguments (per-run arguments of different lengths included), or a
            recursion that diverges (ρ non-finite: the message names the step, the runs and
            their learning rate, as :func:`lib.dln.train` does).
        TypeError: an argument that is not a number or a sequence/tensor of numbers.

    Reference:
        Yaras et al., *The law of parsimony in gradient descent for learning deep linear
        networks*, 2023, Thm. 1 and its proof; Lecture 6, section 2 (:math:`\rho(t) I_m` block).

    Example:
        >>> rho = rho_recursion(1e-1, 0.5, 4, depth=3, reduction="sum")
        >>> [round(v, 8) for v in rho.tolist()]
        [0.1, 0.099995, 0.09999, 0.099985, 0.09998001]
    """
    steps = _check_int("steps", steps, 0)
    depth = _check_int("depth", depth, 1)
    record_every = _check_int("record_every", record_every, 1)
    _check_option("reduction", reduction, _REDUCTIONS)
    _check_option("group", group, _GROUPS)
    c = _coupling(group, reduction, n_samples, d_out)

    per_run = any(not isinstance(v, numbers.Real) for v in (scale, lr, weight_decay, momentum))
    named = {
        "scale": _per_run_tensor("scale", scale, True),
        "lr": _per_run_tensor("lr", lr, True),
        "weight_decay": _per_run_tensor("weight_decay", weight_decay, False),
        "momentum": _per_run_tensor("momentum", momentum, False, 1.0),
    }
    lengths = {k: t.numel() for k, t in named.items() if t.numel() != 1}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            "the per-run arguments must share one number of runs B, got "
            + ", ".join(f"{k} with {n}" for k, n in lengths.items())
        )
    eps_, eta, lam, mu = torch.broadcast_tensors(*named.values())
    record = set(_record_steps(steps, record_every))
    rho, buf = eps_.clone(), torch.zeros_like(eps_)
    out = []
    for t in range(steps + 1):
        if t in record:
            out.append(rho.clone())
        if t == steps:
            break
        g = lam * rho + c * rho ** (2 * depth - 1)
        buf = mu * buf + g
        rho = rho - eta * buf
    res = torch.stack(out)  # (T, B)
    _check_rho_finite(res, record, eta)
    return res if per_run else res[:, 0]


def _coupling(group: str, reduction: str, n_samples: int | None, d_out: int | None) -> float:
    """The loss coefficient ``c`` that couples ρ to the loss: 0 for decoupled directions."""
    if group != "coupled":
        return 0.0
    if reduction != "mean":
        return 1.0
    if n_samples is None or d_out is None:
        raise ValueError('reduction="mean" needs n_samples (N) and d_out (d_L): c = 1/(N d_L)')
    return loss_coefficient(
        reduction, _check_int("n_samples", n_samples, 1), _check_int("d_out", d_out, 1)
    )


def _per_run_tensor(name: str, v: PerRun, low_open: bool, high: float = math.inf) -> Tensor:
    """A per-run argument of :func:`rho_recursion` as a float64 ``(B,)`` tensor (``(1,)`` for a
    number), checked finite and in range."""
    if isinstance(v, bool) or isinstance(v, (str, bytes)):
        raise TypeError(f"{name} must be a number or a (B,) sequence/tensor, got {v!r}")
    if isinstance(v, numbers.Real):
        t = torch.tensor([float(v)], dtype=torch.float64)
    else:
        try:
            t = torch.as_tensor(v, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"{name} must be a number or a (B,) sequence/tensor of numbers, got {v!r}"
            ) from None
        if t.ndim > 1 or t.numel() == 0:
            raise ValueError(
                f"{name} must be a number or a non-empty (B,) sequence/tensor, "
                f"got shape {tuple(t.shape)}"
            )
        t = t.flatten()
    ok = torch.isfinite(t) & ((t > 0) if low_open else (t >= 0)) & (t < high)
    if not bool(ok.all()):
        raise ValueError(
            f"{name} must be finite and {'> 0' if low_open else '>= 0'}"
            f"{'' if math.isinf(high) else f' and < {high:g}'}, got {v!r}"
        )
    return t


def _check_rho_finite(res: Tensor, record: set[int], eta: Tensor) -> None:
    """Raise, as :func:`lib.dln.train` does, when ρ became non-finite (one check, after the loop).

    A non-finite ρ stays non-finite, and the last step is always recorded, so checking the
    records finds every divergence; the step named is the first record that is non-finite.
    """
    bad = ~torch.isfinite(res)  # (T, B)
    if not bool(bad.any()):
        return
    first = int(bad.any(dim=1).nonzero()[0, 0])
    step = sorted(record)[first]
    runs = bad[first].nonzero().flatten().tolist()
    lrs = ", ".join(f"{v:g}" for v in eta[runs[:5]].tolist()) + (", ..." if len(runs) > 5 else "")
    raise ValueError(
        f"rho_recursion diverged: rho became non-finite by step {step} "
        f"(run{'s' if len(runs) > 1 else ''} {runs[:10]}{'...' if len(runs) > 10 else ''}); "
        f"the learning rate lr={lrs} is too large for this scale, depth and loss "
        "(GD on the network would diverge too); lower lr or scale"
    )


def _orth_complement_null(C: Tensor, n: int, rtol: float) -> Tensor:
    """Orthonormal basis (n, k) of {v : C v = 0} for C (m, n) with O(1)-scaled rows."""
    if C.shape[0] == 0:
        return torch.eye(n, dtype=C.dtype, device=C.device)
    _, S, Vh = torch.linalg.svd(C, full_matrices=True)  # Vh (n, n)
    rank = int((S > rtol * max(1.0, float(S.max()))).sum())
    return Vh[rank:].mT  # (n, n - rank)


def invariant_subspaces(
    weights0: Sequence[Tensor],
    X: Tensor,
    Y: Tensor,
    group: Group = "coupled",
    rtol: float = 1e-9,
) -> list[tuple[Tensor, Tensor]]:
    r"""Bases of the untouched singular subspaces :math:`(U_{l,2}, V_{l,2})`, from the data and the init.

    In the setting of :func:`rho_recursion` (whitened inputs, square hidden layers,
    ε-orthogonal init) every layer keeps the block form of the lecture's theorem,

    .. math::

        W_l(t) = \begin{bmatrix} U_{l,1} & U_{l,2}\end{bmatrix}
        \begin{bmatrix}\widetilde W_l(t) & 0\\ 0 & \rho(t) I_m\end{bmatrix}
        \begin{bmatrix} V_{l,1} & V_{l,2}\end{bmatrix}^\top, \qquad V_{l+1,2} = U_{l,2},

    with :math:`U_{l,2}, V_{l,2}` fixed for all :math:`t`. This function computes them at
    :math:`t = 0` from :math:`M = Y^\top X` (``(d_L, d_0)``) and :math:`P_0 = W_{L:1}(0)`:

    * ``"coupled"``: :math:`V_{1,2}` spans
      :math:`\{v \in (\ker P_0)^\perp : M v = 0,\ M^\top P_0 v = 0\}`; all ``L`` layers.
    * ``"decoupled"``: :math:`V_{1,2}` spans :math:`\{v : M v = 0,\ P_0 v = 0\}`; layers
      ``1..L-1`` (non-square last layer only).

    then :math:`U_{l,2} = V_{l+1,2} = W_l(0) V_{l,2} / \varepsilon` (so the pairing of the columns
    is kept: :math:`U_{l,2}^\top W_l(t) V_{l,2} = \rho(t) I_m` exactly, not just up to a rotation).
    Rank decisions use ``rtol`` on row-normalised constraints; use float64.

    Args:
        weights0: the initial ``L`` weights, :math:`W_l(0)` of shape ``(d_l, d_{l-1})``,
            ε-orthogonal.
        X: ``(N, d_0)`` whitened inputs (:math:`X^\top X = I`).
        Y: ``(N, d_L)`` targets.
        group: ``"coupled"`` or ``"decoupled"``.
        rtol: relative tolerance for the rank decisions, a finite number ``> 0``.

    Returns:
        One ``(U_l2, V_l2)`` pair per layer it applies to (``L`` for ``"coupled"``, ``L − 1``
        for ``"decoupled"``): ``U_l2`` ``(d_l, m)`` and ``V_l2`` ``(d_{l-1}, m)`` with
        orthonormal columns, on the weights' device. ``m`` may be 0.

    Reference:
        Yaras et al. 2023, Thm. 1 (proof: construction of :math:`U_l, V_l`); Lecture 6,
        section 2, "Invariance of subspaces in the weights".

    Example:
        >>> from lib.dln import init_weights, low_rank_targets
        >>> g = torch.Generator().manual_seed(0)
        >>> Ws = init_weights([10, 10, 10], 0.1, generator=g, dtype=torch.float64)
        >>> Y = low_rank_targets(10, 10, 2, generator=g, dtype=torch.float64)
        >>> U2, V2 = invariant_subspaces(Ws, torch.eye(10, dtype=torch.float64), Y)[0]
        >>> tuple(V2.shape)  # d - 2r = 6 directions
        (10, 6)
    """
    _check_option("group", group, _GROUPS)
    rtol = _check_real("rtol", rtol, 0.0, strict=True)
    Ws = _validate_weights(weights0, batched=False)
    if Ws[0].dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"weights0 have dtype {Ws[0].dtype}, for which torch has no SVD; cast the weights, "
            "X and Y with .double() (the rank decisions need float64)"
        )
    X = _validate_data("X", X, None, Ws[0].shape[-1], "d_0 (columns of W_1)", Ws[0])
    Y = _validate_data("Y", Y, None, Ws[-1].shape[-2], "d_L (rows of W_L)", Ws[0])
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"shape mismatch: X has N={X.shape[0]} rows but Y has N={Y.shape[0]} rows")
    L, d0 = len(Ws), Ws[0].shape[1]
    M = Y.T @ X  # (d_L, d_0), the lecture's Y Xᵀ
    P0 = end_to_end(Ws)  # (d_L, d_0)

    def row_basis(A: Tensor) -> tuple[Tensor, Tensor]:
        U, S, Vh = torch.linalg.svd(A, full_matrices=True)
        k = (
            int((S > rtol * max(float(S.max()), torch.finfo(A.dtype).tiny)).sum())
            if S.numel()
            else 0
        )
        return U[:, :k], Vh  # left basis of range(A), full Vh (rows k.. span ker A)

    Um, Vh_m = row_basis(M)
    r = Um.shape[1]
    Vm = Vh_m[:r].mT  # (d_0, r): row space of M
    Up, Vh_p = row_basis(P0)
    k = Up.shape[1]
    null_P0 = Vh_p[k:].mT  # (d_0, d_0 - k)
    Pn = P0 / torch.linalg.matrix_norm(P0, ord=2)  # O(1) scale
    if group == "coupled":
        C = torch.cat([Vm.mT, Um.mT @ Pn, null_P0.mT])  # (·, d_0)
        n_layers = L
    else:
        C = torch.cat([Vm.mT, Vh_p[:k]])
        n_layers = L - 1
    V2 = _orth_complement_null(C, d0, rtol)  # (d_0, m)
    out = []
    for i in range(n_layers):
        U2 = Ws[i] @ V2  # (d_l, m) = ε × orthonormal columns for an ε-orthogonal W_l(0)
        U2 = U2 / torch.linalg.vector_norm(U2, dim=0, keepdim=True).clamp_min(
            torch.finfo(U2.dtype).tiny
        )
        out.append((U2, V2))
        V2 = U2
    return out
