r"""Deep linear networks (DLNs): data, ε-orthogonal initialisation and full-batch GD.

Lecture section 2, *Law of parsimony in gradient dynamics* (Yaras et al. '23); chapters 3 and 4
train their networks with it too. Data are rows: ``X`` is ``(N, d_0)``, ``Y`` is ``(N, d_L)``,
and the network with weights ``Ws = [W_1, ..., W_L]``, ``W_l`` of shape ``(d_l, d_{l-1})``,
computes

.. math::

    F(X) = X W_1^\top W_2^\top \cdots W_L^\top = (W_L \cdots W_1 X^\top)^\top = (W_{L:1} X^\top)^\top,

which is the lecture's :math:`W_{L:1} X` with the lecture's columns turned into rows. The lecture's
whitening :math:`XX^\top = I` (columns) is :math:`X^\top X = I_{d_0}` here (rows).

Where things are:

* :mod:`lib.dln.data` — :func:`whitened_inputs`, :func:`whiten`, :func:`low_rank_targets`,
  :func:`one_hot_targets`;
* :mod:`lib.dln.weights` — :func:`init_weights`, :func:`init_weights_batched`,
  :func:`stack_runs`, :func:`unstack_runs`, :func:`end_to_end`;
* :mod:`lib.dln.training` — :func:`train` (one run, the public contract) and
  :func:`train_batched` (``B`` independent runs as one batched computation: closed-form
  gradients with ``torch.bmm`` / ``torch.baddbmm``, no Python loop over runs), both returning a
  :class:`History`.

Precision: data, initialisation and training work in any floating dtype — float16 and bfloat16
included (a loss that overflows is reported as divergence at the next record); :func:`whiten`
needs float32 or float64 (torch has no SVD in half precision) and refuses the others. Every
public function checks its arguments once, at entry, and names the argument it refuses.

The theory of the chapter — :func:`rho_recursion` (the shared singular value :math:`\rho(t)` of
the untouched directions) and :func:`invariant_subspaces` (those directions) — lives in
:mod:`lib.parsimony.theory`; ``lib.dln.rho_recursion`` and ``lib.dln.invariant_subspaces``
still resolve. SVD diagnostics live in :mod:`lib.spectra`.
"""

from __future__ import annotations

import importlib

# Type aliases of the public signatures, re-exported (``PerRun``: one number or one per run).
from lib.dln._common import Activation as Activation
from lib.dln._common import InitKind as InitKind
from lib.dln._common import PerRun as PerRun
from lib.dln._common import Reduction as Reduction
from lib.dln._common import _resolve_dtype as _resolve_dtype  # used by lib.completion
from lib.dln.data import low_rank_targets, one_hot_targets, whiten, whitened_inputs
from lib.dln.training import History, loss_coefficient, train, train_batched
from lib.dln.weights import (
    end_to_end,
    init_weights,
    init_weights_batched,
    stack_runs,
    unstack_runs,
)

__all__ = [
    "History",
    "end_to_end",
    "init_weights",
    "init_weights_batched",
    "invariant_subspaces",
    "loss_coefficient",
    "low_rank_targets",
    "one_hot_targets",
    "rho_recursion",
    "stack_runs",
    "train",
    "train_batched",
    "unstack_runs",
    "whiten",
    "whitened_inputs",
]

# The theory moved to lib.parsimony.theory, which imports lib.dln: importing it here at the top
# would be an import cycle. These names resolve on first use instead (PEP 562).
_THEORY = {"rho_recursion", "invariant_subspaces", "Group"}


def __getattr__(name: str):
    if name in _THEORY:
        value = getattr(importlib.import_module("lib.parsimony.theory"), name)
        globals()[name] = value  # later look-ups are plain attribute reads
        return value
    raise AttributeError(f"module 'lib.dln' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _THEORY)
