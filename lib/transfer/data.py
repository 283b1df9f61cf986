"""Data of the transfer chapter: the offline digits tasks and torchvision's downstream data sets.

:func:`load_dataset` returns the offline source and downstream tasks (scikit-learn's 8×8 digits,
split into digits 0–4 and 5–9) or a torchvision data set with a backbone's own preprocessing
(:func:`preprocess`), downloaded when online; offline and not on disk it raises
:class:`~lib.transfer.offline.OfflineError` in seconds. :func:`balanced_subset` draws the scarce
downstream training sets.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, TensorDataset
from torchvision import datasets as tvd

from lib._checks import check_int, check_type
from lib._checks import check_option as _check_option
from lib.data import digits as _load_digits
from lib.transfer import offline  # offline._reachable looked up per call: tests stand in for it
from lib.transfer.backbones import (
    _OWN_BACKBONES,
    _PUBLIC_BACKBONES,
    _TIMM_MODELS,
    BACKBONES,
    Backbone,
    _check_image_size,
    _NameTable,
)
from lib.transfer.offline import OfflineError

__all__ = ["DATASETS", "NUM_CLASSES", "balanced_subset", "load_dataset", "preprocess"]

DatasetName = Literal["digits", "digits_source", "cifar10", "cifar100", "aircraft", "dtd", "pet"]

DATASETS: tuple[str, ...] = (
    "digits",
    "digits_source",
    "cifar10",
    "cifar100",
    "aircraft",
    "dtd",
    "pet",
)

#: Classes of each data set (``digits``: digits 5–9; ``digits_source``: digits 0–4). An unknown
#: name raises a ``ValueError`` (also a ``KeyError``) listing the known ones.
NUM_CLASSES: dict[str, int] = _NameTable(
    "data set",
    {
        "digits": 5,
        "digits_source": 5,
        "cifar10": 10,
        "cifar100": 100,
        "aircraft": 100,
        "dtd": 47,
        "pet": 37,
    },
)


class _DigitsAsPhotos(Dataset):
    """Digits ``(N, 1, 8, 8)`` shown to a public backbone: each a grey 8×8 RGB picture, put
    through the backbone's own preprocessing (:func:`preprocess`) when it is read."""

    def __init__(self, digits: _LabelledTensors, transform: Callable[[Any], Tensor]) -> None:
        pixels = (digits.tensors[0] * 0.4 + 0.3).clamp(0, 1)  # undo _digits' normalisation
        self.pixels = (pixels * 255).round().to(torch.uint8)  # (N, 1, 8, 8)
        self.labels = digits.tensors[1]
        self.transform = transform
        self.classes = digits.classes
        self.targets = digits.targets

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        from PIL import Image

        picture = Image.fromarray(self.pixels[i, 0].numpy(), mode="L").convert("RGB")
        return self.transform(picture), self.labels[i]


class _LabelledTensors(TensorDataset):
    """A ``TensorDataset`` of ``(images, labels)`` with ``classes`` and ``targets``."""

    def __init__(self, images: Tensor, labels: Tensor, classes: Sequence[str]) -> None:
        super().__init__(images, labels)
        self.classes = list(classes)
        self.targets = labels


def _digits(name: str, split: str, split_seed: int = 0) -> _LabelledTensors:
    """scikit-learn's 8×8 digits: ``digits_source`` = 0–4, ``digits`` = 5–9 (relabelled 0–4).

    Pixels are scaled to ``[0, 1]``, then to roughly zero mean and unit variance. Per class, the
    first 100 images of one random permutation train and the rest test.

    Args:
        name: ``"digits"`` or ``"digits_source"``.
        split: ``"train"`` or ``"test"``.
        split_seed: seed of the permutation. The train and the test call must draw the same
            permutation (else the splits overlap), which is why this is a seed and not a
            generator whose state would differ between the calls.

    Returns:
        ``(images (N, 1, 8, 8) float32, labels (N,) int64)`` on the CPU, with ``classes``.
    """
    X, labels = _load_digits(dtype=torch.float32)  # (1797, 64) in [0, 16], (1797,) int64
    images = X.view(-1, 1, 8, 8) / 16.0
    images = (images - 0.3) / 0.4  # roughly zero mean, unit variance
    first = 0 if name == "digits_source" else 5
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(split_seed))
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

    Args:
        backbone: one of :data:`BACKBONES` except ``"small_resnet"`` and ``"small_vit"`` (their
            digits come as tensors).
        image_size: output side ``S``; default the checkpoint's (224).

    Returns:
        A torchvision transform.

    Example:
        >>> preprocess("resnet18", image_size=32).__class__.__name__
        'Compose'
    """
    _check_option("backbone", backbone, _PUBLIC_BACKBONES)
    image_size = _check_image_size("image_size", image_size)
    if backbone == "clip_vit_b32":
        from open_clip.transform import image_transform  # lazy: seconds to import

        return image_transform(image_size or 224, is_train=False)
    import timm  # lazy: seconds to import
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
    split_seed: int = 0,
) -> Dataset:
    """A downstream (or source) data set with the backbone's preprocessing.

    ``"digits"`` and ``"digits_source"`` are scikit-learn's 8×8 digits (shipped with the package,
    no download): digits 5–9 and 0–4, 100 training images per class, the rest (about 80 per
    class) for testing, as normalised ``(1, 8, 8)`` tensors for ``"small_resnet"`` and
    ``"small_vit"``; for a public backbone each digit is a grey RGB picture put through the
    backbone's preprocessing (so its online path runs offline, e.g. on random weights). The others
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
        split_seed: digits only: seed of the random train/test split. A seed, not a generator,
            because the ``"train"`` and ``"test"`` calls must draw the same permutation (with
            different seeds the splits would overlap).

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
    check_type("root", root, (str, os.PathLike), "a folder path")
    check_type("download", download, bool)
    image_size = _check_image_size("image_size", image_size)
    split_seed = check_int("split_seed", split_seed, 0)
    if backbone in _OWN_BACKBONES:
        if not name.startswith("digits"):
            raise ValueError(f"{backbone!r} reads 1×8×8 digits; use another backbone for {name!r}")
        return _digits(name, split, split_seed)
    transform = preprocess(backbone, image_size=image_size)
    return _pictures(name, split, transform, root, download, split_seed)


