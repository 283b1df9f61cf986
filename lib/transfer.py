r"""Transfer learning through the lens of neural collapse: linear probe, Layer FT, SCL FT, full FT.

A pretrained network is a feature map :math:`\boldsymbol h = \phi_{\theta'}(\boldsymbol x)` followed
by a linear classifier :math:`\boldsymbol W\boldsymbol h + \boldsymbol b`. On a downstream task with
:math:`K` classes, :func:`build` returns the network with a fresh ``K``-way head and exactly the
parameters one of four methods fine-tunes left trainable:

===================  ===========================================================================
``"linear_probe"``   the head only (features frozen); for CLIP ``"zero_shot"`` trains nothing
``"layer_ft"``       the head and one *key intermediate layer* (:data:`KEY_LAYERS`)
``"scl_ft"``         as ``"layer_ft"``, plus a parameter-free skip connection that adds the key
                     layer's (pooled) features to the penultimate representation
``"full_ft"``        every parameter
===================  ===========================================================================

**Key layer.** One rule for every architecture: the last residual block of the first half of the
network's residual blocks. For ResNet50 (16 bottlenecks) that is ``layer3.0``, for ViT-B/32 and
CLIP's image tower (12 transformer blocks) block 6 (``blocks.5``), for ResNet18 and the book's
small ResNet (8 basic blocks) ``layer2.1``. With these, :func:`trainable_fraction` of the real
architectures reproduces the lecture's "percentage of parameters fine-tuned" row (see
:func:`percentage_table`): ResNet50 exactly, ViT-B to within one unit in the last printed digit at
224 px (exactly at 384 px), CLIP within 0.04 points; the chapter explains the residuals.

**SCL FT, this book's reading.** The lecture gives the idea ("improving feature collapse via skip
connections", same parameter count as Layer FT); the exact form is not public. Here the skip is

.. math::
    \boldsymbol h_{\rm SCL}(\boldsymbol x) = \boldsymbol h(\boldsymbol x) + S\big(\boldsymbol z^{l^\star}(\boldsymbol x)\big),

where :math:`\boldsymbol z^{l^\star}` is the key layer's output and :math:`S` is a fixed map with
no parameters: global average pooling of a ResNet feature map followed by zero-padding of the
channels to the penultimate width (the parameter-free "option A" shortcut of He et al. 2016); for
a ViT the class token passed through the network's own frozen final LayerNorm (and, for CLIP, its
frozen projection), i.e. the same read-out the penultimate features get. The head therefore sees
the fine-tuned layer's features directly, not only through the frozen layers after it, so
training that one layer can make the penultimate features collapse further — at zero extra
parameters.

Frozen parts stay in ``eval()`` mode while training (BatchNorm statistics of frozen layers are
frozen too). Data: :func:`load_dataset` (sklearn digits offline; torchvision CIFAR-10/100,
FGVC-Aircraft, DTD, Oxford-IIIT Pet with each backbone's own preprocessing, downloaded when
online). Without network, a request for weights or data that are not on disk raises
:class:`OfflineError` within seconds, saying what to do.

Reference:
    Li, Liu, Zhou, Lu, Fernandez-Granda, Zhu & Qu, *Principled and efficient transfer learning of
    deep models via neural collapse*, arXiv:2212.12206 (2022); Lecture 6, Section 1.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import socket
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from lib._checks import check_num_classes
from lib._checks import check_option as _check_option

__all__ = [
    "BACKBONES",
    "DATASETS",
    "KEY_LAYERS",
    "LECTURE_ACCURACY",
    "LECTURE_NC1",
    "LECTURE_PERCENT",
    "METHODS",
    "NUM_CLASSES",
    "FitConfig",
    "OfflineError",
    "SmallResNet",
    "Source",
    "TransferModel",
    "TransferResult",
    "accuracy",
    "balanced_subset",
    "build",
    "collapse_vs_transfer",
    "compare_methods",
    "data_size_sweep",
    "downstream",
    "extract_features",
    "fine_tune",
    "fit",
    "fit_linear_probe",
    "key_layer",
    "layer_names",
    "layer_nc1",
    "load_dataset",
    "most_collapsed",
    "parameter_counts",
    "percentage_markdown",
    "percentage_table",
    "preprocess",
    "pretrain_source",
    "rank_correlation",
    "residual_blocks",
    "source_models",
    "trainable_fraction",
]

Backbone = Literal["small_resnet", "resnet18", "resnet50", "vit_b32", "clip_vit_b32"]
Method = Literal["linear_probe", "zero_shot", "layer_ft", "scl_ft", "full_ft"]
DatasetName = Literal["digits", "digits_source", "cifar10", "cifar100", "aircraft", "dtd", "pet"]

BACKBONES: tuple[str, ...] = ("small_resnet", "resnet18", "resnet50", "vit_b32", "clip_vit_b32")
METHODS: tuple[str, ...] = ("linear_probe", "zero_shot", "layer_ft", "scl_ft", "full_ft")
DATASETS: tuple[str, ...] = (
    "digits",
    "digits_source",
    "cifar10",
    "cifar100",
    "aircraft",
    "dtd",
    "pet",
)

#: Classes of each data set (``digits``: digits 5–9; ``digits_source``: digits 0–4).
NUM_CLASSES: dict[str, int] = {
    "digits": 5,
    "digits_source": 5,
    "cifar10": 10,
    "cifar100": 100,
    "aircraft": 100,
    "dtd": 47,
    "pet": 37,
}

#: The key intermediate layer fine-tuned by Layer FT / SCL FT (names inside the backbone); each is
#: ``residual_blocks(encoder)[len(blocks) // 2 - 1]``, the last block of the first half.
KEY_LAYERS: dict[str, str] = {
    "small_resnet": "layer2.1",
    "resnet18": "layer2.1",
    "resnet50": "layer3.0",
    "vit_b32": "blocks.5",
    "clip_vit_b32": "transformer.resblocks.5",
}

# Public checkpoints used with pretrained=True (timm names with tags; open_clip name and tag).
_TIMM_MODELS = {
    "resnet18": "resnet18.tv_in1k",
    "resnet50": "resnet50.tv_in1k",
    "vit_b32": "vit_base_patch32_224.augreg_in21k_ft_in1k",
}
_CLIP_MODEL = ("ViT-B-32", "openai")
_HUB_HOST = "huggingface.co"
_CONNECT_TIMEOUT_S = 3.0
_LECTURE_METHODS = ("linear_probe", "layer_ft", "scl_ft", "full_ft")  # "zero_shot" for CLIP

# The lecture's table ("Better performance with significantly fewer parameters"): per
# (backbone, dataset), the values for linear probe (zero shot for CLIP), Layer FT, SCL FT, full FT.
#: Lecture's percentage of parameters fine-tuned (the paper's numbers).
LECTURE_PERCENT: dict[tuple[str, str], tuple[float, float, float, float]] = {
    ("resnet50", "cifar10"): (0.09, 6.52, 6.52, 100.0),
    ("resnet50", "cifar100"): (0.86, 7.24, 7.24, 100.0),
    ("resnet50", "aircraft"): (0.86, 7.24, 7.24, 100.0),
    ("resnet50", "dtd"): (0.41, 6.82, 6.82, 100.0),
    ("resnet50", "pet"): (0.32, 6.73, 6.73, 100.0),
    ("vit_b32", "aircraft"): (0.09, 8.18, 8.18, 100.0),
    ("vit_b32", "dtd"): (0.04, 8.14, 8.14, 100.0),
    ("vit_b32", "pet"): (0.03, 8.13, 8.13, 100.0),
    ("clip_vit_b32", "aircraft"): (0.0, 8.16, 8.16, 100.0),
    ("clip_vit_b32", "dtd"): (0.0, 8.11, 8.11, 100.0),
    ("clip_vit_b32", "pet"): (0.0, 8.10, 8.10, 100.0),
}
#: Lecture's transfer (test) accuracy in percent (the paper's numbers).
LECTURE_ACCURACY: dict[tuple[str, str], tuple[float, float, float, float]] = {
    ("resnet50", "cifar10"): (85.33, 94.04, 94.94, 85.51),
    ("resnet50", "cifar100"): (65.47, 77.47, 78.32, 78.88),
    ("resnet50", "aircraft"): (43.23, 70.27, 70.72, 80.77),
    ("resnet50", "dtd"): (68.46, 67.66, 72.87, 76.12),
    ("resnet50", "pet"): (89.26, 89.40, 91.69, 73.24),
    ("vit_b32", "aircraft"): (43.65, 65.83, 65.80, 64.66),
    ("vit_b32", "dtd"): (73.88, 77.13, 77.34, 76.54),
    ("vit_b32", "pet"): (92.23, 92.94, 93.13, 93.02),
    ("clip_vit_b32", "aircraft"): (12.87, 67.63, 66.58, 59.11),
    ("clip_vit_b32", "dtd"): (32.34, 79.47, 79.04, 72.82),
    ("clip_vit_b32", "pet"): (39.66, 91.09, 90.02, 84.44),
}
#: Lecture's NC1 of the penultimate features h^{L-1} (the paper's numbers).
LECTURE_NC1: dict[tuple[str, str], tuple[float, float, float, float]] = {
    ("resnet50", "cifar10"): (1.84, 0.28, 0.22, 0.17),
    ("resnet50", "cifar100"): (18.36, 3.22, 2.61, 0.15),
    ("resnet50", "aircraft"): (20.36, 3.37, 1.02, 0.61),
    ("resnet50", "dtd"): (3.52, 1.68, 0.64, 0.31),
    ("resnet50", "pet"): (1.45, 0.68, 0.39, 0.28),
    ("vit_b32", "aircraft"): (17.91, 6.98, 7.48, 3.78),
    ("vit_b32", "dtd"): (1.99, 1.62, 1.33, 1.11),
    ("vit_b32", "pet"): (0.66, 0.44, 0.35, 0.21),
    ("clip_vit_b32", "aircraft"): (17.47, 1.30, 1.65, 0.49),
    ("clip_vit_b32", "dtd"): (2.96, 0.42, 0.61, 0.17),
    ("clip_vit_b32", "pet"): (3.77, 0.32, 0.46, 0.18),
}


class OfflineError(RuntimeError):
    """Pretrained weights or a data set were requested but are neither on disk nor reachable."""


# --------------------------------------------------------------------------------------------
# The small offline backbone
# --------------------------------------------------------------------------------------------


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
        from timm.models.resnet import BasicBlock, downsample_conv

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
        """Penultimate features ``(B, num_features)`` of images ``(B, in_chans, H, W)``."""
        x = self.act1(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x.mean(dim=(2, 3))  # (B, C)


# --------------------------------------------------------------------------------------------
# Offline failure: fast, with a message
# --------------------------------------------------------------------------------------------


def _reachable(host: str, port: int = 443, timeout: float = _CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _weights_message(what: str, offline: bool = True) -> str:
    if not offline:
        return (
            f"downloading the pretrained weights of {what} from {_HUB_HOST} failed (see the "
            "error above); retry, or build with pretrained=False (random weights)."
        )
    return (
        f"cannot load the pretrained weights of {what}: they are not in the local Hugging Face "
        f"cache and {_HUB_HOST} cannot be reached from here (offline, or HF_HUB_OFFLINE=1). "
        "Run once with network access (e.g. on Colab) so that they are downloaded and cached, "
        "copy a filled cache (~/.cache/huggingface) to this machine, or build with "
        "pretrained=False (random weights; the chapter's offline default pretrains its own "
        "small source model)."
    )


@contextmanager
def _hub_access(what: str):
    """Run a timm/open_clip weight download; offline, fail in seconds with :class:`OfflineError`.

    When the Hub is unreachable, Hugging Face's offline mode is switched on for the duration, so
    cached weights still load and missing ones fail at once instead of after a minute of retries.
    """
    try:
        import huggingface_hub.constants as hub_constants
    except ImportError:  # pragma: no cover - timm and open_clip depend on it
        hub_constants = None
    previous = getattr(hub_constants, "HF_HUB_OFFLINE", False)
    offline = bool(previous) or not _reachable(_HUB_HOST)
    if hub_constants is not None and offline:
        hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    except OSError as err:  # huggingface_hub's LocalEntryNotFoundError and friends
        raise OfflineError(_weights_message(what, offline)) from err
    except RuntimeError as err:  # open_clip wraps download failures in RuntimeError
        text = str(err).lower()
        if offline or any(word in text for word in ("download", "hub", "cache", "connection")):
            raise OfflineError(_weights_message(what, offline)) from err
        raise
    finally:
        if hub_constants is not None:
            hub_constants.HF_HUB_OFFLINE = previous


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
    modules = dict(encoder.named_modules())
    if all(f"layer{i}" in modules for i in range(1, 5)):
        return [f"layer{i}.{j}" for i in range(1, 5) for j in range(len(modules[f"layer{i}"]))]
    for prefix in ("blocks", "transformer.resblocks"):
        container = modules.get(prefix)
        if isinstance(container, (nn.Sequential, nn.ModuleList)):
            return [f"{prefix}.{i}" for i in range(len(container))]
    raise ValueError(f"cannot find the residual blocks of {type(encoder).__name__}")


def _rule_key_layer(encoder: nn.Module) -> str:
    blocks = residual_blocks(encoder)
    return blocks[len(blocks) // 2 - 1]


def key_layer(backbone: str) -> str:
    """The key intermediate layer Layer FT and SCL FT fine-tune (a name inside the backbone).

    Example:
        >>> key_layer("resnet50")
        'layer3.0'
    """
    _check_option("backbone", backbone, BACKBONES)
    return KEY_LAYERS[backbone]


def _make_timm(backbone: str, pretrained: bool, image_size: int | None) -> nn.Module:
    import timm

    name = _TIMM_MODELS[backbone]
    kwargs: dict[str, Any] = {"num_classes": 0}
    if backbone == "vit_b32" and image_size is not None:
        kwargs["img_size"] = image_size
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs)
    with _hub_access(f"{backbone!r} (timm {name!r})"):
        return timm.create_model(name, pretrained=True, **kwargs)


def _make_clip(pretrained: bool, image_size: int | None, device: torch.device | None) -> nn.Module:
    import open_clip

    name, tag = _CLIP_MODEL
    kwargs: dict[str, Any] = {"device": device or "cpu"}
    if image_size is not None:
        kwargs["force_image_size"] = image_size
    if not pretrained:
        import logging

        logger = logging.getLogger()
        level = logger.level
        logger.setLevel(logging.ERROR)  # open_clip warns "No pretrained weights loaded"
        try:
            return open_clip.create_model(name, pretrained=None, **kwargs)
        finally:
            logger.setLevel(level)
    with _hub_access(f"'clip_vit_b32' (open_clip {name!r}, {tag!r})"):
        return open_clip.create_model(name, pretrained=tag, **kwargs)


@functools.lru_cache(maxsize=8)
def _meta_encoder(backbone: str, image_size: int | None) -> nn.Module:
    """The backbone's architecture on the meta device (cached; callers deep-copy it)."""
    with torch.device("meta"):
        if backbone == "small_resnet":
            return SmallResNet()
        if backbone == "clip_vit_b32":
            return _make_clip(False, image_size, torch.device("meta")).visual
        return _make_timm(backbone, False, image_size)


