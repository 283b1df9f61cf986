"""The linear probe's features cache, keyed by what produced it (private).

A cache file holds ``{"key", "H", "y"}`` (tensors and a string only, read with
``weights_only=True``). The key hashes the feature-extraction code (``inspect.getsource``), the
model (backbone, encoder class and a hash of every tensor of its ``state_dict``), the data
(number of samples, image shape, all labels and 8 evenly spaced images), the configuration
fields that reach the features and the device type. A different key means recompute and
overwrite; an unreadable file is a ``ValueError`` naming it.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lib.transfer._inputs import _map_style, _rng_untouched
from lib.transfer.data import _labels


def _digest(*parts: object) -> str:
    """SHA-256 of tensors (their bytes, dtype and shape) and plain values (their ``repr``)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Tensor):
            t = part.detach().to("cpu").contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


def _source_of(fn: Callable) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):  # no source on disk: fall back to the compiled code
        return repr(fn.__code__.co_code)


@torch.no_grad()
def _cache_key(
    model: nn.Module, data: Dataset | DataLoader, config: Any, device, code: Sequence[Callable]
) -> str:
    """What produced a features cache: ``code``, model, data (shapes, labels, a few images) and
    the ``config`` fields that reach the features (``batch_size``, ``amp``)."""
    dataset = _map_style(data)
    if dataset is None:
        raise ValueError(
            "cache needs a map-style Dataset (or a DataLoader over one) to check that the cached "
            "features belong to data; pass cache=None for an iterable data set"
        )
    n = len(dataset)
    picks = sorted({round(i * (n - 1) / 7) for i in range(8)})  # 8 evenly spaced samples
    with _rng_untouched():
        labels = _labels(dataset)
        images = [torch.as_tensor(dataset[i][0]) for i in picks]
    weights = model.encoder.state_dict()
    return _digest(
        "features-cache-v1",
        *[_source_of(fn) for fn in code],
        model.backbone,
        model.normalize,
        model.num_features,
        type(model.encoder).__qualname__,
        *[x for name, t in weights.items() for x in (name, t)],
        n,
        tuple(images[0].shape),
        labels,
        *images,
        config.batch_size,
        config.amp,
        torch.device(device).type,
    )


def _read_cache(path: Path, key: str, device) -> tuple[Tensor, Tensor] | None:
    """Cached ``(H, y)`` when ``path`` holds features with this ``key``; ``None`` to recompute."""
    if not path.exists():
        return None
    try:
        stored = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # pickle, zip and torch errors alike: the file is not a cache
        raise ValueError(
            f"cache file {str(path)!r} cannot be read as a features cache ({err}); delete it or "
            "pass another cache path"
        ) from err
    if not isinstance(stored, dict) or not {"H", "y"} <= stored.keys():
        raise ValueError(
            f"cache file {str(path)!r} is not a features cache (expected a dict with 'H' and "
            "'y'); delete it or pass another cache path"
        )
    if stored.get("key") != key:
        return None  # written for another model, data, configuration or code: recompute
    return stored["H"], stored["y"]
