"""lib.completion.sweep: the sample-complexity sweep against a naive loop over fit, the
minimum-nuclear-norm baseline against a dense reference, L = 1 against its closed form, and the
figure against independently computed fits."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from lib import completion  # noqa: E402
from lib.completion import figures  # noqa: E402

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


def _problem(d=10, r=1, p=0.6, seed=0):
    return completion.make_problem(
        d, r, p, generator=torch.Generator().manual_seed(seed), dtype=F64
    )


def _rel(W, T):
    W, T = np.asarray(W, dtype=np.float64), np.asarray(T, dtype=np.float64)
    return np.linalg.norm(W - T) / np.linalg.norm(T)


TINY = dict(
    d=10, rank=1, observed_fractions=[0.5, 0.9], depths=[1, 2], compressed_depths=[2],
    seeds=[0, 3], scale=0.05, lr_scale=1.0, max_steps=300, record_every=50, dtype=F64,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny():
    return completion.sample_complexity(**TINY)


def test_default_lr_at_depth_one_is_half_the_edge_and_one_step_fits_the_observed_entries():
    P = _problem(12, 2, 0.3)
    assert completion.default_lr(P, 1) == 12**2  # Hessian Ω / d²: edge 2 d², whatever p
    W0 = completion.init_original(P, 1, 0.05)[0]
    res = completion.fit(P, "original", depth=1, scale=0.05, max_steps=1)
    W, M = res.end_to_end.numpy(), P.mask.numpy()
    np.testing.assert_allclose(W[M], P.target.numpy()[M], atol=1e-13)  # observed: fitted exactly
    np.testing.assert_array_equal(W[~M], W0.numpy()[~M])  # unobserved: never touched


def test_sweep_equals_a_naive_loop_over_fit(tiny):
    assert tiny.labels == ("original, L = 1", "original, L = 2", "compressed, L = 2", "min nuclear norm")  # fmt: skip
    assert tiny.errors.shape == tiny.converged.shape == (4, 2, 2)
    assert tiny.observed_fractions == (0.5, 0.9) and tiny.seeds == (0, 3)
    kw = dict(scale=0.05, tol=1e-8, max_steps=300, record_every=50)
    for j, p in enumerate(TINY["observed_fractions"]):
        for k, seed in enumerate(TINY["seeds"]):
            P = _problem(10, 1, p, seed)
            runs = [
                completion.fit(P, "original", depth=1, lr=completion.default_lr(P, 1), **kw),
                completion.fit(P, "original", depth=2, lr=completion.default_lr(P, 2), **kw),
                completion.fit(
                    P, "compressed", depth=2, lr=completion.default_lr(P, 2), gamma=0.01, **kw
                ),  # fmt: skip
            ]
            for i, res in enumerate(runs):
                assert float(tiny.errors[i, j, k]) == pytest.approx(_rel(res.end_to_end, P.target), rel=1e-12)  # fmt: skip
                assert bool(tiny.converged[i, j, k]) == res.converged
            X = completion.min_nuclear_norm(P)
            assert float(tiny.errors[3, j, k]) == pytest.approx(_rel(X, P.target), rel=1e-9)
    np.testing.assert_allclose(tiny.mean_error.numpy(), tiny.errors.mean(-1).numpy())
    np.testing.assert_allclose(
        tiny.error("original, L = 2").numpy(), tiny.errors[1].mean(-1).numpy()
    )


def test_depth_one_recovers_nothing_outside_the_observed_entries(tiny):
    """L = 1: the unobserved entries keep their initial values (closed form)."""
    for j, p in enumerate(TINY["observed_fractions"]):
        for k, seed in enumerate(TINY["seeds"]):
            P = _problem(10, 1, p, seed)
            W0 = completion.init_original(P, 1, 0.05)[0].numpy()
            T, M = P.target.numpy(), P.mask.numpy()
            want = np.linalg.norm(np.where(M, 0.0, W0 - T)) / np.linalg.norm(T)
            assert float(tiny.errors[0, j, k]) == pytest.approx(want, rel=1e-9)
            assert abs(want - np.sqrt(1 - P.observed_fraction)) < 0.35  # about √(1 − p)


def test_relative_error_is_the_frobenius_ratio():
    P = _problem()
    W = torch.randn(10, 10, generator=torch.Generator().manual_seed(1), dtype=F64)
    assert completion.relative_error(P, W) == pytest.approx(_rel(W, P.target), rel=1e-14)
    assert completion.relative_error(P, W.float()) == pytest.approx(_rel(W.float(), P.target), rel=1e-6)  # fmt: skip
    assert completion.relative_error(P, P.target) == 0.0


def test_min_nuclear_norm_is_feasible_and_recovers_a_well_sampled_low_rank_matrix():
    P = _problem(30, 2, 0.6)
    X = completion.min_nuclear_norm(P)
    assert X.dtype == F64 and X.shape == (30, 30)
    M = P.mask
    assert torch.equal(X[M], P.target[M])  # the constraint holds exactly
    assert completion.relative_error(P, X) < 1e-5  # exact recovery (Candès and Recht 2009)
    full = _problem(8, 2, 1.0)
    assert torch.equal(completion.min_nuclear_norm(full), full.target)


def test_min_nuclear_norm_matches_a_dense_reference_on_a_small_problem():
    """6 x 6 rank 1 with 8 missing entries: minimise the nuclear norm over the missing entries
    directly (scipy, Powell), starting from zeros, and compare the minimum."""
    P = _problem(6, 1, 28 / 36, seed=2)
    X = completion.min_nuclear_norm(P, tol=1e-10, max_iter=20000)
    T, M = P.target.numpy(), P.mask.numpy()
    free = np.argwhere(~M)

    def nuclear(v):
        Y = np.where(M, T, 0.0)
        Y[free[:, 0], free[:, 1]] = v
        return np.linalg.svd(Y, compute_uv=False).sum()

    ref = minimize(nuclear, np.zeros(len(free)), method="Powell", options=dict(xtol=1e-10, ftol=1e-13, maxiter=200000))  # fmt: skip
    got = float(torch.linalg.matrix_norm(X, ord="nuc"))
    assert got == pytest.approx(ref.fun, rel=1e-6)
    assert got <= ref.fun + 1e-9  # the reference can only be as good
    # no feasible perturbation lowers it (convex problem: local = global)
    gen = np.random.default_rng(0)
    for t in (1e-3, 1e-1):
        N = np.where(M, 0.0, gen.standard_normal(M.shape))
        for sign in (1, -1):
            assert np.linalg.svd(X.numpy() + sign * t * N, compute_uv=False).sum() >= got - 1e-9


def test_plot_sample_complexity_draws_the_mean_the_seeds_and_crosses(tiny):
    fig = figures.plot_sample_complexity(tiny)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert list(lines) == list(tiny.labels)
    for label, line in lines.items():
        np.testing.assert_array_equal(line.get_xdata(), [0.5, 0.9])
        np.testing.assert_allclose(line.get_ydata(), np.maximum(tiny.error(label).numpy(), 1e-16))
    # the plotted L = 2 point at p = 0.9 is the mean of two fits computed here, independently
    kw = dict(depth=2, scale=0.05, tol=1e-8, max_steps=300, record_every=50)
    fits = [completion.fit(P, "original", lr=completion.default_lr(P, 2), **kw) for P in (_problem(10, 1, 0.9, s) for s in (0, 3))]  # fmt: skip
    want = np.mean([_rel(r.end_to_end, _problem(10, 1, 0.9, s).target) for r, s in zip(fits, (0, 3))])  # fmt: skip
    assert lines["original, L = 2"].get_ydata()[1] == pytest.approx(want, rel=1e-12)
    crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    network = tiny.converged[:-1]  # the baseline gets no crosses
    assert sum(len(ln.get_xdata()) for ln in crosses) == int((~network).sum())
    plt.close(fig)
    fig, ax = plt.subplots()
    assert figures.plot_sample_complexity(tiny, ax=ax) is fig
    plt.close(fig)


def test_the_sweep_accepts_numpy_values():
    res = completion.sample_complexity(
        8, 1, np.array([0.5, 1.0]), depths=np.array([1]), compressed_depths=[],
        seeds=[np.int64(1)], nuclear_norm=False, max_steps=5,
    )  # fmt: skip
    assert res.labels == ("original, L = 1",) and res.observed_fractions == (0.5, 1.0)
    assert res.errors.dtype == F64 and res.errors.device.type == "cpu"
