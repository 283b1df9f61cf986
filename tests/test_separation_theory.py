"""lib.separation.theory: the decay fit, the bound, the ideal ratio and the theorem's assumptions."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from lib import dln
from lib import separation as sep

F64 = torch.float64

# The theorem's regime at test size: K = 3, n = 4, N = d = 12 > 2K, L = 4, bound 2(√3+1)ε².
SMALL = sep.Setting(
    num_classes=3, per_class=4, depth=4, scale=0.3, lr=3.0, tol=1e-10, check_every=20
)

# Tiny matrices: one thread is fastest, and it does not stall when the CPU is busy.
pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def regime_runs():
    """Two linear runs in the theorem's regime (ε = 0.3, 0.2), trained as one batch."""
    return sep.train_settings([dataclasses.replace(SMALL, scale=e) for e in (0.3, 0.2)])


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


_W = [torch.eye(4, dtype=F64), torch.ones(2, 4, dtype=F64)]
_X = torch.eye(4, dtype=F64)


@pytest.mark.parametrize(
    ("call", "message"),
    [
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
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
