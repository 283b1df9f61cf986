r"""Weights of deep linear networks: ε-scaled initialisation, run stacking, the end-to-end matrix.

``Ws = [W_1, ..., W_L]`` with :math:`W_l` of shape ``(d_l, d_{l-1})``; a batch of ``B`` runs
stacks them along a leading run axis, ``(B, d_l, d_{l-1})`` (see :mod:`lib.dln`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from lib._checks import check_int as _check_int
from lib._checks import check_option as _check_option
from lib.dln._common import (
    _INIT_KINDS,
    InitKind,
    PerRun,
    _generator_device,
    _orthonormal,
    _per_run_list,
    _resolve_device,
    _resolve_dtype,
)

__all__ = ["end_to_end", "init_weights", "init_weights_batched", "stack_runs", "unstack_runs"]


def init_weights(
    dims: Sequence[int],
    scale: float,
    kind: InitKind = "orthogonal",
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> list[Tensor]:
    r"""ε-scaled initial weights of an ``L``-layer network with widths ``dims = [d_0, ..., d_L]``.

    ``"orthogonal"`` (the lecture's initialisation):

    .. math::

        W_l^\top W_l = \varepsilon^2 I_{d_{l-1}} \ (d_l \ge d_{l-1}) \quad\text{or}\quad
        W_l W_l^\top = \varepsilon^2 I_{d_l} \ (d_l < d_{l-1}),

    Haar-random. ``"normal"`` (i.i.d. Gaussian entries) and ``"uniform"`` (i.i.d.
    :math:`\mathcal U(-1, 1)` entries) are rescaled so that each layer's Frobenius norm equals the
    orthogonal one *exactly*: :math:`\|W_l\|_F = \varepsilon\sqrt{\min(d_l, d_{l-1})}`.

    Sampling happens in float64 on the generator's device (CPU when ``None``), then the result is
    cast to ``dtype`` and moved to ``device`` — so one seed gives the same network on every
    device and in every precision.

    Args:
        dims: ``[d_0, d_1, ..., d_L]``, ``L >= 1``, all positive.
        scale: ε, finite and ``> 0``.
        kind: ``"orthogonal"``, ``"normal"`` or ``"uniform"``.
        generator: random source.
        dtype: weight dtype (default: torch's default dtype); use float64 for SVD dynamics.
        device: weight device (default: CPU).

    Returns:
        ``Ws``, a list of ``L`` tensors, ``Ws[l-1]`` = :math:`W_l` of shape ``(d_l, d_{l-1})``.

    Reference:
        Lecture 6, section 2, "Orthogonal initialization"; Yaras et al. 2023, Thm. 1.

    Example:
        >>> Ws = init_weights([4, 4, 2], 0.1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> [tuple(W.shape) for W in Ws]
        [(4, 4), (2, 4)]
        >>> bool(torch.allclose(Ws[1] @ Ws[1].T, 0.01 * torch.eye(2, dtype=torch.float64)))
        True
    """
    _check_option("kind", kind, _INIT_KINDS)
    dtype, device = _resolve_dtype(dtype), _resolve_device(device)
    gdev = _generator_device(generator)
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or len(dims) < 2:
        raise ValueError(
            f"dims must be a sequence [d_0, ..., d_L] with L >= 1 layers, got {dims!r}"
        )
    dims = [_check_int("every entry of dims", d, 1) for d in dims]
    if not (isinstance(scale, numbers.Real) and not isinstance(scale, bool)) or not (
        math.isfinite(scale) and scale > 0
    ):
        raise ValueError(f"scale (ε) must be a finite number > 0, got {scale!r}")
    Ws = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        if kind == "orthogonal":
            W = _orthonormal(d_out, d_in, generator, torch.float64, gdev)
        else:
            if kind == "normal":
                W = torch.randn(d_out, d_in, generator=generator, dtype=torch.float64, device=gdev)
            else:
                W = torch.rand(d_out, d_in, generator=generator, dtype=torch.float64, device=gdev)
                W = 2 * W - 1
            W = W * (math.sqrt(min(d_in, d_out)) / torch.linalg.matrix_norm(W))
        Ws.append((scale * W).to(dtype=dtype, device=device))  # (d_l, d_{l-1})
    return Ws


def init_weights_batched(
    n_runs: int,
    dims: Sequence[int],
    scale: PerRun,
    kind: InitKind = "orthogonal",
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> list[Tensor]:
    r"""Initial weights for ``B`` independent runs, stacked along a leading run axis.

    Run ``b`` is exactly ``init_weights(dims, scale[b], kind, generator, ...)`` called for
    ``b = 0, 1, ...`` in turn with the same generator (a one-off set-up cost; training is what
    :func:`train_batched` batches).

    .. math::

        \mathtt{Ws}[l-1][b] = W_l^{(b)}(0) \in \mathbb R^{d_l \times d_{l-1}}.

    Args:
        n_runs: ``B``.
        dims: ``[d_0, ..., d_L]``.
        scale: ε, one number or ``B`` numbers (sequence or ``(B,)`` tensor).
        kind: ``"orthogonal"``, ``"normal"`` or ``"uniform"``.
        generator: random source, consumed run after run.
        dtype: weight dtype (default: torch's default dtype).
        device: weight device (default: CPU).

    Returns:
        A list of ``L`` tensors of shape ``(B, d_l, d_{l-1})``.

    Reference:
        As :func:`init_weights`.

    Example:
        >>> Ws = init_weights_batched(8, [5, 5, 5], [0.1] * 8, generator=torch.Generator().manual_seed(0))
        >>> tuple(Ws[0].shape)
        (8, 5, 5)
    """
    n_runs = _check_int("n_runs", n_runs, 1)
    scales = _per_run_list("scale", scale, n_runs)
    runs = [init_weights(dims, s, kind, generator, dtype, device) for s in scales]
    return stack_runs(runs)


def _check_layer_list(weights: object, shape_doc: str, min_ndim: int) -> None:
    """Raise ``ValueError`` unless ``weights`` is a non-empty list of tensors of >= min_ndim dims."""
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError("weights must be a non-empty list of L tensors [W_1, ..., W_L]")
    for i, W in enumerate(weights):
        if not isinstance(W, Tensor) or W.ndim < min_ndim:
            got = tuple(W.shape) if isinstance(W, Tensor) else type(W).__name__
            raise ValueError(f"W_{i + 1} must be a tensor of shape {shape_doc}, got {got}")


def stack_runs(runs: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    """Stack ``B`` weight lists (each ``L`` tensors ``(d_l, d_{l-1})``) into ``L`` tensors ``(B, d_l, d_{l-1})``.

    Args:
        runs: ``B`` lists of ``L`` tensors with matching shapes.

    Returns:
        A list of ``L`` tensors of shape ``(B, d_l, d_{l-1})``.

    Example:
        >>> Ws = init_weights([3, 3], 1.0, generator=torch.Generator().manual_seed(0))
        >>> tuple(stack_runs([Ws, Ws])[0].shape)
        (2, 3, 3)
    """
    if isinstance(runs, Tensor) or not isinstance(runs, Sequence) or len(runs) == 0:
        raise ValueError("runs must be a non-empty list of B weight lists [W_1, ..., W_L]")
    for b, run in enumerate(runs):
        if isinstance(run, Tensor) or not isinstance(run, Sequence) or len(run) == 0:
            raise ValueError(f"runs[{b}] must be a non-empty list of tensors [W_1, ..., W_L]")
        for i, W in enumerate(run):
            if not isinstance(W, Tensor):
                raise ValueError(
                    f"runs[{b}][{i}] (W_{i + 1} of run {b}) must be a tensor, got "
                    f"{type(W).__name__}"
                )
    depth = len(runs[0])
    if any(len(run) != depth for run in runs):
        raise ValueError("runs: every run must have the same number of layers")
    for i in range(depth):
        first = runs[0][i]
        for b, run in enumerate(runs):
            W = run[i]
            if W.shape != first.shape or W.dtype != first.dtype or W.device != first.device:
                raise ValueError(
                    f"runs[{b}][{i}] (W_{i + 1} of run {b}) is {tuple(W.shape)} {W.dtype} on "
                    f"{W.device} but runs[0][{i}] is {tuple(first.shape)} {first.dtype} on "
                    f"{first.device}; every run needs the same shapes, one dtype and one device"
                )
    return [torch.stack([run[i] for run in runs]) for i in range(depth)]


def unstack_runs(weights: Sequence[Tensor]) -> list[list[Tensor]]:
    """Inverse of :func:`stack_runs`: ``L`` tensors ``(B, d_l, d_{l-1})`` → ``B`` lists of ``L`` tensors.

    Args:
        weights: ``L`` tensors with a common leading run axis ``B``.

    Returns:
        ``B`` lists of ``L`` tensors of shape ``(d_l, d_{l-1})`` (views).

    Example:
        >>> Ws = init_weights_batched(2, [3, 3], 1.0, generator=torch.Generator().manual_seed(0))
        >>> len(unstack_runs(Ws))
        2
    """
    _check_layer_list(weights, "(B, d_l, d_{l-1})", 3)
    n_runs = weights[0].shape[0]
    if any(W.shape[0] != n_runs for W in weights):
        raise ValueError(
            f"weights must share the run axis B: W_1 has B={n_runs}, got "
            f"{[W.shape[0] for W in weights]}"
        )
    return [[W[b] for W in weights] for b in range(n_runs)]


def end_to_end(weights: Sequence[Tensor]) -> Tensor:
    r"""The end-to-end matrix :math:`W_{L:1} = W_L W_{L-1} \cdots W_1`.

    .. math::

        F(X) = X W_{L:1}^\top \quad (\text{linear network}).

    Args:
        weights: ``L`` tensors ``(..., d_l, d_{l-1})`` (any common leading batch shape).

    Returns:
        ``(..., d_L, d_0)`` on the weights' device.

    Reference:
        Lecture 6, section 2, the DLN :math:`f_\Theta(x) = W_{L:1}x`.

    Example:
        >>> Ws = init_weights([3, 3, 3], 0.5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> torch.linalg.svdvals(end_to_end(Ws))
        tensor([0.2500, 0.2500, 0.2500], dtype=torch.float64)
    """
    _check_layer_list(weights, "(..., d_l, d_{l-1})", 2)
    for i in range(1, len(weights)):
        if weights[i].dtype != weights[0].dtype or weights[i].device != weights[0].device:
            raise ValueError(
                f"all weights must share one dtype and one device: W_1 is {weights[0].dtype} on "
                f"{weights[0].device}, W_{i + 1} is {weights[i].dtype} on {weights[i].device}; "
                "cast with .to()"
            )
        if weights[i].shape[-1] != weights[i - 1].shape[-2]:
            raise ValueError(
                f"shape mismatch: W_{i + 1} has {weights[i].shape[-1]} input columns but W_{i} "
                f"has {weights[i - 1].shape[-2]} output rows (W_l must be (d_l, d_{{l-1}}))"
            )
    P = weights[0]
    for W in weights[1:]:
        P = W @ P
    return P
