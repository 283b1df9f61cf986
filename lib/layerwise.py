r"""Layer-wise :math:`\mathcal{NC}_1` and :math:`D_l` of any ``nn.Module``, in two passes over the data.

Forward hooks on named sub-modules (``model.named_modules()`` names) capture each layer's output,
:func:`pool_output` turns it into one feature row per sample, and one
:class:`~lib.metrics.CollapseAccumulator` per layer collects the class means in the first pass over
the data and the within-class sums in the second. Works for a timm ResNet (``"layer1"`` …
``"layer4"``), a timm ViT (``"blocks.0"`` …), an open_clip ``VisionTransformer``
(``"transformer.resblocks.0"`` …, pass ``clip.visual``) and the book's deep linear network
(an ``nn.Sequential`` of ``nn.Linear``: ``"0"``, ``"1"``, …); :func:`default_layers` picks these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lib._checks import check_int, check_not_meta, check_num_classes, check_type
from lib._checks import check_option as _check_option
from lib.metrics import CollapseAccumulator, Variant, nc1, trace_ratio

__all__ = [
    "LayerCollapse",
    "default_layers",
    "layer_collapse",
    "linear_layer_collapse",
    "pool_output",
]

Spatial = Literal["avg", "flatten"]
Tokens = Literal["cls", "avg", "flatten"]


def pool_output(
    output: Any,
    batch_size: int,
    *,
    spatial: Spatial = "avg",
    tokens: Tokens = "cls",
    seq_first: bool | None = None,
) -> Tensor:
    r"""Turn one layer's output into a feature matrix with one row per sample.

    .. math::
        \texttt{(B, p)} \mapsto \texttt{(B, p)},\quad
        \texttt{(B, C, *S)} \xrightarrow{\ \texttt{spatial}\ } \texttt{(B, C)}\ \text{or}\
        \texttt{(B, C}\textstyle\prod S\texttt{)},\quad
        \texttt{(B, T, D)} \xrightarrow{\ \texttt{tokens}\ } \texttt{(B, D)}\ \text{or}\
        \texttt{(B, TD)} .

    * 2-D outputs ``(B, p)`` (``nn.Linear``, pooled heads) are used as they are.
    * Outputs with 4 or more dimensions are feature maps ``(B, C, H, W, ...)``: ``spatial="avg"``
      averages over the spatial dimensions (global average pooling, as a ResNet head does),
      ``"flatten"`` keeps every position.
    * 3-D outputs are token sequences ``(B, T, D)``: ``tokens="cls"`` takes token 0 (the class
      token of timm and open_clip ViTs; use ``"avg"`` for models without one), ``"avg"`` averages
      the tokens, ``"flatten"`` keeps them all. Sequence-first outputs ``(T, B, D)`` (older
      open_clip, ``nn.MultiheadAttention`` without ``batch_first``) are detected from
      ``batch_size`` or forced with ``seq_first``.
    * A tuple or list output contributes its first element.

    Args:
        output: the layer's output, of the shapes above, real floating point (values are not
            read here: the metrics that receive the rows refuse NaN and Inf).
        batch_size: ``B >= 1``, the number of samples in the batch (Python or NumPy integer).
        spatial: pooling of feature maps, ``"avg"`` or ``"flatten"``.
        tokens: pooling of token sequences, ``"cls"``, ``"avg"`` or ``"flatten"``.
        seq_first: layout of 3-D outputs, ``True``, ``False`` or ``None``, which infers it
            (batch-first unless only dimension 1 equals ``batch_size``).

    Returns:
        Tensor of shape ``(B, p)`` on the output's device, detached.

    Reference:
        Lecture 6, layer-wise :math:`\mathcal{NC}_1^l` of ResNet18 and ViT-B/32 (pooled features).

    Example:
        >>> pool_output(torch.ones(2, 8, 4, 4), batch_size=2).shape
        torch.Size([2, 8])
        >>> pool_output(torch.ones(5, 2, 16), batch_size=2).shape  # (T, B, D) → CLS
        torch.Size([2, 16])
    """
    _check_option("spatial", spatial, ("avg", "flatten"))
    _check_option("tokens", tokens, ("cls", "avg", "flatten"))
    batch_size = check_int("batch_size", batch_size, 1)
    check_type("seq_first", seq_first, (bool, type(None)))
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, Tensor):
        raise ValueError(
            f"layer output must be a tensor (or a tuple starting with one), got {type(output).__name__}"
        )
    if not output.is_floating_point():
        raise ValueError(
            f"layer output must be a floating-point tensor (features), got dtype {output.dtype}; "
            "hook a layer that computes features, not indices or masks"
        )
    check_not_meta("layer output", output)
    out = output.detach()
    if out.ndim == 3:
        if seq_first is None:
            seq_first = out.shape[0] != batch_size and out.shape[1] == batch_size
        if seq_first:
            out = out.transpose(0, 1)  # (T, B, D) -> (B, T, D)
    if out.ndim < 2 or out.shape[0] != batch_size:
        raise ValueError(
            f"cannot find the batch dimension: layer output has shape {tuple(output.shape)} "
            f"but the batch has {batch_size} samples"
        )
    if out.ndim == 2:
        return out
    if out.ndim == 3:
        if tokens == "cls":
            return out[:, 0]
        return out.mean(dim=1) if tokens == "avg" else out.flatten(1)
    return out.flatten(2).mean(dim=2) if spatial == "avg" else out.flatten(1)


def default_layers(model: nn.Module) -> list[str]:
    """The layers the book plots: ResNet stages, ViT blocks, or every child of an ``nn.Sequential``.

    Recognises timm ResNets (``layer1`` … ``layer4``), timm ViTs (``blocks.i``), open_clip
    ``VisionTransformer`` (``transformer.resblocks.i``), a whole open_clip ``CLIP`` model
    (``visual.transformer.resblocks.i``) and ``nn.Sequential`` (``"0"``, ``"1"``, …).

    Args:
        model: the network.

    Returns:
        Module names for :func:`layer_collapse`.

    Example:
        >>> default_layers(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)))
        ['0', '1']
    """
    check_type("model", model, nn.Module)
    names = dict(model.named_modules())
    stages = [f"layer{i}" for i in range(1, 5)]
    if all(s in names for s in stages):
        return stages
    for prefix in ("blocks", "visual.transformer.resblocks", "transformer.resblocks"):
        container = names.get(prefix)
        if isinstance(container, (nn.Sequential, nn.ModuleList)):
            return [f"{prefix}.{i}" for i in range(len(container))]
    if isinstance(model, nn.Sequential) and len(model) > 0:
        return [name for name, _ in model.named_children()]
    raise ValueError(
        f"no default layers for {type(model).__name__}; pass layer names from model.named_modules()"
    )


@dataclass(frozen=True)
class LayerCollapse:
    """Result of :func:`layer_collapse`: one entry per hooked layer, in the order given."""

    layers: tuple[str, ...]  # module names
    nc1: Tensor  # (L,) NC1 of each layer's pooled features
    trace_ratio: Tensor  # (L,) D_l = tr(Σ_W)/tr(Σ_B) of each layer
    dims: tuple[int, ...]  # feature dimension p_l after pooling
    num_samples: int  # N


def _seq_first_flags(model: nn.Module, layers: Sequence[str]) -> dict[str, bool | None]:
    """``batch_first`` of the nearest enclosing module that declares it (open_clip Transformer)."""
    modules = dict(model.named_modules())
    flags: dict[str, bool | None] = {}
    for name in layers:
        parts = name.split(".") if name else []
        flags[name] = None
        for depth in range(len(parts), -1, -1):
            flag = getattr(modules[".".join(parts[:depth])], "batch_first", None)
            if isinstance(flag, bool):
                flags[name] = not flag
                break
    return flags


def layer_collapse(
    model: nn.Module,
    data: Iterable[tuple[Any, Tensor]],
    layers: Sequence[str],
    num_classes: int,
    *,
    spatial: Spatial = "avg",
    tokens: Tokens = "cls",
    variant: Variant = "lecture",
    forward: Callable[[Any], Any] | None = None,
) -> LayerCollapse:
    r"""Layer-wise :math:`\mathcal{NC}_1^l` and :math:`D_l` in exactly two passes over ``data``.

    For each named layer :math:`l` with pooled features :math:`\boldsymbol z^l_i` (see
    :func:`pool_output`),

    .. math::
        \mathcal{NC}_1^l = \operatorname{tr}\big(\boldsymbol\Sigma_W^l\boldsymbol\Sigma_B^{l\dagger}\big),
        \qquad D_l = \operatorname{tr}(\boldsymbol\Sigma_W^l)/\operatorname{tr}(\boldsymbol\Sigma_B^l),

    exactly as :func:`lib.metrics.nc1` and :func:`lib.metrics.trace_ratio` of the stacked features,
    but with :math:`O(p_l K)` memory per layer. The model runs in ``eval()`` mode under
    ``torch.no_grad()`` (its mode is restored afterwards); inputs are moved to the device of its
    first parameter. Every hooked module must run exactly once per forward.

    Args:
        model: any ``nn.Module`` with its weights loaded (no ``meta`` parameters); for open_clip
            pass ``clip.visual`` (or ``forward=clip.encode_image``).
        data: re-iterable (a ``DataLoader`` or a list, not a generator) of ``(x, y)`` batches,
            ``y`` of shape ``(B,)`` in ``[0, K)``, ``x`` with ``B`` rows and, when floating
            point and ``forward`` is not given, the dtype of the model's parameters. It must
            yield the same samples in both passes (shuffling is fine, random augmentation is
            not).
        layers: names from ``model.named_modules()``; see :func:`default_layers`.
        num_classes: ``K >= 2`` (Python or NumPy integer).
        spatial: pooling of feature maps, as in :func:`pool_output`.
        tokens: pooling of token sequences, as in :func:`pool_output`.
        variant: as in :func:`lib.metrics.nc1`.
        forward: a callable, called as ``forward(x)`` instead of ``model(x)``.

    Returns:
        A :class:`LayerCollapse` with ``nc1`` and ``trace_ratio`` of shape ``(L,)``, float64 (the
        accumulation precision, whatever the model's dtype), on the model's device. A layer
        whose pooled outputs do not depend on the class (e.g. a dead layer, all zeros) has
        ``nc1 = 0`` and ``trace_ratio = inf``, as in :func:`lib.metrics.trace_ratio`.

    Reference:
        Lecture 6, "Representation structures within the intermediate layers" (Papyan 2021; He &
        Su 2023) and "Measure of data separation" (Wang et al. 2023).

    Example:
        >>> net = nn.Sequential(nn.Linear(6, 6, bias=False), nn.Linear(6, 6, bias=False))
        >>> batches = [(torch.randn(6, 6), torch.tensor([0, 0, 1, 1, 2, 2]))] * 2
        >>> out = layer_collapse(net, batches, ["0", "1"], num_classes=3)
        >>> out.nc1.shape, out.dims
        (torch.Size([2]), (6, 6))
    """
    _check_option("spatial", spatial, ("avg", "flatten"))
    _check_option("tokens", tokens, ("cls", "avg", "flatten"))
    check_num_classes(num_classes)
    modules = _check_request(model, data, layers, forward)
    accumulators = {name: CollapseAccumulator(num_classes, variant=variant) for name in layers}
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    run = forward if forward is not None else model
    # Inputs of the wrong float dtype fail inside the model with a torch message; say it first
    # (only for models of one floating dtype, called directly).
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    dtype = dtypes.pop() if len(dtypes) == 1 and forward is None else None
    flags = _seq_first_flags(model, layers)
    hooks = _PooledOutputs(modules, layers, flags, spatial=spatial, tokens=tokens)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _one_pass(data, run, (device, dtype), hooks, accumulators, "update_means")
            _one_pass(data, run, (device, dtype), hooks, accumulators, "update_within")
    finally:
        hooks.remove()
        model.train(was_training)

    accs = [accumulators[name] for name in layers]
    values = [acc._values() for acc in accs]  # float64 (nc1, trace_ratio) per layer
    return LayerCollapse(
        layers=tuple(layers),
        nc1=torch.stack([v[0] for v in values]),
        trace_ratio=torch.stack([v[1] for v in values]),
        dims=tuple(acc.class_means().shape[1] for acc in accs),
        num_samples=accs[0].num_samples,
    )


def _check_request(
    model: object, data: object, layers: Sequence[str], forward: object
) -> dict[str, nn.Module]:
    """The model's named modules, after checking that ``model``, ``data``, ``layers`` and
    ``forward`` can be measured (no parameter value is read)."""
    check_type("model", model, nn.Module, "pass the network, e.g. clip.visual")
    if forward is not None and not callable(forward):
        raise TypeError(f"forward must be callable or None, got {type(forward).__name__}")
    if any(p.is_meta for p in model.parameters()):
        raise ValueError(
            "model has 'meta' parameters (shapes without data), so its layers compute nothing; "
            "load its weights first, e.g. model.to_empty(device='cpu') then load_state_dict"
        )
    if not isinstance(data, Iterable):
        raise TypeError(
            f"data must be a re-iterable of (x, y) batches (a DataLoader, list or tuple), got "
            f"{type(data).__name__}"
        )
    if isinstance(data, Iterator):
        raise ValueError(
            "data must be re-iterable (a DataLoader, list or tuple), not a one-shot iterator or "
            "generator: the metrics need two passes over the same samples"
        )
    if isinstance(layers, str) or not layers:
        raise ValueError(f"layers must be a non-empty list of module names, got {layers!r}")
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        known = [n for n in modules if n][:12]
        raise ValueError(f"unknown layer name(s) {missing}; model.named_modules() has e.g. {known}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layer names must be distinct, got {list(layers)}")
    return modules


class _PooledOutputs:
    """Forward hooks that keep the pooled output of each named layer for the current batch."""

    def __init__(
        self,
        modules: dict[str, nn.Module],
        layers: Sequence[str],
        seq_first: dict[str, bool | None],
        *,
        spatial: Spatial,
        tokens: Tokens,
    ) -> None:
        self.batch_size = 0  # set before each forward: pool_output needs B to find the batch axis
        self.captured: dict[str, list[Tensor]] = {}
        self._pooling = {"spatial": spatial, "tokens": tokens}
        self._handles = [
            modules[name].register_forward_hook(self._hook(name, seq_first[name]))
            for name in layers
        ]

    def _hook(self, name: str, seq_first: bool | None):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            pooled = pool_output(output, self.batch_size, seq_first=seq_first, **self._pooling)
            self.captured.setdefault(name, []).append(pooled)

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def _one_pass(
    data: Iterable[tuple[Any, Tensor]],
    run: Callable[[Any], Any],
    target: tuple[torch.device, torch.dtype | None],
    hooks: _PooledOutputs,
    accumulators: dict[str, CollapseAccumulator],
    update: str,
) -> None:
    """Run every batch once and feed each layer's pooled output to its accumulator's ``update``.

    ``target``: the model's device, and the dtype floating inputs must have (``None``: any).
    """
    device, dtype = target
    seen = 0
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("data must yield (x, y) batches")
        x, y = batch[0], batch[1]
        if not isinstance(y, Tensor) or y.ndim != 1:
            raise ValueError(f"labels y must be a 1-D tensor of shape (B,), got {y!r:.80}")
        _check_inputs(x, y, dtype, seen)
        hooks.batch_size = y.shape[0]
        hooks.captured.clear()
        run(x.to(device) if isinstance(x, Tensor) else x)
        for name, accumulator in accumulators.items():
            outs = hooks.captured.get(name, [])
            if len(outs) != 1:
                raise ValueError(
                    f"layer {name!r} ran {len(outs)} times in one forward pass; hook a module that "
                    "runs exactly once (or pass forward= to run the part you need)"
                )
            getattr(accumulator, update)(outs[0], y)
        seen += 1
    if seen == 0:
        raise ValueError("data yielded no batches")


def _check_inputs(x: object, y: Tensor, dtype: torch.dtype | None, index: int) -> None:
    """Metadata checks of one batch's inputs ``x`` against its labels and the model's dtype."""
    if not isinstance(x, Tensor) or x.ndim == 0:
        return  # the model's own business (tokenised text, dicts, ...)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y of batch {index} disagree: x has {x.shape[0]} rows (shape "
            f"{tuple(x.shape)}), y has {y.shape[0]} labels; every sample needs one label"
        )
    if dtype is not None and x.is_floating_point() and x.dtype != dtype:
        raise ValueError(
            f"x of batch {index} has dtype {x.dtype} but the model's parameters are {dtype}; "
            f"convert the inputs (x.to({dtype})) or the model, or pass forward="
        )


def linear_layer_collapse(
    weights: Sequence[Tensor],
    X: Tensor,
    labels: Tensor,
    num_classes: int | None = None,
    *,
    variant: Variant = "lecture",
) -> LayerCollapse:
    r""":math:`\mathcal{NC}_1^l` and :math:`D_l` of a deep linear network given as weight matrices.

    For the book's DLN (:mod:`lib.dln`, weights ``Ws = [W_1, ..., W_L]``, data as rows) the layer
    features are products, no hooks needed:

    .. math::
        \boldsymbol Z^0 = \boldsymbol X,\qquad
        \boldsymbol Z^l = \boldsymbol X\boldsymbol W_1^\top\cdots\boldsymbol W_l^\top
        \ \ (\text{rows } \boldsymbol z^l_i = \boldsymbol W_{l:1}\boldsymbol x_i),\quad l=1,\dots,L .

    Args:
        weights: a non-empty list (or tuple) of ``L`` matrices, ``W_l`` of shape
            ``(d_l, d_{l-1})``, finite, in ``X``'s dtype (on any device: they are moved to
            ``X``'s).
        X: inputs of shape ``(N, d_0)``, real floating point (float16 and bfloat16 included),
            finite.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        num_classes: ``K``; defaults to ``max(y) + 1``.
        variant: as in :func:`lib.metrics.nc1`.

    Returns:
        A :class:`LayerCollapse` with layers ``("input", "1", ..., "L")``; ``nc1`` and
        ``trace_ratio`` of shape ``(L + 1,)``, in ``X``'s dtype and on its device.

    Reference:
        Lecture 6, "Problem setup: train DLNs for classification" and the theorem on
        :math:`D_{l+1}/D_l` (Wang et al. 2023).

    Example:
        >>> X = torch.eye(6, dtype=torch.float64)
        >>> y = torch.tensor([0, 0, 1, 1, 2, 2])
        >>> out = linear_layer_collapse([2 * torch.eye(6, dtype=torch.float64)], X, y)
        >>> out.layers, out.trace_ratio  # scaling a layer leaves D unchanged
        (('input', '1'), tensor([1.5000, 1.5000], dtype=torch.float64))
    """
    _check_linear_request(weights, X, variant)
    features = [X]
    for W in weights:
        features.append(features[-1] @ W.detach().to(features[-1].device).mT)  # (N, d_l)
    values = [
        (nc1(Z, labels, num_classes, variant=variant), trace_ratio(Z, labels, num_classes))
        for Z in features
    ]
    return LayerCollapse(
        layers=("input",) + tuple(str(depth) for depth in range(1, len(weights) + 1)),
        nc1=torch.stack([v[0] for v in values]),
        trace_ratio=torch.stack([v[1] for v in values]),
        dims=tuple(Z.shape[1] for Z in features),
        num_samples=X.shape[0],
    )


def _check_linear_request(weights: object, X: object, variant: object) -> None:
    """Arguments of :func:`linear_layer_collapse`: types, shapes, dtypes, devices, then values."""
    _check_option("variant", variant, ("lecture", "papyan", "he_su"))
    if not isinstance(X, Tensor) or X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D tensor of shape (N, d_0), got {getattr(X, 'shape', X)!r}"
        )
    if not X.is_floating_point():
        raise ValueError(f"X must be a floating-point tensor, got dtype {X.dtype}")
    check_not_meta("X", X)
    if not isinstance(weights, (list, tuple)) or not weights:
        got = (
            f"a tensor of shape {tuple(weights.shape)}"
            if isinstance(weights, Tensor)
            else (repr(weights) if not isinstance(weights, (list, tuple)) else "[]")
        )
        raise ValueError(
            f"weights must be a non-empty list of (d_l, d_{{l-1}}) matrices, got {got:.80}"
        )
    width = X.shape[1]
    for depth, W in enumerate(weights, start=1):
        if not isinstance(W, Tensor) or W.ndim != 2 or W.shape[1] != width:
            raise ValueError(
                f"W_{depth} must have shape (d_{depth}, {width}) to follow the previous "
                f"layer; got {tuple(W.shape) if isinstance(W, Tensor) else type(W).__name__}"
            )
        if W.dtype != X.dtype:
            raise ValueError(
                f"W_{depth} has dtype {W.dtype} but X has {X.dtype}; use one dtype, e.g. "
                f"W.to(X.dtype)"
            )
        check_not_meta(f"W_{depth}", W)
        width = W.shape[0]
    for name, T in [("X", X)] + [(f"W_{d}", W) for d, W in enumerate(weights, start=1)]:
        if not bool(torch.isfinite(T).all()):
            raise ValueError(f"{name} contains NaN or Inf; the layer features would too")
