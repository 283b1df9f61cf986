r"""The backbones (feature extractors) of the transfer chapter and their key layers.

``"small_resnet"`` (:class:`SmallResNet`, offline, 1×8×8 digits), ``"small_vit"`` (a tiny timm
``VisionTransformer`` for the same digits, :data:`SMALL_VIT`, offline) and the public
architectures of the lecture's table: timm's ResNet18/50 and ViT-B/32 and open_clip's CLIP
ViT-B/32 image tower, each built by one small factory without its original head (``encoder(x)``
is ``(B, p)``). The two small backbones have no public weights: the chapter pretrains them.

**Key layer.** One rule for every architecture: the last residual block of the first half of the
network's residual blocks (:func:`residual_blocks`), listed in :data:`KEY_LAYERS`.

timm and open_clip are imported inside the functions that need them: importing either takes
seconds, and ``import lib.transfer`` should not pay for it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lib._checks import check_int, check_type
from lib._checks import check_option as _check_option
from lib.transfer.offline import _hub_access

__all__ = ["BACKBONES", "KEY_LAYERS", "SMALL_VIT", "SmallResNet", "key_layer", "residual_blocks"]


class _UnknownName(KeyError, ValueError):
    """An unknown name looked up in a table: a ``ValueError`` that listing code still catches
    as the ``KeyError`` a dict lookup raises."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class _NameTable(dict):
    """A ``dict`` whose unknown keys raise a ``ValueError`` listing the known ones."""

    def __init__(self, what: str, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._what = what

    def __missing__(self, key: object):
        raise _UnknownName(
            f"unknown {self._what} {key!r}; allowed values: {', '.join(map(repr, self))}"
        )


Backbone = Literal["small_resnet", "resnet18", "resnet50", "vit_b32", "clip_vit_b32", "small_vit"]

BACKBONES: tuple[str, ...] = (
    "small_resnet",
    "resnet18",
    "resnet50",
    "vit_b32",
    "clip_vit_b32",
    "small_vit",
)
# Backbones without public weights, for the 1×8×8 digits (pretrained by the chapter itself).
_OWN_BACKBONES: tuple[str, ...] = ("small_resnet", "small_vit")
# Backbones with public weights (pretrained=True), for the torchvision data sets.
_PUBLIC_BACKBONES: tuple[str, ...] = tuple(b for b in BACKBONES if b not in _OWN_BACKBONES)

#: The tiny ViT of ``"small_vit"``: timm's ``VisionTransformer`` with these arguments (1×8×8
#: digits cut into four 4×4 patches, so 4 patch tokens plus the class token, 6 blocks of width
#: 64; ViT-B/32 has ``embed_dim=768``, ``depth=12``, ``num_heads=12``, ``mlp_ratio=4`` on 224 px
#: images in 32 px patches). Its features are the class token after the final LayerNorm, as in
#: ViT-B/32. Trained from scratch it needs AdamW (``FitConfig(optimizer="adamw")``).
SMALL_VIT: dict[str, Any] = {
    "img_size": 8,
    "patch_size": 4,
    "in_chans": 1,
    "embed_dim": 64,
    "depth": 6,
    "num_heads": 4,
    "mlp_ratio": 2.0,
    "global_pool": "token",
}

#: The key intermediate layer fine-tuned by Layer FT / SCL FT (names inside the backbone); each is
#: ``residual_blocks(encoder)[len(blocks) // 2 - 1]``, the last block of the first half. An
#: unknown backbone raises a ``ValueError`` (also a ``KeyError``) listing the known ones.
KEY_LAYERS: dict[str, str] = _NameTable(
    "backbone",
    {
        "small_resnet": "layer2.1",
        "resnet18": "layer2.1",
        "resnet50": "layer3.0",
        "vit_b32": "blocks.5",
        "clip_vit_b32": "transformer.resblocks.5",
        "small_vit": "blocks.2",
    },
)

# Public checkpoints used with pretrained=True (timm names with tags; open_clip name and tag).
_TIMM_MODELS = {
    "resnet18": "resnet18.tv_in1k",
    "resnet50": "resnet50.tv_in1k",
    "vit_b32": "vit_base_patch32_224.augreg_in21k_ft_in1k",
}
_CLIP_MODEL = ("ViT-B-32", "openai")


class SmallResNet(nn.Module):
    r"""ResNet-18's layout at a quarter of its width, for 8×8 images (the offline default).

    A 3×3 stem, then four stages of two timm ``BasicBlock`` s each (``layer1`` … ``layer4``, the
    same module names as timm's ResNets, so every function here treats it like ``resnet18``),
    strides 1, 2, 2, 2 (8×8 → 1×1), global average pooling. ``forward`` returns the penultimate
    features, like a timm model created with ``num_classes=0``.

    Args:
        in_chans: input channels.
        widths: channels of the four stages; ``num_features = widths[-1]``.
        depths: blocks per stage.
        device: where the parameters are created.
        dtype: their dtype.

    Example:
        >>> SmallResNet()(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 128])
    """

    def __init__(
        self,
        in_chans: int = 1,
        widths: Sequence[int] = (16, 32, 64, 128),
        depths: Sequence[int] = (2, 2, 2, 2),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        # lazy: timm takes seconds to import (module docstring)
        from timm.models.resnet import BasicBlock, downsample_conv

        in_chans, widths, depths = _check_small_resnet(in_chans, widths, depths, dtype)
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, padding=1, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(widths[0], **dd)
        self.act1 = nn.ReLU(inplace=True)
        inplanes = widths[0]
        for i, (width, depth) in enumerate(zip(widths, depths)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(depth):
                s = stride if j == 0 else 1
                down = None
                if s != 1 or inplanes != width:
                    down = downsample_conv(inplanes, width, 1, stride=s, **dd)
                blocks.append(BasicBlock(inplanes, width, stride=s, downsample=down, **dd))
                inplanes = width
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = inplanes

    def forward(self, x: Tensor) -> Tensor:
        """Penultimate features ``(B, num_features)`` of images ``(B, in_chans, H, W)``.

        ``x`` of another rank or channel count raises ``ValueError`` (shape only, no sync).
        """
        if x.ndim != 4 or x.shape[1] != self.conv1.in_channels:
            raise ValueError(
                f"x must be images (B, {self.conv1.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        x = self.act1(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x.mean(dim=(2, 3))  # (B, C)


def _check_small_resnet(
    in_chans: object, widths: object, depths: object, dtype: object
) -> tuple[int, list[int], list[int]]:
    """:class:`SmallResNet`'s arguments: four stages of positive widths and depths."""
    in_chans = check_int("in_chans", in_chans, 1)
    stages = []
    for name, values in (("widths", widths), ("depths", depths)):
        check_type(name, values, (list, tuple), "one integer per stage")
        if len(values) != 4:
            raise ValueError(f"{name} must give the 4 stages layer1 … layer4, got {values!r}")
        stages.append([check_int(f"{name} (each)", v, 1) for v in values])
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating-point torch.dtype or None, got {dtype!r}")
    return in_chans, stages[0], stages[1]


def _check_image_size(name: str, value: object) -> int | None:
    """``None`` or a positive integer (NumPy integers too), returned as an ``int``."""
    return None if value is None else check_int(name, value, 1)


# --------------------------------------------------------------------------------------------
# Backbones
# --------------------------------------------------------------------------------------------


def residual_blocks(encoder: nn.Module) -> list[str]:
    """Names of the residual blocks of a backbone, input to output.

    ResNets (timm or :class:`SmallResNet`): ``layer1.0`` … ``layer4.*``; timm ViTs: ``blocks.i``;
    open_clip image towers: ``transformer.resblocks.i``.

    Args:
        encoder: the feature extractor (``TransferModel.encoder``).

    Returns:
        Module names in ``encoder.named_modules()``.

    Example:
        >>> residual_blocks(SmallResNet())[:3]
        ['layer1.0', 'layer1.1', 'layer2.0']
    """
    check_type("encoder", encoder, nn.Module, "a backbone, e.g. TransferModel.encoder")
    modules = dict(encoder.named_modules())
    if all(f"layer{i}" in modules for i in range(1, 5)):
        return [f"layer{i}.{j}" for i in range(1, 5) for j in range(len(modules[f"layer{i}"]))]
    for prefix in ("blocks", "transformer.resblocks"):
        container = modules.get(prefix)
        if isinstance(container, (nn.Sequential, nn.ModuleList)):
            return [f"{prefix}.{i}" for i in range(len(container))]
    hint = "; pass model.encoder" if "encoder" in modules else ""
    raise ValueError(
        f"cannot find the residual blocks of encoder {type(encoder).__name__} (expected a ResNet's "
        f"layer1 … layer4, a ViT's blocks or open_clip's transformer.resblocks){hint}"
    )


def _rule_key_layer(encoder: nn.Module) -> str:
    blocks = residual_blocks(encoder)
    return blocks[len(blocks) // 2 - 1]


def key_layer(backbone: str) -> str:
    """The key intermediate layer Layer FT and SCL FT fine-tune (a name inside the backbone).

    Args:
        backbone: one of :data:`BACKBONES`.

    Returns:
        ``KEY_LAYERS[backbone]``, a name from :func:`residual_blocks`.

    Example:
        >>> key_layer("resnet50")
        'layer3.0'
    """
    _check_option("backbone", backbone, BACKBONES)
    return KEY_LAYERS[backbone]


def _make_timm(backbone: str, pretrained: bool, image_size: int | None) -> nn.Module:
    import timm  # lazy: seconds to import (module docstring)

    name = _TIMM_MODELS[backbone]
    kwargs: dict[str, Any] = {"num_classes": 0}
    if backbone == "vit_b32" and image_size is not None:
        kwargs["img_size"] = image_size
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs)
    with _hub_access(f"{backbone!r} (timm {name!r})"):
        return timm.create_model(name, pretrained=True, **kwargs)


def _make_clip(pretrained: bool, image_size: int | None, device: torch.device | None) -> nn.Module:
    import open_clip  # lazy: seconds to import (module docstring)

    name, tag = _CLIP_MODEL
    kwargs: dict[str, Any] = {"device": device or "cpu"}
    if image_size is not None:
        kwargs["force_image_size"] = image_size
    if not pretrained:
        logger = logging.getLogger()
        level = logger.level
        logger.setLevel(logging.ERROR)  # open_clip warns "No pretrained weights loaded"
        try:
            return open_clip.create_model(name, pretrained=None, **kwargs)
        finally:
            logger.setLevel(level)
    with _hub_access(f"'clip_vit_b32' (open_clip {name!r}, {tag!r})"):
        return open_clip.create_model(name, pretrained=tag, **kwargs)


def _make_small_vit() -> nn.Module:
    """The tiny ViT of ``"small_vit"`` (:data:`SMALL_VIT`), random weights, no classifier."""
    from timm.models.vision_transformer import VisionTransformer  # lazy: seconds to import

    return VisionTransformer(num_classes=0, **SMALL_VIT)


@functools.lru_cache(maxsize=8)
def _meta_encoder(backbone: str, image_size: int | None) -> nn.Module:
    """The backbone's architecture on the meta device (cached; callers deep-copy it)."""
    with torch.device("meta"):
        if backbone == "small_resnet":
            return SmallResNet()
        if backbone == "small_vit":
            return _make_small_vit()
        if backbone == "clip_vit_b32":
            return _make_clip(False, image_size, torch.device("meta")).visual
        return _make_timm(backbone, False, image_size)


def _clip_head_weight(clip: nn.Module, class_names: Sequence[str]) -> Tensor:
    """Zero-shot classifier ``(K, 512)``: scaled, normalised text embeddings of the prompts."""
    import open_clip  # lazy: seconds to import (module docstring)

    tokenizer = open_clip.get_tokenizer(_CLIP_MODEL[0])
    prompts = [f"a photo of a {name}." for name in class_names]
    device = clip.logit_scale.device
    with torch.no_grad():
        text = clip.encode_text(tokenizer(prompts).to(device))  # (K, 512)
        return clip.logit_scale.exp() * F.normalize(text, dim=-1)
