"""lib.separation.figures: every figure draws the numbers it claims to draw.

The oracles are computed here, independently of ``lib``: features by explicit matrix products,
:math:`D_l = \\operatorname{tr}\\Sigma_W/\\operatorname{tr}\\Sigma_B` in NumPy, the fitted line by
``np.polyfit``, the bound and the ideal ratio from their formulas.
"""

from __future__ import annotations

import dataclasses
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lib import separation as sep  # noqa: E402
from lib.separation import figures  # noqa: E402

F64 = torch.float64
# Small runs: K = 2 classes of n = 4, d = N = 8, L = 3 (trained in well under a second).
BASE = sep.Setting(num_classes=2, per_class=4, depth=3, scale=0.5, lr=2.0, check_every=10)
SCALES = (0.5, 0.35)

# Tiny matrices: one thread is fastest, and it does not stall when the CPU is busy.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def runs():
    """Linear runs at two ε, then ReLU runs at the same ε (500 steps: they need not converge)."""
    relu = dataclasses.replace(BASE, activation="relu", max_steps=500)
    return sep.train_settings(
        [dataclasses.replace(BASE, scale=e) for e in SCALES]
        + [dataclasses.replace(relu, scale=e) for e in SCALES]
    )


@pytest.fixture(scope="module")
def digits_runs():
    s = sep.DigitsSetting(depth=2, width=16, epochs=2)
    return [sep.train_digits_mlp(dataclasses.replace(s, batchnorm=b)) for b in (True, False)]


# ------------------------------------------------------------------------------------------
# oracles
# ------------------------------------------------------------------------------------------


def trace_ratio(H: np.ndarray, y: np.ndarray) -> float:
    """tr Σ_W / tr Σ_B from the definitions (global mean: the sample mean)."""
    classes = np.unique(y)
    means = np.stack([H[y == k].mean(0) for k in classes])
    within = sum(((H[y == k] - means[i]) ** 2).sum() for i, k in enumerate(classes)) / len(H)
    between = ((means - H.mean(0)) ** 2).sum() / len(classes)
    return within / between


def separation(run: sep.SeparationRun) -> np.ndarray:
    """D_0..D_L of a run: features by explicit products, ReLU after every hidden layer."""
    Z, y = run.X.numpy(), run.y.numpy()
    D = [trace_ratio(Z, y)]
    for i, W in enumerate(run.weights):
        Z = Z @ W.numpy().T
        if run.setting.activation == "relu" and i < len(run.weights) - 1:
            Z = np.maximum(Z, 0)
        D.append(trace_ratio(Z, y))
    return np.array(D)


def fitted(D: np.ndarray) -> tuple[float, np.ndarray]:
    """The per-layer ratio e^b of log D_l ≈ a + b l, and the fitted line at l = 0..k-1."""
    layers = np.arange(len(D))
    slope, intercept = np.polyfit(layers, np.log(D), 1)
    return math.exp(slope), np.exp(intercept + slope * layers)


def markers(ax) -> list:
    return [ln for ln in ax.get_lines() if ln.get_linestyle() == "None"]


# ------------------------------------------------------------------------------------------
# one call per figure
# ------------------------------------------------------------------------------------------


def test_plot_profile_row_draws_each_runs_separation_and_fit(runs):
    linear = runs[:2]
    fig = figures.plot_profile_row(linear, names=["first", "second"])
    assert len(fig.axes) == 2 and tuple(fig.get_size_inches()) == (8.0, 3.4)
    for ax, run, name in zip(fig.axes, linear, ["first", "second"]):
        D = separation(run)
        ratio, line = fitted(D[:-1])  # the output layer is not fitted
        fit_line, hidden, output = ax.get_lines()
        np.testing.assert_allclose(hidden.get_ydata(), D[:-1], rtol=1e-9)
        np.testing.assert_allclose(output.get_ydata(), D[-1:], rtol=1e-9)
        assert output.get_markerfacecolor() == "none"  # hollow
        np.testing.assert_allclose(fit_line.get_ydata(), line, rtol=1e-9)
        assert ax.get_title().startswith(f"{name}\nlinear, L=3, ε={run.setting.scale:g}")
        assert f"ratio {ratio:.3f}" in ax.get_title()
    axes = plt.subplots(1, 2)[1]
    assert figures.plot_profile_row(linear, ax=axes) is axes[0].figure
    with pytest.raises(ValueError, match="one name per run"):
        figures.plot_profile_row(linear, names=["only one"])


