"""lib.completion.figures: the plotted data equal independently computed values."""

from __future__ import annotations

import importlib.util

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lib import completion, figures_completion  # noqa: E402
from lib.completion import figures  # noqa: E402


@pytest.fixture(scope="module")
def runs():
    problem = completion.make_problem(
        12, 2, 0.6, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    kw = dict(depth=3, scale=1e-2, max_steps=200, record_every=50)
    return problem, {
        "original": completion.fit(problem, "original", **kw),
        "compressed": completion.fit(problem, "compressed", **kw),
    }


def _run(steps, converged, test_loss, record_steps=(0, 1)):
    """A FitResult holding only the fields the sweep figures read (the figures refuse anything
    that is not a FitResult)."""
    return completion.FitResult(
        method="compressed",
        train_loss=list(test_loss),
        test_loss=list(test_loss),
        record_steps=list(record_steps),
        record_seconds=[0.0] * len(record_steps),
        steps=steps,
        seconds=0.0,
        setup_seconds=0.0,
        end_to_end=torch.zeros(1, 1),
        weights=[],
        weights0=[],
        n_params=0,
        converged=converged,
    )


def test_plot_spectra_draws_normalised_singular_values(runs):
    problem, _ = runs
    fig = figures_completion.plot_spectra(problem)
    lines = [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) > 2]
    S = torch.linalg.svdvals(problem.target.double())
    np.testing.assert_allclose(lines[0].get_ydata(), (S / S[0]).clamp_min(1e-17).numpy())
    S_obs = torch.linalg.svdvals((problem.mask * problem.target).double())
    np.testing.assert_allclose(lines[1].get_ydata(), (S_obs / S_obs[0]).numpy())
    plt.close(fig)


def test_plot_spectra_draws_the_first_gradient(runs):
    problem, _ = runs
    W0 = completion.init_original(problem, depth=3, scale=1e-2)
    fig = figures.plot_spectra(problem, W0)
    lines = [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) > 2]
    assert len(lines) == 3
    # ∇_{W_1} ℓ(0) = W_{L:2}ᵀ (Ω ⊙ (W_{L:1} − Φ)) / d², by hand in numpy
    W = [w.numpy() for w in W0]
    M, T = problem.mask.numpy(), problem.target.numpy()
    E = M * (W[2] @ W[1] @ W[0] - T) / problem.d**2
    G = W[1].T @ W[2].T @ E
    S = np.linalg.svd(G, compute_uv=False)
    np.testing.assert_allclose(lines[2].get_ydata(), np.maximum(S / S[0], 1e-17), rtol=1e-8)
    xs = [ln.get_xdata()[0] for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) == 2]
    assert xs == [problem.rank + 0.5, 2 * problem.rank + 0.5]  # the dotted and dashed markers
    plt.close(fig)


def test_plot_curves_draws_each_runs_losses(runs):
    _, results = runs
    fig = figures_completion.plot_curves(results, key="train_loss")
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == list(results)
    for ln, res in zip(lines, results.values()):
        np.testing.assert_array_equal(ln.get_xdata(), res.record_steps)
        np.testing.assert_allclose(ln.get_ydata(), np.maximum(res.train_loss, 1e-16))
    plt.close(fig)


def test_plot_curves_against_seconds(runs):
    _, results = runs
    fig, ax = plt.subplots()
    assert figures.plot_curves(results, x="seconds", ax=ax, title="time") is fig
    for ln, res in zip(ax.get_lines(), results.values()):
        np.testing.assert_array_equal(ln.get_xdata(), res.record_seconds)
        np.testing.assert_allclose(ln.get_ydata(), np.maximum(res.test_loss, 1e-16))
    assert ax.get_xlabel() == "training time [s]" and ax.get_title() == "time"
    plt.close(fig)


def test_plot_curves_rejects_unknown_keys(runs):
    _, results = runs
    with pytest.raises(ValueError, match="key must be 'test_loss' or 'train_loss'"):
        figures_completion.plot_curves(results, key="loss")


def test_given_axes_are_used(runs):
    problem, _ = runs
    fig, ax = plt.subplots()
    assert figures_completion.plot_spectra(problem, ax=ax) is fig
    plt.close(fig)


