"""Bad inputs of lib.separation.figures and its widget (issue 15): wrong objects (None, a run of
the other kind, a single run where a list is expected, an empty list, axes that are not axes)
are refused at entry, naming the argument; the widget's arguments are checked before it trains,
so a typo is an error, not a panel that says "training failed"."""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from _cases import case, covers  # noqa: E402

from lib import separation as sep  # noqa: E402
from lib.separation.figures import (  # noqa: E402
    explorer,
    interactive_profile,
    plot_activation_row,
    plot_bound_check,
    plot_by_activation,
    plot_digits,
    plot_digits_row,
    plot_explorer,
    plot_profile,
    plot_profile_row,
    plot_profiles,
    plot_ratio_summary,
    plot_ratios,
    plot_tradeoff,
    plot_tradeoff_row,
)

NAN = float("nan")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is fastest
_TINY = dict(num_classes=2, per_class=3, depth=3, lr=2.0, max_steps=400, check_every=20)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@functools.cache
def _runs():
    """A linear and a ReLU run of the lecture's setting, tiny."""
    base = sep.Setting(**_TINY)
    return tuple(sep.train_settings([base, sep.Setting(**(_TINY | {"activation": "relu"}))]))


@functools.cache
def _digits_run():
    """A DigitsRun built by hand (its figures read the separations, the accuracy and the fit)."""
    D = torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)
    return sep.DigitsRun(sep.DigitsSetting(depth=2), D, 1.5 * D, 0.9, 0.8, torch.nn.Identity())


def _lin():
    return _runs()[0]


def _relu():
    return _runs()[1]


def _ax():
    return plt.subplots()[1]


def _axes2():
    return list(plt.subplots(1, 2)[1])


# --------------------------------------------------------------------------------------------
# the panels (axes first, they return None)
# --------------------------------------------------------------------------------------------

PANEL_TYPES = [
    case("profile-run-none", plot_profile, lambda: plot_profile(_ax(), None), r"^run must be a SeparationRun"),
    case("profile-digits-run", plot_profile, lambda: plot_profile(_ax(), _digits_run()), r"^run must be a SeparationRun"),
    case("profile-ax-none", plot_profile, lambda: plot_profile(None, _lin()), r"^ax must be a Axes"),
    case("profile-ax-list", plot_profile, lambda: plot_profile(_axes2(), _lin()), r"^ax must be a Axes"),
    case("profiles-one-run", plot_profiles, lambda: plot_profiles(_ax(), _lin(), ["a"]), r"^runs must be a list of SeparationRun"),
    case("profiles-run-none", plot_profiles, lambda: plot_profiles(_ax(), [None], ["a"]), r"^runs\[0\] must be a SeparationRun"),
    case("by_activation-run-tensor", plot_by_activation, lambda: plot_by_activation(_axes2(), [_lin().separation]), r"^runs\[0\] must be"),
    case("by_activation-axes-not-axes", plot_by_activation, lambda: plot_by_activation([1, 2], [_lin()]), r"^axes\[0\] must be a Axes"),
    case("ratios-run-none", plot_ratios, lambda: plot_ratios(_ax(), [None]), r"^runs\[0\] must be a SeparationRun"),
    case("ratios-ax-none", plot_ratios, lambda: plot_ratios(None, [_lin()]), r"^ax must be a Axes"),
    case("ratio_summary-str", plot_ratio_summary, lambda: plot_ratio_summary(_ax(), "runs"), r"^runs must be a list"),
    case("tradeoff-ax_speed-none", plot_tradeoff, lambda: plot_tradeoff(_ax(), None, [_lin()]), r"^ax_speed must be a Axes"),
    case("tradeoff-run-dict", plot_tradeoff, lambda: plot_tradeoff(_ax(), _ax(), [{"steps": 1}]), r"^runs\[0\] must be"),
    case("digits-run-none", plot_digits, lambda: plot_digits(_ax(), None, "t"), r"^run must be a DigitsRun"),
    case("digits-separation-run", plot_digits, lambda: plot_digits(_ax(), _lin(), "t"), r"^run must be a DigitsRun"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), PANEL_TYPES)
def test_panels_refuse_wrong_objects(call, name):
    with pytest.raises(TypeError, match=name):
        call()


PANEL_VALUES = [
    case("profiles-empty", plot_profiles, lambda: plot_profiles(_ax(), [], []), r"^runs is empty"),
    case("profiles-labels-short", plot_profiles, lambda: plot_profiles(_ax(), [_lin(), _relu()], ["a"]), r"^labels must hold one label per run \(2\)"),
    case("profiles-labels-str", plot_profiles, lambda: plot_profiles(_ax(), [_lin()], "a"), r"^labels must hold one label"),
    case("by_activation-empty", plot_by_activation, lambda: plot_by_activation(_axes2(), []), r"^runs is empty"),
    case("by_activation-one-axis", plot_by_activation, lambda: plot_by_activation([_ax()], [_lin()]), r"^axes must be two matplotlib axes"),
    case("ratios-empty", plot_ratios, lambda: plot_ratios(_ax(), []), r"^runs is empty"),
    case("ratio_summary-empty", plot_ratio_summary, lambda: plot_ratio_summary(_ax(), []), r"^runs is empty"),
    case("ratio_summary-relu-only", plot_ratio_summary, lambda: plot_ratio_summary(_ax(), [_relu()]), r"^runs holds no linear"),
    case("tradeoff-empty", plot_tradeoff, lambda: plot_tradeoff(_ax(), _ax(), []), r"^runs is empty"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), PANEL_VALUES)
