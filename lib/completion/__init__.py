r"""Deep matrix completion with compressed deep linear networks.

Lecture section 4, *Efficient deep matrix completion* (Yaras et al. '23; Kwon et al. '23). A deep
linear network with weights ``Ws = [W_1, ..., W_L]`` (``W_l`` of shape ``(d_l, d_{l-1})``, as in
:mod:`lib.dln`) is fitted to the observed entries of a low-rank matrix :math:`\Phi` by full-batch
gradient descent on

.. math::

    \ell(\Theta) = \frac{1}{2d^2}\,\big\|\Omega\odot(W_{L:1} - \Phi)\big\|_F^2 ,

the loss convention of the public code (``½ · mean`` over all :math:`d^2` entries of the masked
residual), whose learning rates are tuned for it. The *test* loss is the same with
:math:`1-\Omega` in place of :math:`\Omega`.

Three networks, all started from ε-orthogonal weights:

* ``"original"`` — ``L`` square layers of width ``d`` (:math:`L d^2` parameters);
* ``"compressed"`` — the law of parsimony says that gradient descent on the original network only
  moves a :math:`2\hat r`-dimensional subspace of every layer. Keep that subspace, found from the
  SVD of the first gradient and the initial weights:
  :math:`W_{L:1}(t) \approx U_{L,1}\,\widetilde W_L(t)\cdots\widetilde W_1(t)\,V_{1,1}^\top` with
  inner factors :math:`\widetilde W_l(0) = \varepsilon I_{2\hat r}` and thin outer factors
  :math:`V_{1,1}, U_{L,1} \in \mathbb R^{d\times 2\hat r}` trained at the *discrepant* rate
  :math:`\gamma\eta` (:math:`L(2\hat r)^2 + 4 d\hat r` parameters);
* ``"narrow"`` — ``L`` layers of width :math:`2\hat r` from a fresh ε-orthogonal initialisation
  (same parameter count as the compressed network up to :math:`2(2\hat r)^2`).

Compressed and narrow networks are stored like any network of :mod:`lib.dln`: the first weight is
``(k, d)``, the last ``(d, k)``, the inner ones ``(k, k)`` with ``k = 2 r̂``. Their loss and
gradient are evaluated **on the observed entries only** — gather rows of the thin outer factors,
one dot product per observed entry, sum back along each row and each column of Φ (the entries
stored as padded rows and columns: no atomics) — in :math:`O(|\Omega|\,\hat r + d\hat r^2)` per
step; a dense path (:math:`O(d^2\hat r)`) is kept as a reference and for small ``d``. On a GPU the
observed-entry step is three Triton kernels (:mod:`lib.completion._triton`) replayed as CUDA graphs.

Where each idea lives:

==========================================  ==================================================
the problem, its loss, a learning rate      ``problem.py``: :class:`Problem`, :func:`make_problem`,
                                            :func:`losses`, :func:`default_lr`,
                                            :func:`parameter_count`
the three networks, the compression         ``network.py``: :func:`init_original`,
                                            :func:`init_narrow`, :func:`first_gradient`,
                                            :func:`compress`
training (the public contract)              ``train.py``: :func:`fit`, :class:`FitResult`,
                                            :func:`project_trajectories`
one GD step, in place (every step mode)     ``_steps.py``
networks as buffers, step modes, runners    ``_engine.py``
the fused GPU step (optional Triton)        ``_triton.py``
recovery against p, for several depths     ``sweep.py``: :func:`sample_complexity`,
                                            :func:`min_nuclear_norm`, :func:`relative_error`
large d, no d x d array anywhere            ``large/``: :func:`large.make_large_problem`,
                                            :func:`large.compress_large`, :func:`large.fit_large`
the chapter's figures                       ``figures.py``
==========================================  ==================================================

:func:`fit` runs gradient descent sync-free on the device; on a GPU its steps replay as CUDA
graphs.

What a step costs and how long a run takes are measured, not quoted: ``bench/completion.py``,
``bench/completion_sizes.py`` and ``bench/completion_large.py`` write records with their
provenance to ``lib/results/records/`` (read them with :func:`lib.results.load`), and the
appendix *Making it fast* renders them. In float64 the fused and PyTorch steps agree to rounding
and stop at the same step; in float32 their rounding differs, which shifts the escapes from the
saddles of incremental learning, so the step counts of the two differ.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from lib.completion.network import EXACT_SVD_MAX_D as EXACT_SVD_MAX_D
from lib.completion.network import compress, first_gradient, init_narrow, init_original
from lib.completion.problem import Method as Method
from lib.completion.problem import (
    Problem,
    default_lr,
    losses,
    make_problem,
    parameter_count,
)
from lib.completion.sweep import (
    SampleComplexity,
    min_nuclear_norm,
    relative_error,
    sample_complexity,
)
from lib.completion.train import Evaluation as Evaluation
from lib.completion.train import FitResult, fit, project_trajectories
from lib.completion.train import Layout as Layout
from lib.completion.train import StepMode as StepMode

__all__ = [
    "FitResult",
    "Problem",
    "SampleComplexity",
    "compress",
    "default_lr",
    "first_gradient",
    "fit",
    "init_narrow",
    "init_original",
    "losses",
    "make_problem",
    "min_nuclear_norm",
    "parameter_count",
    "project_trajectories",
    "relative_error",
    "sample_complexity",
]


def __getattr__(name: str) -> ModuleType:
    # The figures are imported on first use (``lib.completion.figures`` or ``from lib.completion
    # import figures``): they are drawn with matplotlib, which the numbers do not need. So is
    # ``large`` (``lib.completion.large.fit_large``), which the chapter does not use.
    if name in ("figures", "large"):
        return importlib.import_module(f"lib.completion.{name}")
    raise AttributeError(f"module 'lib.completion' has no attribute {name!r}")
