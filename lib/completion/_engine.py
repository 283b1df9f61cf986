r"""How :func:`lib.completion.fit` runs its steps: the networks as buffers, step modes, runners.

:func:`fit` resolves its options into a :class:`_StepConfig` (:func:`_resolve_step_config`:
evaluation, layout, step mode), builds the network it trains — one builder per method,
:func:`_build_original`, :func:`_build_compressed`, :func:`_build_narrow` — as the tensors a step
updates in place and the step itself (:mod:`lib.completion._steps`), and hands the step to a
:class:`_Runner`: eager steps, CUDA graphs of :data:`_GRAPH_STEPS` steps, :func:`torch.compile`,
or the three Triton kernels of :mod:`lib.completion._triton` (``step_mode="fused"``).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from lib import dln
from lib._checks import check_option as _check_option
from lib.completion._steps import (
    _broadcast_mm,
    _inner_product,
    _Padded,
    _padded,
    _step_original,
    _step_thin_dense,
    _step_thin_observed,
    _step_thin_padded,
)
from lib.completion.network import compress, init_narrow, init_original
from lib.completion.problem import Problem, _losses_factored, losses

_EVALUATIONS = ("auto", "observed", "dense")
_STEP_MODES = ("auto", "eager", "graph", "compile", "compile+graph", "fused")
_LAYOUTS = ("auto", "padded", "scatter")

#: ``layout="auto"`` pads the observed entries (rows and columns) while the padded slots number
#: at most this many times the ``2|Ω|`` entries they hold; a very uneven mask uses the scatter.
_MAX_PADDING = 1.5

#: ``evaluation="auto"`` on the CPU uses the dense path up to this ``d``: there BLAS matmuls beat
#: the scatter-add of the observed-entry path (on accelerators the observed path is the default).
_DENSE_ON_CPU_MAX_D = 1024

# A CUDA graph holds this many GD steps (and a second one holds a single step for remainders).
_GRAPH_STEPS = 50


# --------------------------------------------------------------------------------------------
# options: evaluation, layout, step mode
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StepConfig:
    """How :func:`fit`'s steps run, resolved from its options before any tensor is built."""

    evaluation: str  # "observed" (thin networks, the observed entries only) or "dense"
    layout: str  # "auto", "padded" or "scatter"; the thin networks' builder settles "auto"
    mode: str  # a step mode, or "auto" until the network is built (the choice needs its layout)
    # products of the thin factors: broadcast sums (True) or BLAS (False); None: broadcast sums
    # under torch.compile (k is small: launches dominate, and they fuse), BLAS otherwise
    broadcast: bool | None = None


def _triton_interpreter() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _fused_module():
    """:mod:`lib.completion._triton`, or ``None`` where Triton is not installed."""
    # Lazy: Triton is optional (it ships with PyTorch's CUDA wheels only), and importing it costs
    # seconds; only the fused step mode needs it.
    try:
        from lib.completion import _triton
    except ImportError:
        return None
    return _triton


def _resolve_step_mode(mode: str, device: torch.device) -> str:
    _check_option("step_mode", mode, _STEP_MODES)
    if mode == "auto":
        return "auto"  # fit decides, once the evaluation and the layout are known
    if "graph" in mode and device.type != "cuda":
        raise ValueError(
            f"step_mode={mode!r} needs a CUDA device (CUDA graphs); use 'eager' or 'compile'"
        )
    if mode == "fused":
        if device.type != "cuda" and not _triton_interpreter():
            raise ValueError(
                "step_mode='fused' runs Triton kernels: it needs a CUDA device (or the "
                "environment variable TRITON_INTERPRET=1 to emulate them on the CPU, for tests); "
                "use 'eager' or 'compile'"
            )
        if _fused_module() is None:
            raise ValueError(
                "step_mode='fused' needs Triton (installed with PyTorch's CUDA wheels; "
                "`pip install triton`); use 'graph'"
            )
    return mode


