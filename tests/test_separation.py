"""lib.separation as a package: every old name resolves where it did, and the old aliases hold.

The numbers are tested per module: tests/test_separation_{features,theory,train,digits,figures}.py.
"""

from __future__ import annotations

import importlib

import pytest

import lib
from lib import dln
from lib import separation as sep

# ``__all__`` of lib/separation.py before it became a package.
OLD_NAMES = [
    "Assumptions",
    "Converged",
    "DecayFit",
    "DigitsRun",
    "DigitsSetting",
    "Run",
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

# Every function of lib/figures_separation.py before it moved to lib/separation/figures.py.
OLD_FIGURES = [
    "interactive_profile",
    "plot_by_activation",
    "plot_digits",
    "plot_profile",
    "plot_profiles",
    "plot_ratio_summary",
    "plot_ratios",
    "plot_tradeoff",
]


def test_every_old_name_is_reexported_by_the_package():
    assert isinstance(sep.__all__, list)
    assert set(OLD_NAMES) <= set(sep.__all__)
    for name in sep.__all__:
        assert getattr(sep, name) is not None, name


def test_every_old_figure_function_resolves_under_both_names():
    figures = importlib.import_module("lib.separation.figures")
    assert lib.figures_separation is figures and sep.figures is figures
    assert set(OLD_FIGURES) <= set(figures.__all__)
    for name in figures.__all__:
        assert callable(getattr(figures, name)) or name == "EXPLORER_SCALES", name


def test_old_aliases_name_the_same_objects():
    assert sep.Run is sep.SeparationRun  # parsimony's Run is another idea: a simulate() record
    assert sep.Activation is sep.ActivationName
    assert sep.ActivationName.__args__ == ("linear", "relu")
    assert dln.Activation.__args__ == ("relu",)  # lib.dln's: None is the identity there


def test_unknown_attributes_raise():
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        sep.nothing  # noqa: B018
