r"""Layer-wise collapse of a transfer model: :math:`\mathcal{NC}_1^l` of every residual block's
output and of the penultimate features, the lecture's "intermediate layers" view of fine-tuning.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import DataLoader, Dataset

from lib._checks import check_int, check_nonempty, check_num_classes, check_type
from lib.layerwise import layer_collapse
from lib.transfer._inputs import (
    _check_images,
    _check_labels,
    _check_layers,
    _check_model,
    _check_nonempty,
)
from lib.transfer.backbones import residual_blocks
from lib.transfer.models import TransferModel
from lib.transfer.train import _loader

__all__ = ["layer_names", "layer_nc1"]


def layer_names(model: TransferModel) -> list[str]:
    """Hookable names of every residual block of the backbone, then ``"penultimate"``.

    Args:
        model: a :class:`TransferModel`.

    Returns:
        Module names in ``model.named_modules()``, input to output (:func:`layer_nc1`'s default).

    Example:
        >>> layer_names(build("small_resnet", 5, "full_ft"))[-2:]
        ['encoder.layer4.1', 'penultimate']
    """
    check_type("model", model, TransferModel, "the result of build(...)")
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
    _check_model(model, TransferModel, "the result of build(...)")
    K = check_num_classes(num_classes)
    batch_size = check_int("batch_size", batch_size, 1)
    if isinstance(layers, str):
        raise ValueError(f"layers must be a list of module names, got the string {layers!r}")
    if layers is not None:
        check_nonempty("layers", layers, "module name (or None for every block)")
    names = list(layers or layer_names(model))
    _check_layers(model, names, layer_names(model))
    _check_nonempty(data)
    _check_images(model, data)
    _check_labels(data, K)
    loader = _loader(data, batch_size, False)
    return layer_collapse(model, loader, names, num_classes)