def _resolve_step_config(
    problem: Problem,
    method: str,
    evaluation: str,
    layout: str,
    step_mode: str,
    broadcast: bool | None = None,
) -> _StepConfig:
    """Check the step mode against the method and the device; settle ``evaluation="auto"``."""
    device = problem.target.device
    mode = _resolve_step_mode(step_mode, device)
    if method == "original" and evaluation == "observed":
        raise ValueError(
            "evaluation='observed' applies to the compressed and narrow networks; the original "
            "network's end-to-end matrix is dense (use 'auto' or 'dense')"
        )
    if mode == "fused":
        if method == "original":
            raise ValueError(
                "step_mode='fused' steps the compressed and narrow networks on their observed "
                "entries; the original network is dense (use 'graph' or 'eager')"
            )
        if evaluation == "dense" or layout == "scatter":
            raise ValueError(
                "step_mode='fused' evaluates the observed entries in the padded layout; use "
                "evaluation='observed' and layout='padded' (or 'auto')"
            )
        evaluation, layout = "observed", "padded"
    if evaluation == "auto":
        cpu_small = device.type == "cpu" and problem.d <= _DENSE_ON_CPU_MAX_D
        evaluation = "dense" if method == "original" or cpu_small else "observed"
    if broadcast is not None and not isinstance(broadcast, bool):
        raise ValueError(f"broadcast must be None, True or False, got {broadcast!r}")
    return _StepConfig(evaluation, layout, mode, broadcast)


# --------------------------------------------------------------------------------------------
# the networks being trained: their tensors, updated in place, and their step
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hyper:
    """What every step reads besides the weights; fixed for one fit."""

    c: float  # 1/d², the loss's normalisation
    lr: float  # η of the original layers and of the inner factors
    threshold: float  # 2·tol/c: the steps compare ‖Ω ⊙ (W − Φ)‖² = 2ℓ/c with it
    flags: Tensor  # [steps taken, go] on the device, updated in place by every step


def _hyper(problem: Problem, lr: float, tol: float) -> _Hyper:
    c = 1.0 / problem.d**2
    # [steps taken, go], in the weights' dtype so that the updates stay single-dtype (fused
    # multi-tensor kernels on the GPU); float32 counts steps exactly up to 2^24
    flags = torch.tensor([0.0, 1.0], dtype=problem.target.dtype, device=problem.target.device)
    return _Hyper(c=c, lr=lr, threshold=2.0 * tol / c, flags=flags)


@dataclass(eq=False)
class _OriginalNet:
    """The original network: ``L`` square weights, updated in place by ``step``."""

    Ws: list[Tensor]  # L tensors (d, d)
    weights0: list[Tensor]  # copies of the initial weights
    step: Callable[[], None]  # one GD step in PyTorch, in place
    state: list[Tensor]  # every tensor a step writes (restored after the runner's warm-up)
    layout: str | None = None  # dense: no layout of observed entries
    pad: None = None

    def end_to_end(self) -> Tensor:
        return dln.end_to_end(self.Ws)

    def losses(self, problem: Problem) -> tuple[Tensor, Tensor]:
        return losses(problem, self.end_to_end())

    def weights(self) -> list[Tensor]:
        return [W.clone() for W in self.Ws]


@dataclass(eq=False)
class _ThinNet:
    """A compressed or narrow network ``U · W̃_L' ⋯ W̃_1 · Vᵀ``, updated in place by ``step``."""

    U: Tensor  # (d, k), row-major
    inner_stack: Tensor  # (L', k, k): the inner factors as one tensor (the Triton kernels' operand)
    inner: list[Tensor]  # L' views of inner_stack, (k, k) each
    V: Tensor  # (d, k), a view of the buffer the step reads (V1 or AV)
    weights0: list[Tensor]  # the initial weights, lib.dln convention
    step: Callable[[], None]  # one GD step in PyTorch, in place
    state: list[Tensor]  # every tensor a step writes (restored after the runner's warm-up)
    layout: str  # "padded" or "scatter" (observed evaluation); as requested when dense
    pad: _Padded | None  # the padded observed entries (padded layout), else None
    A1: Tensor | None  # (d + 1, k) scratch for A = U P, zero last row (padded layout)
    V1: Tensor | None  # (d + 1, k): V and a zero last row (padded layout)
    lr_out: float  # learning rate of the outer factors U, V (γη compressed, η narrow)

    def end_to_end(self) -> Tensor:
        return (self.U @ _inner_product(self.inner, self.U)[0]) @ self.V.T

    def losses(self, problem: Problem) -> tuple[Tensor, Tensor]:
        return _losses_factored(problem, self.U @ _inner_product(self.inner, self.U)[0], self.V)

    def weights(self) -> list[Tensor]:
        return [self.V.T.contiguous()] + [W.clone() for W in self.inner] + [self.U.clone()]


