r"""The lecture's deep-linear-network experiment in one call, batched over per-run hyperparameters.

Lecture section 2 (Yaras et al. '23): :math:`d_0 = \dots = d_L = d`, inputs with a chosen
condition number (whitened by default), rank-``r`` targets, ε-orthogonal init, full-batch GD.

* :class:`RunConfig` — the setting: one frozen dataclass with a comment per knob; sweeps change it
  with ``dataclasses.replace``;
* :func:`simulate` — train it (one run, or ``B`` runs as one batched computation) and return a
  :class:`Run` ``(history, X, Y)``; the ε sweep, the explorer and the small multiples use it;
* :func:`conditioned_inputs` — inputs with a chosen condition number (1 = whitened);
* :class:`SweepConfig`, :data:`SWEEPS` — the sizes of the chapter's ε sweep ("book", "paper").
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from lib import dln
from lib._checks import check_int, check_nonempty, check_type
from lib.dln import PerRun
from lib.dln._common import _generator_device, _resolve_device, _resolve_dtype

__all__ = [
    "SWEEPS",
    "Run",
    "RunConfig",
    "SweepConfig",
    "conditioned_inputs",
    "simulate",
]


def _is_seq(v: object) -> bool:
    return (isinstance(v, Sequence) and not isinstance(v, (str, bytes))) or (
        isinstance(v, Tensor) and v.ndim == 1
    )


def _reals(value: object) -> list[float] | None:
    """The numbers of a per-run value (one number, a sequence or a 1-D tensor), or ``None`` when
    it holds something else (a string, a bool, a 2-D tensor, a complex number)."""
    items = list(value) if _is_seq(value) else [value]
    out = []
    for v in items:
        if isinstance(v, Tensor) and v.ndim == 0 and not (v.is_complex() or v.is_meta):
            v = v.item()
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            return None
        out.append(float(v))
    return out


def _check_per_run(name: str, value: object, low: float, low_open: bool, high: float) -> int:
    """Check a per-run hyperparameter: finite numbers in ``(low | [low, high)``; return ``B``
    (0 for one number shared by all runs)."""
    values = _reals(value)
    ok = bool(values) and all(
        math.isfinite(v) and (v > low if low_open else v >= low) and v < high for v in values
    )
    if not ok:
        lo = f"{'>' if low_open else '>='} {low:g}"
        hi = "" if math.isinf(high) else f" and < {high:g}"
        raise ValueError(
            f"{name} must be a finite number {lo}{hi}, or a non-empty sequence / 1-D tensor of "
            f"them (one per run), got {value!r}"
        )
    return len(values) if _is_seq(value) else 0


def conditioned_inputs(
    n_samples: int,
    d: int,
    condition: float | Sequence[float],
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Inputs with a prescribed condition number: whitened when ``condition == 1``.

    .. math::

        X = Q\,\operatorname{diag}(s)\,R^\top,\qquad
        s_j = \kappa^{-\frac{j-1}{d-1}}\Big/\sqrt{\tfrac1d\textstyle\sum_i \kappa^{-2\frac{i-1}{d-1}}},

    with :math:`Q \in \mathbb R^{N\times d}` orthonormal columns and :math:`R\in\mathcal O^d` Haar
    random, so :math:`X^\top X = R\,\operatorname{diag}(s^2)R^\top` has condition number
    :math:`\kappa^2`, :math:`\|X\|_F^2 = d` as for whitened data, and :math:`\kappa = 1` gives
    :math:`X^\top X = I`. Several :math:`\kappa` share ``Q`` and ``R``, so the runs differ only in
    how far the data are from whitened.

    Args:
        n_samples: ``N >= d``.
        d: input dimension ``d_0 >= 2``.
        condition: :math:`\kappa \ge 1`, one number or ``B`` numbers.
        generator: random source (sampling in float64 on its device).
        dtype: result dtype (default: torch's default dtype).
        device: result device (default: CPU).

    Returns:
        ``X`` ``(N, d)``, or ``(B, N, d)`` when ``condition`` is a sequence.

    Reference:
        Lecture 6, section 2, "The evolution of singular spaces in more generic settings"
        (figure "without whitened data").

    Example:
        >>> X = conditioned_inputs(40, 5, [1.0, 10.0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> [round(float(torch.linalg.cond(x)), 6) for x in X]
        [1.0, 10.0]
    """
    dtype, device = _resolve_dtype(dtype), _resolve_device(device)
    _generator_device(generator)
    batched = _is_seq(condition)
    kappas = _reals(condition)
    if not kappas or any(not (k >= 1.0 and k < float("inf")) for k in kappas):
        raise ValueError(f"condition must be finite numbers >= 1, got {condition!r}")
    if not isinstance(d, numbers.Integral) or isinstance(d, bool) or d < 2:
        raise ValueError(f"d must be an integer >= 2, got {d!r}")
    Q = dln.whitened_inputs(n_samples, d, generator=generator, dtype=torch.float64)  # (N, d)
    gdev = torch.device("cpu") if generator is None else generator.device
    R = dln.whitened_inputs(d, d, generator=generator, dtype=torch.float64)  # (d, d) orthogonal
    R = R.to(gdev)
    Q = Q.to(gdev)
    j = torch.arange(d, dtype=torch.float64, device=gdev) / (d - 1)  # (d,)
    out = []
    for k in kappas:
        s = torch.pow(k, -j)  # (d,) from 1 down to 1/κ
        s = s / s.square().mean().sqrt()  # ‖X‖_F² = d
        out.append((Q * s) @ R.T)  # (N, d)
    X = torch.stack(out) if batched else out[0]
    return X.to(dtype=dtype, device=device)


class Run(NamedTuple):
    """One call of :func:`simulate`: the training record and its data.

    Attributes:
        history: a :class:`lib.dln.History` (batched when any hyperparameter was per-run).
        X: ``(N, d)``, or ``(B, N, d)`` when ``condition`` was per-run.
        Y: ``(N, d)`` targets of rank ``r``.
    """

    history: dln.History
    X: Tensor
    Y: Tensor


@dataclass(frozen=True)
class RunConfig:
    r"""The setting of :func:`simulate` (Lecture 6, section 2); defaults are the lecture's sizes.

    ``scale``, ``lr``, ``weight_decay``, ``momentum`` and ``condition`` may each be one number or
    ``B`` numbers; with any sequence all ``B`` runs train together (all sequences the same length).
    Every knob is checked where the setting is made (so ``dataclasses.replace`` checks too): a bad
    value raises a ``ValueError`` that names it; the values are kept as given.

    Example:
        >>> import dataclasses
        >>> small = RunConfig(width=8, rank=2, n_samples=8, steps=20)
        >>> dataclasses.replace(small, scale=(0.1, 0.3)).scale
        (0.1, 0.3)
    """

    scale: PerRun = 1e-2  # ε > 0, scale of the orthogonal initialisation
    depth: int = 3  # L, number of layers
    width: int = 30  # d = d_0 = ... = d_L, every layer's width (inputs and outputs included)
    rank: int = 3  # r, rank of the targets
    n_samples: int = 60  # N >= d, number of samples
    lr: PerRun = 5.0  # η > 0 of the mean loss; GD diverges above about 12 at these sizes
    steps: int = 3000  # number of GD steps
    weight_decay: PerRun = 0.0  # λ >= 0
    momentum: PerRun = 0.0  # μ in [0, 1): heavy ball when > 0
    condition: PerRun = 1.0  # κ >= 1, condition number of the inputs (1: whitened)
    record_every: int = 10  # keep the weights every this many steps (as in lib.dln.train)
    dtype: torch.dtype = torch.float64  # the law's checks resolve 1e-10: double precision
    device: torch.device | str | None = None  # where to train (None: the CPU)

    def __post_init__(self) -> None:
        """Check every knob once, where the setting is made (the values are kept as given)."""
        sizes = {
            name: _check_per_run(name, getattr(self, name), low, low_open, high)
            for name, low, low_open, high in (
                ("scale", 0.0, True, math.inf),
                ("lr", 0.0, True, math.inf),
                ("weight_decay", 0.0, False, math.inf),
                ("momentum", 0.0, False, 1.0),
                ("condition", 1.0, False, math.inf),
            )
        }
        runs = {name: b for name, b in sizes.items() if b}
        if len(set(runs.values())) > 1:
            raise ValueError(
                "the per-run values must all have the same length (one per run), got "
                + ", ".join(f"{name} with {b}" for name, b in runs.items())
            )
        for name, minimum in (("depth", 1), ("width", 2), ("rank", 1), ("steps", 0)):
            check_int(name, getattr(self, name), minimum)
        check_int("record_every", self.record_every, 1)
        if self.rank > self.width:
            raise ValueError(f"rank must be <= width = {self.width}, got {self.rank}")
        if check_int("n_samples", self.n_samples, 1) < self.width:
            raise ValueError(
                f"n_samples must be >= width = {self.width} (whitened inputs X^T X = I_d need "
                f"N >= d), got {self.n_samples}"
            )
        _resolve_dtype(self.dtype)
        _resolve_device(self.device)


def simulate(
    scale: PerRun | None = None,
    depth: int | None = None,
    width: int | None = None,
    rank: int | None = None,
    n_samples: int | None = None,
    lr: PerRun | None = None,
    steps: int | None = None,
    weight_decay: PerRun | None = None,
    momentum: PerRun | None = None,
    condition: PerRun | None = None,
    seed: int | None = None,
    record_every: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    *,
    config: RunConfig | None = None,
    generator: torch.Generator | None = None,
) -> Run:
    r"""Train the lecture's deep linear network; one run, or ``B`` runs as one batched computation.

    Setting (Lecture 6, section 2): :math:`d_0 = \dots = d_L = d`, inputs
    :func:`conditioned_inputs` (:math:`X^\top X = I` when ``condition == 1``), rank-``r`` targets
    (:func:`lib.dln.low_rank_targets`), ε-orthogonal init, full-batch GD on the mean loss
    :math:`\frac{1}{2Nd}\|XW_{L:1}^\top - Y\|_F^2`:

    .. math::

        W_l \leftarrow (1-\eta\lambda)W_l - \eta\nabla_{W_l}\ell \quad(\text{heavy ball when } \mu > 0).

    The setting is ``config`` (default :class:`RunConfig`) with every argument that is not
    ``None`` put in its place. ``scale``, ``lr``, ``weight_decay``, ``momentum`` and
    ``condition`` may each be one number or ``B`` numbers; with any sequence all ``B`` runs train
    together (:func:`lib.dln.train_batched`), sharing one target and one set of orthogonal
    directions — run ``b`` starts from ``scale[b]`` times the same orthogonal matrices and sees
    the same ``Q``, ``R`` in its inputs — so runs differ only in the per-run values.

    Args:
        scale: ε > 0.
        depth: ``L``.
        width: ``d``.
        rank: ``r``.
        n_samples: ``N >= d``.
        lr: η > 0.
        steps: GD steps.
        weight_decay: λ >= 0.
        momentum: μ in ``[0, 1)``.
        condition: κ >= 1 of the inputs (1: whitened).
        seed: seeds a new CPU generator for the data and the initialisation (default 0); give
            either ``seed`` or ``generator``.
        record_every: as in :func:`lib.dln.train`.
        dtype: float64 by default (the law's checks need it).
        device: where to train (default: CPU).
        config: the setting the other arguments override (default :class:`RunConfig`).
        generator: random source of the data and the initialisation, consumed in that order
            (inputs, targets, weights); sampling in float64 on its device.

    Returns:
        A :class:`Run` ``(history, X, Y)``.

    Reference:
        Yaras et al. 2023, section 3 (the DLN setting); Lecture 6, section 2.

    Example:
        >>> run = simulate([1e-2, 1e-1], width=8, rank=2, n_samples=8, steps=200, record_every=100)
        >>> tuple(run.history.loss.shape)
        (3, 2)
        >>> cfg = RunConfig(width=8, rank=2, n_samples=8, steps=200, record_every=100)
        >>> g = torch.Generator().manual_seed(0)
        >>> same = simulate(config=cfg, scale=[1e-2, 1e-1], generator=g)
        >>> bool(torch.equal(same.history.loss, run.history.loss))
        True
    """
    given = dict(
        scale=scale,
        depth=depth,
        width=width,
        rank=rank,
        n_samples=n_samples,
        lr=lr,
        steps=steps,
        weight_decay=weight_decay,
        momentum=momentum,
        condition=condition,
        record_every=record_every,
        dtype=dtype,
        device=device,
    )
    overrides = {name: value for name, value in given.items() if value is not None}
    if config is not None:
        check_type("config", config, RunConfig, "e.g. lib.parsimony.RunConfig(width=8)")
    cfg = dataclasses.replace(RunConfig() if config is None else config, **overrides)
    if generator is None:
        # the seed path of the original signature: a fresh CPU generator per call
        seed = 0 if seed is None else check_int("seed", seed, 0)
        generator = torch.Generator().manual_seed(seed)
    elif seed is not None:
        raise ValueError("pass either seed or generator, not both")
    else:
        _generator_device(generator)
    return _train(cfg, generator)


def _train(cfg: RunConfig, g: torch.Generator) -> Run:
    """:func:`simulate` for a complete setting: data, init and GD from the generator ``g``."""
    per_run = {
        k: v
        for k, v in dict(
            scale=cfg.scale,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            momentum=cfg.momentum,
            condition=cfg.condition,
        ).items()
        if _is_seq(v)
    }
    sizes = {len(v) for v in per_run.values()}  # one size: RunConfig checked it
    dtype, device, width = cfg.dtype, cfg.device, cfg.width
    X = conditioned_inputs(
        cfg.n_samples, width, cfg.condition, generator=g, dtype=dtype, device=device
    )
    Y = dln.low_rank_targets(
        cfg.n_samples, width, cfg.rank, generator=g, dtype=dtype, device=device
    )
    W1 = dln.init_weights([width] * (cfg.depth + 1), 1.0, generator=g, dtype=torch.float64)
    hyper = (cfg.lr, cfg.steps, cfg.weight_decay, cfg.momentum)
    if not per_run:
        Ws = [(cfg.scale * W).to(dtype=dtype, device=device) for W in W1]
        h = dln.train(Ws, X, Y, *hyper, record_every=cfg.record_every)
        return Run(h, X, Y)
    B = sizes.pop()
    scale = cfg.scale
    scales = torch.as_tensor(scale if _is_seq(scale) else [scale] * B, dtype=torch.float64)
    Ws = [(scales.view(B, 1, 1) * W).to(dtype=dtype, device=device) for W in W1]
    h = dln.train_batched(Ws, X, Y, *hyper, record_every=cfg.record_every)
    return Run(h, X, Y)


@dataclass(frozen=True)
class SweepConfig:
    r"""Sizes of the chapter's ε sweep (implicit low-rank bias); presets in :data:`SWEEPS`.

    All ε values train together as one batched run (:func:`simulate`). With the lecture's
    ``L = 3``, the time to learn grows like :math:`1/(\eta c\,\sigma(M)\,\varepsilon)`, so
    ``steps`` is set by the smallest ε (at η = 5, ``d = N = 30``).
    """

    scales: tuple[float, ...] = (3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)  # ε values, one run each
    steps: int = 15_000  # GD steps: enough for ε = 3e-3 to learn all r directions

    def __post_init__(self) -> None:
        """Check the sizes where they are set: at least one ε, every ε finite and > 0."""
        if not _is_seq(self.scales):
            raise ValueError(f"scales must be a sequence of ε values, got {self.scales!r}")
        check_nonempty("scales", self.scales, "ε value")
        _check_per_run("scales", self.scales, 0.0, True, math.inf)
        check_int("steps", self.steps, 0)


#: ``"book"``: 6 values of ε down to 3e-3 (seconds on a CPU); ``"paper"``: 17 values, four per
#: decade down to 1e-4, and 400 000 steps (a GPU: ``DEVICE = "cuda"``).
SWEEPS: dict[str, SweepConfig] = {
    "book": SweepConfig(),
    "paper": SweepConfig(scales=tuple(10 ** (k / 4) for k in range(-16, 1)), steps=400_000),
}