def test_plot_factorization_draws_losses_and_projected_trajectories():
    problem = completion.make_problem(
        10, 1, 1.0, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    kw = dict(depth=2, scale=1e-2, max_steps=60, record_every=10, keep_trajectory=True)
    orig = completion.fit(problem, "original", **kw)
    comp = completion.fit(problem, "compressed", gamma=0.0, **kw)
    fig, axes = plt.subplots(1, 2)
    assert figures.plot_factorization(orig, comp, problem, ax=axes) is fig
    a0, a1 = axes
    for ln, res in zip(a0.get_lines(), (orig, comp)):
        np.testing.assert_array_equal(ln.get_xdata(), res.record_steps)
        np.testing.assert_allclose(ln.get_ydata(), np.maximum(res.train_loss, 1e-16))
        assert ln.get_label() == f"{res.method} ({res.n_params:,} parameters)"
    # principal directions of the original trajectory, by hand in numpy (up to sign)
    X = orig.trajectory.flatten(1).numpy()
    mean = X.mean(0)
    Z = np.linalg.svd(X - mean, full_matrices=False)[2][:2]
    curves = [ln for ln in a1.get_lines() if len(ln.get_xdata()) > 1]
    for ln, res in zip(curves, (orig, comp)):
        want = (res.trajectory.flatten(1).numpy() - mean) @ Z.T  # (T, 2)
        for i, got in enumerate((ln.get_xdata(), ln.get_ydata())):
            sign = 1.0 if np.dot(got, want[:, i]) >= 0 else -1.0
            np.testing.assert_allclose(sign * np.asarray(got), want[:, i], atol=1e-10)
    starts = [ln for ln in a1.get_lines() if len(ln.get_xdata()) == 1]
    assert len(starts) == 2 and starts[0].get_marker() == "o"
    plt.close(fig)
    with pytest.raises(ValueError, match="keep_trajectory=True"):
        figures.plot_factorization(completion.fit(problem, "original", max_steps=1), comp, problem)


def test_plot_sweep_draws_steps_crosses_and_final_losses():
    values = [0.0, 0.01, 0.1]
    seq = [_run(100, True, [1.0, 1e-3]), _run(500, False, [1.0, 0.0]), _run(300, True, [1.0, 1e-5])]
    ref = _run(250, True, [1.0, 2e-4])
    fig = figures.plot_sweep(values, {"compressed": seq}, "γ", reference=ref)
    a0, a1 = fig.axes
    steps, cross, ref0 = a0.get_lines()
    np.testing.assert_array_equal(steps.get_xdata(), [0, 1, 2])  # categories
    np.testing.assert_array_equal(steps.get_ydata(), [100, 500, 300])
    np.testing.assert_array_equal(cross.get_xdata(), [1])  # the run that did not converge
    np.testing.assert_array_equal(cross.get_ydata(), [500])
    assert list(ref0.get_ydata()) == [250, 250]
    loss, ref1 = a1.get_lines()
    np.testing.assert_array_equal(loss.get_ydata(), [1e-3, 1e-16, 1e-5])  # 0 floored at 1e-16
    assert list(ref1.get_ydata()) == [2e-4, 2e-4]
    assert [t.get_text() for t in a0.get_xticklabels()] == ["0.0", "0.01", "0.1"]
    assert a0.get_xlabel() == a1.get_xlabel() == "γ"
    plt.close(fig)
    fig = figures.plot_sweep([1, 10], {"narrow": seq[:2]}, "k", logx=True)
    np.testing.assert_array_equal(fig.axes[0].get_lines()[0].get_xdata(), [1.0, 10.0])
    assert fig.axes[0].get_xscale() == "log"
    plt.close(fig)
    with pytest.raises(ValueError, match="2 runs for 3 values"):
        figures.plot_sweep(values, {"compressed": seq[:2]}, "γ")


def test_plot_depth_width_draws_one_line_per_depth():
    widths = [2, 4, 8]
    by_depth = {
        2: [
            _run(900, False, [1.0, 0.5]),
            _run(400, True, [1.0, 1e-4]),
            _run(200, True, [1.0, 0.0]),
        ],
        3: [
            _run(800, True, [1.0, 0.2]),
            _run(300, True, [1.0, 1e-6]),
            _run(100, True, [1.0, 1e-8]),
        ],
    }
    fig, axes = plt.subplots(1, 2)
    assert figures.plot_depth_width(widths, by_depth, ax=axes) is fig
    a0, a1 = axes
    for ln, (depth, seq) in zip(a0.get_lines(), by_depth.items()):
        np.testing.assert_array_equal(ln.get_xdata(), widths)
        np.testing.assert_array_equal(ln.get_ydata(), [max(r.test_loss[-1], 1e-16) for r in seq])
        assert ln.get_label() == f"$L = {depth}$"
    l2, cross, l3 = a1.get_lines()
    np.testing.assert_array_equal(l2.get_ydata(), [900, 400, 200])
    np.testing.assert_array_equal(l3.get_ydata(), [800, 300, 100])
    assert list(cross.get_xdata()) == [2] and list(cross.get_ydata()) == [900]
    plt.close(fig)


def test_plot_explorer_draws_one_compressed_run_against_the_original(runs):
    problem, results = runs
    orig = results["original"]
    kw = dict(scale=1e-2, max_steps=100, record_every=50)
    fig, ax = plt.subplots()
    assert figures.plot_explorer(problem, orig, 0.05, 1, 2, lr_scale=0.5, ax=ax, **kw) is fig
    lr = 0.5 * completion.default_lr(problem, 2)
    want = completion.fit(problem, "compressed", depth=2, lr=lr, rank_hat=1, gamma=0.05, **kw)
    o, c = ax.get_lines()
    np.testing.assert_allclose(o.get_ydata(), np.maximum(orig.test_loss, 1e-16))
    np.testing.assert_array_equal(c.get_xdata(), want.record_steps)
    np.testing.assert_allclose(c.get_ydata(), np.maximum(want.test_loss, 1e-16))
    assert c.get_label() == "compressed: γ=0.05, r̂=1, L=2"
    assert ax.get_title() == f"{want.steps} steps, test loss {want.test_loss[-1]:.2g}"
    plt.close(fig)


def test_plot_explorer_grid_draws_one_panel_per_slider(runs):
    _, results = runs
    orig, comp = results["original"], results["compressed"]
    other = _run(0, True, [3e-2, 0.0], record_steps=[0, 7])
    panels = {"γ": {"γ = 0.01": comp}, "r̂": {"r̂ = 1": comp, "r̂ = 3": other}}
    fig = figures.plot_explorer_grid(orig, panels)
    assert [a.get_title() for a in fig.axes] == ["γ", "r̂"]
    for a, (_, group) in zip(fig.axes, panels.items()):
        lines = a.get_lines()
        assert [ln.get_label() for ln in lines] == ["original", *group]
        np.testing.assert_allclose(lines[0].get_ydata(), np.maximum(orig.test_loss, 1e-16))
        for ln, res in zip(lines[1:], group.values()):
            np.testing.assert_array_equal(ln.get_xdata(), res.record_steps)
            np.testing.assert_allclose(ln.get_ydata(), np.maximum(res.test_loss, 1e-16))
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    assert figures.plot_explorer_grid(orig, panels, ax=axes) is fig
    plt.close(fig)


@pytest.mark.skipif(importlib.util.find_spec("ipywidgets") is None, reason="needs ipywidgets")
def test_explorer_sliders_and_their_first_drawing(runs):
    problem, results = runs
    kw = dict(scale=1e-2, max_steps=100, record_every=50)
    plt.close("all")
    w = figures.explorer(problem, results["original"], gamma=1e-5, rank_hat=1, depth=2, **kw)
    gamma, rank_hat, depth = w.kwargs_widgets
    assert (gamma.value, rank_hat.value, depth.value) == (1e-4, 1, 2)  # γ below 1e-4: the far left
    assert (rank_hat.max, depth.min, depth.max) == (min(12 // 2, 4 * 2), 1, 5)
    # the first drawing: the slider's far left means γ = 0
    want = completion.fit(
        problem, "compressed", depth=2, lr=completion.default_lr(problem, 2), rank_hat=1,
        gamma=0.0, **kw,
    )  # fmt: skip
    line = plt.gcf().axes[0].get_lines()[1]
    assert line.get_label() == "compressed: γ=0, r̂=1, L=2"
    np.testing.assert_allclose(line.get_ydata(), np.maximum(want.test_loss, 1e-16))
    plt.close("all")
