r"""Full-batch gradient descent on deep (linear) networks: one run, or ``B`` runs batched.

:func:`train` is the public contract (one network, its :class:`History` with ``.weights`` and
``.loss``); :func:`train_batched` trains ``B`` independent networks as one computation with
closed-form gradients (``torch.bmm`` / ``torch.baddbmm``, no autograd, no Python loop over runs).
The loop is :func:`_run`: a forward pass (:func:`_forward`), a record when due, one update
(:func:`_gd_step`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lib._checks import check_int as _check_int
from lib._checks import check_option as _check_option
from lib.dln._common import (
    _ACTIVATIONS,
    _REDUCTIONS,
    Activation,
    PerRun,
    Reduction,
    _hyper,
    _validate_data,
    _validate_weights,
)

__all__ = ["History", "loss_coefficient", "train", "train_batched"]


@dataclass(frozen=True)
class History:
    """What :func:`train` / :func:`train_batched` recorded.

    Attributes:
        weights: one entry per recorded step; each entry is a list of ``L`` tensors,
            :math:`W_l` of shape ``(d_l, d_{l-1})`` (``train``) or ``(B, d_l, d_{l-1})``
            (``train_batched``). ``weights[0]`` is the initialisation, ``weights[-1]`` the
            weights after the last update.
        loss: ``(T,)`` (``train``) or ``(T, B)`` (``train_batched``): the loss of the recorded
            weights, ``loss[k]`` belongs to ``weights[k]``.
        steps: ``(T,)`` int64 on the CPU: the GD step of every record (``0, k, 2k, ..., steps``).
    """

    weights: list
    loss: Tensor
    steps: Tensor

    def trajectory(self, i: int) -> Tensor:
        """Layer ``W_{i+1}`` over the records, stacked: ``(T, d, d')`` or ``(T, B, d, d')``.

        ``i`` is a Python index into ``Ws`` (``trajectory(0)`` is :math:`W_1(t)`; negative
        indices count from the last layer).
        """
        L = len(self.weights[0])
        if not isinstance(i, numbers.Integral) or isinstance(i, bool) or not -L <= i < L:
            raise ValueError(
                f"i must be a layer index in [{-L}, {L - 1}] (0 is W_1; the network has L={L} "
                f"layers), got {i!r}"
            )
        return torch.stack([Ws[i] for Ws in self.weights])


def loss_coefficient(reduction: Reduction, n_samples: int, d_out: int) -> float:
    r"""The constant ``c`` in the loss :math:`\ell = \tfrac c2 \|F(X) - Y\|_F^2`.

    .. math::

        c = \frac{1}{N d_L} \ (\texttt{"mean"}), \qquad c = 1 \ (\texttt{"sum"}).

    Args:
        reduction: ``"mean"`` or ``"sum"``.
        n_samples: ``N``.
        d_out: ``d_L``.

    Returns:
        ``c`` as a Python float.

    Example:
        >>> loss_coefficient("mean", 30, 30) == 1 / 900
        True
    """
    _check_option("reduction", reduction, _REDUCTIONS)
    n_samples, d_out = _check_int("n_samples", n_samples, 1), _check_int("d_out", d_out, 1)
    return 1.0 / (n_samples * d_out) if reduction == "mean" else 1.0


def _record_steps(steps: int, record_every: int) -> list[int]:
    out = list(range(0, steps + 1, record_every))
    if out[-1] != steps:
        out.append(steps)
    return out


def _forward(
    Ws: list[Tensor], X: Tensor, Y: Tensor, relu: bool
) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """Batched forward pass: the layer inputs ``Hs``, pre-activations ``Zs`` and the residual."""
    L = len(Ws)
    Hs, Zs = [X], []
    H = X
    for i, W in enumerate(Ws):
        Z = torch.bmm(H, W.mT)  # (B, N, d_l)
        Zs.append(Z)
        H = torch.relu(Z) if (relu and i < L - 1) else Z
        Hs.append(H)
    return Hs, Zs, H - Y  # residual R (B, N, d_L)


def _check_finite_loss(t: int, loss: Tensor, lr: float | Tensor, dtype: torch.dtype) -> None:
    """Raise when a run's loss is not finite: name the runs and their learning rates."""
    bad = ~torch.isfinite(loss)
    if bool(bad.any()):
        runs = bad.nonzero().flatten().tolist()
        lrs = lr.flatten()[runs].tolist() if isinstance(lr, Tensor) else [lr]
        shown = ", ".join(f"{v:g}" for v in lrs[:5]) + (", ..." if len(lrs) > 5 else "")
        raise ValueError(
            f"training diverged: the loss became non-finite by step {t} "
            f"(run{'s' if len(runs) > 1 else ''} {runs[:10]}{'...' if len(runs) > 10 else ''}); "
            f"the learning rate lr={shown} is too large for this initialisation scale and data "
            f"(or the weights overflowed {dtype}); lower lr"
        )