def test_plot_activation_row_overlays_each_activations_runs(runs):
    fig = figures.plot_activation_row(runs)
    assert len(fig.axes) == 2
    for ax, activation, mine in zip(fig.axes, ("linear", "relu"), (runs[:2], runs[2:])):
        assert ax.get_title() == f"{activation}, L = 3"
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        for pts, run, label in zip(markers(ax), mine, labels):
            D = separation(run)[:-1]
            np.testing.assert_allclose(pts.get_ydata(), D, rtol=1e-9)
            assert label == f"ε = {run.setting.scale:g}: {fitted(D)[0]:.3f}"


def test_plot_bound_check_draws_ratios_bounds_and_ideal_rates(runs):
    linear = runs[:2]
    fig = figures.plot_bound_check(linear, runs)
    left, right = fig.axes
    K, n, L = 2, 4, 3
    measured = [ln for ln in left.get_lines() if ln.get_marker() == "o"]
    levels = {round(float(ln.get_ydata()[0]), 12) for ln in left.get_lines() if ln.get_marker() != "o" and len(ln.get_ydata())}  # fmt: skip
    for ln, run in zip(measured, linear):
        D = separation(run)[:-1]
        np.testing.assert_allclose(ln.get_ydata(), D[1:] / D[:-1], rtol=1e-9)
        e = run.setting.scale
        assert round(2 * (math.sqrt(K) + 1) * e**2, 12) in levels  # the bound
        assert round(e**2 * n ** (-1 / L), 12) in levels  # the ideal ratio
    ideal = [e**2 * n ** (-1 / L) for e in SCALES]  # only the linear runs are summarised
    circles, crosses = right.get_lines()[:2]
    np.testing.assert_allclose(circles.get_xdata(), ideal, rtol=1e-12)
    np.testing.assert_allclose(
        circles.get_ydata(), [fitted(separation(r)[:-1])[0] for r in linear], rtol=1e-9
    )
    np.testing.assert_allclose(crosses.get_ydata(), [2 * (math.sqrt(K) + 1) * e**2 for e in SCALES])


def test_plot_tradeoff_row_draws_curves_steps_and_ratios(runs):
    linear = runs[:2]
    fig = figures.plot_tradeoff_row(linear)
    loss_ax, speed_ax, twin = fig.axes
    curves = loss_ax.get_lines()[: len(linear)]
    tol_line = loss_ax.get_lines()[len(linear)]
    assert tol_line.get_ydata()[0] == BASE.tol
    first_below = []
    for ln, run in zip(curves, linear):
        x, y = np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())
        F = run.X.numpy()
        for W in run.weights:
            F = F @ W.numpy().T
        final_loss = 0.5 * ((F - run.Y.numpy()) ** 2).mean()  # at the converged weights
        assert y[-1] == pytest.approx(final_loss, rel=1e-9)
        assert (y[:-1] >= BASE.tol).all() and y[-1] < BASE.tol
        first_below.append(int(x[-1]))
    np.testing.assert_array_equal(speed_ax.get_lines()[0].get_xdata(), SCALES)
    np.testing.assert_array_equal(speed_ax.get_lines()[0].get_ydata(), first_below)
    np.testing.assert_allclose(
        twin.get_lines()[0].get_ydata(), [fitted(separation(r)[:-1])[0] for r in linear], rtol=1e-9
    )


