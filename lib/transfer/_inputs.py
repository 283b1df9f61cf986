"""Entry checks of the training and evaluation functions of :mod:`lib.transfer` (private).

Each reads what it needs once, before any work: the size of the data, the first image, the
labels (from the data set's attributes when it has them). Reading samples never moves torch's
CPU or Python's random state, so results after a check are those without it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from lib._checks import check_int, check_nonempty, check_not_meta, check_type
from lib._checks import check_option as _check_option
from lib.transfer.data import _labels
from lib.transfer.models import METHODS

_DATA_HINT = "e.g. load_dataset(...), balanced_subset(...) or a TensorDataset(images, labels)"


@contextmanager
def _rng_untouched():
    """Read samples without moving torch's CPU or Python's random state (random transforms)."""
    state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(state)


def _map_style(data: Dataset | DataLoader) -> Dataset | None:
    """The map-style data set behind ``data`` (``None`` for an iterable one)."""
    dataset = data.dataset if isinstance(data, DataLoader) else data
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__getitem__"):
        return None
    try:
        len(dataset)
    except TypeError:
        return None
    return dataset


def _check_nonempty(data: Dataset | DataLoader, name: str = "data") -> None:
    """``data`` is a ``Dataset`` or ``DataLoader`` with at least one sample (when it can tell)."""
    check_type(name, data, (Dataset, DataLoader), _DATA_HINT)
    dataset = _map_style(data)
    if dataset is not None and len(dataset) == 0:
        raise ValueError(f"{name} is empty (0 samples); pass a data set with samples")


def _check_labels(data: Dataset | DataLoader, num_classes: int, name: str = "data") -> None:
    """Labels of ``data`` must lie in ``[0, num_classes)`` (checked once, before training)."""
    dataset = _map_style(data)
    if dataset is None or len(dataset) == 0:
        return
    with _rng_untouched():
        labels = _labels(dataset, name)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"labels of {name} must lie in [0, {num_classes}) for a {num_classes}-way head, got "
            f"labels from {low} to {high}; relabel the data or build the model with "
            f"num_classes={high + 1}"
        )


def _check_images(model: nn.Module, data: Dataset | DataLoader, name: str = "data") -> None:
    """The first image of ``data`` must be ``(C, H, W)`` with the channels the model expects."""
    expected = getattr(model, "in_chans", None)
    dataset = _map_style(data)
    if expected is None or dataset is None or len(dataset) == 0:
        return
    with _rng_untouched():
        sample = dataset[0]
    x = sample[0] if isinstance(sample, (tuple, list)) else sample
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 3 or shape[0] != expected:
        raise ValueError(
            f"images of {name} must be ({expected}, H, W) tensors for this {expected}-channel "
            f"network, got shape {shape} (sample 0); use the backbone's own preprocessing "
            "(load_dataset(..., backbone=...))"
        )
    if isinstance(x, Tensor):
        check_not_meta(f"images of {name}", x)
        param = next(model.parameters(), None)
        if param is not None and x.dtype != param.dtype:
            raise ValueError(
                f"images of {name} have dtype {x.dtype} but the model computes in {param.dtype} "
                f"(sample 0); convert the images (x.to({param.dtype})) or build the model with "
                f"dtype={x.dtype}"
            )


def _check_model(model: object, cls: type = nn.Module, hint: str = "e.g. build(...)") -> None:
    """``model`` is a ``cls`` with real weights (not on the ``meta`` device)."""
    check_type("model", model, cls, hint)
    param = next(model.parameters(), None)
    if param is not None and param.is_meta:
        raise ValueError(
            "model is on the 'meta' device (an architecture without weights, e.g. "
            "build(..., device='meta')), so it cannot be trained or evaluated; build it on "
            "'cpu' or 'cuda'"
        )


def _check_layers(model: nn.Module, names: Sequence[str], blocks: Sequence[str]) -> None:
    """Every name in ``names`` (the ``layers`` argument) is a module of ``model``."""
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            raise ValueError(
                f"unknown layer {name!r} in layers; allowed values: {', '.join(blocks)} "
                "(or any name of model.named_modules())"
            )


@contextmanager
def _one_sample_batches(loader: DataLoader):
    """Turn torch's "Expected more than 1 value per channel when training" (a training batch of
    one sample reached a BatchNorm layer that sees one value per channel) into our message.

    A ``try`` around the whole loop: nothing is checked per step.
    """
    try:
        yield
    except ValueError as err:
        if "more than 1 value per channel" not in str(err):
            raise
        dataset = _map_style(loader)
        n = len(dataset) if dataset is not None else None
        raise _one_sample_batch(err, loader.batch_size, n) from err


def _one_sample_batch(err: ValueError, batch_size: int | None, n: int | None) -> ValueError:
    """The message for a training batch of one sample that BatchNorm cannot normalise."""
    size = f"batch_size={batch_size} with {n} samples" if n is not None else "the data"
    return ValueError(
        f"{size} gives a training batch of 1 sample, which a BatchNorm layer being trained "
        "cannot normalise (one value per channel); choose a batch_size that leaves no batch of 1 "
        "(or drop one sample). The steps before it have already changed the model's weights: "
        f"build a fresh model before training again ({err})"
    )


def _stop_non_finite(epoch: int, config: Any, params: list[Tensor], scaled: bool) -> None:
    """Raise once an epoch's loss is NaN/inf (with a float16 scaler: only if weights broke)."""
    if scaled and all(bool(torch.isfinite(p).all()) for p in params):
        return  # the GradScaler skipped the overflowing steps; the weights are intact
    raise FloatingPointError(
        f"the training loss became non-finite (NaN or inf) in epoch {epoch + 1}; the model's "
        "weights are no longer usable: build a fresh model (or reload its weights) and train "
        f"with a smaller config.lr (was {config.lr}) or check the data for NaN/inf"
    )


# The experiments' sweeps (lib.transfer.experiments)

_ONE_VALUE = "value (the sweep would be empty)"


def _check_methods(methods: Sequence[str]) -> None:
    """``methods``: a non-empty list of distinct names from :data:`METHODS`."""
    if isinstance(methods, str):
        raise ValueError(f"methods must be a list of method names, got the string {methods!r}")
    _check_list("methods", methods, "method names")
    for method in methods:
        _check_option("method", method, METHODS)
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct, got {list(methods)}")


def _check_list(name: str, values: object, what: str) -> None:
    """``values``: a non-empty list, tuple or array (not a string, which would be iterated letter
    by letter, nor a single number)."""
    if isinstance(values, (str, bytes)) or not (
        hasattr(values, "__len__") and hasattr(values, "__iter__")
    ):
        raise TypeError(f"{name} must be a list of {what}, got {type(values).__name__}")
    check_nonempty(name, values, _ONE_VALUE)


def _check_subset(per_class: object, seed: object) -> tuple[int | None, int]:
    """:func:`downstream`'s draw: ``per_class`` ``None`` or ``>= 1``; ``seed`` an integer
    ``>= 0``. Returned as Python ints (``torch.Generator.manual_seed`` refuses NumPy ones)."""
    if per_class is not None:
        per_class = check_int("per_class", per_class, 1)
    return per_class, check_int("seed", seed, 0)
