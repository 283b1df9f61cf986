"""lib.parsimony.interactive: plot_run against NumPy, the explorer frame against simulate (and
its divergence message), the widget's controls; the old names through lib.parsimony.figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lib import dln, parsimony  # noqa: E402
from lib.parsimony import figures, interactive  # noqa: E402

F64 = torch.float64
D, R = 8, 2  # width and rank of the small runs below


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def batched():
    return parsimony.simulate([0.05, 0.2], width=D, rank=R, n_samples=D, steps=200, record_every=20)


def _svdvals_numpy(traj: torch.Tensor) -> np.ndarray:
    return np.stack([np.linalg.svd(W, compute_uv=False) for W in traj.numpy()])  # (T, k)


def test_plot_explorer_matches_simulate_and_survives_divergence():
    fig = figures.plot_explorer(0.1, 3, 5.0, R, width=D, n_samples=D, steps=100)
    ax0, ax1 = fig.axes
    assert len(ax0.lines) == D and len(ax1.lines) == 1
    run = parsimony.simulate(0.1, 3, D, R, D, 5.0, 100, record_every=1)
    S = np.linalg.svd(dln.end_to_end(run.history.weights[-1]).numpy(), compute_uv=False)
    np.testing.assert_allclose(ax1.lines[0].get_ydata(), S / S[0], rtol=1e-12)
    bad = figures.plot_explorer(0.5, 3, 1e4, R, width=D, n_samples=D, steps=100)
    assert all(len(ax.lines) == 0 for ax in bad.axes)
    assert "GD diverged" in bad.axes[0].texts[0].get_text()


def test_explorer_widget_controls():
    w = figures.explorer(eps=0.1, depth=2, lr=3.0, rank=R, width=D, n_samples=D, steps=20)
    sliders = w.children[:4]
    assert [s.description for s in sliders] == ["ε", "L", "η", "r"]
    assert [s.value for s in sliders] == pytest.approx([0.1, 2, 3.0, R])
    assert sliders[3].max == (D - 1) // 2
    assert all(s.continuous_update is False for s in sliders)


def test_plot_run_panels_against_numpy(batched):
    """σ_1i(t) of W_1 and the normalised end-to-end spectrum, computed here with numpy."""
    fig = interactive.plot_run(batched.history, R, run=1)
    ax0, ax1 = fig.axes
    assert len(ax0.lines) == D and len(ax1.lines) == 1
    S1 = _svdvals_numpy(batched.history.trajectory(0)[:, 1])  # (T, D)
    for i, line in enumerate(ax0.lines):
        np.testing.assert_allclose(line.get_ydata(), S1[:, i], rtol=1e-12)
    Ws = [W[1].numpy() for W in batched.history.weights[-1]]
    S = np.linalg.svd(Ws[2] @ Ws[1] @ Ws[0], compute_uv=False)
    np.testing.assert_allclose(ax1.lines[0].get_xdata(), np.arange(1, D + 1))
    np.testing.assert_allclose(ax1.lines[0].get_ydata(), S / S[0], rtol=1e-12, atol=1e-15)
    assert ax1.get_title() == "end-to-end after 200 steps"


def test_the_old_names_in_figures_are_the_interactive_functions():
    for name in ("plot_run", "plot_explorer", "explorer"):
        assert getattr(figures, name) is getattr(interactive, name)
        assert name in figures.__all__ and name in dir(figures)
