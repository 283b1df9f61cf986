"""``lib`` — the tested code behind the course book *Low-dimensional Representations in Deep Networks*.

The book's notebooks set parameters, call one ``lib`` function per idea and plot. Submodules are
imported lazily so that ``import lib`` is cheap and touches neither the network nor a GPU::

    from lib import metrics          # neural-collapse and separation metrics
    import lib
    DEVICE = lib.setup(seed=0, device="auto")

Where each lecture section lives:

==========================================  =====================================================
Lecture 6                                   ``lib``
==========================================  =====================================================
shared by every chapter                     ``runtime``, ``plotting``, ``data``
§1 neural collapse, transfer learning       ``metrics/``, ``layerwise``, ``transfer/``
§2 the law of parsimony (deep linear nets)  ``dln/``, ``spectra``, ``parsimony/``
§3 progressive feature separation           ``separation/``
§4 deep matrix completion, compressed nets  ``completion/``
==========================================  =====================================================
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from types import ModuleType

from lib.runtime import report, resolve_device, seed_everything, setup

__all__ = ["report", "resolve_device", "seed_everything", "setup"]
__version__ = "0.1.0"

# Every public module and package of ``lib``, found from the package itself (not a hand-kept list).
_SUBMODULES = frozenset(
    m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
)

# Old names that notebooks students already hold still import: ``from lib import figures``.
_ALIASES = {
    "figures": "lib.parsimony.figures",
    "figures_completion": "lib.completion.figures",
    "figures_separation": "lib.separation.figures",
    "figures_transfer": "lib.transfer.figures",
}


def __getattr__(name: str) -> ModuleType:
    # Lazy submodules: ``lib.metrics`` works after a bare ``import lib``.
    if name in _SUBMODULES:
        return importlib.import_module(f"lib.{name}")
    if name in _ALIASES:
        module = importlib.import_module(_ALIASES[name])
        sys.modules[f"lib.{name}"] = module  # ``import lib.figures`` works too, afterwards
        return module
    raise AttributeError(f"module 'lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_ALIASES))
