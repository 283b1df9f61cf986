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

from lib.transfer.data import _labels


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
    dataset = _map_style(data)
    if dataset is not None and len(dataset) == 0:
        raise ValueError(f"{name} is empty (0 samples); pass a data set with samples")


def _check_labels(data: Dataset | DataLoader, num_classes: int, name: str = "data") -> None:
    """Labels of ``data`` must lie in ``[0, num_classes)`` (checked once, before training)."""
    dataset = _map_style(data)
    if dataset is None or len(dataset) == 0:
        return
    with _rng_untouched():
        labels = _labels(dataset)
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


def _check_layers(model: nn.Module, names: Sequence[str], blocks: Sequence[str]) -> None:
    """Every name in ``names`` (the ``layers`` argument) is a module of ``model``."""
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            raise ValueError(
                f"unknown layer {name!r} in layers; allowed values: {', '.join(blocks)} "
                "(or any name of model.named_modules())"
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
