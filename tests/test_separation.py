"""Tests for lib.separation: closed forms, naive-loop oracles, the theorem's regime, and errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from lib import dln, metrics
from lib import separation as sep

F64 = torch.float64

# The theorem's regime at test size: K = 3, n = 4, N = d = 12 > 2K, L = 4, bound 2(√3+1)ε².
SMALL = sep.Setting(
    num_classes=3, per_class=4, depth=4, scale=0.3, lr=3.0, tol=1e-10, check_every=20
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: one thread is fastest, and it does not stall when the CPU is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def regime_runs():
    """Two linear runs in the theorem's regime (ε = 0.3, 0.2), trained as one batch."""
    return sep.train_settings([dataclasses.replace(SMALL, scale=e) for e in (0.3, 0.2)])


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------
# data and features
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("K", "n"), [(5, 10), (3, 4), (2, 2), (10, 3)])
def test_d0_closed_form_for_orthonormal_inputs(K, n):
    X, y, Y = sep.orthogonal_classes(K, n, generator=gen(K + n), dtype=F64)
    N = K * n
    assert X.shape == (N, N) and torch.allclose(X.T @ X, torch.eye(N, dtype=F64), atol=1e-12)
    assert torch.equal(Y.argmax(1), y) and torch.equal(torch.bincount(y), torch.full((K,), n))
    expected = (1 - 1 / n) / (1 / n - 1 / N)
    assert float(metrics.trace_ratio(X, y)) == pytest.approx(expected, rel=1e-12)
    # an orthogonal first layer keeps D_0; layer_separation reports it for l = 0 and l = 1
    Ws = [dln.init_weights([N, N], 0.7, generator=gen(1), dtype=F64)[0]]
    D = sep.layer_separation(Ws, X, y)
    assert D.tolist() == pytest.approx([expected, expected], rel=1e-12)


def test_layer_features_match_a_naive_loop():
    g = gen(2)
    Ws = dln.init_weights([6, 5, 4, 3], 1.0, kind="normal", generator=g, dtype=F64)
    X = torch.randn(7, 6, generator=g, dtype=F64)
    lin = sep.layer_features(Ws, X)
    relu = sep.layer_features(Ws, X, "relu")
    for i in range(7):  # one sample at a time, columns as in the lecture
        z_lin = z_relu = X[i]
        for layer, W in enumerate(Ws, start=1):
            z_lin = W @ z_lin
            z_relu = W @ z_relu if layer == len(Ws) else torch.clamp(W @ z_relu, min=0)
            assert torch.allclose(lin[layer][i], z_lin) and torch.allclose(relu[layer][i], z_relu)
    # the linear features are the products W_{l:1} x
    assert torch.allclose(lin[3], X @ dln.end_to_end(Ws).T)


