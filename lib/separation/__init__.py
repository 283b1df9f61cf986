r"""Progressive feature separation: the per-layer measure :math:`D_l`, its log-linear decay, the theorem.

Lecture 6, section 3 (Wang et al. '23; He & Su '23). A network with weights
``Ws = [W_1, ..., W_L]`` maps an input row :math:`\boldsymbol x` to the features of layer :math:`l`,

.. math::

    \boldsymbol z^0 = \boldsymbol x,\qquad
    \boldsymbol z^l = \sigma(W_l \boldsymbol z^{l-1})\ (l < L),\qquad
    \boldsymbol z^L = W_L \boldsymbol z^{L-1},

with :math:`\sigma` the identity (linear network, :math:`\boldsymbol z^l = W_{l:1}\boldsymbol x`) or
ReLU. The separation of layer :math:`l` is
:math:`D_l = \operatorname{tr}\Sigma_W^l / \operatorname{tr}\Sigma_B^l`
(:func:`lib.metrics.trace_ratio`); the law of progressive separation says
:math:`\log D_l` falls on a line, i.e. :math:`D_{l+1}/D_l` is the same for every layer.

Where each idea lives (every name is re-exported here, ``lib.separation.<name>``):

* ``features`` — the data and the features: :func:`orthogonal_classes` (the lecture's square
  orthogonal inputs with one-hot targets), :func:`layer_features`, :func:`layer_separation`;
* ``theory`` — the decay and the theorem: :func:`decay_ratios`, :func:`fit_decay`,
  :func:`ideal_ratio`, :func:`ratio_bound` and :func:`theorem_assumptions` (each assumption
  measured);
* ``train`` — :func:`train_to_tolerance` (batched GD until the loss is below a tolerance, on top
  of :func:`lib.dln.train_batched`) and :func:`train_settings` (a sweep of :class:`Setting` s,
  runs of equal shapes trained as one batch, one :class:`SeparationRun` each);
* ``digits`` — beyond the lecture: :func:`load_digits` and :func:`train_digits_mlp`, a ReLU MLP
  trained on scikit-learn's offline ``digits`` images;
* ``figures`` — the chapter's figures, one call each, and (from ``widget``) its explorer
  :func:`figures.explorer`.

Data are rows, as everywhere in ``lib``: ``X`` is ``(N, d_0)`` and ``W_l`` is ``(d_l, d_{l-1})``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from lib.separation.digits import DigitsRun, DigitsSetting, load_digits, train_digits_mlp
from lib.separation.features import (
    ActivationName,
    layer_features,
    layer_separation,
    orthogonal_classes,
)
from lib.separation.theory import (
    Assumptions,
    DecayFit,
    decay_ratios,
    fit_decay,
    ideal_ratio,
    ratio_bound,
    theorem_assumptions,
)
from lib.separation.train import (
    Converged,
    Run,
    SeparationRun,
    Setting,
    train_settings,
    train_to_tolerance,
)

#: The old name of :data:`ActivationName` (``"linear"`` or ``"relu"``); :data:`lib.dln.Activation`
#: is a different type (``"relu"``, with ``None`` for the identity).
Activation = ActivationName

__all__ = [
    "ActivationName",
    "Assumptions",
    "Converged",
    "DecayFit",
    "DigitsRun",
    "DigitsSetting",
    "Run",
    "SeparationRun",
    "Setting",
    "decay_ratios",
    "fit_decay",
    "ideal_ratio",
    "layer_features",
    "layer_separation",
    "load_digits",
    "orthogonal_classes",
    "ratio_bound",
    "theorem_assumptions",
    "train_digits_mlp",
    "train_settings",
    "train_to_tolerance",
]


def __getattr__(name: str) -> ModuleType:
    # The plotting modules are imported on first use: they load matplotlib, which the numbers
    # do not need.
    if name in ("figures", "widget"):
        return importlib.import_module(f"lib.separation.{name}")
    raise AttributeError(f"module 'lib.separation' has no attribute {name!r}")
