r"""Chapter 2: the law of parsimony in deep linear networks (Lecture 6, §2; Yaras et al. '23).

:mod:`lib.dln` trains the networks and :mod:`lib.spectra` measures their SVDs; this package holds
the chapter's own ideas, one module each:

* :mod:`lib.parsimony.theory` — :func:`rho_recursion` (the shared singular value
  :math:`\rho(t)`) and :func:`invariant_subspaces` (the directions GD never moves);
* :mod:`lib.parsimony.checks` — the theorem checked and measured on trained weights:
  :func:`check_law`, :func:`svd_evolution`, :func:`rho_measured`, :func:`block_spread`,
  :func:`block_drift`, :func:`deviation`, and :func:`floor_small` to print them;
* :mod:`lib.parsimony.simulation` — the lecture's setting in one call: :class:`RunConfig`,
  :func:`simulate` (batched over per-run hyperparameters), :func:`conditioned_inputs`, and the
  ε-sweep presets :class:`SweepConfig`, :data:`SWEEPS`;
* :mod:`lib.parsimony.figures` — the chapter's figures (formerly ``lib.figures``);
* :mod:`lib.parsimony.interactive` — one run's panels and the ipywidgets explorer (their names are
  importable from :mod:`lib.parsimony.figures` too).

Every name of the former module ``lib.parsimony`` is importable from here.
"""

from __future__ import annotations

# ``parsimony.figures.plot_rho`` after ``from lib import parsimony`` (matplotlib loads only when a
# figure is drawn); the other submodules become attributes through the imports below.
from lib.parsimony import figures as figures
from lib.parsimony import interactive as interactive
from lib.parsimony.checks import (
    Deviation,
    LawCheck,
    SvdEvolution,
    block_drift,
    block_spread,
    check_law,
    deviation,
    floor_small,
    rho_measured,
    svd_evolution,
)
from lib.parsimony.simulation import (
    SWEEPS,
    Run,
    RunConfig,
    SweepConfig,
    conditioned_inputs,
    simulate,
)
from lib.parsimony.theory import invariant_subspaces, rho_recursion

__all__ = [
    "SWEEPS",
    "Deviation",
    "LawCheck",
    "Run",
    "RunConfig",
    "SvdEvolution",
    "SweepConfig",
    "block_drift",
    "block_spread",
    "check_law",
    "conditioned_inputs",
    "deviation",
    "floor_small",
    "invariant_subspaces",
    "rho_measured",
    "rho_recursion",
    "simulate",
    "svd_evolution",
]