def test_layer_separation_batches_like_a_loop():
    X, y, _ = sep.orthogonal_classes(3, 3, generator=gen(3), dtype=F64)
    Ws = dln.init_weights_batched(4, [9, 9, 9, 3], 0.8, kind="normal", generator=gen(4), dtype=F64)
    D = sep.layer_separation(Ws, X, y, "relu")
    assert D.shape == (4, 4)
    for b in range(4):
        Zs = sep.layer_features([W[b] for W in Ws], X, "relu")
        loop = torch.stack([metrics.trace_ratio(Z, y) for Z in Zs])
        assert torch.allclose(D[b], loop, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# the decay: ratios, fit, bound, ideal rate
# ------------------------------------------------------------------------------------------


def test_decay_ratios_and_fit_against_numpy():
    rng = np.random.default_rng(0)
    D = torch.tensor(np.exp(-0.7 * np.arange(6) + 0.1 * rng.standard_normal(6)))
    assert torch.allclose(sep.decay_ratios(D), D[1:] / D[:-1])
    fit = sep.fit_decay(D)
    slope, intercept = np.polyfit(np.arange(6), np.log(D.numpy()), 1)
    r = np.corrcoef(np.arange(6), np.log(D.numpy()))[0, 1]
    assert float(fit.slope) == pytest.approx(slope, rel=1e-12)
    assert float(fit.intercept) == pytest.approx(intercept, rel=1e-12)
    assert float(fit.ratio) == pytest.approx(math.exp(slope), rel=1e-12)
    assert float(fit.r2) == pytest.approx(r**2, rel=1e-12)
    # batched fit = row by row; an exact geometric sequence has r2 = 1 and its own ratio
    both = sep.fit_decay(torch.stack([D, 3.0 * 0.25 ** torch.arange(6.0, dtype=F64)]))
    assert float(both.slope[0]) == pytest.approx(slope, rel=1e-12)
    assert float(both.ratio[1]) == pytest.approx(0.25) and float(both.r2[1]) == pytest.approx(1.0)
    layers = torch.arange(6.0, dtype=F64)
    assert torch.allclose(both.line(layers)[1], 3.0 * 0.25**layers)


def test_bound_and_ideal_ratio_closed_forms():
    assert sep.ratio_bound(5, 0.5) == pytest.approx(2 * (math.sqrt(5) + 1) * 0.25)
    assert sep.ratio_bound(5, 1 / math.sqrt(2 * math.sqrt(5) + 2)) == pytest.approx(1.0)
    assert sep.ideal_ratio(10, 8, 0.5) == pytest.approx(0.25 * 10 ** (-1 / 8))
    assert sep.ideal_ratio(1, 3, 0.2) == pytest.approx(0.04)


# ------------------------------------------------------------------------------------------
# the theorem's assumptions
# ------------------------------------------------------------------------------------------


def test_assumptions_at_initialisation_closed_form():
    K, n, eps = 3, 4, 0.4
    X, y, Y = sep.orthogonal_classes(K, n, generator=gen(5), dtype=F64)
    d = X.shape[1]
    Ws = dln.init_weights([d] * 4 + [K], eps, generator=gen(6), dtype=F64)
    a = sep.theorem_assumptions(Ws, X, Y, eps)
    # every σ_i(W_l) = ε; square pairs balanced; the last pair's gap is ε²‖I_d − P_K‖_F
    assert a.at_scale.tolist() == [d] * 3 and int(a.common_at_scale) == d and a.needed == d - 2 * K
    assert a.balancedness[:-1].abs().max() < 1e-12
    assert float(a.balancedness[-1]) == pytest.approx(eps**2 * math.sqrt(d - K), rel=1e-12)
    assert a.allowed_gap == pytest.approx(eps**2 * math.sqrt(d - K))
    residual = torch.linalg.matrix_norm(X @ dln.end_to_end(Ws).T - Y) / torch.linalg.matrix_norm(Y)
    assert float(a.optimality) == pytest.approx(float(residual), rel=1e-12)
    assert a.bound == sep.ratio_bound(K, eps)
    # batched weights give batched measurements
    Wb = dln.stack_runs([Ws, Ws])
    assert sep.theorem_assumptions(Wb, X, Y, eps).common_at_scale.tolist() == [d, d]


def test_theorem_regime_ratios_constant_below_the_bound(regime_runs):
    for run in regime_runs:
        s = run.setting
        assert run.converged and run.loss < s.tol
        r = run.ratios  # D_{l+1}/D_l, l = 0..L-2
        assert float(r.max() / r.min()) <= 1.10, r  # nearly constant: spread <= 10 %
        bound = sep.ratio_bound(s.num_classes, s.scale)
        assert bound < 1 and bool((r < bound).all())  # a non-vacuous bound, and it holds
        assert float(run.fit.ratio) == pytest.approx(
            sep.ideal_ratio(s.per_class, s.depth, s.scale), rel=0.1
        )
        a = run.assumptions()
        d, K = run.X.shape[1], s.num_classes
        assert float(a.optimality) < 1e-4
        assert int(a.common_at_scale) >= d - 2 * K  # the law of parsimony: Case 1
        assert float(a.balancedness[-1]) <= 1.01 * a.allowed_gap
        summary = a.summary()
        assert summary["spectrum  needed d - 2K"] == d - 2 * K


def test_smaller_scale_decays_faster(regime_runs):
    big, small = regime_runs
    assert small.setting.scale < big.setting.scale
    assert float(small.fit.ratio) < 0.6 * float(big.fit.ratio)  # about (0.2/0.3)² = 0.44
    assert bool((small.ratios < big.ratios).all())
    assert small.steps > big.steps  # ... and trains slower: the trade-off


# ------------------------------------------------------------------------------------------
# training to tolerance and sweeps
# ------------------------------------------------------------------------------------------


def test_train_to_tolerance_matches_plain_gd_at_its_stopping_step():
    X, y, Y = sep.orthogonal_classes(2, 4, generator=gen(7), dtype=F64)
    Ws = dln.init_weights_batched(3, [8, 8, 8, 2], [0.5, 0.7, 1.0], generator=gen(8), dtype=F64)
    c = sep.train_to_tolerance(Ws, X, Y, lr=[2.0, 1.0, 2.0], tol=1e-8, check_every=10)
    assert c.converged.all() and (c.loss < 1e-8).all() and (c.steps % 10 == 0).all()
    assert c.curve.shape == (len(c.curve_steps), 3) and c.curve_steps[0] == 0
    for b, lr in enumerate([2.0, 1.0, 2.0]):
        h = dln.train([W[b] for W in Ws], X, Y, lr, int(c.steps[b]))
        for W_ours, W_ref in zip(c.weights, h.weights[-1]):
            assert torch.allclose(W_ours[b], W_ref, rtol=0, atol=1e-12)
        k = int(c.steps[b]) // 10
        assert float(c.curve[k, b]) == pytest.approx(float(h.loss[-1]), rel=1e-10)
        assert torch.isnan(c.curve[k + 1 :, b]).all()  # stopped
        assert bool((c.curve[1:k, b] >= 1e-8).all())  # and not earlier


def test_train_to_tolerance_gives_up_at_max_steps():
    X, y, Y = sep.orthogonal_classes(2, 4, generator=gen(9), dtype=F64)
    Ws = dln.init_weights_batched(1, [8, 8, 8, 8, 2], 0.1, generator=gen(10), dtype=F64)
    c = sep.train_to_tolerance(Ws, X, Y, lr=0.5, tol=1e-8, max_steps=25, check_every=10)
    assert not bool(c.converged[0]) and int(c.steps[0]) == 25
    assert c.curve_steps.tolist() == [0, 10, 20, 25]


def test_train_settings_runs_do_not_depend_on_their_batch():
    settings = [
        dataclasses.replace(SMALL, scale=0.5, tol=1e-6),
        dataclasses.replace(SMALL, scale=0.5, tol=1e-6, init="normal", seed=3),
        dataclasses.replace(SMALL, scale=0.4, tol=1e-6, activation="relu", lr=1.0),
    ]
    together = sep.train_settings(settings)
    assert [r.setting for r in together] == settings  # order kept across groups
    for s, run in zip(settings, together):
        (alone,) = sep.train_settings([s])
        assert run.steps == alone.steps and run.converged
        assert torch.allclose(run.separation, alone.separation, rtol=1e-9)
    # the seed fixes the data: seed 3's inputs differ from seed 0's
    assert not torch.allclose(together[0].X, together[1].X)
    assert set(together[0].summary()) >= {
        "run",
        "iterations to converge",
        "fitted ratio D_(l+1)/D_l",
    }


# ------------------------------------------------------------------------------------------
# the digits MLP
# ------------------------------------------------------------------------------------------


def test_digits_split_and_mlp():
    pytest.importorskip("sklearn")
    Xtr, ytr, Xte, yte = sep.load_digits(0.3, gen(0), F64)
    assert Xtr.shape[1] == 64 and len(ytr) + len(yte) == 1797
    assert torch.bincount(ytr).min() >= 120 and torch.bincount(yte).min() >= 50  # stratified
    assert Xtr.mean(0).abs().max() < 1e-10
    s = sep.DigitsSetting(depth=2, width=16, epochs=2)
    run, again = sep.train_digits_mlp(s), sep.train_digits_mlp(s)
    assert run.train_separation.shape == (3,) and torch.equal(
        run.train_separation, again.train_separation
    )
    assert float(run.train_separation[0]) == pytest.approx(float(metrics.trace_ratio(Xtr, ytr)))
    assert 0.5 < run.train_accuracy <= 1 and 0.5 < run.test_accuracy <= 1
    assert "fitted ratio D_(l+1)/D_l" in run.summary()


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------

_W = [torch.eye(4, dtype=F64), torch.ones(2, 4, dtype=F64)]
_X = torch.eye(4, dtype=F64)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sep.orthogonal_classes(1, 4), "num_classes must be an integer >= 2"),
        (lambda: sep.orthogonal_classes(3, 1), "per_class must be an integer >= 2"),
        (lambda: sep.orthogonal_classes(2, 3, width=7), "width d must be <= N"),
        (lambda: sep.layer_features(_W, _X, "tanh"), "unknown activation 'tanh'"),
        (lambda: sep.layer_features(_W, _X, None), "allowed values: 'linear', 'relu'"),
        (lambda: sep.layer_features([], _X), "non-empty list of L tensors"),
        (lambda: sep.layer_features([_W[1], _W[0]], _X), "shape mismatch: W_2 has 4 input"),
        (lambda: sep.layer_features(_W, torch.eye(3, dtype=F64)), "X has 3 columns but W_1"),
        (lambda: sep.layer_features(_W, _X.float()), "X has dtype torch.float32"),
        (lambda: sep.layer_features([torch.arange(4)], _X), "W_1 must be a floating-point"),
        (lambda: sep.layer_separation(_W, _X, torch.zeros(3)), r"labels must have shape \(N,\)"),
        (lambda: sep.decay_ratios(torch.tensor([1.0])), "at least 2 layers"),
        (lambda: sep.decay_ratios(torch.tensor([1.0, 0.0])), "finite values > 0"),
        (lambda: sep.fit_decay(torch.tensor([1.0, float("nan")])), "finite values > 0"),
        (lambda: sep.fit_decay([1.0, 0.5]), "D must be a floating-point tensor"),
        (lambda: sep.ratio_bound(5, 0.0), "scale must be a finite number > 0"),
        (lambda: sep.ratio_bound(1, 0.5), "num_classes must be an integer >= 2"),
        (lambda: sep.ideal_ratio(10, 0, 0.5), "depth must be an integer >= 1"),
        (lambda: sep.theorem_assumptions(_W[:1], _X, _X, 0.5), "depth L >= 2"),
        (lambda: sep.theorem_assumptions(_W, _X, _X[:, :2], 0.5), "width d > 2K"),
        (
            lambda: sep.theorem_assumptions(
                [torch.ones(5, 6, dtype=F64), torch.ones(2, 5, dtype=F64)],
                torch.eye(6, dtype=F64),
                torch.ones(6, 2, dtype=F64),
                0.5,
            ),
            "square hidden layers",
        ),
        (
            lambda: sep.theorem_assumptions(
                [torch.eye(6, dtype=F64), torch.ones(2, 6, dtype=F64)],
                torch.eye(6, dtype=F64),
                torch.ones(6, 3, dtype=F64),
                0.5,
            ),
            r"Y must have shape \(N, K\) = \(6, 2\)",
        ),
        (lambda: sep.theorem_assumptions(_W, _X, _X, 0.5, rtol=-1), "rtol must be"),
        (lambda: sep.train_to_tolerance(_W, _X, _X[:, :2], 1.0), "common run axis B"),
        (lambda: sep.train_settings([]), "non-empty list of Setting"),
        (lambda: sep.train_settings([{"depth": 3}]), "must hold Setting objects"),
        (lambda: sep.train_settings([sep.Setting(init="zeros")]), "unknown init 'zeros'"),
        (lambda: sep.train_settings([sep.Setting(activation="gelu")]), "unknown activation"),
        (lambda: sep.train_settings([sep.Setting(scale=-1.0)]), "scale must be"),
        (lambda: sep.load_digits(1.5), r"test_fraction must lie in \(0, 1\)"),
        (lambda: sep.train_digits_mlp({"depth": 2}), "setting must be a DigitsSetting"),
        (
            lambda: sep.train_digits_mlp(sep.DigitsSetting(momentum=1.0)),
            r"momentum must lie in \[0, 1\)",
        ),
        (lambda: sep.train_digits_mlp(sep.DigitsSetting(depth=0)), "depth must be an integer"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": [1.0, 2.0, 3.0]}, "lr must be one or 2 finite numbers > 0"),
        ({"lr": -1.0}, "lr must be one or 2 finite numbers > 0"),
        ({"tol": 0.0}, "tol must be a finite number > 0"),
        ({"max_steps": 0}, "max_steps must be an integer >= 1"),
        ({"check_every": 2.5}, "check_every must be an integer >= 1"),
        ({"activation": "sigmoid"}, "unknown activation 'sigmoid'"),
    ],
)
def test_train_to_tolerance_rejects_bad_arguments(kwargs, message):
    X, _, Y = sep.orthogonal_classes(2, 3, generator=gen(11), dtype=F64)
    Ws = dln.init_weights_batched(2, [6, 6, 2], 0.5, generator=gen(12), dtype=F64)
    args = {"lr": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        sep.train_to_tolerance(Ws, X, Y, **args)


def test_train_to_tolerance_data_shape_errors_and_divergence_names_the_run():
    X, _, Y = sep.orthogonal_classes(2, 3, generator=gen(13), dtype=F64)
    Ws = dln.init_weights_batched(2, [6, 6, 6, 2], 0.5, generator=gen(14), dtype=F64)
    with pytest.raises(ValueError, match=r"Y must have shape \(N, d_L\) with d_L = 2"):
        sep.train_to_tolerance(Ws, X, X, 1.0)
    with pytest.raises(ValueError, match="X has 3 runs on its leading axis but B = 2"):
        sep.train_to_tolerance(Ws, X.expand(3, 6, 6), Y, 1.0)
    with pytest.raises(ValueError, match=r"diverged.*runs \[0, 1\] of this call"):
        sep.train_to_tolerance(Ws, X, Y, lr=[1.0, 1e4], check_every=50)


def test_summaries_refuse_what_they_cannot_report(regime_runs):
    X, _, Y = sep.orthogonal_classes(3, 4, generator=gen(15), dtype=F64)
    Wb = dln.init_weights_batched(2, [12, 12, 3], 0.5, generator=gen(16), dtype=F64)
    with pytest.raises(ValueError, match="needs the assumptions of one run"):
        sep.theorem_assumptions(Wb, X, Y, 0.5).summary()
    relu = dataclasses.replace(
        regime_runs[0], setting=dataclasses.replace(SMALL, activation="relu")
    )
    with pytest.raises(ValueError, match="the theorem is about linear networks"):
        relu.assumptions()