def test_panels_refuse_bad_values(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# --------------------------------------------------------------------------------------------
# the one-call figures (data first, ax=None, they return the figure)
# --------------------------------------------------------------------------------------------

ROW_TYPES = [
    case("profile_row-one-run", plot_profile_row, lambda: plot_profile_row(_lin()), r"^runs must be a list"),
    case("profile_row-none", plot_profile_row, lambda: plot_profile_row([None]), r"^runs\[0\] must be"),
    case("activation_row-tuple-of-none", plot_activation_row, lambda: plot_activation_row((None,)), r"^runs\[0\] must be"),
    case("bound_check-all_runs-none", plot_bound_check, lambda: plot_bound_check([_lin()], None), r"^all_runs must be a list"),
    case("tradeoff_row-str", plot_tradeoff_row, lambda: plot_tradeoff_row("runs"), r"^runs must be a list"),
    case("digits_row-separation-run", plot_digits_row, lambda: plot_digits_row([_lin()], ["a"]), r"^runs\[0\] must be a DigitsRun"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), ROW_TYPES)
def test_figures_refuse_wrong_objects(call, name):
    _runs()
    with pytest.raises(TypeError, match=name):
        call()
    assert not plt.get_fignums()  # refused before a figure was made


ROW_VALUES = [
    case("profile_row-empty", plot_profile_row, lambda: plot_profile_row([]), r"^runs is empty"),
    case("profile_row-names", plot_profile_row, lambda: plot_profile_row([_lin()], ["a", "b"]), r"^names must hold one name per run"),
    case("activation_row-empty", plot_activation_row, lambda: plot_activation_row([]), r"^runs is empty"),
    case("bound_check-empty", plot_bound_check, lambda: plot_bound_check([], [_lin()]), r"^runs is empty"),
    case("bound_check-no-linear", plot_bound_check, lambda: plot_bound_check([_lin()], [_relu()]), r"^all_runs holds no linear"),
    case("tradeoff_row-empty", plot_tradeoff_row, lambda: plot_tradeoff_row([]), r"^runs is empty"),
    case("digits_row-empty", plot_digits_row, lambda: plot_digits_row([], []), r"^runs is empty"),
    case("digits_row-names", plot_digits_row, lambda: plot_digits_row([_digits_run()], "ab"), r"^names must hold one name per run"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), ROW_VALUES)
def test_figures_refuse_bad_values(call, name):
    _runs()
    with pytest.raises(ValueError, match=name):
        call()
    assert not plt.get_fignums()


@covers(plot_by_activation, plot_activation_row, plot_profile_row, plot_digits_row)
def test_figures_accept_edge_inputs():
    """Runs of one activation leave the other panel empty (not an error); a tuple of runs and
    a NumPy array of axes are valid."""
    axes = plt.subplots(1, 2)[1]  # a NumPy array of two axes
    plot_by_activation(axes, [_lin()])
    assert len(axes[0].lines) == 2 and not axes[1].lines
    assert len(plot_activation_row(_runs()).axes) == 2
    assert len(plot_profile_row(_runs(), ("linear", "relu")).axes) == 2
    fig = plot_digits_row((_digits_run(),), ["digits"])
    assert fig.axes[0].get_title().startswith("digits")


# --------------------------------------------------------------------------------------------
# the widget: arguments are checked before training, a typo is not "training failed"
# --------------------------------------------------------------------------------------------

_SMALL = dict(num_classes=2, per_class=3, max_steps=20)

WIDGET = [
    case("plot-activation", plot_explorer, lambda: plot_explorer(0.5, 3, "tanh", **_SMALL), r"^unknown activation 'tanh'"),
    case("plot-scale-nan", plot_explorer, lambda: plot_explorer(NAN, 3, "linear", **_SMALL), r"^scale "),
    case("plot-depth-0", plot_explorer, lambda: plot_explorer(0.5, 0, "linear", **_SMALL), r"^depth "),
    case("plot-lr-0", plot_explorer, lambda: plot_explorer(0.5, 3, "linear", lr=0.0, **_SMALL), r"^lr "),
    case("plot-num_classes-1", plot_explorer, lambda: plot_explorer(0.5, 3, "linear", 3.0, 20, 1, 3), r"^num_classes "),
    case("plot-max_steps-0", plot_explorer, lambda: plot_explorer(0.5, 3, "linear", 3.0, 0, 2, 3), r"^max_steps "),
    case("plot-device-meta", plot_explorer, lambda: plot_explorer(0.5, 3, "linear", device="meta", **_SMALL), r"^device "),
    case("interactive-activation", interactive_profile, lambda: interactive_profile(0.5, 3, "sigmoid", **_SMALL), r"^unknown activation"),
    case("interactive-per_class-1", interactive_profile, lambda: interactive_profile(0.5, 3, "relu", 3.0, 20, 2, 1), r"^per_class "),
    case("explorer-activation", explorer, lambda: explorer(activation="tanh"), r"^unknown activation 'tanh'"),
    case("explorer-scale-0", explorer, lambda: explorer(scale=0.0), r"^scale "),
    case("explorer-depth-slider", explorer, lambda: explorer(depth=20), r"^depth must be an integer in \[3, 10\]"),
    case("explorer-depth-0", explorer, lambda: explorer(depth=0), r"^depth "),
    case("explorer-lr-nan", explorer, lambda: explorer(lr=NAN), r"^lr "),
    case("explorer-device", explorer, lambda: explorer(device="meta"), r"^device "),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), WIDGET)
def test_widget_checks_its_arguments_before_training(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@covers(plot_explorer)
def test_widget_still_reports_divergence_in_its_panel():
    """Documented: a too large η is drawn as "training failed", not raised."""
    fig = plot_explorer(0.5, 3, "linear", lr=1e6, num_classes=2, per_class=3, max_steps=200)
    assert fig.axes[0].texts[0].get_text().startswith("training failed")
