r"""Training: :func:`fit`, the public contract of the chapter, and what it returns.

:func:`fit` runs full-batch gradient descent on the completion loss of :mod:`lib.completion.problem`
for one of the three networks of :mod:`lib.completion.network`. Read it as an outline: check the
arguments, settle how the steps run (:mod:`lib.completion._engine`), build the network, run the
loop (:func:`_train`: ``record_every`` steps at a time, recording the losses), pack a
:class:`FitResult`. The arithmetic of one step is in :mod:`lib.completion._steps`.

:func:`project_trajectories` maps end-to-end trajectories to 2-D curves for the figures.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from lib._checks import check_int as _check_int
from lib._checks import check_option as _check_option
from lib._checks import check_tensor
from lib.completion._engine import (
    _EVALUATIONS,
    _LAYOUTS,
    _build_network,
    _hyper,
    _make_runner,
    _OriginalNet,
    _resolve_step_config,
    _Runner,
    _StepConfig,
    _sync,
    _ThinNet,
)
from lib.completion.problem import (
    _METHODS,
    Method,
    Problem,
    _check_problem,
    _check_rank_hat,
    _check_real,
    default_lr,
)

__all__ = ["FitResult", "fit", "project_trajectories"]

Evaluation = Literal["auto", "observed", "dense"]
StepMode = Literal["auto", "eager", "graph", "compile", "compile+graph", "fused"]
Layout = Literal["auto", "padded", "scatter"]


@dataclass(frozen=True)
class FitResult:
    r"""What :func:`fit` returns.

    Attributes:
        method: ``"original"``, ``"compressed"`` or ``"narrow"``.
        train_loss: train loss at each recorded step (Python floats).
        test_loss: test loss at each recorded step.
        record_steps: the recorded steps: 0, ``record_every``, ``2·record_every``, ... and
            the last one.
        record_seconds: training seconds elapsed at each recorded step (for loss-vs-time plots).
        steps: number of GD updates done (fewer than ``max_steps`` when the train loss fell
            below ``tol``: it is the first step at which it did).
        seconds: wall-clock seconds of the training loop, device-synchronised, without the
            one-off set-up (initialisation, compression, compilation, graph capture; see
            ``setup_seconds``) — as the public code times its compiled loop.
        setup_seconds: wall-clock seconds of that set-up.
        end_to_end: the final :math:`W_{L:1}`, ``(d, d)``.
        weights: the final weights, :mod:`lib.dln` convention (``W_l`` of shape
            ``(d_l, d_{l-1})``; compressed: ``V_{1,1}ᵀ``, inner, ``U_{L,1}``).
        weights0: the initial weights, same layout.
        n_params: number of trainable parameters.
        converged: whether the train loss fell below ``tol``.
        trajectory: ``(T, d, d)`` end-to-end matrices at the recorded steps when ``fit`` was
            called with ``keep_trajectory=True``, else ``None``.
        step_mode: how the steps ran (``"eager"``, ``"graph"``, ``"compile"``,
            ``"compile+graph"``, ``"fused"``).
        evaluation: ``"observed"`` or ``"dense"``.
        layout: ``"padded"`` or ``"scatter"`` (observed evaluation), ``None`` (dense).
    """

    method: str
    train_loss: list[float]
    test_loss: list[float]
    record_steps: list[int]
    record_seconds: list[float]
    steps: int
    seconds: float
    setup_seconds: float
    end_to_end: Tensor
    weights: list[Tensor]
    weights0: list[Tensor]
    n_params: int
    converged: bool
    trajectory: Tensor | None = field(default=None, repr=False)
    step_mode: str = "eager"
    evaluation: str = "dense"
    layout: str | None = None


def fit(
    problem: Problem,
    method: Method,
    depth: int = 3,
    scale: float = 1e-3,
    lr: float | None = None,
    max_steps: int = 20_000,
    tol: float = 0.0,
    rank_hat: int | None = None,
    gamma: float = 0.01,
    record_every: int = 100,
    *,
    evaluation: Evaluation = "auto",
    step_mode: StepMode = "auto",
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    time_limit: float | None = None,
    layout: Layout = "auto",
    broadcast: bool | None = None,
) -> FitResult:
    r"""Fit the original, compressed or narrow deep linear network to the observed entries.

    Full-batch gradient descent on

    .. math::

        \ell = \frac{1}{2d^2}\|\Omega\odot(W_{L:1} - \Phi)\|_F^2, \qquad
        W \leftarrow W - \eta\,\nabla_W \ell \ \text{(inner and original layers)},\qquad
        W \leftarrow W - \gamma\eta\,\nabla_W \ell \ \text{(outer factors of the compressed network)},

    stopping at the first step where :math:`\ell < \text{tol}` (or after ``max_steps``).

    * ``"original"``: ``L`` square layers from :func:`init_original` (dense evaluation).
    * ``"compressed"``: :func:`compress` applied to those same initial weights (width
      :math:`2\hat r`); its outer factors :math:`V_{1,1}, U_{L,1}` learn at :math:`\gamma\eta`
      (``gamma = 0`` keeps them fixed).
    * ``"narrow"``: width :math:`2\hat r`, fresh ε-orthogonal weights (:func:`init_narrow`), every
      layer at :math:`\eta`.

    The steps run sync-free on the device: a step whose loss is below ``tol`` changes nothing, and
    the loop looks at the loss every ``record_every`` steps. On CUDA the default ``step_mode``
    replays CUDA graphs of 50 steps (:data:`lib.completion._engine._GRAPH_STEPS`; per-step
    launch overhead dominates at :math:`d\approx 1000`), each step being three Triton kernels
    (``"fused"``) for the compressed and narrow networks; ``"compile"`` uses
    :func:`torch.compile`, ``"compile+graph"`` both.

    Args:
        problem: from :func:`make_problem`.
        method: ``"original"``, ``"compressed"`` or ``"narrow"``.
        depth: ``L`` (``>= 2`` for ``"narrow"``).
        scale: ε > 0, the initialisation scale.
        lr: η > 0; default :func:`default_lr` (half the edge of stability; about the paper's
            5e3 at ``d = 1000``).
        max_steps: most GD updates, ``>= 0``.
        tol: stop when the train loss falls below it (``0`` never stops early).
        rank_hat: :math:`\hat r` (default ``problem.rank``); width :math:`2\hat r \le d`. Ignored
            by ``"original"``.
        gamma: γ >= 0, the discrepant learning-rate factor of the compressed outer factors.
        record_every: record the losses every this many steps (also how often the stopping rule
            is checked).
        evaluation: ``"observed"`` (loss and gradient at the observed entries only,
            :math:`O(|\Omega|\hat r)` per step), ``"dense"`` (through the :math:`d\times d`
            matrix, :math:`O(d^2\hat r)`) or ``"auto"``: observed, except on the CPU for
            ``d <= 1024`` where BLAS makes the dense path faster. Both give the same numbers (to
            1e-10 in float64). The original network is always dense.
        step_mode: ``"auto"`` (on CUDA ``"fused"`` for the padded observed-entry path when
            Triton is installed, else ``"graph"``; ``"eager"`` elsewhere), ``"eager"``,
            ``"graph"``, ``"compile"``, ``"compile+graph"`` or ``"fused"`` (Triton kernels:
            CUDA, or Triton's CPU interpreter under ``TRITON_INTERPRET=1``; observed entries,
            padded layout).
        generator: random source of the initial weights (default: seeded from ``problem.seed``,
            so original and compressed start from the same weights).
        keep_trajectory: also return the end-to-end matrix at every recorded step.
        time_limit: stop at the first recorded step after this many seconds of training
            (``None``: no limit); the result then has ``converged=False``.
        layout: how ``evaluation="observed"`` stores the observed entries. ``"padded"``: each
            row (and each column) of Φ as a list padded to the fullest one's length, so that
            ``G V`` and ``Gᵀ A`` are sums along rows — gathers and reductions, no atomics;
            ``"scatter"``: one list of entries, gradients by scatter-add (atomics, contended on a
            GPU); ``"auto"``: padded unless padding would exceed 1.5 times the entries
            (:data:`lib.completion._engine._MAX_PADDING`; a very uneven mask).
        broadcast: how the padded observed-entry step multiplies the thin factors: ``None``
            (default) as broadcast sums under :func:`torch.compile` (they fuse; at ``k = 2 r̂``
            launches dominate) and by BLAS otherwise; ``True``/``False`` force broadcast sums /
            BLAS (benchmarks, tests). The numbers agree to rounding.

    Returns:
        A :class:`FitResult` (``.train_loss``, ``.test_loss``, ``.steps``, ``.seconds``,
        ``.end_to_end`` ``(d, d)`` on the problem's device, ...).

    Raises:
        ValueError: unknown method / option, bad hyperparameters, ``2 r̂ > d``, a malformed
            problem (checked first: ``problem.mask`` boolean of the target's shape and device, a
            float32/float64 ``problem.target``, then finite ``target`` and ``values``), or
            divergence (the message names the learning rate).

    Reference:
        Yaras et al. 2023, section 5 (compressed deep matrix completion, discrepant learning
        rates); Kwon et al. 2023 (efficient compression of overparameterized DLNs); Lecture 6,
        section 4.

    Example:
        >>> P = make_problem(30, 2, 0.5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> res = fit(P, "compressed", scale=0.1, max_steps=3000, tol=1e-8)
        >>> res.converged, res.steps, res.test_loss[-1] < 1e-5 * res.test_loss[0]
        (True, 2110, True)
    """
    problem = _check_problem(problem, "fit")
    s = _check_arguments(
        problem, method, depth, scale, lr, max_steps, tol, rank_hat, gamma, record_every,
        time_limit, evaluation, layout, keep_trajectory,
    )  # fmt: skip
    cfg = _resolve_step_config(problem, method, evaluation, layout, step_mode, broadcast)
    device = problem.target.device

    # set-up: the initial weights (and the compression), buffers, compilation or graph capture
    _sync(device)
    t_setup = time.perf_counter()
    hyper = _hyper(problem, s.lr, s.tol)
    net = _build_network(problem, method, s.depth, s.scale, generator, s.r_hat, s.gamma, cfg, hyper)
    runner, mode = _make_runner(net, cfg.mode, hyper, device, s.max_steps)
    _sync(device)
    setup_seconds = time.perf_counter() - t_setup

    history = _History()
    steps, seconds, converged = _train(problem, net, runner, hyper.flags, s, history)
    step_mode = runner.mode if runner is not None else mode
    return _pack_result(s, cfg, net, history, steps, seconds, setup_seconds, converged, step_mode)


# --------------------------------------------------------------------------------------------
# fit, step by step
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    """:func:`fit`'s hyperparameters, checked, with their defaults filled in."""

    method: str
    depth: int
    scale: float
    lr: float
    max_steps: int
    tol: float
    r_hat: int
    gamma: float
    record_every: int
    time_limit: float | None
    keep_trajectory: bool = False


def _check_arguments(
    problem: Problem,
    method: str,
    depth: int,
    scale: float,
    lr: float | None,
    max_steps: int,
    tol: float,
    rank_hat: int | None,
    gamma: float,
    record_every: int,
    time_limit: float | None,
    evaluation: str,
    layout: str,
    keep_trajectory: bool = False,
) -> _Settings:
    """Check :func:`fit`'s arguments (in the order they are reported) and fill in defaults."""
    _check_option("method", method, _METHODS)
    _check_option("evaluation", evaluation, _EVALUATIONS)
    _check_option("layout", layout, _LAYOUTS)
    depth = _check_int("depth", depth, 2 if method == "narrow" else 1)
    scale = _check_real("scale", scale, 0.0, low_open=True)
    lr = default_lr(problem, depth) if lr is None else _check_real("lr", lr, 0.0, low_open=True)
    max_steps = _check_int("max_steps", max_steps, 0)
    if problem.target.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"fit needs a float32 or float64 problem, got {problem.target.dtype}")
    if max_steps > 2**24 and problem.target.dtype == torch.float32:
        raise ValueError("max_steps must be <= 2**24 for a float32 problem (the step counter)")
    tol = _check_real("tol", tol, 0.0, low_open=False)
    gamma = _check_real("gamma", gamma, 0.0, low_open=False)
    record_every = _check_int("record_every", record_every, 1)
    if time_limit is not None:
        time_limit = _check_real("time_limit", time_limit, 0.0, low_open=True)
    r_hat = _check_rank_hat(problem, rank_hat, needed=method != "original")
    if not isinstance(keep_trajectory, (bool, np.bool_)):
        raise ValueError(f"keep_trajectory must be True or False, got {keep_trajectory!r}")
    return _Settings(
        method, depth, scale, lr, max_steps, tol, r_hat, gamma, record_every, time_limit,
        bool(keep_trajectory),
    )  # fmt: skip


@dataclass
class _History:
    """What the loop records every ``record_every`` steps."""

    train: list[Tensor] = field(default_factory=list)  # train loss, 0-dim on the device
    test: list[Tensor] = field(default_factory=list)  # test loss
    steps: list[int] = field(default_factory=list)  # the step
    seconds: list[float] = field(default_factory=list)  # training seconds so far
    trajectory: list[Tensor] = field(default_factory=list)  # (d, d) end-to-end matrices


def _record(
    problem: Problem,
    net: _OriginalNet | _ThinNet,
    s: _Settings,
    history: _History,
    step: int,
    seconds: float,
) -> float:
    """Record the losses (and the end-to-end matrix) at ``step``; the train loss, or raise."""
    tr, te = net.losses(problem)
    history.train.append(tr)
    history.test.append(te)
    history.steps.append(step)
    history.seconds.append(seconds)
    if s.keep_trajectory:
        history.trajectory.append(net.end_to_end().clone())
    value = float(tr)
    if not math.isfinite(value):
        raise ValueError(
            f"training diverged: the train loss became non-finite by step {step}; the learning "
            f"rate lr={s.lr:g} is too large for this problem (d={problem.d}, depth={s.depth}, "
            f"scale={s.scale:g}{f', gamma={s.gamma:g}' if s.method == 'compressed' else ''}); "
            "lower lr"
        )
    return value


def _train(
    problem: Problem,
    net: _OriginalNet | _ThinNet,
    runner: _Runner | None,
    flags: Tensor,
    s: _Settings,
    history: _History,
) -> tuple[int, float, bool]:
    """The loop: ``record_every`` steps on the device, then one sync to record the losses.

    Returns ``(steps taken, training seconds, converged)``.
    """
    device = problem.target.device
    seconds = 0.0
    done = 0
    converged = _record(problem, net, s, history, 0, seconds) < s.tol
    while not converged and done < s.max_steps:
        n = min(s.record_every, s.max_steps - done)
        _sync(device)
        t0 = time.perf_counter()
        runner.run(n)
        taken = int(flags[0].item())  # synchronises
        seconds += time.perf_counter() - t0
        converged = taken < done + n  # a step below tol stopped the device's loop
        done = taken
        if _record(problem, net, s, history, done, seconds) < s.tol:
            converged = True
        if s.time_limit is not None and seconds >= s.time_limit:
            break
    return done, seconds, converged


def _pack_result(
    s: _Settings,
    cfg: _StepConfig,
    net: _OriginalNet | _ThinNet,
    history: _History,
    steps: int,
    seconds: float,
    setup_seconds: float,
    converged: bool,
    step_mode: str,
) -> FitResult:
    """The :class:`FitResult` of a finished loop (losses as Python floats, weights copied)."""
    weights = net.weights()
    return FitResult(
        method=s.method,
        train_loss=[float(v) for v in history.train],
        test_loss=[float(v) for v in history.test],
        record_steps=history.steps,
        record_seconds=history.seconds,
        steps=steps,
        seconds=seconds,
        setup_seconds=setup_seconds,
        end_to_end=net.end_to_end().clone(),
        weights=weights,
        weights0=net.weights0,
        n_params=sum(W.numel() for W in weights),
        converged=converged,
        trajectory=torch.stack(history.trajectory) if s.keep_trajectory else None,
        step_mode=step_mode,
        evaluation=cfg.evaluation,
        layout=net.layout if cfg.evaluation == "observed" else None,
    )


# --------------------------------------------------------------------------------------------
# trajectories
# --------------------------------------------------------------------------------------------


def project_trajectories(*trajectories: Tensor, n_components: int = 2) -> list[Tensor]:
    r"""Project end-to-end trajectories onto the principal directions of the first one.

    The matrices :math:`W_{L:1}(t)` of the first trajectory, flattened and centred at their
    mean :math:`\bar W`, give principal directions :math:`Z_1, Z_2, \dots` (right singular
    vectors); every trajectory is mapped to :math:`\big(\langle W(t) - \bar W, Z_i\rangle\big)_i`.
    Coinciding trajectories give coinciding curves.

    Args:
        *trajectories: ``(T_j, d, d)`` each (e.g. ``FitResult.trajectory``).
        n_components: number of coordinates, ``>= 1``.

    Returns:
        One ``(T_j, n_components)`` tensor per trajectory, on its device.

    Raises:
        ValueError: no trajectory; one that is not a non-empty ``(T, d, d)`` float32/float64
            tensor of the first one's shape, dtype and device (checked before any value), or
            holds NaN/inf; ``n_components`` above ``min(T_1, d²)``.

    Example:
        >>> T = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(0))
        >>> [tuple(z.shape) for z in project_trajectories(T, T, n_components=2)]
        [(5, 2), (5, 2)]
    """
    _check_trajectories(trajectories)
    n_components = _check_int("n_components", n_components, 1)
    first = trajectories[0]
    n_max = min(first.shape[0], first.shape[1] * first.shape[2])
    if n_components > n_max:
        raise ValueError(
            f"n_components must be <= {n_max}: the first trajectory ({first.shape[0]} matrices "
            f"of {first.shape[1]}x{first.shape[2]}) has {n_max} principal directions, got "
            f"{n_components}; record more steps (keep_trajectory with a smaller record_every)"
        )
    X = trajectories[0].flatten(1)  # (T, d²)
    mean = X.mean(0)
    _, _, Vh = torch.linalg.svd(X - mean, full_matrices=False)
    Z = Vh[:n_components]  # (n, d²)
    return [(T.flatten(1) - mean) @ Z.T for T in trajectories]


def _check_trajectories(trajectories: tuple) -> None:
    """Every trajectory a ``(T, d, d)`` float32/float64 tensor like the first; then finite values."""
    if not trajectories:
        raise ValueError("project_trajectories needs at least one trajectory (T, d, d)")
    first = trajectories[0]
    for i, T in enumerate(trajectories):
        name = f"trajectories[{i}]"
        check_tensor(name, T, (3,), finite=False, nonempty=True)
        if T.dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"{name} must be float32 or float64 (the projection needs an SVD), got {T.dtype}"
            )
        if i and (T.shape[1:] != first.shape[1:] or T.dtype != first.dtype):
            raise ValueError(
                f"{name} is {tuple(T.shape)} {T.dtype}, but trajectories[0] is "
                f"{tuple(first.shape)} {first.dtype}; every trajectory needs matrices of one "
                "shape and dtype"
            )
        if T.device != first.device:
            raise ValueError(
                f"{name} is on {T.device}, but trajectories[0] is on {first.device}; move it with "
                ".to(trajectories[0].device)"
            )
    for i, T in enumerate(trajectories):
        check_tensor(f"trajectories[{i}]", T)