def _build_original(
    problem: Problem,
    depth: int,
    scale: float,
    generator: torch.Generator | None,
    maskf: Tensor | None,
    hyper: _Hyper,
) -> _OriginalNet:
    """The original network at :func:`init_original`'s weights, with its dense step."""
    Ws = [W.clone() for W in init_original(problem, depth, scale, generator)]
    h = hyper
    step = functools.partial(
        _step_original, Ws, problem.target, maskf, h.c, h.lr, h.threshold, h.flags
    )
    return _OriginalNet(Ws=Ws, weights0=[W.clone() for W in Ws], step=step, state=[*Ws, h.flags])


def _build_compressed(
    problem: Problem,
    depth: int,
    scale: float,
    generator: torch.Generator | None,
    r_hat: int,
    gamma: float,
    maskf: Tensor | None,
    cfg: _StepConfig,
    hyper: _Hyper,
) -> _ThinNet:
    """:func:`compress` of the original network's initial weights; outer factors at γη."""
    W0 = compress(problem, init_original(problem, depth, scale, generator), r_hat)
    return _thin_net(problem, W0, gamma * hyper.lr, maskf, cfg, hyper)


def _build_narrow(
    problem: Problem,
    depth: int,
    scale: float,
    generator: torch.Generator | None,
    r_hat: int,
    maskf: Tensor | None,
    cfg: _StepConfig,
    hyper: _Hyper,
) -> _ThinNet:
    """A fresh ε-orthogonal network of width ``2 r̂`` (:func:`init_narrow`); every layer at η."""
    W0 = init_narrow(problem, 2 * r_hat, depth, scale, generator)
    return _thin_net(problem, W0, hyper.lr, maskf, cfg, hyper)


def _settle_layout(problem: Problem, evaluation: str, layout: str) -> tuple[_Padded | None, str]:
    """The padded observed entries (``None`` unless padded) and the layout that stores them."""
    if evaluation != "observed" or layout == "scatter":
        return None, layout
    pad = _padded(problem)
    if layout == "auto" and pad.slots > _MAX_PADDING * 2 * problem.n_observed:
        pad = None  # a very uneven mask: padding would cost more than the atomics
    return pad, "scatter" if pad is None else "padded"


def _thin_net(
    problem: Problem,
    W0: list[Tensor],
    lr_out: float,
    maskf: Tensor | None,
    cfg: _StepConfig,
    hyper: _Hyper,
) -> _ThinNet:
    """The buffers of a thin network started at ``W0`` (lib.dln convention), and its step."""
    d, k = problem.d, W0[0].shape[0]
    c, lr, threshold, flags = hyper.c, hyper.lr, hyper.threshold, hyper.flags
    U = W0[-1].clone(memory_format=torch.contiguous_format)  # (d, k), row-major
    # the inner factors, (k, k) each, as views of one (L', k, k) tensor (the fused kernels'
    # operand)
    inner_stack = torch.stack(W0[1:-1]) if len(W0) > 2 else U.new_zeros(0, k, k)
    inner = list(inner_stack.unbind(0))
    broadcast = cfg.broadcast if cfg.broadcast is not None else "compile" in cfg.mode
    mm = _broadcast_mm if broadcast else torch.matmul
    pad, layout = _settle_layout(problem, cfg.evaluation, cfg.layout)
    A1 = V1 = None
    if pad is not None:
        A1 = U.new_zeros(d + 1, k)  # rows [0, d): A = U P (scratch); row d: zero (padding)
        V1 = U.new_zeros(d + 1, k)  # rows [0, d): V; row d: zero (padding)
        V = V1[:d]  # (d, k), a view: updating V updates V1
        V.copy_(W0[0].T)
        state = [U, A1, V1, *inner, flags]
        args = (U, inner, A1, V1, pad, c, lr, lr_out, threshold, flags, mm)
        step = functools.partial(_step_thin_padded, *args)
    else:
        AV = U.new_zeros(2 * d, k)  # rows [0, d): A = U P (scratch); rows [d, 2d): V
        V = AV[d:]  # (d, k), a view: updating V updates AV
        V.copy_(W0[0].T)
        state = [U, AV, *inner, flags]
        if cfg.evaluation == "observed":
            gather = torch.cat([problem.rows, problem.cols + d])  # (2|Ω|,)
            scatter = torch.cat([problem.cols, problem.rows + d])
            args = (U, inner, AV, gather, scatter, problem.values, c, lr, lr_out, threshold, flags)
            step = functools.partial(_step_thin_observed, *args)
        else:
            args = (U, inner, V, problem.target, maskf, c, lr, lr_out, threshold, flags)
            step = functools.partial(_step_thin_dense, *args)
    weights0 = [W.clone() for W in W0]
    return _ThinNet(
        U=U, inner_stack=inner_stack, inner=inner, V=V, weights0=weights0, step=step,
        state=state, layout=layout, pad=pad, A1=A1, V1=V1, lr_out=lr_out,
    )  # fmt: skip


