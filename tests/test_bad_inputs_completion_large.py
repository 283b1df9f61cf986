"""Bad inputs of lib.completion.large (issue 17, item 4): every public function refuses a wrong
argument at entry with a message naming it; a hand-built LargeProblem whose entries are not
sorted, unique int64 lists in range, or whose values are not finite, is refused by every
function that takes it; valid edge inputs (NumPy integers and floats) are accepted."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from _cases import case, covers

from lib.completion import make_problem
from lib.completion.large import (
    LargeProblem,
    compress_large,
    fit_large,
    make_large_problem,
    sparse_first_gradient,
    to_dense,
)

F64 = torch.float64
NAN, INF = float("nan"), float("inf")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is fastest

EXEMPT = {
    "lib.completion.large.fit.LargeFitResult": "result record built by fit_large; never constructed by callers",
}


def _P(d=12, rank=2, p=0.4):
    return make_large_problem(
        d, rank, p, n_test=20, generator=torch.Generator().manual_seed(0), dtype=F64
    )


def _with(**fields):
    return LargeProblem(
        **{**{f.name: getattr(_P(), f.name) for f in dataclasses.fields(LargeProblem)}, **fields}
    )


def _swap_first_two(name):
    t = getattr(_P(), name).clone()
    t[[0, 1]] = t[[1, 0]]
    return t


def _nan_values():
    v = _P().values.clone()
    v[3] = NAN
    return v


MK = make_large_problem
MAKE = [
    case("d-1", MK, lambda: MK(1, 1, 0.5), r"^d must be"),
    case("d-float", MK, lambda: MK(10.0, 1, 0.5), r"^d must be"),
    case("d-huge", MK, lambda: MK(2**31, 1, 1e-15), r"^d must be < 2\*\*31"),
    case("rank-0", MK, lambda: MK(10, 0, 0.5), r"^rank must be"),
    case("rank-d", MK, lambda: MK(10, 10, 0.5), r"^rank must be < d"),
    case("fraction-0", MK, lambda: MK(10, 1, 0.0), r"^observed_fraction must be"),
    case("fraction-1", MK, lambda: MK(10, 1, 1.0), r"^observed_fraction must observe"),
    case("fraction-nan", MK, lambda: MK(10, 1, NAN), r"^observed_fraction must be"),
    case("fraction-str", MK, lambda: MK(10, 1, "0.5"), r"^observed_fraction must be"),
    case("fraction-no-entry", MK, lambda: MK(10, 1, 1e-4), r"^observed_fraction must observe"),
    case("n_test-0", MK, lambda: MK(10, 1, 0.5, n_test=0), r"^n_test must be"),
    case("n_test-too-many", MK, lambda: MK(10, 1, 0.5, n_test=51), r"^n_test must be <= the 50 unobserved"),
    case("generator-int", MK, lambda: MK(10, 1, 0.5, generator=0), r"^generator must be"),
    case("dtype-int", MK, lambda: MK(10, 1, 0.5, dtype=torch.int64), r"^dtype must be"),
    case("device-meta", MK, lambda: MK(10, 1, 0.5, device="meta"), r"^device 'meta'"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "match"), MAKE)
def test_make_large_problem_refuses(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@covers(make_large_problem, LargeProblem)
def test_make_large_problem_accepts_numpy_numbers():
    P = make_large_problem(np.int64(12), np.int32(2), np.float64(0.25), n_test=np.int64(5))
    assert (P.d, P.rank, P.n_observed, P.test_rows.numel()) == (12, 2, 36, 5)
    assert P.observed_fraction == 0.25


PROBLEMS = [
    case("none", to_dense, lambda: to_dense(None), r"^problem must be a lib.completion.large.LargeProblem"),
    case("dense-problem", fit_large, lambda: fit_large(make_problem(10, 2, 0.5)), r"^problem must be a lib.completion.large"),
    case("rows-int32", LargeProblem, lambda: to_dense(_with(rows=_P().rows.int())), r"^problem.rows and problem.cols must be int64"),
    case("rows-unsorted", LargeProblem, lambda: fit_large(_with(rows=_swap_first_two("rows"), cols=_swap_first_two("cols"))), r"^problem.rows, problem.cols must be unique"),
    case("cols-out-of-range", LargeProblem, lambda: compress_large(_with(cols=_P().cols + 12)), r"must be unique entries in \[0, 12\)"),
    case("test-duplicate", LargeProblem, lambda: fit_large(_with(test_rows=_P().test_rows * 0, test_cols=_P().test_cols * 0)), r"^problem.test_rows, problem.test_cols"),
    case("values-nan", LargeProblem, lambda: sparse_first_gradient(_with(values=_nan_values())), r"^problem.values contains NaN"),
    case("values-short", LargeProblem, lambda: to_dense(_with(values=_P().values[:-1])), r"^problem.rows, cols, values must be non-empty and of one length"),
    case("test-values-float32", LargeProblem, lambda: fit_large(_with(test_values=_P().test_values.float())), r"^problem.test_values must be float32 or float64 like"),
    case("rows-meta", LargeProblem, lambda: fit_large(_with(rows=_P().rows.to("meta"))), r"on problem.left's device"),
    case("left-1d", LargeProblem, lambda: to_dense(_with(left=_P().left[:, 0])), r"^problem.left and problem.right must be \(d, r\)"),
    case("to_dense-too-large", to_dense, lambda: to_dense(make_large_problem(5000, 1, 1e-6, n_test=3)), r"^to_dense builds the 5000x5000 target"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "match"), PROBLEMS)
def test_malformed_problems_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


SG, CL, FL = sparse_first_gradient, compress_large, fit_large
ARGS = [
    case("gradient-depth-0", SG, lambda: SG(_P(), depth=0), r"^depth must be"),
    case("gradient-scale-0", SG, lambda: SG(_P(), scale=0.0), r"^scale must be"),
    case("gradient-scale-nan", SG, lambda: SG(_P(), scale=NAN), r"^scale must be"),
    case("compress-rank_hat-0", CL, lambda: CL(_P(), rank_hat=0), r"^rank_hat must be"),
    case("compress-rank_hat-large", CL, lambda: CL(_P(), rank_hat=7), r"^rank_hat is too large"),
    case("compress-iterations-0", CL, lambda: CL(_P(), iterations=0), r"^iterations must be"),
    case("fit-lr-negative", FL, lambda: FL(_P(), lr=-1.0), r"^lr must be"),
    case("fit-lr-inf", FL, lambda: FL(_P(), lr=INF), r"^lr must be"),
    case("fit-gamma-negative", FL, lambda: FL(_P(), gamma=-0.1), r"^gamma must be"),
    case("fit-tol-nan", FL, lambda: FL(_P(), tol=NAN), r"^tol must be"),
    case("fit-max_steps-negative", FL, lambda: FL(_P(), max_steps=-1), r"^max_steps must be"),
    case("fit-record_every-0", FL, lambda: FL(_P(), record_every=0), r"^record_every must be"),
    case("fit-time_limit-0", FL, lambda: FL(_P(), time_limit=0.0), r"^time_limit must be"),
    case("fit-iterations-0", FL, lambda: FL(_P(), iterations=0), r"^iterations must be"),
    case("fit-step_mode", FL, lambda: FL(_P(), step_mode="fast"), r"^unknown step_mode 'fast'"),
    case("fit-step_mode-graph-cpu", FL, lambda: FL(_P(), step_mode="graph"), r"needs a CUDA device"),
    case("fit-layout", FL, lambda: FL(_P(), layout="dense"), r"^unknown layout 'dense'"),
    case("fit-diverges", FL, lambda: FL(_P(), lr=1e9, scale=0.5, max_steps=50, record_every=10), r"training diverged .* lr=1e\+09"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "match"), ARGS)
def test_arguments_are_checked(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@covers(fit_large, compress_large, sparse_first_gradient, to_dense)
def test_edge_inputs_are_accepted():
    """NumPy integers and floats, zero steps, γ = 0 (fixed outer factors), r̂ = d/2."""
    P = _P()
    res = fit_large(P, np.int64(3), np.float64(0.1), max_steps=0, gamma=0.0)
    assert res.steps == 0 and res.test_error[0] > 0.9 and len(res.record_steps) == 1
    res = fit_large(P, scale=0.1, gamma=0.0, max_steps=3, record_every=np.int64(1))
    assert torch.equal(res.weights[0], res.weights0[0]) and torch.equal(
        res.weights[-1], res.weights0[-1]
    )
    assert [tuple(W.shape) for W in compress_large(P, np.int64(1), rank_hat=6)] == [
        (12, 12),
        (12, 12),
        (12, 12),
    ]
    assert sparse_first_gradient(P, np.int64(1), np.float64(0.5)).shape == P.rows.shape
    assert to_dense(P).mask.sum() == P.n_observed
