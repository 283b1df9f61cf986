"""lib.parsimony.figures (formerly lib.figures): every figure draws the numbers it claims to draw —
line counts, and y-data equal to singular values and angles computed independently (NumPy SVD,
naive loops); every figure follows the ax= contract."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from lib import dln, parsimony  # noqa: E402
from lib.parsimony import figures  # noqa: E402

F64 = torch.float64
D, R = 8, 2  # width and rank of the small runs below


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def run():
    return parsimony.simulate(0.1, width=D, rank=R, n_samples=D, steps=200, record_every=20)


@pytest.fixture(scope="module")
def batched():
    return parsimony.simulate([0.05, 0.2], width=D, rank=R, n_samples=D, steps=200, record_every=20)


def _svdvals_numpy(traj: torch.Tensor) -> np.ndarray:
    return np.stack([np.linalg.svd(W, compute_uv=False) for W in traj.numpy()])  # (T, k)


def test_plot_singular_values_lines_are_the_singular_values(run):
    fig = figures.plot_singular_values(run.history, layer=1, rank=R)
    ax = fig.axes[0]
    assert len(ax.lines) == D
    S = _svdvals_numpy(run.history.trajectory(1))
    for i, line in enumerate(ax.lines):
        np.testing.assert_allclose(line.get_xdata(), run.history.steps.numpy())
        np.testing.assert_allclose(line.get_ydata(), S[:, i], rtol=1e-12)
    colors = [to_rgba(line.get_color()) for line in ax.lines]
    assert colors[0] == to_rgba(figures.GROUP_COLORS["top"])
    assert colors[R] == to_rgba(figures.GROUP_COLORS["middle"])
    assert colors[-1] == to_rgba(figures.GROUP_COLORS["bottom"])
    assert ax.get_yscale() == "log" and ax.get_legend() is not None


def test_plot_singular_values_batched_run_selection(batched):
    fig = figures.plot_singular_values(batched.history, 0, R, run=1)
    S = _svdvals_numpy(batched.history.trajectory(0)[:, 1])
    np.testing.assert_allclose(fig.axes[0].lines[3].get_ydata(), S[:, 3], rtol=1e-12)
    with pytest.raises(ValueError, match="pass run=b"):
        figures.plot_singular_values(batched.history)
    with pytest.raises(ValueError, match="only for batched histories"):
        figures.plot_singular_values(
            parsimony.simulate(0.1, width=D, rank=R, n_samples=D, steps=5).history, run=0
        )


def test_plot_svd_evolution_angles_against_numpy(run):
    fig = figures.plot_svd_evolution(run.history, 0, R, ref=1)
    assert [len(ax.lines) for ax in fig.axes] == [D, 2 * R + 1, 2 * R + 1]
    traj = run.history.trajectory(0).numpy()
    U0, _, Vt0 = np.linalg.svd(traj[1])
    outer = {0: 0, 1: 1, 3: D - 2, 4: D - 1}  # line -> singular-vector index
    for j, i in outer.items():
        right = [math.acos(min(1.0, abs(float(np.linalg.svd(W)[2][i] @ Vt0[i])))) for W in traj[1:]]
        left = [
            math.acos(min(1.0, abs(float(np.linalg.svd(W)[0][:, i] @ U0[:, i])))) for W in traj[1:]
        ]
        np.testing.assert_allclose(fig.axes[1].lines[j].get_ydata(), right, atol=1e-6)
        np.testing.assert_allclose(fig.axes[2].lines[j].get_ydata(), left, atol=1e-6)
        np.testing.assert_allclose(fig.axes[1].lines[j].get_xdata(), run.history.steps[1:].numpy())
    # the middle line: largest principal angle of the middle right span, naive arccos of σ_min(AᵀB)
    A0 = Vt0[R : D - R].T
    naive = [
        math.acos(
            min(1.0, np.linalg.svd(np.linalg.svd(W)[2][R : D - R] @ A0, compute_uv=False).min())
        )
        for W in traj[1:]
    ]
    np.testing.assert_allclose(fig.axes[1].lines[R].get_ydata(), naive, atol=1e-6)
    assert max(fig.axes[1].lines[R].get_ydata()) < 1e-10  # whitened: the span never moves


def test_plot_svd_evolution_batched_equals_single(batched):
    single = parsimony.simulate(0.2, width=D, rank=R, n_samples=D, steps=200, record_every=20)
    fb = figures.plot_svd_evolution(batched.history, 0, R, run=1)
    fs = figures.plot_svd_evolution(single.history, 0, R)
    for ab, as_ in zip(fb.axes, fs.axes):
        for lb, ls in zip(ab.lines, as_.lines):
            np.testing.assert_allclose(lb.get_ydata(), ls.get_ydata(), atol=1e-9)


def test_plot_rho_draws_ratios_and_differences():
    steps = torch.arange(0, 50, 10)
    pred = torch.stack([torch.linspace(0.5, 0.4, 5), torch.linspace(0.1, 0.05, 5)], 1).to(F64)
    meas = pred + 1e-14
    fig = figures.plot_rho(steps, meas, pred, ["a", "b"])
    ax0, ax1 = fig.axes
    assert len(ax0.lines) == 4 and len(ax1.lines) == 2
    np.testing.assert_allclose(ax0.lines[2].get_ydata(), (pred[:, 1] / 0.1).numpy())
    np.testing.assert_allclose(ax1.lines[0].get_ydata(), np.full(5, 1e-14), rtol=1e-3)
    assert [t.get_text() for t in ax0.get_legend().get_texts()] == ["a", "b"]
    with pytest.raises(ValueError, match="need 2 labels"):
        figures.plot_rho(steps, meas, pred, ["a"])
    with pytest.raises(ValueError, match="both be \\(T, B\\)"):
        figures.plot_rho(steps, meas[:, :1], pred, ["a"])


def test_plot_rank_bias_normalised_spectra_and_tail(batched):
    e2e = dln.end_to_end(batched.history.weights[-1])  # (2, D, D)
    S = torch.linalg.svdvals(e2e)
    tail = torch.tensor([1e-4, 1e-2], dtype=F64)
    fig = figures.plot_rank_bias([0.05, 0.2], S, tail, R, 1e-3)
    ax0, ax1 = fig.axes
    assert len(ax0.lines) == 2 and len(ax1.lines) == 3
    for b in range(2):
        want = np.linalg.svd(e2e[b].numpy(), compute_uv=False)
        # two SVD codes agree to rounding relative to the largest value (1 after normalising)
        np.testing.assert_allclose(ax0.lines[b].get_ydata(), want / want[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ax1.lines[0].get_ydata(), (S[:, R] / S[:, 0]).numpy())
    np.testing.assert_allclose(ax1.lines[1].get_ydata(), (tail / S[:, 0]).numpy())
    np.testing.assert_allclose(ax1.lines[2].get_ydata(), [1e-3, 1e-3])
    with pytest.raises(ValueError, match="one row per scale"):
        figures.plot_rank_bias([0.1], S, tail, R, 1e-3)


def test_plot_deviation_lines_styles_and_errors():
    steps = torch.arange(4)
    spread = torch.tensor([[1e-3, 0.0], [2e-3, 1e-20], [3e-3, 1e-15], [4e-3, 1e-15]], dtype=F64)
    drift = 10 * spread
    fig = figures.plot_deviation(steps, spread, drift, ["x", "y"], linestyles=["-", "--"])
    ax0, ax1 = fig.axes
    np.testing.assert_allclose(ax0.lines[0].get_ydata(), spread[:, 0].numpy())
    np.testing.assert_allclose(ax1.lines[0].get_ydata(), drift[:, 0].numpy())
    assert ax0.lines[1].get_ydata()[0] == 1e-17  # zeros are clipped for the log scale
    assert ax1.lines[1].get_linestyle() == "--"
    with pytest.raises(ValueError, match="with B labels"):
        figures.plot_deviation(steps, spread, drift, ["x"])
    with pytest.raises(ValueError, match="need 2 colors and 2 linestyles"):
        figures.plot_deviation(steps, spread, drift, ["x", "y"], colors=["C0"])


def test_plot_small_multiples_grid(batched):
    other = parsimony.simulate(
        [0.05, 0.2], depth=2, width=D, rank=R, n_samples=D, steps=200, record_every=20
    )
    fig = figures.plot_small_multiples(
        [(3, [0.05, 0.2], batched.history), (2, [0.05, 0.2], other.history)], R
    )
    assert len(fig.axes) == 4 and all(len(ax.lines) == D for ax in fig.axes)
    S = _svdvals_numpy(other.history.trajectory(0)[:, 1])  # row 2, column 2
    np.testing.assert_allclose(fig.axes[3].lines[0].get_ydata(), S[:, 0], rtol=1e-12)
    assert "L = 2" in fig.axes[3].get_title()
    with pytest.raises(ValueError, match="same number of scales"):
        figures.plot_small_multiples(
            [(3, [0.05, 0.2], batched.history), (2, [0.1], other.history)], R
        )


def test_every_figure_takes_ax_and_the_older_axes(run, batched):
    """Data first, ax= (one Axes or a sequence), returns the Figure; the older axes= still works."""
    steps, ones = torch.arange(3), torch.ones(3, 2, dtype=F64)
    calls = {
        "plot_singular_values": (lambda **k: figures.plot_singular_values(run.history, **k), 1),
        "plot_svd_evolution": (lambda **k: figures.plot_svd_evolution(run.history, 0, R, **k), 3),
        "plot_rho": (lambda **k: figures.plot_rho(steps, ones, ones, ["a", "b"], **k), 2),
        "plot_rank_bias": (
            lambda **k: figures.plot_rank_bias(
                [0.1, 0.2], torch.tensor([[1.0, 0.5, 1e-3]] * 2), torch.ones(2), 1, 1e-4, **k
            ),
            2,
        ),
        "plot_deviation": (
            lambda **k: figures.plot_deviation(steps, ones, ones, ["a", "b"], **k),
            2,
        ),
        "plot_run": (lambda **k: figures.plot_run(run.history, R, **k), 2),
        "plot_explorer": (
            lambda **k: figures.plot_explorer(0.1, 3, 5.0, R, D, D, 20, **k),
            2,
        ),
    }
    for name, (draw, n) in calls.items():
        fig, axes = plt.subplots(1, n, squeeze=False)
        given = list(axes[0]) if n > 1 else axes[0][0]
        assert draw(ax=given) is fig, name
        assert all(len(a.lines) > 0 or a.texts for a in axes[0]), name
        if name not in ("plot_run", "plot_singular_values"):  # never had axes=
            fig2, axes2 = plt.subplots(1, n, squeeze=False)
            assert draw(axes=list(axes2[0]) if n > 1 else axes2[0][0]) is fig2, name
            with pytest.raises(ValueError, match="not both"):
                draw(ax=given, axes=given)
        assert isinstance(draw(), matplotlib.figure.Figure), name
        plt.close("all")
    fig, grid = plt.subplots(1, 2, squeeze=False)
    out = figures.plot_small_multiples([(3, [0.05, 0.2], batched.history)], R, ax=grid)
    assert out is fig and all(len(a.lines) == D for a in grid[0])
