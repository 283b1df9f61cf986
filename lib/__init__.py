"""``lib`` — the tested code behind the course book *Low-dimensional Representations in Deep Networks*.

The book's notebooks set parameters, call one ``lib`` function per idea and plot. Submodules are
imported lazily so that ``import lib`` is cheap and touches neither the network nor a GPU::

    from lib import metrics          # neural-collapse and separation metrics
    import lib
    DEVICE = lib.setup(seed=0, device="auto")
"""

from __future__ import annotations

import importlib
from typing import Any

from lib.runtime import report, resolve_device, seed_everything, setup

__all__ = ["report", "resolve_device", "seed_everything", "setup"]
__version__ = "0.1.0"

_SUBMODULES = (
    "completion",
    "data",
    "dln",
    "layerwise",
    "metrics",
    "plotting",
    "runtime",
    "separation",
    "spectra",
    "transfer",
)


def __getattr__(name: str) -> Any:
    # Lazy submodules: ``lib.metrics`` works after a bare ``import lib``.
    if name in _SUBMODULES:
        return importlib.import_module(f"lib.{name}")
    raise AttributeError(f"module 'lib' has no attribute {name!r}")