def _pictures(
    name: str,
    split: str,
    transform: Callable[[Any], Tensor],
    root: str | os.PathLike,
    download: bool,
    split_seed: int,
) -> Dataset:
    """:func:`load_dataset` for a network that reads pictures through ``transform`` (arguments
    already checked): the digits as grey RGB pictures, or a torchvision data set."""
    if name.startswith("digits"):  # offline: scikit-learn's digits, split here
        return _DigitsAsPhotos(_digits(name, split, split_seed), transform)
    cls, kwargs, url = _torchvision_spec(name, split)
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
        if not offline._reachable(host):
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


def _labels(data: Dataset, name: str = "data") -> Tensor:
    """Labels ``(N,)`` of a data set, from its attributes when it has them.

    Labels are class indices: integer labels (any width) are returned as ``int64``; floating
    labels (``0.5`` would silently become class 0) or one that is not a scalar raise
    ``ValueError`` naming ``name``.
    """
    if isinstance(data, Subset):
        return _labels(data.dataset, name)[torch.as_tensor(data.indices, dtype=torch.long)]
    for attr in ("targets", "_labels", "labels"):
        values = getattr(data, attr, None)
        if values is not None and len(values) == len(data):
            return _class_indices(torch.as_tensor(values), name)
    labels = []
    for i in range(len(data)):
        sample = data[i]
        if not isinstance(sample, (tuple, list)) or len(sample) < 2:
            raise ValueError(
                f"samples of {name} must be (image, label) pairs, got {type(sample).__name__} "
                f"(sample {i})"
            )
        labels.append(torch.as_tensor(sample[1]))
    return _class_indices(torch.stack(labels) if labels else torch.zeros(0, dtype=torch.long), name)


def _class_indices(labels: Tensor, name: str) -> Tensor:
    """``labels`` ``(N,)`` as ``int64`` if they are integer class indices, one per sample."""
    if labels.ndim != 1:
        raise ValueError(
            f"labels of {name} must be one class index per sample, shape (N,), got shape "
            f"{tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"labels of {name} must be integer class indices, got dtype {labels.dtype}; convert "
            "them with .long() (after checking that they hold whole numbers)"
        )
    return labels.to(torch.long)


def balanced_subset(
    data: Dataset, per_class: int, *, generator: torch.Generator | None = None
) -> Subset:
    """``per_class`` random samples of every class (all of a class when it has fewer).

    Args:
        data: a labelled ``Dataset`` (labels read from ``targets``/``_labels``/``labels`` when
            present, else from the samples).
        per_class: samples kept per class, ``>= 1``.
        generator: the draw (one ``randperm`` of all samples).

    Returns:
        A ``Subset`` of ``data`` (indices in increasing order) with ``data``'s ``classes``.

    Example:
        >>> len(balanced_subset(load_dataset("digits", "train"), 10))
        50
    """
    check_type("data", data, Dataset, "a labelled data set, e.g. load_dataset(...)")
    per_class = check_int("per_class", per_class, 1)
    if generator is not None:
        check_type("generator", generator, torch.Generator)
    if len(data) == 0:
        raise ValueError("data is empty (0 samples); there is nothing to draw from")
    labels = _labels(data)
    order = torch.randperm(len(labels), generator=generator)
    chosen = [order[labels[order] == k][:per_class] for k in labels.unique().tolist()]
    subset = Subset(data, torch.cat(chosen).sort().values.tolist())
    subset.classes = getattr(data, "classes", None)
    return subset