def _gd_step(
    Ws: list[Tensor],
    Hs: list[Tensor],
    Zs: list[Tensor],
    R: Tensor,
    lr: float | Tensor,
    weight_decay: float | Tensor,
    momentum: float | Tensor,
    c: float,
    relu: bool,
    bufs: list[Tensor | None],
) -> list[Tensor]:
    """One GD update of all runs from a forward pass; updates the momentum buffers ``bufs``."""
    scalar = all(isinstance(h, float) for h in (lr, weight_decay, momentum))
    use_momentum = not (isinstance(momentum, float) and momentum == 0.0)
    # Backward, closed form: dℓ/dW_l = D_lᵀ H_{l-1} with D_L = c R, D_{l-1} = (D_l W_l) ⊙ σ'(Z_{l-1}).
    # c (and η, when it is per-run and there is no momentum) are folded into D or into alpha.
    D = R if (scalar or use_momentum) else R * (c * lr)  # (B, N, d_L)
    new = [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        W, H = Ws[i], Hs[i]  # W (B, d_l, d_{l-1}), H (B, N, d_{l-1})
        Dt = D.mT  # (B, d_l, N)
        if i > 0:
            D = torch.bmm(D, W)  # (B, N, d_{l-1}) — uses the old W_l
            if relu:
                D = D * (Zs[i - 1] > 0)
        if not use_momentum:
            # W ← (1 − ηλ) W − η ∇ in one kernel when η, λ are shared by all runs.
            if scalar:
                new[i] = torch.baddbmm(W, Dt, H, beta=1.0 - lr * weight_decay, alpha=-lr * c)
            else:
                new[i] = torch.baddbmm(W * (1.0 - lr * weight_decay), Dt, H, alpha=-1.0)
        else:
            # heavy ball (PyTorch SGD convention): g = ∇ + λW, b ← μ b + g, W ← W − η b.
            if isinstance(weight_decay, float):
                g = torch.baddbmm(W, Dt, H, beta=weight_decay, alpha=c)
            else:
                g = torch.baddbmm(W * weight_decay, Dt, H, alpha=c)
            b = g if bufs[i] is None else g + momentum * bufs[i]
            bufs[i] = b
            new[i] = W - lr * b
    return new


def _run(
    Ws: list[Tensor],
    X: Tensor,
    Y: Tensor,
    lr: float | Tensor,
    steps: int,
    weight_decay: float | Tensor,
    momentum: float | Tensor,
    c: float,
    relu: bool,
    record_every: int,
) -> tuple[list[list[Tensor]], Tensor, Tensor]:
    """Batched full-batch GD on ``B`` runs: Ws[l] (B, d_l, d_{l-1}), X (B, N, d_0), Y (B, N, d_L)."""
    record = set(_record_steps(steps, record_every))
    bufs: list[Tensor | None] = [None] * len(Ws)
    rec_w: list[list[Tensor]] = []
    rec_loss: list[Tensor] = []
    rec_steps: list[int] = []

    def keep(t: int, Ws: list[Tensor], R: Tensor) -> None:
        loss = 0.5 * c * R.square().sum(dim=(1, 2))  # (B,)
        _check_finite_loss(t, loss, lr, Ws[0].dtype)
        # step 0 holds the caller's tensors: copy them; later iterates are fresh tensors already
        rec_w.append([W.clone() for W in Ws] if t == 0 else list(Ws))
        rec_loss.append(loss)
        rec_steps.append(t)

    for t in range(steps):
        Hs, Zs, R = _forward(Ws, X, Y, relu)
        if t in record:
            keep(t, Ws, R)
        Ws = _gd_step(Ws, Hs, Zs, R, lr, weight_decay, momentum, c, relu, bufs)
    _, _, R = _forward(Ws, X, Y, relu)
    keep(steps, Ws, R)
    return rec_w, torch.stack(rec_loss), torch.tensor(rec_steps, dtype=torch.int64)


def train_batched(
    weights: Sequence[Tensor],
    X: Tensor,
    Y: Tensor,
    lr: PerRun,
    steps: int,
    weight_decay: PerRun = 0.0,
    momentum: PerRun = 0.0,
    reduction: Reduction = "mean",
    activation: Activation | None = None,
    record_every: int = 1,
) -> History:
    r"""Train ``B`` independent networks of the same shapes by full-batch GD, as one batched computation.

    For every run ``b`` (own weights, own data or shared data, own :math:`\eta, \lambda, \mu`):

    .. math::

        \ell = \frac c2 \big\|\sigma(\cdots\sigma(X W_1^\top)\cdots) W_L^\top - Y\big\|_F^2,\quad
        c = \tfrac1{N d_L}\ (\texttt{"mean"}),\ 1\ (\texttt{"sum"}),

    .. math::

        g_l = \nabla_{W_l}\ell + \lambda W_l,\quad b_l \leftarrow \mu b_l + g_l,\quad
        W_l \leftarrow W_l - \eta b_l \qquad (\mu = 0:\ W_l \leftarrow (1-\eta\lambda)W_l - \eta\nabla_{W_l}\ell),

    with :math:`\sigma` = identity, or ReLU after every layer but the last (``activation="relu"``);
    heavy-ball momentum follows ``torch.optim.SGD`` (dampening 0, buffer starts at the first
    gradient). The gradients are closed-form back-propagation
    (:math:`\nabla_{W_l}\ell = D_l^\top H_{l-1}`, :math:`D_L = c(F - Y)`,
    :math:`D_{l-1} = (D_l W_l)\odot\sigma'(Z_{l-1})`) with ``torch.bmm`` / ``torch.baddbmm`` over
    the run axis: no Python loop over runs and no autograd. The device and dtype follow the
    weights; use float64 for SVD dynamics (the law-of-parsimony checks need it).

    Args:
        weights: ``L`` tensors ``(B, d_l, d_{l-1})`` (e.g. from :func:`lib.dln.init_weights_batched`).
            Not modified.
        X: ``(N, d_0)`` shared by all runs, or ``(B, N, d_0)``.
        Y: ``(N, d_L)`` shared, or ``(B, N, d_L)``.
        lr: η > 0: one number or ``B`` numbers (sequence or ``(B,)`` tensor).
        steps: number of GD updates, ``>= 0``.
        weight_decay: λ >= 0, one number or ``B`` numbers.
        momentum: μ in ``[0, 1)``, one number or ``B`` numbers.
        reduction: ``"mean"`` (½·mean over all ``N·d_L`` entries) or ``"sum"`` (½·sum).
        activation: ``None`` (linear network) or ``"relu"``.
        record_every: record weights and loss every this many steps (step 0 and the last step are
            always recorded).

    Returns:
        A :class:`History`: ``weights[k]`` is a list of ``L`` tensors ``(B, d_l, d_{l-1})``,
        ``loss`` is ``(T, B)``, ``steps`` is ``(T,)``; on the weights' device.

    Raises:
        ValueError: on bad shapes, dtypes, devices, options or hyperparameters, on non-finite
            data, and when the loss becomes non-finite (divergence: the message names the run
            indices and their learning rate). Divergence is checked at every recorded step.

    Reference:
        Lecture 6, section 2, "Learning dynamics of GD"; Yaras et al. 2023, eq. (3).

    Example:
        >>> from lib.dln import init_weights_batched, low_rank_targets
        >>> g = torch.Generator().manual_seed(0)
        >>> Ws = init_weights_batched(4, [6, 6, 6], [1e-2, 1e-1, 0.2, 0.3], generator=g, dtype=torch.float64)
        >>> X = torch.eye(6, dtype=torch.float64)
        >>> Y = low_rank_targets(6, 6, 2, generator=g, dtype=torch.float64)
        >>> h = train_batched(Ws, X, Y, lr=0.05, steps=100, reduction="sum", record_every=50)
        >>> tuple(h.loss.shape), h.steps.tolist()
        ((3, 4), [0, 50, 100])
    """
    Ws = _validate_weights(weights, batched=True)
    B = Ws[0].shape[0]
    X = _validate_data("X", X, B, Ws[0].shape[-1], "d_0 (columns of W_1)", Ws[0])
    Y = _validate_data("Y", Y, B, Ws[-1].shape[-2], "d_L (rows of W_L)", Ws[0])
    if X.shape[-2] != Y.shape[-2]:
        raise ValueError(
            f"shape mismatch: X has N={X.shape[-2]} rows but Y has N={Y.shape[-2]} rows"
        )
    steps = _check_int("steps", steps, 0)
    record_every = _check_int("record_every", record_every, 1)
    _check_option("reduction", reduction, _REDUCTIONS)
    _check_option("activation", activation, _ACTIVATIONS)
    lr = _hyper("lr", lr, B, 0.0, math.inf, True, False, Ws[0])
    weight_decay = _hyper("weight_decay", weight_decay, B, 0.0, math.inf, False, False, Ws[0])
    momentum = _hyper("momentum", momentum, B, 0.0, 1.0, False, True, Ws[0])
    X = X.expand(B, *X.shape[-2:]) if X.ndim == 2 else X  # (B, N, d_0)
    Y = Y.expand(B, *Y.shape[-2:]) if Y.ndim == 2 else Y  # (B, N, d_L)
    c = loss_coefficient(reduction, X.shape[-2], Y.shape[-1])
    with torch.no_grad():
        rec_w, loss, rec_steps = _run(
            Ws, X, Y, lr, steps, weight_decay, momentum, c, activation == "relu", record_every
        )
    return History(weights=rec_w, loss=loss, steps=rec_steps)


def train(
    weights: Sequence[Tensor],
    X: Tensor,
    Y: Tensor,
    lr: float,
    steps: int,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    reduction: Reduction = "mean",
    activation: Activation | None = None,
    record_every: int = 1,
) -> History:
    r"""Train one deep (linear) network by full-batch gradient descent.

    The network computes :math:`F(X) = \sigma(\cdots\sigma(X W_1^\top)\cdots)W_L^\top` (the
    lecture's :math:`W_{L:1}X` in column form when :math:`\sigma` is the identity) and GD minimises

    .. math::

        \ell(\Theta) = \frac c2 \|F(X) - Y\|_F^2,\qquad
        W_l \leftarrow (1-\eta\lambda) W_l - \eta \nabla_{W_l}\ell \quad \forall l,

    with :math:`c = 1/(N d_L)` for ``"mean"`` and ``1`` for ``"sum"`` (the lecture's loss);
    ``momentum > 0`` makes it heavy ball as in ``torch.optim.SGD`` (see :func:`train_batched`).
    Same computation as :func:`train_batched` with ``B = 1``.

    Args:
        weights: ``L`` tensors, :math:`W_l` of shape ``(d_l, d_{l-1})``. Not modified.
        X: ``(N, d_0)`` inputs as rows.
        Y: ``(N, d_L)`` targets as rows.
        lr: η > 0.
        steps: number of GD updates, ``>= 0``.
        weight_decay: λ >= 0.
        momentum: μ in ``[0, 1)``.
        reduction: ``"mean"`` or ``"sum"``.
        activation: ``None`` (linear) or ``"relu"`` (after every layer but the last).
        record_every: record every this many steps; step 0 (the initialisation) and step
            ``steps`` are always recorded.

    Returns:
        A :class:`History`: ``weights`` (``T`` lists of ``L`` tensors ``(d_l, d_{l-1})``),
        ``loss`` ``(T,)``, ``steps`` ``(T,)``; on the weights' device.

    Raises:
        ValueError: bad shapes, options, hyperparameters, non-finite data, or divergence (the
            message names the learning rate).

    Reference:
        Lecture 6, section 2, "Learning dynamics of GD"; Yaras et al. 2023, eq. (3).

    Example:
        >>> from lib.dln import init_weights, low_rank_targets
        >>> g = torch.Generator().manual_seed(0)
        >>> Ws = init_weights([30, 30, 30, 30], 0.1, generator=g, dtype=torch.float64)
        >>> X = torch.eye(30, dtype=torch.float64)
        >>> Y = low_rank_targets(30, 30, 3, generator=g, dtype=torch.float64)
        >>> h = train(Ws, X, Y, lr=0.01, steps=1000, reduction="sum", record_every=100)
        >>> bool(h.loss[-1] < 1e-6 * h.loss[0])
        True
    """
    Ws = _validate_weights(weights, batched=False)
    X = _validate_data("X", X, None, Ws[0].shape[-1], "d_0 (columns of W_1)", Ws[0])
    Y = _validate_data("Y", Y, None, Ws[-1].shape[-2], "d_L (rows of W_L)", Ws[0])
    for name, v in (("lr", lr), ("weight_decay", weight_decay), ("momentum", momentum)):
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            raise ValueError(
                f"{name} must be a number for train (use train_batched for per-run values), got {v!r}"
            )
    h = train_batched(
        [W.unsqueeze(0) for W in Ws],
        X,
        Y,
        lr,
        steps,
        weight_decay,
        momentum,
        reduction,
        activation,
        record_every,
    )
    return History(
        weights=[[W[0] for W in Ws_t] for Ws_t in h.weights], loss=h.loss[:, 0], steps=h.steps
    )