def test_plot_digits_row_draws_train_and_test_separation(digits_runs):
    fig = figures.plot_digits_row(digits_runs, ["with BN", "without BN"])
    assert len(fig.axes) == 2
    for ax, run, name in zip(fig.axes, digits_runs, ["with BN", "without BN"]):
        g = torch.Generator().manual_seed(run.setting.seed)  # the split of train_digits_mlp
        Xtr, ytr, Xte, yte = sep.load_digits(run.setting.test_fraction, g, F64)
        with torch.no_grad():
            D, acc = {}, {}
            for split, X, y in (("train", Xtr, ytr), ("test", Xte, yte)):
                Z, D[split] = X, [trace_ratio(X.numpy(), y.numpy())]
                for block in list(run.model)[:-1]:
                    Z = block(Z)
                    D[split].append(trace_ratio(Z.numpy(), y.numpy()))
                acc[split] = float((run.model[-1](Z).argmax(1) == y).double().mean())
        fit_line, train, test = ax.get_lines()
        np.testing.assert_allclose(train.get_ydata(), D["train"], rtol=1e-9)
        np.testing.assert_allclose(test.get_ydata(), D["test"], rtol=1e-9)
        ratio, line = fitted(np.array(D["train"]))
        np.testing.assert_allclose(fit_line.get_ydata(), line, rtol=1e-9)
        assert ax.get_title().startswith(f"{name}\nratio {ratio:.2f}")
        assert ax.get_title().endswith(f"test acc. {acc['test']:.3f}")
    with pytest.raises(ValueError, match="one name per run"):
        figures.plot_digits_row(digits_runs, ["one"])


# ------------------------------------------------------------------------------------------
# the widget
# ------------------------------------------------------------------------------------------


def test_plot_explorer_draws_the_trained_network_and_survives_divergence():
    fig = figures.plot_explorer(0.5, 3, "linear", lr=2.0, num_classes=2, per_class=4)
    (ax,) = fig.axes
    setting = sep.Setting(num_classes=2, per_class=4, depth=3, scale=0.5, lr=2.0, max_steps=20_000)
    (run,) = sep.train_settings([setting])  # the same, deterministic run
    D = separation(run)
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), D[:-1], rtol=1e-9)
    assert ax.texts[0].get_text() == f"ideal ratio {0.5**2 * 4 ** (-1 / 3):.3f}"
    bad = figures.plot_explorer(1.0, 3, "linear", lr=1e4, num_classes=2, per_class=4)
    assert len(bad.axes[0].get_lines()) == 0
    assert bad.axes[0].texts[0].get_text().startswith("training failed")


def test_explorer_widget_controls():
    pytest.importorskip("ipywidgets")
    w = figures.explorer(0.45, 3, "relu", lr=2.0, num_classes=2, per_class=4)
    controls = w.children[:3]
    assert [c.description for c in controls] == ["ε", "L", "σ"]
    assert [c.value for c in controls] == [0.45, 3, "relu"]
    assert 0.45 in controls[0].options and set(figures.EXPLORER_SCALES) <= set(controls[0].options)
    assert controls[0].continuous_update is False and controls[1].continuous_update is False


# ------------------------------------------------------------------------------------------
# the panels, called as notebooks handed out call them (axes first, nothing returned)
# ------------------------------------------------------------------------------------------


def test_panel_functions_keep_their_old_signatures(runs, digits_runs):
    fig, axes = plt.subplots(1, 6)
    assert figures.plot_profile(axes[0], runs[0]) is None
    np.testing.assert_allclose(axes[0].get_lines()[1].get_ydata(), separation(runs[0])[:-1], rtol=1e-9)  # fmt: skip
    assert figures.plot_profiles(axes[1], runs[:2], ["a", "b"], "t") is None
    assert axes[1].get_title() == "t" and len(markers(axes[1])) == 2
    assert figures.plot_by_activation(axes[2:4], runs) is None
    assert figures.plot_ratios(axes[4], runs[:2]) is None
    assert figures.plot_ratio_summary(axes[5], runs) is None
    fig, axes = plt.subplots(1, 3)
    assert figures.plot_tradeoff(axes[0], axes[1], runs[:2]) is None
    assert figures.plot_digits(axes[2], digits_runs[0], "d") is None
    assert axes[2].get_title().startswith("d\n")
