"""lib.completion.problem: the problem, the loss, parameter counts, and their error messages."""

from __future__ import annotations

import math

import pytest
import torch

from lib import completion

F64 = torch.float64


def _problem(d=20, r=2, p=0.5, seed=0, dtype=F64):
    return completion.make_problem(
        d, r, p, generator=torch.Generator().manual_seed(seed), dtype=dtype
    )


# ------------------------------------------------------------------------------------------
# the problem
# ------------------------------------------------------------------------------------------


def test_make_problem_rank_mask_and_determinism():
    P = _problem(d=40, r=3, p=0.25)
    assert P.target.shape == (40, 40) and P.mask.shape == (40, 40) and P.mask.dtype == torch.bool
    assert int(torch.linalg.matrix_rank(P.target)) == 3
    assert P.n_observed == int(P.mask.sum()) == 400 and P.observed_fraction == 0.25
    assert torch.equal(P.values, P.target[P.mask])  # row-major order, as mask.nonzero()
    assert torch.equal(P.target[P.rows, P.cols], P.values)
    # scale of the public code's target: singular values close to 2 sqrt(d)
    S = torch.linalg.svdvals(P.target)[:3]
    assert bool(((S > 0.8 * math.sqrt(40)) & (S < 4.5 * math.sqrt(40))).all())
    Q = _problem(d=40, r=3, p=0.25)
    assert torch.equal(P.target, Q.target) and torch.equal(P.mask, Q.mask) and P.seed == Q.seed
    full = _problem(d=10, r=2, p=1.0)
    assert bool(full.mask.all()) and full.n_observed == 100


def test_losses_match_the_definition():
    P = _problem(d=15, r=2, p=0.4)
    W = torch.randn(15, 15, generator=torch.Generator().manual_seed(1), dtype=F64)
    train, test = completion.losses(P, W)
    m = P.mask.to(F64)
    assert float(train) == pytest.approx(0.5 * float(((m * (W - P.target)) ** 2).mean()), rel=1e-13)
    assert float(test) == pytest.approx(
        0.5 * float((((1 - m) * (W - P.target)) ** 2).mean()), rel=1e-13
    )


def test_parameter_counts():
    P = _problem(d=30, r=2, p=0.5)
    kw = dict(depth=4, max_steps=0, rank_hat=3)
    for method, expected in (("original", 4 * 900), ("compressed", 4 * 36 + 2 * 30 * 6), ("narrow", 2 * 36 + 2 * 30 * 6)):  # fmt: skip
        assert completion.fit(P, method, **kw).n_params == expected
        assert completion.parameter_count(method, 30, 4, 3) == expected
    assert completion.parameter_count("original", 1000, 3) == 3_000_000
    assert completion.parameter_count("compressed", 1000, 3, 5) == 20_300  # O(L r̂² + d r̂)


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(d=10, rank=10, observed_fraction=0.5), "rank must be < d"),
        (dict(d=10, rank=12, observed_fraction=0.5), "rank must be < d"),
        (dict(d=10, rank=0, observed_fraction=0.5), "rank must be an integer >= 1"),
        (dict(d=10, rank=2, observed_fraction=0.0), r"observed_fraction must be in \(0, 1\]"),
        (dict(d=10, rank=2, observed_fraction=1.5), r"observed_fraction must be in \(0, 1\]"),
        (dict(d=10, rank=2, observed_fraction=-0.2), r"observed_fraction must be in \(0, 1\]"),
        (dict(d=10, rank=2, observed_fraction="half"), "observed_fraction must be a number"),
        (dict(d=100, rank=2, observed_fraction=1e-6), "observes no entry"),
        (dict(d=1, rank=1, observed_fraction=0.5), "d must be an integer >= 2"),
    ],
)
def test_make_problem_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        completion.make_problem(**kwargs)