def _clip_head_weight(clip: nn.Module, class_names: Sequence[str]) -> Tensor:
    """Zero-shot classifier ``(K, 512)``: scaled, normalised text embeddings of the prompts."""
    import open_clip

    tokenizer = open_clip.get_tokenizer(_CLIP_MODEL[0])
    prompts = [f"a photo of a {name}." for name in class_names]
    device = clip.logit_scale.device
    with torch.no_grad():
        text = clip.encode_text(tokenizer(prompts).to(device))  # (K, 512)
        return clip.logit_scale.exp() * F.normalize(text, dim=-1)


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


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
    normalised for CLIP), passed through the identity module ``penultimate`` so that hooks (e.g.
    :func:`layer_nc1`) can read them. Built by :func:`build`.

    Attributes:
        encoder: the backbone without its original head; ``encoder(x)`` is ``(B, p)``.
        head: ``nn.Linear(p, K)`` (for CLIP, without bias, initialised by the zero-shot classifier).
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
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.penultimate = nn.Identity()
        self.backbone = backbone
        self.method = method
        self.key_layer = key_layer
        self.normalize = normalize
        self.num_features = head.in_features
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
        """Penultimate features ``(B, p)`` of inputs ``x`` (images ``(B, C, H, W)``)."""
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
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> TransferModel:
    r"""A backbone with a ``K``-way head and exactly the parameters ``method`` fine-tunes trainable.

    ============  =====================================================================
    linear_probe  head (for CLIP: the zero-shot classifier, then trained)
    zero_shot     nothing (CLIP only: head = text embeddings of ``"a photo of a {name}."``)
    layer_ft      head + the key layer (``layer``, default :data:`KEY_LAYERS`)
    scl_ft        as ``layer_ft``, plus the parameter-free skip (module docstring)
    full_ft       everything
    ============  =====================================================================

    Args:
        backbone: one of :data:`BACKBONES`: ``"small_resnet"`` (offline default, 1×8×8 inputs),
            ``"resnet18"``, ``"resnet50"`` (timm, torchvision ImageNet weights), ``"vit_b32"``
            (timm ViT-B/32, 224 px) or ``"clip_vit_b32"`` (open_clip ViT-B-32 image tower).
        num_classes: :math:`K \ge 2`.
        method: one of :data:`METHODS`.
        pretrained: ``False`` (random weights, no network), ``True`` (public weights: downloaded
            once, then cached; offline and not cached raises :class:`OfflineError` in seconds), or
            a state dict for the backbone (e.g. from :func:`pretrain_source`).
        class_names: CLIP only: the ``K`` class names for the zero-shot head; default
            ``"class 0"`` …. Pass the data set's names (``load_dataset(...).classes``).
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
    if class_names is not None and len(class_names) != K:
        raise ValueError(f"class_names needs num_classes={K} names, got {len(class_names)}")
    if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    device = torch.device(device) if device is not None else None
    meta = device is not None and device.type == "meta"
    if meta and pretrained is not False:
        raise ValueError("device='meta' builds without weights; use pretrained=False")
    # Public weights are requested before anything is built, so offline fails fast.
    weights = pretrained if isinstance(pretrained, Mapping) else None
    public = pretrained is True
    if not isinstance(pretrained, (bool, Mapping)):
        raise ValueError(f"pretrained must be True, False or a state dict, got {type(pretrained)}")
    if backbone == "small_resnet" and public:
        raise ValueError(
            "'small_resnet' has no public weights: pass pretrained=False or a state dict from "
            "pretrain_source(...)"
        )
    if meta:  # architecture only: a copy of a cached meta encoder (no memory, no init)
        encoder = copy.deepcopy(_meta_encoder(backbone, image_size))
        with torch.device("meta"):
            head = nn.Linear(
                encoder.output_dim if is_clip else encoder.num_features, K, bias=not is_clip
            )
    elif backbone == "small_resnet":
        encoder = SmallResNet()
    elif is_clip:
        clip = _make_clip(public, image_size, None)
        names = list(class_names) if class_names is not None else [f"class {k}" for k in range(K)]
        head = nn.Linear(clip.visual.output_dim, K, bias=False)
        with torch.no_grad():
            head.weight.copy_(_clip_head_weight(clip, names))
        encoder = clip.visual  # the text tower is only needed for the head
        del clip
    else:
        encoder = _make_timm(backbone, public, image_size)
    if not is_clip and not meta:
        head = nn.Linear(encoder.num_features, K)
    if weights is not None:
        encoder.load_state_dict(weights)
    chosen = layer if layer is not None else KEY_LAYERS[backbone]
    blocks = residual_blocks(encoder)
    if method in ("layer_ft", "scl_ft") and chosen not in blocks:
        raise ValueError(f"layer must be one of the residual blocks {blocks}; got {chosen!r}")
    model = TransferModel(
        encoder, head, backbone=backbone, method=method, key_layer=chosen, normalize=is_clip
    )
    if not meta and (device is not None or dtype is not None):
        model = model.to(device=device, dtype=dtype)
    return model


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameters (entries of tensors with ``requires_grad``).

    Example:
        >>> parameter_counts(nn.Linear(3, 2))
        (8, 8)
    """
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
    trainable, total = parameter_counts(model)
    if total == 0:
        raise ValueError("the model has no parameters")
    return trainable / total