def _build_network(
    problem: Problem,
    method: str,
    depth: int,
    scale: float,
    generator: torch.Generator | None,
    r_hat: int,
    gamma: float,
    cfg: _StepConfig,
    hyper: _Hyper,
) -> _OriginalNet | _ThinNet:
    """The network ``method`` at its initial weights, with its PyTorch step."""
    maskf = problem.mask.to(problem.target.dtype) if cfg.evaluation == "dense" else None
    if method == "original":
        return _build_original(problem, depth, scale, generator, maskf, hyper)
    if method == "compressed":
        return _build_compressed(problem, depth, scale, generator, r_hat, gamma, maskf, cfg, hyper)
    return _build_narrow(problem, depth, scale, generator, r_hat, maskf, cfg, hyper)


# --------------------------------------------------------------------------------------------
# runners: eager, CUDA graphs, torch.compile, Triton
# --------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class _Runner:
    """Runs ``n`` GD steps of a step closure whose tensors (``state``) are updated in place.

    ``"graph"`` modes (and ``"fused"`` on CUDA) capture :data:`_GRAPH_STEPS` steps (and one
    step, for remainders) as CUDA graphs and replay them; ``"compile"`` modes wrap the step in
    :func:`torch.compile`; ``"fused"`` steps are Triton kernels (``step``), with the same
    arithmetic in PyTorch as ``eager_step``. Should compilation or capture fail, the runner warns
    and falls back to ``eager_step`` (``mode`` says what actually runs).
    """

    def __init__(
        self,
        step: Callable[[], None],
        state: list[Tensor],
        mode: str,
        device: torch.device,
        eager_step: Callable[[], None] | None = None,
    ):
        self.state, self.mode, self.device = state, mode, device
        self.step, self.eager_step = step, eager_step or step
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        saved = [t.clone() for t in state]
        try:
            if mode in ("compile", "compile+graph"):
                self.step = torch.compile(step)  # recompiles once, dynamically, for a new d
            if "graph" in mode or (mode == "fused" and device.type == "cuda"):
                self._capture()
            else:
                self.step()  # warm-up: compilation, kernels, allocator
        except Exception as err:  # noqa: BLE001 - any compiler/capture failure falls back
            warnings.warn(
                f"step_mode={mode!r} failed ({type(err).__name__}: {err}); running eager steps",
                RuntimeWarning,
                stacklevel=3,
            )
            self.graphs, self.step, self.mode = {}, self.eager_step, "eager"
        for t, s in zip(state, saved):  # undo the warm-up steps
            t.copy_(s)
        _sync(device)

    def _capture(self) -> None:
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up on a side stream before capture
                self.step()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        pool = None  # the two graphs never run at once: they share one memory pool
        for n in (_GRAPH_STEPS, 1):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                for _ in range(n):
                    self.step()
            pool = graph.pool()
            self.graphs[n] = graph

    def run(self, n: int) -> None:
        if self.graphs:
            for _ in range(n // _GRAPH_STEPS):
                self.graphs[_GRAPH_STEPS].replay()
            for _ in range(n % _GRAPH_STEPS):
                self.graphs[1].replay()
        else:
            for _ in range(n):
                self.step()


def _make_runner(
    net: _OriginalNet | _ThinNet,
    mode: str,
    hyper: _Hyper,
    device: torch.device,
    max_steps: int,
) -> tuple[_Runner | None, str]:
    """Settle ``mode="auto"`` and wrap the network's step in a runner (none for 0 steps)."""
    if mode == "auto":  # on CUDA: Triton kernels for the padded path, CUDA graphs otherwise
        fusable = net.pad is not None and _fused_module() is not None
        mode = "eager" if device.type != "cuda" else "fused" if fusable else "graph"
    fast_step = net.step
    if mode == "fused":
        h = hyper
        fast_step = _fused_module().FusedStep(
            net.U, net.inner_stack, net.A1, net.V1, net.pad, h.flags, h.c * h.lr,
            h.c * net.lr_out, h.threshold,
        )  # fmt: skip
    runner = _Runner(fast_step, net.state, mode, device, net.step) if max_steps > 0 else None
    return runner, mode
