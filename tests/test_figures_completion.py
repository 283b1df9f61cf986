"""lib.figures_completion: the plotted data equal independently computed values."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lib import completion, figures_completion  # noqa: E402


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


def test_plot_spectra_draws_normalised_singular_values(runs):
    problem, _ = runs
    fig = figures_completion.plot_spectra(problem)
    lines = [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) > 2]
    S = torch.linalg.svdvals(problem.target.double())
    np.testing.assert_allclose(lines[0].get_ydata(), (S / S[0]).clamp_min(1e-17).numpy())
    S_obs = torch.linalg.svdvals((problem.mask * problem.target).double())
    np.testing.assert_allclose(lines[1].get_ydata(), (S_obs / S_obs[0]).numpy())
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


def test_plot_curves_rejects_unknown_keys(runs):
    _, results = runs
    with pytest.raises(ValueError, match="key must be 'test_loss' or 'train_loss'"):
        figures_completion.plot_curves(results, key="loss")


def test_given_axes_are_used(runs):
    problem, _ = runs
    fig, ax = plt.subplots()
    assert figures_completion.plot_spectra(problem, ax=ax) is fig
    plt.close(fig)
