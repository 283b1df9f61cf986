r"""Training the lecture's networks until the loss is below a tolerance, and sweeps of settings.

:func:`train_to_tolerance` is batched gradient descent on ``B`` runs at once (on top of
:func:`lib.dln.train_batched`); :func:`train_settings` trains a list of :class:`Setting` s, runs of
equal shapes as one batch, and returns one :class:`SeparationRun` each, with its :math:`D_l`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lib import dln
from lib._checks import check_device, check_dtype, check_not_meta
from lib._checks import check_int as _check_int
from lib._checks import check_option as _check_option
from lib.dln import PerRun
from lib.separation._validate import (
    ACTIVATIONS,
    INIT_KINDS,
    _check_inputs,
    _check_positive,
    _check_weights,
)
from lib.separation.features import (
    ActivationName,
    layer_features,
    layer_separation,
    orthogonal_classes,
)
from lib.separation.theory import (
    Assumptions,
    DecayFit,
    decay_ratios,
    fit_decay,
    ideal_ratio,
    theorem_assumptions,
)

__all__ = [
    "Converged",
    "Run",
    "SeparationRun",
    "Setting",
    "train_settings",
    "train_to_tolerance",
]


@dataclass(frozen=True)
class Converged:
    """What :func:`train_to_tolerance` returns for ``B`` runs.

    Attributes:
        weights: ``L`` tensors ``(B, d_l, d_{l-1})``: each run's weights at the first check
            where its loss was below ``tol`` (or after ``max_steps`` if it never was).
        steps: ``(B,)`` int64, the GD step of those weights: iterations to converge.
        loss: ``(B,)``, the loss there.
        converged: ``(B,)`` bool, whether the loss went below ``tol``.
        curve: ``(T, B)``, the loss at every check (``NaN`` once a run has stopped).
        curve_steps: ``(T,)`` int64, the GD step of every check (``0, k, 2k, ...``).
    """

    weights: list
    steps: Tensor
    loss: Tensor
    converged: Tensor
    curve: Tensor
    curve_steps: Tensor


def _per_run(name: str, value: PerRun, n_runs: int) -> Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a number or {n_runs} numbers, got {value!r}") from None
    if t.numel() == 1:
        t = t.expand(n_runs)
    if t.numel() != n_runs or not bool((torch.isfinite(t) & (t > 0)).all()):
        raise ValueError(f"{name} must be one or {n_runs} finite numbers > 0, got {value!r}")
    return t.clone()


def _check_batched_weights(weights: object) -> list[Tensor]:
    Ws = _check_weights(weights)
    if any(W.ndim != 3 or W.shape[0] != Ws[0].shape[0] for W in Ws):
        raise ValueError(
            "weights must be L tensors (B, d_l, d_{l-1}) with a common run axis B; "
            "use lib.dln.stack_runs or init_weights_batched"
        )
    return Ws


def _check_targets(Y: object, X: Tensor, Ws: list[Tensor]) -> None:
    B = Ws[0].shape[0]
    if not isinstance(Y, Tensor) or Y.ndim not in (2, 3) or Y.shape[-1] != Ws[-1].shape[-2]:
        got = tuple(Y.shape) if isinstance(Y, Tensor) else type(Y).__name__
        raise ValueError(f"Y must have shape (N, d_L) with d_L = {Ws[-1].shape[-2]}, got {got}")
    for name, t in (("X", X), ("Y", Y)):
        if t.ndim == 3 and t.shape[0] != B:
            raise ValueError(f"{name} has {t.shape[0]} runs on its leading axis but B = {B}")
    if Y.shape[-2] != X.shape[-2]:
        raise ValueError(
            f"Y has {Y.shape[-2]} rows but X has {X.shape[-2]}: one target row per sample"
        )
    W = Ws[0]
    if Y.dtype != W.dtype or Y.device != W.device:
        raise ValueError(
            f"Y has dtype {Y.dtype} on {Y.device} but the weights have {W.dtype} on {W.device}; "
            "cast it with Y.to(weights[0])"
        )
    check_not_meta("Y", Y)
    if not bool(torch.isfinite(Y).all()):
        raise ValueError("Y contains NaN or infinite entries; the loss would be NaN from step 0")


def _mean_loss(Ws: list[Tensor], X: Tensor, Y: Tensor, activation: str) -> Tensor:
    F = layer_features(Ws, X, activation)[-1]  # (B, N, d_L)
    return 0.5 * (F - Y).square().mean(dim=(-2, -1))  # (B,)


def train_to_tolerance(
    weights: Sequence[Tensor],
    X: Tensor,
    Y: Tensor,
    lr: PerRun,
    tol: float = 1e-6,
    max_steps: int = 100_000,
    check_every: int = 100,
    activation: ActivationName = "linear",
) -> Converged:
    r"""Full-batch GD on ``B`` runs at once until each run's training loss is below ``tol``.

    .. math::

        \ell = \frac{1}{2 N d_L}\|F(X) - Y\|_F^2,\qquad
        W_l \leftarrow W_l - \eta\,\nabla_{W_l}\ell,\qquad
        \text{stop run } b \text{ at the first } t \in \{0, k, 2k, \dots\}
        \text{ with } \ell_b(t) < \mathrm{tol},

    the public code's protocol (mean loss, checks every ``k = 100`` steps, ``tol = 1e-6``). The
    steps are :func:`lib.dln.train_batched` calls of ``check_every`` steps; runs that have
    converged leave the batch, so the cost follows the slowest run only while it is alone.

    Args:
        weights: ``L`` tensors ``(B, d_l, d_{l-1})`` (e.g. from :func:`lib.dln.stack_runs`).
        X: ``(N, d_0)`` shared, or ``(B, N, d_0)``.
        Y: ``(N, d_L)`` shared, or ``(B, N, d_L)``.
        lr: η > 0, one number or ``B`` numbers.
        tol: loss tolerance > 0.
        max_steps: give up after this many steps (``>= 1``).
        check_every: steps between loss checks (``>= 1``).
        activation: ``"linear"`` or ``"relu"``.

    Returns:
        A :class:`Converged`, on the weights' device.

    Raises:
        ValueError: bad arguments, or divergence (from :func:`lib.dln.train_batched`, with the
            indices of the runs it refers to).

    Reference:
        Lecture 6, section 3 (public code ``cjyaras/law-of-parsimony``, ``fig_collapse``).

    Example:
        >>> X, y, Y = orthogonal_classes(2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> Ws = dln.init_weights_batched(2, [8, 8, 8, 2], [0.5, 1.0], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        >>> c = train_to_tolerance(Ws, X, Y, lr=2.0, tol=1e-6, check_every=10)
        >>> c.converged.tolist(), c.steps.tolist()  # the smaller ε takes longer
        ([True, True], [30, 20])
    """
    _check_option("activation", activation, ACTIVATIONS)
    Ws = _check_batched_weights(weights)
    B = Ws[0].shape[0]
    X = _check_inputs(X, Ws)
    tol = _check_positive("tol", tol)
    max_steps = _check_int("max_steps", max_steps, 1)
    check_every = _check_int("check_every", check_every, 1)
    lrs = _per_run("lr", lr, B)
    _check_targets(Y, X, Ws)
    act = None if activation == "linear" else "relu"

    out_w = [W.detach().clone() for W in Ws]
    steps = torch.full((B,), max_steps, dtype=torch.int64)
    done_loss = torch.full((B,), float("nan"), dtype=Ws[0].dtype, device=Ws[0].device)
    conv = torch.zeros(B, dtype=torch.bool)
    curve, curve_steps = [], []
    active = torch.arange(B)
    cur = [W.detach() for W in Ws]
    Xa, Ya = X, Y
    loss = _mean_loss(cur, Xa, Ya, activation)  # (B,)
    t = 0
    while True:
        row = torch.full((B,), float("nan"), dtype=loss.dtype, device=loss.device)
        row[active.to(loss.device)] = loss
        curve.append(row)
        curve_steps.append(t)
        stop = (loss < tol).cpu() if t < max_steps else torch.ones(len(active), dtype=torch.bool)
        if bool(stop.any()):
            idx = active[stop]
            for i in range(len(out_w)):
                out_w[i][idx.to(out_w[i].device)] = cur[i][stop.to(cur[i].device)]
            steps[idx] = t
            done_loss[idx.to(done_loss.device)] = loss[stop.to(loss.device)]
            conv[idx] = (loss[stop.to(loss.device)] < tol).cpu()
            keep = ~stop
            active, lrs = active[keep], lrs[keep]
            cur = [W[keep.to(W.device)] for W in cur]
            Xa = Xa[keep.to(Xa.device)] if Xa.ndim == 3 else Xa
            Ya = Ya[keep.to(Ya.device)] if Ya.ndim == 3 else Ya
        if len(active) == 0:
            break
        k = min(check_every, max_steps - t)
        try:
            h = dln.train_batched(cur, Xa, Ya, lrs, k, activation=act, record_every=k)
        except ValueError as err:
            raise ValueError(
                f"{err} (train_to_tolerance: those indices count only the runs still training "
                f"after step {t}, which are runs {active.tolist()} of this call)"
            ) from err
        cur, loss, t = h.weights[-1], h.loss[-1], t + k
    return Converged(
        weights=out_w,
        steps=steps,
        loss=done_loss,
        converged=conv,
        curve=torch.stack(curve),
        curve_steps=torch.tensor(curve_steps, dtype=torch.int64),
    )


@dataclass(frozen=True)
class Setting:
    """One run of the lecture's experiment; defaults are the public code's introductory figure."""

    num_classes: int = 5  # K
    per_class: int = 10  # n samples per class, N = nK
    width: int | None = None  # d; None: d = N, X square orthogonal (the theorem's setting)
    depth: int = 8  # L; hidden layers d x d, last layer K x d
    scale: float = 0.5  # ε, initial scale
    init: dln.InitKind = "orthogonal"  # "orthogonal", "normal" or "uniform" (same Frobenius norm)
    activation: ActivationName = "linear"  # "linear" or "relu"
    lr: float = 1.0  # η for the mean loss
    tol: float = 1e-6  # stop once the training loss is below this
    max_steps: int = 100_000  # give up after this many GD steps
    check_every: int = 100  # steps between loss checks
    seed: int = 0  # seeds the data, then the initialisation


@dataclass(frozen=True)
class SeparationRun:
    r"""One network of :func:`train_settings`, trained to tolerance, and its :math:`D_l`.

    Also importable as ``lib.separation.Run`` (its name until the package split). Not the same
    idea as :class:`lib.parsimony.Run`, the record of one :func:`lib.parsimony.simulate` call (a
    training history and its data): this is a converged network and its separation profile.

    Attributes:
        setting: its :class:`Setting`.
        weights: ``L`` tensors :math:`W_l` ``(d_l, d_{l-1})`` at convergence.
        X, y, Y: its data ``(N, d)``, ``(N,)``, ``(N, K)``.
        steps: iterations to converge (or ``max_steps``).
        converged: whether the loss went below ``tol``.
        loss: final training loss.
        curve, curve_steps: loss ``(T,)`` at checks ``(T,)`` (``NaN`` after stopping).
        separation: ``(L + 1,)``, :math:`D_0, \dots, D_L`.
    """

    setting: Setting
    weights: list
    X: Tensor
    y: Tensor
    Y: Tensor
    steps: int
    converged: bool
    loss: float
    curve: Tensor
    curve_steps: Tensor
    separation: Tensor

    @property
    def hidden(self) -> Tensor:
        r""":math:`D_0, \dots, D_{L-1}`: the input and hidden layers, where the law is fitted.

        The output's :math:`D_L` measures the residual left at the loss tolerance, not the
        weights' structure, so it is excluded.
        """
        return self.separation[:-1]

    @property
    def fit(self) -> DecayFit:
        """:func:`fit_decay` of :attr:`hidden`."""
        return fit_decay(self.hidden)

    @property
    def ratios(self) -> Tensor:
        r""":math:`D_{l+1}/D_l` for :math:`l = 0, \dots, L-2` (the theorem's range)."""
        return decay_ratios(self.hidden)

    def summary(self) -> dict[str, object]:
        """Named scalars for :func:`lib.report`: the run, its iterations and its fitted decay."""
        s = self.setting
        out: dict[str, object] = {
            "run": f"{s.activation}, L={s.depth}, eps={s.scale:g}, {s.init} init, lr={s.lr:g}",
            "iterations to converge": self.steps if self.converged else f"> {self.steps}",
            "fitted ratio D_(l+1)/D_l": self.fit.ratio,
            "R^2 of log D_l on l": self.fit.r2,
        }
        if s.activation == "linear":
            out["ideal ratio eps^2 n^(-1/L)"] = ideal_ratio(s.per_class, s.depth, s.scale)
        return out

    def assumptions(self, rtol: float = 1e-6) -> Assumptions:
        """:func:`theorem_assumptions` of this run (linear networks only)."""
        if self.setting.activation != "linear":
            raise ValueError("the theorem is about linear networks; this run uses ReLU")
        return theorem_assumptions(self.weights, self.X, self.Y, self.setting.scale, rtol)


def _check_setting(s: object) -> None:
    """Every knob of one :class:`Setting`, before any data is drawn (names as the fields)."""
    if not isinstance(s, Setting):
        raise ValueError(f"settings must hold Setting objects, got {type(s).__name__}")
    _check_option("init", s.init, INIT_KINDS)
    _check_option("activation", s.activation, ACTIVATIONS)
    _check_int("num_classes", s.num_classes, 2)
    _check_int("per_class", s.per_class, 2)
    if s.width is not None:
        _check_int("width", s.width, 1)
    _check_int("depth", s.depth, 1)
    _check_int("seed", s.seed, 0)
    _check_positive("scale", s.scale)
    _check_positive("lr", s.lr)
    _check_positive("tol", s.tol)
    _check_int("max_steps", s.max_steps, 1)
    _check_int("check_every", s.check_every, 1)


#: The old name of :class:`SeparationRun` (notebooks handed out use ``sep.Run``).
Run = SeparationRun


def _group_key(s: Setting) -> tuple:
    return (
        s.num_classes,
        s.per_class,
        s.width,
        s.depth,
        s.activation,
        s.tol,
        s.max_steps,
        s.check_every,
    )


def train_settings(
    settings: Sequence[Setting],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> list[SeparationRun]:
    r"""Train every :class:`Setting` to tolerance and measure :math:`D_l`; equal shapes share a batch.

    Runs with the same data shape, depth, activation and stopping rule are trained together by
    one :func:`train_to_tolerance` call (per-run ε, init and η); a run depends only on its own
    setting, so adding a run to a sweep never changes the others. The data come from
    ``torch.Generator().manual_seed(seed)`` (:func:`orthogonal_classes`), the weights from the
    same generator afterwards (:func:`lib.dln.init_weights`): runs that differ only in ε share
    their data and the directions of their initial weights.

    Args:
        settings: the runs.
        dtype: float64 by default (the theorem checks need it).
        device: where to train (default CPU).

    Returns:
        One :class:`SeparationRun` per setting, in order.

    Reference:
        Lecture 6, section 3, figures "Linear decay of feature separation".

    Example:
        >>> runs = train_settings([Setting(num_classes=2, per_class=4, depth=3, scale=s, lr=2.0)
        ...                        for s in (0.5, 0.35)])
        >>> [round(float(r.fit.ratio), 2) for r in runs]  # ≈ ε² n^(-1/L): smaller ε, faster decay
        [0.14, 0.07]
    """
    if isinstance(settings, Setting) or not isinstance(settings, Sequence) or not settings:
        raise ValueError("settings must be a non-empty list of Setting")
    for s in settings:
        _check_setting(s)
    check_dtype(dtype)
    check_device(device)
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(settings):
        groups.setdefault(_group_key(s), []).append(i)
    runs: list[SeparationRun | None] = [None] * len(settings)
    for idx in groups.values():
        members = [settings[i] for i in idx]
        first = members[0]
        data, inits = [], []
        for s in members:
            g = torch.Generator().manual_seed(s.seed)
            X, y, Y = orthogonal_classes(s.num_classes, s.per_class, s.width, g, dtype, device)
            dims = [X.shape[1]] * s.depth + [s.num_classes]
            inits.append(dln.init_weights(dims, s.scale, s.init, g, dtype, device))
            data.append((X, y, Y))
        shared = all(s.seed == first.seed for s in members)
        Xb = data[0][0] if shared else torch.stack([X for X, _, _ in data])
        Yb = data[0][2] if shared else torch.stack([Y for _, _, Y in data])
        c = train_to_tolerance(
            dln.stack_runs(inits),
            Xb,
            Yb,
            [s.lr for s in members],
            first.tol,
            first.max_steps,
            first.check_every,
            first.activation,
        )
        for b, (i, s) in enumerate(zip(idx, members)):
            X, y, Y = data[b]
            Ws = [W[b] for W in c.weights]
            runs[i] = SeparationRun(
                setting=s,
                weights=Ws,
                X=X,
                y=y,
                Y=Y,
                steps=int(c.steps[b]),
                converged=bool(c.converged[b]),
                loss=float(c.loss[b]),
                curve=c.curve[:, b],
                curve_steps=c.curve_steps,
                separation=layer_separation(Ws, X, y, s.activation, s.num_classes),
            )
    return runs  # type: ignore[return-value]