# --------------------------------------------------------------------------------------------
# The lecture's table from the real architectures
# --------------------------------------------------------------------------------------------


def percentage_table(*, vit_image_size: int = 224) -> list[dict[str, Any]]:
    """The lecture's "percentage of parameters fine-tuned", computed from the real architectures.

    Builds every (backbone, data set, method) of the lecture's table on the ``meta`` device
    (random-weight architectures have the same parameter counts; nothing is downloaded or
    allocated) and measures :func:`trainable_fraction`.

    Args:
        vit_image_size: resolution of the ViT-B/32 (224, the book's; 384 reproduces the lecture's
            ViT numbers to the last digit: its positional embedding has 145 instead of 50 tokens).

    Returns:
        One dict per cell: ``backbone``, ``dataset``, ``K``, ``method``, ``computed`` and
        ``lecture`` (percent).

    Example:
        >>> row = percentage_table()[1]
        >>> row["method"], round(row["computed"], 2), row["lecture"]
        ('layer_ft', 6.52, 6.52)
    """
    rows = []
    for (backbone, dataset), lecture in LECTURE_PERCENT.items():
        K = NUM_CLASSES[dataset]
        size = vit_image_size if backbone == "vit_b32" else None
        for method, value in zip(_LECTURE_METHODS, lecture):
            if backbone == "clip_vit_b32" and method == "linear_probe":
                method = "zero_shot"
            model = build(backbone, K, method, device="meta", image_size=size)
            rows.append(
                {
                    "backbone": backbone,
                    "dataset": dataset,
                    "K": K,
                    "method": method,
                    "computed": 100 * trainable_fraction(model),
                    "lecture": value,
                }
            )
    return rows


