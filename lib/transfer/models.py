r"""The transfer model: a backbone, a fresh ``K``-way head and one method's trainable parameters.

:func:`build` returns a :class:`TransferModel` whose trainable parameters are exactly those one
fine-tuning method trains (linear probe, zero shot, Layer FT, SCL FT, full FT; the table and the
SCL skip are explained in :mod:`lib.transfer`); :func:`trainable_fraction` measures them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lib._checks import check_num_classes, check_type
from lib._checks import check_option as _check_option
from lib.transfer.backbones import (
    _OWN_BACKBONES,
    BACKBONES,
    KEY_LAYERS,
    Backbone,
    SmallResNet,
    _check_image_size,
    _clip_head_weight,
    _make_clip,
    _make_small_vit,
    _make_timm,
    _meta_encoder,
    residual_blocks,
)

__all__ = [
    "CLIP_HEADS",
    "METHODS",
    "TransferModel",
    "build",
    "parameter_counts",
    "trainable_fraction",
]

Method = Literal["linear_probe", "zero_shot", "layer_ft", "scl_ft", "full_ft"]

METHODS: tuple[str, ...] = ("linear_probe", "zero_shot", "layer_ft", "scl_ft", "full_ft")

ClipHead = Literal["tower", "joint"]

#: Where a CLIP head can sit (:func:`build`'s ``clip_head``): ``"tower"`` on the 768-d class
#: token before CLIP's projection (trained methods' default), ``"joint"`` on the unit-norm 512-d
#: joint embedding (zero shot; a probe then starts from the zero-shot classifier).
CLIP_HEADS: tuple[str, ...] = ("tower", "joint")


class _Capture:
    """Forward hook that keeps the last output of the module it is registered on."""

    def __init__(self) -> None:
        self.output: Tensor | None = None

    def __call__(self, _module: nn.Module, _inputs: Any, output: Any) -> None:
        self.output = output[0] if isinstance(output, (tuple, list)) else output


class TransferModel(nn.Module):
    r"""Backbone + head, with the trainable parameters of one fine-tuning method.

    ``forward(x)`` returns logits ``(B, K)``; :meth:`forward_features` returns the penultimate
    features :math:`\boldsymbol h` ``(B, p)`` the head sees (with the SCL skip added, and
    normalised for CLIP's joint head), passed through the identity module ``penultimate`` so that
    hooks (e.g. :func:`layer_nc1`) can read them. Built by :func:`build`.

    Attributes:
        encoder: the backbone without its original head; ``encoder(x)`` is ``(B, p)``.
        head: ``nn.Linear(p, K)`` (CLIP's joint head: without bias, initialised by the
            zero-shot classifier; see :func:`build`'s ``clip_head``).
        penultimate: ``nn.Identity`` applied to :math:`\boldsymbol h`.
        backbone, method, key_layer: the :func:`build` arguments and the fine-tuned layer.
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Linear,
        *,
        backbone: str,
        method: str,
        key_layer: str,
        normalize: bool = False,
    ) -> None:
        _check_parts(encoder, head, backbone, method, normalize)
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.penultimate = nn.Identity()
        self.backbone = backbone
        self.method = method
        self.key_layer = key_layer
        self.normalize = normalize
        self.num_features = head.in_features
        first_conv = next((m for m in encoder.modules() if isinstance(m, nn.Conv2d)), None)
        self.in_chans: int | None = first_conv.in_channels if first_conv is not None else None
        if method in ("layer_ft", "scl_ft") and key_layer not in dict(encoder.named_modules()):
            raise ValueError(
                f"unknown key_layer {key_layer!r}; allowed values: "
                f"{', '.join(residual_blocks(encoder))}"
            )
        self._capture: _Capture | None = None
        if method == "scl_ft":
            self._capture = _Capture()
            encoder.get_submodule(key_layer).register_forward_hook(self._capture)
        self._set_trainable()

    def _set_trainable(self) -> None:
        for p in self.parameters():
            p.requires_grad_(self.method == "full_ft")
        if self.method in ("layer_ft", "scl_ft"):
            for p in self.encoder.get_submodule(self.key_layer).parameters():
                p.requires_grad_(True)
        if self.method != "zero_shot":
            for p in self.head.parameters():
                p.requires_grad_(True)

    def train(self, mode: bool = True) -> TransferModel:
        """Like ``nn.Module.train``, but frozen parts of the backbone always stay in eval mode."""
        super().train(mode)
        if mode and self.method != "full_ft":
            self.encoder.eval()
            if self.method in ("layer_ft", "scl_ft"):
                self.encoder.get_submodule(self.key_layer).train()
        return self

    def skip(self, z: Tensor) -> Tensor:
        r"""The parameter-free skip :math:`S(\boldsymbol z^{l^\star})` ``(B, p)`` of SCL FT.

        Args:
            z: the key layer's output: a feature map ``(B, C, H, W)`` (ResNets) or tokens
                ``(B, T, D)`` (ViTs, batch first).

        Returns:
            ``(B, p)``: pooled, read out like the penultimate features, zero-padded to width ``p``.
        """
        if z.ndim == 4:  # ResNet: global average pooling, then zero-pad channels (option A)
            s = z.mean(dim=(2, 3))  # (B, C)
        elif hasattr(self.encoder, "ln_post"):  # open_clip: class token, frozen ln_post and proj
            s = self.encoder.ln_post(z[:, 0])  # (B, D)
            if getattr(self.encoder, "proj", None) is not None:
                s = s @ self.encoder.proj  # (B, p)
        else:  # timm ViT: class token through the frozen final LayerNorm
            s = self.encoder.norm(z)[:, 0]  # (B, D)
        if s.shape[1] > self.num_features:
            raise ValueError(
                f"key layer width {s.shape[1]} exceeds feature width {self.num_features}"
            )
        return F.pad(s, (0, self.num_features - s.shape[1]))  # (B, p)

    def forward_features(self, x: Tensor) -> Tensor:
        """Penultimate features ``(B, p)`` of inputs ``x`` (images ``(B, C, H, W)``).

        ``x`` of another rank or channel count raises ``ValueError`` (shape check only, no sync).
        """
        if x.ndim != 4 or (self.in_chans is not None and x.shape[1] != self.in_chans):
            raise ValueError(
                f"x must be images (B, {self.in_chans}, H, W) for this {self.in_chans}-channel "
                f"network, got shape {tuple(x.shape)}"
            )
        h = self.encoder(x)  # (B, p)
        if self._capture is not None:
            h = h + self.skip(self._capture.output)
            self._capture.output = None
        if self.normalize:
            h = F.normalize(h, dim=-1)
        return self.penultimate(h)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, K)``."""
        return self.head(self.forward_features(x))


def build(
    backbone: Backbone,
    num_classes: int,
    method: Method,
    pretrained: bool | Mapping[str, Tensor] = False,
    *,
    class_names: Sequence[str] | None = None,
    layer: str | None = None,
    image_size: int | None = None,
    clip_head: ClipHead | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> TransferModel:
    r"""A backbone with a ``K``-way head and exactly the parameters ``method`` fine-tunes trainable.

    ============  =====================================================================
    linear_probe  head
    zero_shot     nothing (CLIP only: head = text embeddings of ``"a photo of a {name}."``)
    layer_ft      head + the key layer (``layer``, default :data:`KEY_LAYERS`)
    scl_ft        as ``layer_ft``, plus the parameter-free skip (:mod:`lib.transfer`)
    full_ft       everything
    ============  =====================================================================

    Args:
        backbone: one of :data:`BACKBONES`: ``"small_resnet"`` (offline default, 1×8×8 inputs),
            ``"small_vit"`` (offline, the tiny timm ViT :data:`SMALL_VIT`, 1×8×8 inputs),
            ``"resnet18"``, ``"resnet50"`` (timm, torchvision ImageNet weights), ``"vit_b32"``
            (timm ViT-B/32, 224 px) or ``"clip_vit_b32"`` (open_clip ViT-B-32 image tower).
        num_classes: :math:`K \ge 2`.
        method: one of :data:`METHODS`.
        pretrained: ``False`` (random weights, no network), ``True`` (public weights: downloaded
            once, then cached; offline and not cached raises :class:`OfflineError` in seconds), or
            a state dict for the backbone (e.g. from :func:`pretrain_source`).
        class_names: CLIP only: the ``K`` class names for the zero-shot head; default
            ``"class 0"`` …. Pass the data set's names (``load_dataset(...).classes``).
        clip_head: CLIP only: where the head sits (:data:`CLIP_HEADS`). ``"tower"`` (default for
            the trained methods): ``nn.Linear(768, K)`` on the image tower's class token after
            its final LayerNorm, *before* CLIP's 768×512 projection, which is removed — the
            features CLIP's own linear probes use for its ViTs (Radford et al., 2021, App. A.3)
            and the head the lecture's CLIP row counts. ``"joint"`` (always for ``zero_shot``):
            ``nn.Linear(512, K, bias=False)`` on the unit-norm 512-d joint embedding,
            initialised by the zero-shot classifier, so a probe starts from zero shot.
        layer: the fine-tuned layer for ``layer_ft``/``scl_ft`` (a name from
            :func:`residual_blocks`); default the architecture's key layer.
        image_size: input resolution for the ViTs (224 by default; 384 for the ViT row of the
            lecture's table); convolutional backbones accept any size.
        device: where to create the model; ``"meta"`` builds without memory or initialisation
            (parameter counts only).
        dtype: parameter dtype.

    Returns:
        A :class:`TransferModel` on ``device``.

    Reference:
        Li et al., arXiv:2212.12206, Sec. 4 (Layer FT, SCL FT); Lecture 6, table "Better
        performance with significantly fewer parameters".

    Example:
        >>> model = build("small_resnet", 5, "layer_ft")
        >>> model.key_layer, round(trainable_fraction(model), 3)
        ('layer2.1', 0.027)
    """
    K, image_size, device = _check_build(
        backbone, num_classes, method, pretrained, class_names, image_size, device, dtype
    )
    joint = _clip_joint(backbone, method, clip_head)
    meta = device is not None and device.type == "meta"
    if meta:  # architecture only: a copy of a cached meta encoder (no memory, no init)
        encoder, head = _meta_encoder_and_head(backbone, K, image_size, joint)
    else:  # public weights are requested before anything is built, so offline fails fast
        encoder, head = _encoder_and_head(
            backbone, K, pretrained is True, class_names, image_size, joint
        )
    if isinstance(pretrained, Mapping):
        _load_backbone_weights(encoder, pretrained, backbone)
    chosen = layer if layer is not None else KEY_LAYERS[backbone]
    blocks = residual_blocks(encoder)
    if (layer is not None or method in ("layer_ft", "scl_ft")) and chosen not in blocks:
        raise ValueError(f"layer must be one of the residual blocks {blocks}; got {chosen!r}")
    model = TransferModel(
        encoder,
        head,
        backbone=backbone,
        method=method,
        key_layer=chosen,
        normalize=joint,
    )
    if not meta and (device is not None or dtype is not None):
        model = model.to(device=device, dtype=dtype)
    return model


def _check_build(
    backbone: str,
    num_classes: object,
    method: str,
    pretrained: object,
    class_names: Sequence[str] | None,
    image_size: object,
    device: object,
    dtype: object,
) -> tuple[int, int | None, torch.device | None]:
    """Check :func:`build`'s arguments (in this order, one message each); return ``K``,
    ``image_size`` as an ``int`` (or ``None``) and the ``torch.device`` (or ``None``)."""
    _check_option("backbone", backbone, BACKBONES)
    _check_option("method", method, METHODS)
    K = check_num_classes(num_classes)
    is_clip = backbone == "clip_vit_b32"
    if method == "zero_shot" and not is_clip:
        raise ValueError(
            "method 'zero_shot' needs a text tower: use backbone 'clip_vit_b32', or "
            "'linear_probe' for the other backbones"
        )
    if class_names is not None and not is_clip:
        raise ValueError(
            f"class_names is for 'clip_vit_b32' (its zero-shot head), not {backbone!r}"
        )
    if class_names is not None and (
        isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names)
    ):
        raise ValueError(f"class_names must be a list of K strings, got {class_names!r}")
    if class_names is not None and len(class_names) != K:
        raise ValueError(f"class_names needs num_classes={K} names, got {len(class_names)}")
    image_size = _check_image_size("image_size", image_size)
    device = _check_device(device)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(
            f"dtype must be a floating-point torch.dtype (e.g. torch.float32) or None, got {dtype!r}"
        )
    if device is not None and device.type == "meta" and pretrained is not False:
        raise ValueError("device='meta' builds without weights; use pretrained=False")
    if not isinstance(pretrained, (bool, Mapping)):
        raise ValueError(f"pretrained must be True, False or a state dict, got {type(pretrained)}")
    if backbone in _OWN_BACKBONES and pretrained is True:
        raise ValueError(
            f"{backbone!r} has no public weights: pass pretrained=False or a state dict from "
            f"pretrain_source({backbone!r})"
        )
    return K, image_size, device


def _check_device(device: object) -> torch.device | None:
    """``device`` as a ``torch.device`` (``None`` stays ``None``); refuse a CUDA device that is
    not there before anything is built."""
    if device is None:
        return None
    check_type("device", device, (str, torch.device), "e.g. 'cpu', 'cuda' or lib.setup(...)")
    try:
        device = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not a device name; use 'cpu' or 'cuda'") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} is not available here (torch.cuda.is_available() is "
            "False); use device='cpu'"
        )
    return device


def _load_backbone_weights(
    encoder: nn.Module, weights: Mapping[str, Tensor], backbone: str
) -> None:
    """Load a backbone state dict (``pretrained``); a dict of another architecture is named."""
    try:
        encoder.load_state_dict(weights)
    except RuntimeError as err:
        raise ValueError(
            f"pretrained is a state dict that does not fit backbone {backbone!r} ({err}); pass "
            f"the weights of this backbone, e.g. pretrain_source({backbone!r})[epoch]"
        ) from err


def _check_parts(
    encoder: object, head: object, backbone: object, method: object, normalize: object
) -> None:
    """:class:`TransferModel`'s parts: modules of matching widths and known names."""
    check_type("encoder", encoder, nn.Module, "a backbone without its head")
    check_type("head", head, nn.Linear, "nn.Linear(p, K)")
    _check_option("backbone", backbone, BACKBONES)
    _check_option("method", method, METHODS)
    check_type("normalize", normalize, bool)
    width = getattr(encoder, "output_dim", None) or getattr(encoder, "num_features", None)
    if isinstance(width, int) and width != head.in_features:
        raise ValueError(
            f"head takes {head.in_features} features but the encoder gives {width}; use "
            f"nn.Linear({width}, K)"
        )


def _meta_encoder_and_head(
    backbone: str, num_classes: int, image_size: int | None, joint: bool
) -> tuple[nn.Module, nn.Linear]:
    """Encoder and head on the meta device: the architecture only (no memory, no init)."""
    encoder = copy.deepcopy(_meta_encoder(backbone, image_size))
    if backbone == "clip_vit_b32" and not joint:
        _drop_projection(encoder)
    with torch.device("meta"):
        head = nn.Linear(
            encoder.output_dim if backbone == "clip_vit_b32" else encoder.num_features,
            num_classes,
            bias=not joint,
        )
    return encoder, head


def _encoder_and_head(
    backbone: str,
    num_classes: int,
    public: bool,
    class_names: Sequence[str] | None,
    image_size: int | None,
    joint: bool,
) -> tuple[nn.Module, nn.Linear]:
    """Encoder (public weights when ``public``, else random) and a fresh head, on the CPU.

    CLIP's joint head is the zero-shot classifier of ``class_names`` (default ``"class k"``),
    without bias; its tower head is a fresh ``nn.Linear(768, K)`` and the projection is removed.
    The text tower is only needed for the joint head and is dropped.
    """
    if backbone == "clip_vit_b32":
        clip = _make_clip(public, image_size, None)
        if not joint:
            _drop_projection(clip.visual)
            return clip.visual, nn.Linear(clip.visual.output_dim, num_classes)
        if class_names is None:
            class_names = [f"class {k}" for k in range(num_classes)]
        head = nn.Linear(clip.visual.output_dim, num_classes, bias=False)
        with torch.no_grad():
            head.weight.copy_(_clip_head_weight(clip, list(class_names)))
        return clip.visual, head
    if backbone == "small_resnet":
        encoder = SmallResNet()
    elif backbone == "small_vit":
        encoder = _make_small_vit()
    else:
        encoder = _make_timm(backbone, public, image_size)
    return encoder, nn.Linear(encoder.num_features, num_classes)


def _drop_projection(tower: nn.Module) -> None:
    """Remove an open_clip image tower's projection: it then returns the 768-d class token
    after ``ln_post`` (open_clip skips ``proj`` when it is ``None``)."""
    tower.proj = None
    tower.output_dim = tower.ln_post.normalized_shape[0]


def _clip_joint(backbone: str, method: str, clip_head: object) -> bool:
    """Whether the head sits on CLIP's joint embedding (checked :func:`build` ``clip_head``)."""
    if clip_head is None:
        return backbone == "clip_vit_b32" and method == "zero_shot"
    _check_option("clip_head", clip_head, CLIP_HEADS)
    if backbone != "clip_vit_b32":
        raise ValueError(
            f"clip_head is for 'clip_vit_b32', not {backbone!r}; leave it None (the head sits "
            "on the backbone's penultimate features)"
        )
    if method == "zero_shot" and clip_head != "joint":
        raise ValueError(
            "clip_head='tower' cannot classify zero-shot: the text embeddings live in the 512-d "
            "joint space; use clip_head='joint' or leave it None"
        )
    return clip_head == "joint"


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameters (entries of tensors with ``requires_grad``).

    Args:
        model: any ``nn.Module`` (also on the meta device).

    Returns:
        Two Python ints.

    Example:
        >>> parameter_counts(nn.Linear(3, 2))
        (8, 8)
    """
    check_type("model", model, nn.Module, "e.g. the result of build(...)")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def trainable_fraction(model: nn.Module) -> float:
    r"""Fraction of the model's parameters that fine-tuning will train.

    .. math::
        \frac{\#\{\text{parameters with requires\_grad}\}}{\#\{\text{parameters}\}}\in[0, 1].

    Args:
        model: any ``nn.Module`` (typically from :func:`build`).

    Returns:
        A Python float; multiply by 100 for the lecture's percentages.

    Reference:
        Lecture 6, table row "Percentage of parameters fine-tuned".

    Example:
        >>> trainable_fraction(build("small_resnet", 5, "full_ft"))
        1.0
    """
    check_type("model", model, nn.Module, "e.g. the result of build(...)")
    trainable, total = parameter_counts(model)
    if total == 0:
        raise ValueError("model has no parameters, so no fraction of them can be trained")
    return trainable / total
