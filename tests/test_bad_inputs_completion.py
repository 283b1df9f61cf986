"""Bad inputs of lib.completion's numbers (issue 15): the problem is checked at entry (structure,
device, dtype, then values), every error names the argument, valid edge inputs are accepted.

The figures and :func:`lib.completion.project_trajectories` are in
``test_bad_inputs_completion_2.py``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from _cases import case, covers

from lib.completion import (
    Problem,
    compress,
    default_lr,
    first_gradient,
    fit,
    init_narrow,
    init_original,
    losses,
    make_problem,
    parameter_count,
)

F64 = torch.float64
NAN, INF = float("nan"), float("inf")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is fastest

EXEMPT = {
    "lib.completion.train.FitResult": "result record built by fit; callers never construct it",
}


def _problem(dtype=F64, d=12, rank=2):
    return make_problem(d, rank, 0.5, generator=torch.Generator().manual_seed(0), dtype=dtype)


def _weights(depth=2):
    return init_original(_problem(), depth=depth)


# --------------------------------------------------------------------------------------------
# the problem is checked at every entry point (structure, device, dtype, then values)
# --------------------------------------------------------------------------------------------


def _nan_target(P):
    T = P.target.clone()
    T[0, 0] = NAN
    return dataclasses.replace(P, target=T)


def _inf_target_in_place(P):
    P.target[1, 1] = INF  # values is a copy: only the target changes
    return P


def _all_meta(P):
    meta = {k: getattr(P, k).to("meta") for k in ("target", "mask", "rows", "cols", "values")}
    return dataclasses.replace(P, **meta)


_BAD_PROBLEMS = {
    "nan target": (_nan_target, "problem.target"),
    "inf target in place": (_inf_target_in_place, "problem.target"),
    "float mask": (lambda P: dataclasses.replace(P, mask=P.mask.double()), "problem.mask"),
    "mask shape": (lambda P: dataclasses.replace(P, mask=P.mask[:5]), "problem.mask"),
    "non-square target": (lambda P: dataclasses.replace(P, target=P.target[:5]), "problem.target"),
    "integer target": (lambda P: dataclasses.replace(P, target=P.target.long()), "problem.target"),
    "meta target": (_all_meta, "problem.target"),
    "mask on meta": (lambda P: dataclasses.replace(P, mask=P.mask.to("meta")), "problem.mask"),
    "values length": (lambda P: dataclasses.replace(P, values=P.values[:3]), "problem.values"),
    "float rows": (lambda P: dataclasses.replace(P, rows=P.rows.double()), "problem.rows"),
    "rank 0": (lambda P: dataclasses.replace(P, rank=0), "problem.rank"),
    "seed str": (lambda P: dataclasses.replace(P, seed="0"), "problem.seed"),
    "not a problem": (lambda P: P.target, "problem must be"),
}

_ENTRY_POINTS = [
    case("fit", fit, lambda P: fit(P, "original", max_steps=2)),
    case("fit-compressed", fit, lambda P: fit(P, "compressed", lr=1.0, max_steps=2)),
    case("default_lr", default_lr, lambda P: default_lr(P)),
    case("losses", losses, lambda P: losses(P, torch.zeros(12, 12, dtype=F64))),
    case("init_original", init_original, lambda P: init_original(P)),
    case("init_narrow", init_narrow, lambda P: init_narrow(P, 4)),
    case("first_gradient", first_gradient, lambda P: first_gradient(P, _weights())),
    case("compress", compress, lambda P: compress(P, _weights())),
]


@pytest.mark.parametrize("entry", _ENTRY_POINTS)
@pytest.mark.parametrize("bad", list(_BAD_PROBLEMS))
def test_completion_checks_the_problem_at_entry(bad, entry):
    edit, name = _BAD_PROBLEMS[bad]
    P = edit(_problem())
    with pytest.raises(ValueError, match=name):
        entry(P)


def _fields(**over):
    P = _problem()
    return {f.name: getattr(P, f.name) for f in dataclasses.fields(P)} | over


HAND_BUILT = [
    case("rank-float", Problem, lambda: fit(Problem(**_fields(rank=2.0)), "original"), "problem.rank"),
    case("seed-negative", Problem, lambda: fit(Problem(**_fields(seed=-1)), "original"), "problem.seed"),
    case("rows-list", Problem, lambda: default_lr(Problem(**_fields(rows=[0, 1]))), "problem.rows"),
    case("target-numpy", Problem, lambda: losses(Problem(**_fields(target=np.eye(12))), torch.eye(12)), "problem.target"),
    case("rank-too-large-for-width", Problem, lambda: compress(Problem(**_fields(rank=7)), _weights()), "rank_hat"),
    case("mask-none", Problem, lambda: init_narrow(Problem(**_fields(mask=None)), 4), "problem.mask"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), HAND_BUILT)
def test_a_hand_built_problem_is_checked_at_entry(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@covers(Problem)
def test_a_hand_built_problem_that_is_right_is_accepted():
    P = Problem(**_fields())
    assert (P.d, P.n_observed) == (12, 72) and P.observed_fraction == 0.5
    assert fit(P, "compressed", lr=1.0, max_steps=3).train_loss == (
        fit(_problem(), "compressed", lr=1.0, max_steps=3).train_loss
    )


@covers(fit)
def test_completion_nan_target_is_not_reported_as_a_learning_rate_problem():
    with pytest.raises(ValueError, match="problem.target") as err:
        fit(_nan_target(_problem()), "original", lr=1.0, max_steps=2)
    assert "lower lr" not in str(err.value)


# --------------------------------------------------------------------------------------------
# make_problem, parameter_count
# --------------------------------------------------------------------------------------------

MAKE_PROBLEM = [
    case("d-0", make_problem, dict(d=0, rank=1, observed_fraction=0.5), r"^d "),
    case("d-float", make_problem, dict(d=12.0, rank=2, observed_fraction=0.5), r"^d "),
    case("d-bool", make_problem, dict(d=True, rank=1, observed_fraction=0.5), r"^d "),
    case("d-str", make_problem, dict(d="12", rank=2, observed_fraction=0.5), r"^d "),
    case("rank-0", make_problem, dict(d=12, rank=0, observed_fraction=0.5), r"^rank "),
    case("rank-equals-d", make_problem, dict(d=12, rank=12, observed_fraction=0.5), r"^rank "),
    case("fraction-nan", make_problem, dict(d=12, rank=2, observed_fraction=NAN), r"^observed_fraction "),
    case("fraction-inf", make_problem, dict(d=12, rank=2, observed_fraction=INF), r"^observed_fraction "),
    case("fraction-0", make_problem, dict(d=12, rank=2, observed_fraction=0.0), r"^observed_fraction "),
    case("fraction-above-1", make_problem, dict(d=12, rank=2, observed_fraction=1.01), r"^observed_fraction "),
    case("fraction-tensor", make_problem, dict(d=12, rank=2, observed_fraction=torch.tensor(0.5)), r"^observed_fraction "),
    case("fraction-no-entry", make_problem, dict(d=100, rank=2, observed_fraction=1e-6), r"^observed_fraction="),
    case("generator-str", make_problem, dict(d=12, rank=2, observed_fraction=0.5, generator="0"), r"^generator "),
    case("generator-int", make_problem, dict(d=12, rank=2, observed_fraction=0.5, generator=0), r"^generator "),
    case("dtype-int", make_problem, dict(d=12, rank=2, observed_fraction=0.5, dtype=torch.int64), r"^dtype "),
    case("dtype-str", make_problem, dict(d=12, rank=2, observed_fraction=0.5, dtype="float64"), r"^dtype "),
    case("dtype-complex", make_problem, dict(d=12, rank=2, observed_fraction=0.5, dtype=torch.complex64), r"^dtype "),
    case("device-meta", make_problem, dict(d=12, rank=2, observed_fraction=0.5, device="meta"), r"^device "),
    case("device-typo", make_problem, dict(d=12, rank=2, observed_fraction=0.5, device="cpux"), r"^device "),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "name"), MAKE_PROBLEM)
def test_make_problem_refuses(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_problem(**kwargs)


PARAMETER_COUNT = [
    case("method-unknown", parameter_count, ("wide", 10), r"^unknown method 'wide'"),
    case("method-none", parameter_count, (None, 10), r"^unknown method None"),
    case("d-0", parameter_count, ("original", 0), r"^d "),
    case("depth-0", parameter_count, ("original", 10, 0), r"^depth "),
    case("narrow-depth-1", parameter_count, ("narrow", 10, 1), r"^depth "),
    case("rank_hat-0", parameter_count, ("compressed", 10, 3, 0), r"^rank_hat "),
    case("rank_hat-float", parameter_count, ("compressed", 10, 3, 1.5), r"^rank_hat "),
]


@pytest.mark.parametrize(("args", "name"), PARAMETER_COUNT)
def test_parameter_count_refuses(args, name):
    with pytest.raises(ValueError, match=name):
        parameter_count(*args)


@covers(parameter_count, make_problem, fit)
def test_completion_accepts_numpy_integers():
    assert parameter_count("compressed", np.int64(1000), np.int32(3), np.int64(5)) == 20_300
    P = make_problem(
        np.int64(12), np.int64(2), np.float64(0.5), generator=torch.Generator().manual_seed(0),
        dtype=F64,
    )  # fmt: skip
    ref = fit(_problem(), "compressed", lr=1.0, max_steps=3)
    got = fit(P, "compressed", depth=np.int64(3), lr=1.0, max_steps=np.int64(3))
    assert got.train_loss == ref.train_loss


# --------------------------------------------------------------------------------------------
# losses, default_lr, the initialisations, the first gradient, the compression
# --------------------------------------------------------------------------------------------


def _poisoned_weights(value):
    Ws = _weights()
    Ws[1] = Ws[1].clone()
    Ws[1][0, 0] = value
    return Ws


NETWORK = [
    case("losses-shape", losses, lambda P: losses(P, torch.zeros(12, 11, dtype=F64)), r"^end_to_end "),
    case("losses-numpy", losses, lambda P: losses(P, np.zeros((12, 12))), r"^end_to_end "),
    case("losses-float32", losses, lambda P: losses(P, torch.zeros(12, 12)), r"^end_to_end "),
    case("losses-int", losses, lambda P: losses(P, torch.zeros(12, 12, dtype=torch.long)), r"^end_to_end "),
    case("losses-meta", losses, lambda P: losses(P, torch.zeros(12, 12, dtype=F64, device="meta")), r"^end_to_end "),
    case("default_lr-depth-0", default_lr, lambda P: default_lr(P, 0), r"^depth "),
    case("default_lr-depth-str", default_lr, lambda P: default_lr(P, "3"), r"^depth "),
    case("init_original-depth-0", init_original, lambda P: init_original(P, 0), r"^depth "),
    case("init_original-scale-0", init_original, lambda P: init_original(P, 2, 0.0), r"^scale "),
    case("init_original-scale-nan", init_original, lambda P: init_original(P, 2, NAN), r"^scale "),
    case("init_original-generator", init_original, lambda P: init_original(P, generator=0), r"^generator "),
    case("init_narrow-width-0", init_narrow, lambda P: init_narrow(P, 0), r"^width "),
    case("init_narrow-width-above-d", init_narrow, lambda P: init_narrow(P, 13), r"^width "),
    case("init_narrow-depth-1", init_narrow, lambda P: init_narrow(P, 4, 1), r"^depth "),
    case("init_narrow-scale-inf", init_narrow, lambda P: init_narrow(P, 4, 2, INF), r"^scale "),
    case("init_narrow-generator", init_narrow, lambda P: init_narrow(P, 4, generator="g"), r"^generator "),
    case("first_gradient-empty", first_gradient, lambda P: first_gradient(P, []), r"^weights "),
    case("first_gradient-tensor", first_gradient, lambda P: first_gradient(P, _weights()[0]), r"^weights "),
    case("first_gradient-float32", first_gradient, lambda P: first_gradient(P, [W.float() for W in _weights()]), r"^W_1 "),
    case("first_gradient-meta", first_gradient, lambda P: first_gradient(P, [W.to("meta") for W in _weights()]), r"^W_1 "),
    case("first_gradient-numpy", first_gradient, lambda P: first_gradient(P, [W.numpy() for W in _weights()]), r"^W_1 "),
    case("first_gradient-narrow", first_gradient, lambda P: first_gradient(P, init_narrow(P, 4, 2)), r"^W_1 "),
    case("first_gradient-nan", first_gradient, lambda P: first_gradient(P, _poisoned_weights(NAN)), r"^W_2 "),
    case("compress-inf", compress, lambda P: compress(P, _poisoned_weights(INF)), r"^W_2 "),
    case("compress-rank_hat-0", compress, lambda P: compress(P, _weights(), 0), r"^rank_hat "),
    case("compress-rank_hat-large", compress, lambda P: compress(P, _weights(), 7), r"^rank_hat "),
    case("compress-zero-weights", compress, lambda P: compress(P, [torch.zeros_like(W) for W in _weights()]), r"^weights0"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), NETWORK)
def test_network_entry_points_refuse(call, name):
    with pytest.raises(ValueError, match=name):
        call(_problem())


@covers(losses)
def test_losses_of_a_non_finite_matrix_are_reported_not_refused():
    """Documented: a diverged end-to-end matrix gives NaN (inf) losses, never a small number."""
    P = _problem()
    train, test = losses(P, torch.full((12, 12), NAN, dtype=F64))
    assert math.isnan(float(train)) and math.isnan(float(test))
    train, _ = losses(P, P.target + INF)
    assert float(train) == INF


@covers(losses, first_gradient)
def test_non_contiguous_inputs_are_accepted():
    P = _problem()
    Ws = _weights()
    assert torch.equal(losses(P, P.target.T.contiguous().T)[0], losses(P, P.target)[0])
    Wt = [W.T.contiguous().T for W in Ws]  # same values, transposed strides
    assert not Wt[0].is_contiguous()
    assert torch.allclose(first_gradient(P, Wt), first_gradient(P, Ws))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "entry",
    [
        case("fit", fit, lambda P: fit(P, "original", max_steps=2)),
        case("fit-lr", fit, lambda P: fit(P, "compressed", lr=1.0, max_steps=2)),
        case("default_lr", default_lr, lambda P: default_lr(P)),
        case("compress", compress, lambda P: compress(P, init_original(P))),
    ],
)
def test_half_precision_problems_get_the_dtype_error_first(dtype, entry):
    with pytest.raises(ValueError, match=r"float32 or float64.*problem\.target"):
        entry(_problem(dtype))


@covers(init_original, init_narrow, first_gradient, losses, make_problem)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_problems_still_work_where_they_did(dtype):
    """Documented: init_original, init_narrow, first_gradient and losses need no QR/SVD."""
    P = _problem(dtype)
    Ws = init_original(P, depth=2)
    assert Ws[0].dtype == dtype
    assert init_narrow(P, 4)[0].dtype == dtype
    assert first_gradient(P, Ws).shape == (12, 12)
    train, test = losses(P, P.target)
    assert float(train) == 0.0 and float(test) == 0.0


# --------------------------------------------------------------------------------------------
# fit: every hyperparameter
# --------------------------------------------------------------------------------------------

FIT = [
    case("method-unknown", fit, dict(method="wide"), r"^unknown method 'wide'"),
    case("method-none", fit, dict(method=None), r"^unknown method None"),
    case("evaluation", fit, dict(evaluation="sparse"), r"^unknown evaluation 'sparse'"),
    case("layout", fit, dict(layout="csr"), r"^unknown layout 'csr'"),
    case("step_mode", fit, dict(step_mode="turbo"), r"^unknown step_mode 'turbo'"),
    case("step_mode-graph-on-cpu", fit, dict(step_mode="graph"), r"^step_mode='graph' "),
    case("broadcast-str", fit, dict(broadcast="yes"), r"^broadcast "),
    case("generator-int", fit, dict(generator=0), r"^generator "),
    case("lr-nan", fit, dict(lr=NAN), r"^lr "),
    case("lr-inf", fit, dict(lr=INF), r"^lr "),
    case("lr-0", fit, dict(lr=0.0), r"^lr "),
    case("lr-str", fit, dict(lr="1"), r"^lr "),
    case("scale-negative", fit, dict(scale=-1e-3), r"^scale "),
    case("max_steps-negative", fit, dict(max_steps=-1), r"^max_steps "),
    case("max_steps-float", fit, dict(max_steps=2.5), r"^max_steps "),
    case("tol-nan", fit, dict(tol=NAN), r"^tol "),
    case("tol-negative", fit, dict(tol=-1.0), r"^tol "),
    case("gamma-negative", fit, dict(gamma=-0.1), r"^gamma "),
    case("gamma-nan", fit, dict(gamma=NAN), r"^gamma "),
    case("record_every-0", fit, dict(record_every=0), r"^record_every "),
    case("time_limit-0", fit, dict(time_limit=0), r"^time_limit "),
    case("time_limit-nan", fit, dict(time_limit=NAN), r"^time_limit "),
    case("rank_hat-0", fit, dict(rank_hat=0), r"^rank_hat "),
    case("rank_hat-too-large", fit, dict(rank_hat=7), r"^rank_hat "),
    case("narrow-depth-1", fit, dict(method="narrow", depth=1), r"^depth "),
    case("keep_trajectory-str", fit, dict(keep_trajectory="no"), r"^keep_trajectory "),
]


@pytest.mark.parametrize(("kwargs", "name"), FIT)
def test_fit_refuses(kwargs, name):
    args = dict(method="compressed", lr=1.0, max_steps=2) | kwargs
    with pytest.raises(ValueError, match=name):
        fit(_problem(), **args)


@covers(fit)
def test_fit_original_ignores_a_default_rank_hat_too_large_for_the_narrow_width():
    """rank 7 of d = 12: no compressed network (2r̂ > d), but the original network trains."""
    P = make_problem(12, 7, 0.5, generator=torch.Generator().manual_seed(0), dtype=F64)
    assert fit(P, "original", lr=1.0, max_steps=2).steps == 2
    with pytest.raises(ValueError, match=r"^rank_hat is too large: it defaults to problem.rank"):
        fit(P, "compressed", lr=1.0, max_steps=2)


@covers(fit)
def test_fit_divergence_names_the_learning_rate():
    with pytest.raises(ValueError, match=r"training diverged.*lr=1e\+06.*lower lr"):
        fit(_problem(), "original", scale=0.5, lr=1e6, max_steps=200)