def percentage_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`percentage_table` rows: computed (lecture) per method.

    Example:
        >>> print(percentage_markdown([{"backbone": "b", "dataset": "d", "K": 2,
        ...     "method": "full_ft", "computed": 100.0, "lecture": 100.0}]))
        | backbone | data set | K | full_ft |
        |---|---|---|---|
        | b | d | 2 | 100.00 (100.00) |
    """
    methods: list[str] = []
    cells: dict[tuple[str, str, int], dict[str, str]] = {}
    for row in rows:
        name = (
            "linear_probe / zero_shot"
            if row["method"] in ("linear_probe", "zero_shot")
            else row["method"]
        )
        if name not in methods:
            methods.append(name)
        key = (row["backbone"], row["dataset"], row["K"])
        cells.setdefault(key, {})[name] = f"{row['computed']:.2f} ({row['lecture']:.2f})"
    lines = [
        "| backbone | data set | K | " + " | ".join(methods) + " |",
        "|---" * (3 + len(methods)) + "|",
    ]
    for (backbone, dataset, K), values in cells.items():
        entries = " | ".join(values.get(m, "") for m in methods)
        lines.append(f"| {backbone} | {dataset} | {K} | {entries} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


class _LabelledTensors(TensorDataset):
    """A ``TensorDataset`` of ``(images, labels)`` with ``classes`` and ``targets``."""

    def __init__(self, images: Tensor, labels: Tensor, classes: Sequence[str]) -> None:
        super().__init__(images, labels)
        self.classes = list(classes)
        self.targets = labels


def _digits(name: str, split: str) -> _LabelledTensors:
    """sklearn's 8×8 digits: ``digits_source`` = 0–4, ``digits`` = 5–9 (relabelled 0–4)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - listed in the requirements
        raise ImportError(
            "the offline data set 'digits' needs scikit-learn: pip install scikit-learn"
        ) from err
    X, y = load_digits(return_X_y=True)
    images = torch.as_tensor(X, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    images = (images - 0.3) / 0.4  # roughly zero mean, unit variance
    labels = torch.as_tensor(y, dtype=torch.long)
    first = 0 if name == "digits_source" else 5
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    chosen = []
    for k in range(first, first + 5):
        idx = order[labels[order] == k]
        chosen.append(idx[:100] if split == "train" else idx[100:])  # 100 per class to train
    idx = torch.cat(chosen)
    classes = [str(k) for k in range(first, first + 5)]
    return _LabelledTensors(images[idx], labels[idx] - first, classes)


def preprocess(backbone: Backbone, *, image_size: int | None = None) -> Callable[[Any], Tensor]:
    """The backbone's own evaluation preprocessing (PIL image → normalised tensor ``(3, S, S)``).

    timm models: their pretrained config (resize, centre crop, mean/std); CLIP: open_clip's
    (bicubic resize, centre crop, OpenAI mean/std). No augmentation, so features can be cached.

    Example:
        >>> preprocess("resnet18", image_size=32).__class__.__name__
        'Compose'
    """
    _check_option("backbone", backbone, BACKBONES[1:])
    if backbone == "clip_vit_b32":
        from open_clip.transform import image_transform

        return image_transform(image_size or 224, is_train=False)
    import timm
    from timm.data import create_transform

    cfg = timm.models.get_pretrained_cfg(_TIMM_MODELS[backbone]).to_dict()
    size = image_size or cfg["input_size"][-1]
    return create_transform(
        input_size=(3, size, size),
        interpolation=cfg.get("interpolation", "bilinear"),
        mean=cfg["mean"],
        std=cfg["std"],
        crop_pct=cfg.get("crop_pct", 0.875),
        is_training=False,
    )


def _torchvision_spec(name: str, split: str) -> tuple[type, dict[str, Any], str]:
    """The torchvision class, its split arguments and the URL it downloads from."""
    from torchvision import datasets as tvd

    train = split == "train"
    if name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        return cls, {"train": train}, cls.url
    if name == "aircraft":
        kwargs = {"split": "trainval" if train else "test", "annotation_level": "variant"}
        return tvd.FGVCAircraft, kwargs, tvd.FGVCAircraft._URL
    if name == "dtd":
        return tvd.DTD, {"split": "train" if train else "test"}, tvd.DTD._URL
    kwargs = {"split": "trainval" if train else "test", "target_types": "category"}
    return tvd.OxfordIIITPet, kwargs, tvd.OxfordIIITPet._RESOURCES[0][0]


def load_dataset(
    name: DatasetName,
    split: Literal["train", "test"],
    backbone: Backbone = "small_resnet",
    *,
    root: str | os.PathLike = "data",
    download: bool = True,
    image_size: int | None = None,
) -> Dataset:
    """A downstream (or source) data set with the backbone's preprocessing.

    ``"digits"`` and ``"digits_source"`` are scikit-learn's 8×8 digits (shipped with the package,
    no download): digits 5–9 and 0–4, 100 training images per class, the rest (about 80 per
    class) for testing, as normalised ``(1, 8, 8)`` tensors for ``"small_resnet"``. The others
    are torchvision's CIFAR-10/100, FGVC-Aircraft (100 variants, trainval/test), DTD (47
    textures, partition 1) and Oxford-IIIT Pet (37 breeds, trainval/test), read from ``root`` and
    downloaded there when missing and ``download`` is true.

    Args:
        name: one of :data:`DATASETS`.
        split: ``"train"`` or ``"test"``.
        backbone: whose preprocessing to apply (see :func:`preprocess`).
        root: folder of the torchvision data.
        download: download a missing data set (needs network).
        image_size: override the backbone's input resolution.

    Returns:
        A ``Dataset`` of ``(image, label)`` with a ``classes`` list.

    Raises:
        OfflineError: the data are not in ``root`` and their server cannot be reached (in
            seconds). FileNotFoundError: not in ``root`` and ``download=False``.

    Example:
        >>> train = load_dataset("digits", "train")
        >>> len(train), train.classes[0], tuple(train[0][0].shape)
        (500, '5', (1, 8, 8))
    """
    _check_option("name", name, DATASETS)
    _check_option("split", split, ("train", "test"))
    _check_option("backbone", backbone, BACKBONES)
    if name.startswith("digits"):
        if backbone != "small_resnet":
            raise ValueError(f"data set {name!r} is 1×8×8 images for backbone 'small_resnet'")
        return _digits(name, split)
    if backbone == "small_resnet":
        raise ValueError(f"'small_resnet' reads 1×8×8 digits; use another backbone for {name!r}")
    cls, kwargs, url = _torchvision_spec(name, split)
    transform = preprocess(backbone, image_size=image_size)
    root = str(Path(root).expanduser())
    try:
        data = cls(root, transform=transform, download=False, **kwargs)
    except RuntimeError as err:  # torchvision: "Dataset not found ... use download=True"
        if not download:
            raise FileNotFoundError(
                f"{name} ({split}) is not in {root!r}; pass download=True (needs network) or put "
                "the files there"
            ) from err
        host = urlparse(url).hostname or url
        if not _reachable(host):
            raise OfflineError(
                f"cannot download {name}: it is not in {root!r} and {host} cannot be reached "
                "from here (offline). Run once with network access (e.g. on Colab) to download "
                f"it into {root!r}, copy the files there, or use the offline default "
                "(DATASET='digits', BACKBONE='small_resnet')."
            ) from err
        data = cls(root, transform=transform, download=True, **kwargs)
    if not hasattr(data, "classes"):
        data.classes = [str(k) for k in range(NUM_CLASSES[name])]
    return data


def _labels(data: Dataset) -> Tensor:
    """Labels ``(N,)`` of a data set, from its attributes when it has them."""
    if isinstance(data, Subset):
        return _labels(data.dataset)[torch.as_tensor(data.indices, dtype=torch.long)]
    for attr in ("targets", "_labels", "labels"):
        values = getattr(data, attr, None)
        if values is not None and len(values) == len(data):
            return torch.as_tensor(values, dtype=torch.long)
    return torch.as_tensor([int(data[i][1]) for i in range(len(data))], dtype=torch.long)


def balanced_subset(
    data: Dataset, per_class: int, *, generator: torch.Generator | None = None
) -> Subset:
    """``per_class`` random samples of every class (all of a class when it has fewer).

    Example:
        >>> len(balanced_subset(load_dataset("digits", "train"), 10))
        50
    """
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    labels = _labels(data)
    order = torch.randperm(len(labels), generator=generator)
    chosen = [order[labels[order] == k][:per_class] for k in labels.unique().tolist()]
    subset = Subset(data, torch.cat(chosen).sort().values.tolist())
    subset.classes = getattr(data, "classes", None)
    return subset


# --------------------------------------------------------------------------------------------
# Training and evaluation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitConfig:
    """Fine-tuning hyper-parameters (SGD with momentum, cosine schedule, cross-entropy)."""

    epochs: int = 10  # passes over the training data
    batch_size: int = 64  # samples per step
    lr: float = 0.05  # η, peak learning rate (cosine-annealed to 0)
    momentum: float = 0.9  # β
    weight_decay: float = 5e-4  # λ, on the trained parameters
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    probe_iters: int = 100  # L-BFGS iterations of the linear probe on cached features
    amp: bool = True  # mixed precision (bfloat16/float16 autocast) on CUDA; ignored on CPU
    progress: bool = True  # tqdm progress bar (on stderr)
    num_workers: int = 0  # DataLoader worker processes


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _loader(data: Dataset | DataLoader, batch_size: int, shuffle: bool, generator=None, workers=0):
    if isinstance(data, DataLoader):
        return data
    return DataLoader(
        data, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=workers
    )


def _autocast(device: torch.device, enabled: bool):
    if not enabled or device.type != "cuda":
        return nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


def _progress(iterable: Iterable, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr)


def fit(
    model: nn.Module,
    data: Dataset | DataLoader,
    config: FitConfig = FitConfig(),
    *,
    generator: torch.Generator | None = None,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> Tensor:
    r"""Train the model's trainable parameters with SGD on cross-entropy.

    .. math::
        \min_{\text{trainable}}\ \frac1N\sum_i \mathcal L_{\rm CE}(f(\boldsymbol x_i), y_i)
        + \frac\lambda2\|\text{trainable}\|_F^2,

    momentum SGD with a cosine learning-rate schedule, mixed precision on CUDA, a tqdm bar.
    Inputs are moved to the model's device.

    Args:
        model: e.g. from :func:`build`; only parameters with ``requires_grad`` are trained.
        data: ``Dataset`` (shuffled with ``generator``) or ``DataLoader`` of ``(x, y)``.
        config: hyper-parameters.
        generator: CPU generator for the shuffling.
        callback: called as ``callback(epoch, model)`` after every epoch (epochs count from 1).

    Returns:
        Mean training loss per epoch, ``(epochs,)``, on the CPU.

    Example:
        >>> model = build("small_resnet", 5, "linear_probe")
        >>> data = balanced_subset(load_dataset("digits", "train"), 4)
        >>> fit(model, data, FitConfig(epochs=2, progress=False)).shape
        torch.Size([2])
    """
    if config.epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {config.epochs}")
    params = [p for p in model.parameters() if p.requires_grad]
    losses = torch.zeros(config.epochs)
    if not params or config.epochs == 0:
        return losses
    device = _device_of(model)
    loader = _loader(data, config.batch_size, True, generator, config.num_workers)
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    total = config.epochs * len(loader)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    )
    cast, scaler = _autocast(device, config.amp)
    model.train()
    bar = _progress(range(config.epochs), config.progress, "fit")
    for epoch in bar:
        running, count = 0.0, 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with cast:
                loss = F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            schedule.step()
            running += float(loss.detach()) * len(y)
            count += len(y)
        losses[epoch] = running / max(count, 1)
        if callback is not None:
            callback(epoch + 1, model)
    model.eval()
    return losses


@torch.no_grad()
def extract_features(
    model: TransferModel,
    data: Dataset | DataLoader,
    *,
    batch_size: int = 256,
    amp: bool = True,
    progress: bool = False,
    num_workers: int = 0,
) -> tuple[Tensor, Tensor]:
    r"""Penultimate features :math:`\boldsymbol h_i` of a data set (model in eval mode).

    Args:
        model: a :class:`TransferModel`.
        data: ``Dataset`` or ``DataLoader`` of ``(x, y)``; read in order.
        batch_size: when ``data`` is a ``Dataset``.
        amp: autocast on CUDA (features are returned in float32).
        progress: show a tqdm bar.
        num_workers: DataLoader worker processes when ``data`` is a ``Dataset``.

    Returns:
        ``(H, y)``: ``(N, p)`` float32 and ``(N,)`` long, on the model's device.

    Example:
        >>> H, y = extract_features(build("small_resnet", 5, "linear_probe"),
        ...                         load_dataset("digits", "test"))
        >>> H.shape[1], y.shape == (H.shape[0],)
        (128, True)
    """
    device = _device_of(model)
    was_training = model.training
    model.eval()
    cast, _ = _autocast(device, amp)
    feats, labels = [], []
    loader = _loader(data, batch_size, False, workers=num_workers)
    for x, y in _progress(loader, progress, "features"):
        with cast:
            feats.append(model.forward_features(x.to(device)).float())  # (B, p)
        labels.append(y.to(device))
    model.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def fit_linear_probe(
    model: TransferModel,
    data: Dataset | DataLoader,
    config: FitConfig = FitConfig(),
    *,
    cache: str | os.PathLike | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Linear probe through a features cache: extract :math:`\boldsymbol h_i` once, fit the head.

    The frozen backbone runs once over ``data`` (or not at all when ``cache`` holds the features);
    the head is then fitted on the cached features by full-batch L-BFGS on

    .. math::
        \frac1N\sum_i \mathcal L_{\rm CE}(\boldsymbol W\boldsymbol h_i+\boldsymbol b, y_i)
        + \frac\lambda2\|\boldsymbol W\|_F^2 .

    Args:
        model: a :class:`TransferModel` built with ``method="linear_probe"``.
        data: training ``Dataset`` or ``DataLoader``.
        config: ``weight_decay`` (λ), ``probe_iters``, ``batch_size``, ``amp``, ``progress``.
        cache: a ``.pt`` file: loaded if it exists, written otherwise.

    Returns:
        The training features ``(H, y)``, ``(N, p)`` and ``(N,)``, on the model's device.

    Example:
        >>> model = build("small_resnet", 5, "linear_probe")
        >>> H, y = fit_linear_probe(model, load_dataset("digits", "train"),
        ...                         FitConfig(probe_iters=5, progress=False))
        >>> tuple(H.shape)
        (500, 128)
    """
    if getattr(model, "method", None) != "linear_probe":
        raise ValueError("fit_linear_probe needs a model built with method='linear_probe'")
    device = _device_of(model)
    path = Path(cache) if cache is not None else None
    if path is not None and path.exists():
        stored = torch.load(path, map_location=device)
        H, y = stored["H"], stored["y"]
    else:
        H, y = extract_features(
            model,
            data,
            batch_size=config.batch_size,
            amp=config.amp,
            progress=config.progress,
            num_workers=config.num_workers,
        )
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"H": H.cpu(), "y": y.cpu()}, path)
    head = model.head
    optimizer = torch.optim.LBFGS(
        head.parameters(), lr=1.0, max_iter=config.probe_iters, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(head(H), y) + 0.5 * config.weight_decay * head.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return H, y


@torch.no_grad()
def accuracy(
    model: nn.Module, data: Dataset | DataLoader, *, batch_size: int = 256, num_workers: int = 0
) -> Tensor:
    """Top-1 accuracy of ``model`` on ``data`` (eval mode), a 0-dim tensor in ``[0, 1]``.

    Example:
        >>> float(accuracy(build("small_resnet", 5, "full_ft"), load_dataset("digits", "test"))) <= 1
        True
    """
    device = _device_of(model)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), device=device)
    count = 0
    for x, y in _loader(data, batch_size, False, workers=num_workers):
        y = y.to(device)
        correct += (model(x.to(device)).argmax(dim=1) == y).sum()
        count += len(y)
    model.train(was_training)
    return correct / max(count, 1)


def layer_names(model: TransferModel) -> list[str]:
    """Hookable names of every residual block of the backbone, then ``"penultimate"``.

    Example:
        >>> layer_names(build("small_resnet", 5, "full_ft"))[-2:]
        ['encoder.layer4.1', 'penultimate']
    """
    return [f"encoder.{name}" for name in residual_blocks(model.encoder)] + ["penultimate"]


def layer_nc1(
    model: TransferModel,
    data: Dataset | DataLoader,
    num_classes: int,
    *,
    layers: Sequence[str] | None = None,
    batch_size: int = 256,
):
    r"""Layer-wise :math:`\mathcal{NC}_1^l` of every residual block and the penultimate features.

    Feature maps are average-pooled, token sequences read at the class token (ViT blocks), as
    :func:`lib.layerwise.layer_collapse` does, in two streaming passes over ``data``.

    Args:
        model: a :class:`TransferModel`.
        data: ``Dataset`` or ``DataLoader`` of ``(x, y)`` (no random augmentation).
        num_classes: :math:`K`.
        layers: module names; default :func:`layer_names`.
        batch_size: when ``data`` is a ``Dataset``.

    Returns:
        :class:`lib.layerwise.LayerCollapse` (``nc1`` of shape ``(L,)``, float64).

    Reference:
        Lecture 6, "Layer-wise NC1 for different fine-tuning methods" (ResNet18, ViT-B/32).

    Example:
        >>> out = layer_nc1(build("small_resnet", 5, "full_ft"), load_dataset("digits", "test"), 5)
        >>> len(out.layers), out.nc1.shape
        (9, torch.Size([9]))
    """
    from lib.layerwise import layer_collapse

    loader = _loader(data, batch_size, False)
    return layer_collapse(model, loader, list(layers or layer_names(model)), num_classes)


@dataclass(frozen=True)
class TransferResult:
    """Outcome of :func:`fine_tune` on one method."""

    method: str  # fine-tuning method
    accuracy: float  # test accuracy in [0, 1]
    nc1: float  # NC1 of the penultimate features on the training data
    fraction: float  # trainable fraction of the parameters
    model: TransferModel  # the fine-tuned model (eval mode)


def fine_tune(
    backbone: Backbone,
    method: Method,
    train: Dataset,
    test: Dataset,
    num_classes: int,
    *,
    pretrained: bool | Mapping[str, Tensor] = False,
    config: FitConfig = FitConfig(),
    class_names: Sequence[str] | None = None,
    image_size: int | None = None,
    cache: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> TransferResult:
    r"""Build, fine-tune with one method, and measure accuracy, :math:`\mathcal{NC}_1` and % trained.

    ``linear_probe`` goes through the features cache (:func:`fit_linear_probe`), ``zero_shot``
    trains nothing, the others run :func:`fit`. :math:`\mathcal{NC}_1` is that of the penultimate
    features on the training data, as in the lecture's table.

    Args:
        backbone, method, num_classes, pretrained, class_names, image_size: as in :func:`build`.
        train: training ``Dataset`` of ``(x, y)``; test: test ``Dataset``.
        config: :class:`FitConfig`.
        cache: features cache of the linear probe.
        device: where to train.
        generator: shuffling of the training data.

    Returns:
        A :class:`TransferResult`.

    Example:
        >>> res = fine_tune("small_resnet", "linear_probe", load_dataset("digits", "train"),
        ...                 load_dataset("digits", "test"), 5, config=FitConfig(probe_iters=5))
        >>> res.method, 0 <= res.accuracy <= 1
        ('linear_probe', True)
    """
    model = build(
        backbone,
        num_classes,
        method,
        pretrained,
        class_names=class_names,
        image_size=image_size,
        device=device,
    )
    eval_batch = max(config.batch_size, 256)
    if method == "linear_probe":
        H, y = fit_linear_probe(model, train, config, cache=cache)
    else:
        fit(model, train, config, generator=generator)
        H, y = extract_features(
            model, train, batch_size=eval_batch, amp=config.amp, num_workers=config.num_workers
        )
    from lib.metrics import nc1

    return TransferResult(
        method=method,
        accuracy=float(
            accuracy(model, test, batch_size=eval_batch, num_workers=config.num_workers)
        ),
        nc1=float(nc1(H, y, num_classes)),
        fraction=trainable_fraction(model),
        model=model,
    )


def pretrain_source(
    backbone: Backbone = "small_resnet",
    dataset: DatasetName = "digits_source",
    *,
    snapshots: Sequence[int] = (0, 1, 2, 4, 8, 16),
    config: FitConfig = FitConfig(),
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> dict[int, dict[str, Tensor]]:
    """Pretrain a backbone on a source task; return its weights after several numbers of epochs.

    The offline stand-in for public pretrained models: snapshots of one run give source models
    of increasing quality, whose features collapse more or less on a downstream task.

    Args:
        backbone: the backbone to pretrain (random initialisation, full fine-tuning).
        dataset: the source data set (training split).
        snapshots: epochs after which to keep the weights (0: the random initialisation); the
            run lasts ``max(snapshots)`` epochs with ``config``'s other settings.
        config: training hyper-parameters (``epochs`` is ignored).
        device: where to train.
        generator: shuffling of the training data.

    Returns:
        Mapping epoch → backbone state dict (CPU tensors), for ``build(..., pretrained=...)``.

    Example:
        >>> weights = pretrain_source(snapshots=(0, 1), config=FitConfig(progress=False))
        >>> sorted(weights)
        [0, 1]
    """
    wanted = sorted(set(int(e) for e in snapshots))
    if not wanted or wanted[0] < 0:
        raise ValueError(f"snapshots must be non-empty epoch counts >= 0, got {list(snapshots)}")
    model = build(backbone, NUM_CLASSES[dataset], "full_ft", device=device)
    train = load_dataset(dataset, "train", backbone)
    weights: dict[int, dict[str, Tensor]] = {}

    def keep(epoch: int, net: nn.Module) -> None:
        if epoch in wanted:
            weights[epoch] = {
                k: v.detach().cpu().clone() for k, v in net.encoder.state_dict().items()
            }

    keep(0, model)
    from dataclasses import replace

    fit(model, train, replace(config, epochs=wanted[-1]), generator=generator, callback=keep)
    return weights


# --------------------------------------------------------------------------------------------
# The chapter's experiments, one call each
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A pretrained starting point: a label, the backbone and its ``pretrained`` argument."""

    label: str  # shown in plots
    backbone: str  # one of BACKBONES
    pretrained: bool | Mapping[str, Tensor]  # True (public weights) or a backbone state dict


def source_models(
    backbone: Backbone,
    *,
    lrs: Sequence[float] = (0.01, 0.03, 0.1),
    snapshots: Sequence[int] = (2, 8),
    compare: Sequence[str] = ("resnet18", "resnet50", "vit_b32", "clip_vit_b32"),
    config: FitConfig = FitConfig(),
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> list[Source]:
    """Several pretrained models to compare: offline source runs, or public checkpoints.

    For ``"small_resnet"`` (offline) the backbone is pretrained on ``digits_source`` (digits 0–4)
    once per learning rate in ``lrs`` (other settings from ``config``), keeping the weights after
    each number of epochs in ``snapshots`` (:func:`pretrain_source`): ``len(lrs) * len(snapshots)``
    source models of different quality. For the other backbones: the public checkpoints of the
    architectures in ``compare``, then ``backbone``'s.

    Returns:
        A list of :class:`Source`.

    Example:
        >>> [s.label for s in source_models("resnet50", compare=("resnet18", "resnet50"))]
        ['resnet18', 'resnet50']
    """
    if backbone != "small_resnet":
        names = [name for name in compare if name != backbone] + [backbone]
        return [Source(name, name, True) for name in names]
    from dataclasses import replace

    sources = []
    for lr in lrs:
        weights = pretrain_source(
            backbone,
            snapshots=snapshots,
            config=replace(config, lr=lr),
            device=device,
            generator=generator,
        )
        sources += [Source(f"η={lr:g}, {e} ep", backbone, w) for e, w in weights.items()]
    return sources


def most_collapsed(sources: Sequence[Source], rows: Sequence[Mapping[str, Any]]) -> Source:
    r"""The source whose features collapse most on the downstream data (smallest :math:`\mathcal{NC}_1`).

    The lecture's message turned into a model-selection rule that needs no test data.

    Args:
        sources: as from :func:`source_models`.
        rows: :func:`collapse_vs_transfer` of the same sources.

    Returns:
        One of ``sources``.

    Example:
        >>> s = [Source("a", "resnet18", True), Source("b", "resnet50", True)]
        >>> most_collapsed(s, [{"nc1": 2.0}, {"nc1": 1.0}]).label
        'b'
    """
    if len(sources) != len(rows) or not rows:
        raise ValueError("need one collapse_vs_transfer row per source")
    return sources[min(range(len(rows)), key=lambda i: rows[i]["nc1"])]


def rank_correlation(x: Sequence[float] | Tensor, y: Sequence[float] | Tensor) -> Tensor:
    r"""Spearman's rank correlation of two samples (no ties assumed; ties get arbitrary order).

    .. math::
        \rho = 1 - \frac{6\sum_i d_i^2}{n(n^2-1)},\qquad d_i = \operatorname{rank}(x_i) -
        \operatorname{rank}(y_i).

    Returns:
        0-dim float64 tensor in ``[-1, 1]``.

    Example:
        >>> rank_correlation([1.0, 2.0, 3.0], [30.0, 20.0, 10.0])
        tensor(-1., dtype=torch.float64)
    """
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError("x and y must be 1-D samples of the same length >= 2")
    n = len(x)
    d = x.argsort().argsort().double() - y.argsort().argsort().double()
    return 1 - 6 * d.square().sum() / (n * (n**2 - 1))


def downstream(
    dataset: DatasetName,
    backbone: Backbone,
    *,
    per_class: int | None = None,
    root: str | os.PathLike = "data",
    image_size: int | None = None,
    seed: int = 0,
) -> tuple[Dataset, Dataset]:
    """Training and test split of a downstream data set; the training split subsampled per class.

    Args:
        dataset, backbone, root, image_size: as in :func:`load_dataset`.
        per_class: training samples per class (:func:`balanced_subset`, drawn with ``seed``);
            ``None`` keeps them all.
        seed: seed of the draw (the same seed gives the same subset in every function here).

    Returns:
        ``(train, test)`` data sets with a ``classes`` attribute.

    Example:
        >>> train, test = downstream("digits", "small_resnet", per_class=3)
        >>> len(train), len(test) > 300
        (15, True)
    """
    train = load_dataset(dataset, "train", backbone, root=root, image_size=image_size)
    test = load_dataset(dataset, "test", backbone, root=root, image_size=image_size)
    if per_class is not None:
        train = balanced_subset(train, per_class, generator=torch.Generator().manual_seed(seed))
    return train, test


def collapse_vs_transfer(
    sources: Sequence[Source],
    dataset: DatasetName,
    *,
    per_class: int | None = None,
    config: FitConfig = FitConfig(),
    root: str | os.PathLike = "data",
    device: torch.device | str | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    r"""Downstream :math:`\mathcal{NC}_1` of each pretrained model against its linear-probe accuracy.

    For every source: the penultimate features of the downstream training set (``per_class``
    samples per class, the same draw for every model) give :math:`\mathcal{NC}_1`; a linear probe
    fitted on them gives the test accuracy (CLIP: its zero-shot head, then probed).

    Returns:
        One dict per source: ``label``, ``nc1``, ``accuracy`` (floats).

    Reference:
        Lecture 6, "More variability collapse, better transfer performance"; Li et al. 2022, Fig. 1.

    Example:
        >>> rows = collapse_vs_transfer(source_models("small_resnet", lrs=(0.05,), snapshots=(1,),
        ...     config=FitConfig(progress=False)), "digits", per_class=10)
        >>> sorted(rows[0])
        ['accuracy', 'label', 'nc1']
    """
    rows = []
    for source in sources:
        train, test = downstream(
            dataset, source.backbone, per_class=per_class, root=root, seed=seed
        )
        result = fine_tune(
            source.backbone,
            "linear_probe",
            train,
            test,
            NUM_CLASSES[dataset],
            pretrained=source.pretrained,
            config=config,
            class_names=train.classes if source.backbone == "clip_vit_b32" else None,
            device=device,
        )
        rows.append({"label": source.label, "nc1": result.nc1, "accuracy": result.accuracy})
    return rows


def compare_methods(
    backbone: Backbone,
    dataset: DatasetName,
    methods: Sequence[str] = ("linear_probe", "layer_ft", "scl_ft", "full_ft"),
    *,
    pretrained: bool | Mapping[str, Tensor] = False,
    per_class: int | None = None,
    config: FitConfig = FitConfig(),
    root: str | os.PathLike = "data",
    image_size: int | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> list[TransferResult]:
    """Fine-tune one pretrained model on one downstream data set with each method.

    Every method sees the same training subset (``per_class`` samples per class, drawn with
    ``seed``; ``None``: all) and the same shuffling seed.

    Returns:
        One :class:`TransferResult` per method, in order.

    Example:
        >>> res = compare_methods("small_resnet", "digits", ["linear_probe"], per_class=5,
        ...                       config=FitConfig(progress=False))
        >>> [r.method for r in res]
        ['linear_probe']
    """
    for method in methods:
        _check_option("method", method, METHODS)
    train, test = downstream(
        dataset, backbone, per_class=per_class, root=root, image_size=image_size, seed=seed
    )
    return [
        fine_tune(
            backbone,
            method,
            train,
            test,
            NUM_CLASSES[dataset],
            pretrained=pretrained,
            config=config,
            class_names=train.classes if backbone == "clip_vit_b32" else None,
            image_size=image_size,
            device=device,
            generator=torch.Generator().manual_seed(seed),
        )
        for method in methods
    ]


def data_size_sweep(
    backbone: Backbone,
    dataset: DatasetName,
    sizes: Sequence[int],
    methods: Sequence[str] = ("linear_probe", "layer_ft", "scl_ft", "full_ft"),
    *,
    pretrained: bool | Mapping[str, Tensor] = False,
    seeds: Sequence[int] = (0,),
    config: FitConfig = FitConfig(),
    root: str | os.PathLike = "data",
    device: torch.device | str | None = None,
) -> dict[str, Tensor]:
    """Test accuracy of each method against the number of downstream training samples per class.

    Returns:
        Mapping method → accuracies ``(len(sizes),)``, each the mean over ``seeds`` (different
        training subsets and shuffles), on the CPU.

    Reference:
        Lecture 6, "Less overfitting compared to full model FT".

    Example:
        >>> out = data_size_sweep("small_resnet", "digits", [2], ["linear_probe"],
        ...                       config=FitConfig(progress=False))
        >>> out["linear_probe"].shape
        torch.Size([1])
    """
    table = {method: torch.zeros(len(sizes)) for method in methods}
    for i, n in enumerate(sizes):
        for seed in seeds:
            results = compare_methods(
                backbone,
                dataset,
                methods,
                pretrained=pretrained,
                per_class=n,
                config=config,
                root=root,
                device=device,
                seed=seed,
            )
            for result in results:
                table[result.method][i] += result.accuracy / len(seeds)
    return table
