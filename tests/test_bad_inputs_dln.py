"""Bad inputs of lib.dln and lib.parsimony.theory.rho_recursion (issue 15): errors name the
argument, degenerate valid data gets its documented answer, valid edge inputs are accepted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _cases import case, covers

from lib import dln
from lib.parsimony import theory

F64 = torch.float64
NAN, INF = float("nan"), float("inf")


def _net():
    g = torch.Generator().manual_seed(0)
    Ws = dln.init_weights([4, 4, 3], 0.1, generator=g, dtype=F64)
    X = torch.eye(4, dtype=F64)
    Y = torch.randn(4, 3, generator=g, dtype=F64)
    return Ws, X, Y


def _runs(n=2):
    Ws, _, _ = _net()
    return dln.stack_runs([Ws] * n)


def _X():
    return torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=F64)


def _labels():
    return torch.tensor([0, 1, 2, 0, 1, 2])


def _history():
    Ws, X, Y = _net()
    return dln.train(Ws, X, Y, lr=0.1, steps=2)


# --------------------------------------------------------------------------------------------
# lib.dln.data: whitened_inputs, whiten, low_rank_targets, one_hot_targets
# --------------------------------------------------------------------------------------------

wi, lrt, oh = dln.whitened_inputs, dln.low_rank_targets, dln.one_hot_targets
BAD_DATA = [
    case("wi-n-zero", wi, lambda: wi(0, 3), ValueError, r"^n_samples "),
    case("wi-d-float", wi, lambda: wi(6, 2.5), ValueError, r"^d "),
    case("wi-n-below-d", wi, lambda: wi(2, 3), ValueError, r"n_samples >= d"),
    case("wi-dtype-str", wi, lambda: wi(6, 3, dtype="float64"), ValueError, r"^dtype "),
    case("wi-dtype-int", wi, lambda: wi(6, 3, dtype=torch.int64), ValueError, r"^dtype "),
    case("wi-generator-int", wi, lambda: wi(6, 3, generator=0), TypeError, r"^generator "),
    case("wi-device-typo", wi, lambda: wi(6, 3, device="gpu"), ValueError, r"^device "),
    case("whiten-list", dln.whiten, lambda: dln.whiten([[1.0]]), ValueError, r"^X must be a torch"),
    case("whiten-1d", dln.whiten, lambda: dln.whiten(torch.ones(3)), ValueError, r"^X must be 2-D"),
    case("whiten-int", dln.whiten, lambda: dln.whiten(_X().long()), ValueError, r"^X must be a fl"),
    case("whiten-half", dln.whiten, lambda: dln.whiten(_X().half()), ValueError, r"^X has dtype"),
    case("whiten-bf16", dln.whiten, lambda: dln.whiten(_X().bfloat16()), ValueError, r"^X has dty"),
    case("whiten-meta", dln.whiten, lambda: dln.whiten(_X().to("meta")), ValueError, r"^X is a 'm"),
    case("whiten-nan", dln.whiten, lambda: dln.whiten(_X() * NAN), ValueError, r"^X contains NaN"),
    case("whiten-no-rows", dln.whiten, lambda: dln.whiten(_X()[:0]), ValueError, r"^X is empty"),
    case("whiten-no-cols", dln.whiten, lambda: dln.whiten(_X()[:, :0]), ValueError, r"^X is empty"),
    case("whiten-eps-neg", dln.whiten, lambda: dln.whiten(_X(), -1.0), ValueError, r"^eps "),
    case("whiten-eps-nan", dln.whiten, lambda: dln.whiten(_X(), NAN), ValueError, r"^eps "),
    case("whiten-eps-bool", dln.whiten, lambda: dln.whiten(_X(), True), ValueError, r"^eps "),
    case(
        "whiten-rank-deficient",
        dln.whiten,
        lambda: dln.whiten(torch.ones(6, 3, dtype=F64)),
        ValueError,
        r"^X is rank deficient",
    ),
    case("whiten-n-below-d", dln.whiten, lambda: dln.whiten(_X().T), ValueError, r"^X is rank"),
    case("lrt-r-zero", lrt, lambda: lrt(6, 3, 0), ValueError, r"^r "),
    case("lrt-r-too-big", lrt, lambda: lrt(6, 3, 4), ValueError, r"rank r must be <="),
    case("lrt-n-negative", lrt, lambda: lrt(-1, 3, 1), ValueError, r"^n_samples "),
    case("lrt-d-out-bool", lrt, lambda: lrt(6, True, 1), ValueError, r"^d_out "),
    case("lrt-dtype-int", lrt, lambda: lrt(6, 3, 1, dtype=torch.int32), ValueError, r"^dtype "),
    case("lrt-generator", lrt, lambda: lrt(6, 3, 1, generator="0"), TypeError, r"^generator "),
    case("lrt-device", lrt, lambda: lrt(6, 3, 1, device="gpu"), ValueError, r"^device "),
    case("oh-float", oh, lambda: oh(_labels().double()), ValueError, r"^labels must be a 1-D int"),
    case("oh-2d", oh, lambda: oh(_labels()[None]), ValueError, r"^labels must be a 1-D"),
    case("oh-list", oh, lambda: oh([0, 1]), ValueError, r"^labels must be a 1-D"),
    case("oh-meta", oh, lambda: oh(_labels().to("meta")), ValueError, r"^labels is a 'meta'"),
    case("oh-empty", oh, lambda: oh(_labels()[:0]), ValueError, r"^labels is empty"),
    case("oh-negative", oh, lambda: oh(_labels() - 1), ValueError, r"^labels must be >= 0"),
    case("oh-k-zero", oh, lambda: oh(_labels(), 0), ValueError, r"^n_classes "),
    case(
        "oh-k-too-small", oh, lambda: oh(_labels(), 2), ValueError, r"^labels must be < n_classes"
    ),
    case("oh-dtype-int", oh, lambda: oh(_labels(), dtype=torch.int64), ValueError, r"^dtype "),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_DATA)
def test_bad_data_arguments_are_refused(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@covers(dln.whitened_inputs, dln.whiten, dln.low_rank_targets, dln.one_hot_targets)
def test_data_edge_inputs_are_accepted():
    g = torch.Generator().manual_seed(0)
    X = dln.whitened_inputs(np.int64(4), np.int64(4), generator=g, dtype=F64)  # N = d
    assert torch.allclose(X @ X.T, torch.eye(4, dtype=F64), atol=1e-14)  # orthogonal
    assert dln.whitened_inputs(6, 3, dtype=torch.float16).dtype == torch.float16
    Xw = dln.whiten(_X().T.contiguous().T, eps=np.float64(0.0))  # non-contiguous
    assert torch.allclose(Xw.T @ Xw, torch.eye(3, dtype=F64), atol=1e-12)
    ridge = dln.whiten(torch.ones(6, 3, dtype=F64), eps=1e-3)  # rank deficient: a ridge helps
    assert torch.isfinite(ridge).all()
    assert dln.low_rank_targets(np.int64(6), 3, np.int64(3)).shape == (6, 3)
    Y = dln.one_hot_targets(_labels(), np.int64(5), dtype=F64)  # empty classes: zero columns
    assert Y.shape == (6, 5) and Y[:, 3:].abs().sum() == 0


# --------------------------------------------------------------------------------------------
# lib.dln.weights: init_weights, init_weights_batched, stack_runs, unstack_runs, end_to_end
# --------------------------------------------------------------------------------------------

iw, iwb = dln.init_weights, dln.init_weights_batched
BAD_WEIGHTS = [
    case("iw-one-width", iw, lambda: iw([3], 0.1), ValueError, r"^dims "),
    case("iw-dims-str", iw, lambda: iw("33", 0.1), ValueError, r"^dims "),
    case("iw-dims-array", iw, lambda: iw(np.array([3, 3]), 0.1), ValueError, r"^dims "),
    case("iw-zero-width", iw, lambda: iw([3, 0], 0.1), ValueError, r"^every entry of dims "),
    case("iw-float-width", iw, lambda: iw([3, 2.5], 0.1), ValueError, r"^every entry of dims "),
    case("iw-scale-zero", iw, lambda: iw([3, 3], 0.0), ValueError, r"^scale "),
    case("iw-scale-nan", iw, lambda: iw([3, 3], NAN), ValueError, r"^scale "),
    case("iw-scale-bool", iw, lambda: iw([3, 3], True), ValueError, r"^scale "),
    case("iw-scale-tensor", iw, lambda: iw([3, 3], torch.tensor(0.1)), ValueError, r"^scale "),
    case("iw-kind", iw, lambda: iw([3, 3], 0.1, "xavier"), ValueError, r"^unknown kind 'xavier'"),
    case("iw-dtype", iw, lambda: iw([3, 3], 0.1, dtype=torch.int64), ValueError, r"^dtype "),
    case("iw-generator", iw, lambda: iw([3, 3], 0.1, generator=1), TypeError, r"^generator "),
    case("iw-device", iw, lambda: iw([3, 3], 0.1, device="gpu"), ValueError, r"^device "),
    case("iwb-no-runs", iwb, lambda: iwb(0, [3, 3], 0.1), ValueError, r"^n_runs "),
    case("iwb-scale-length", iwb, lambda: iwb(2, [3, 3], [0.1] * 3), ValueError, r"^scale "),
    case("iwb-scale-negative", iwb, lambda: iwb(2, [3, 3], [0.1, -1]), ValueError, r"^scale "),
    case("iwb-scale-str", iwb, lambda: iwb(2, [3, 3], "0.1"), ValueError, r"^scale "),
    case("stack-empty", dln.stack_runs, lambda: dln.stack_runs([]), ValueError, r"^runs "),
    case(
        "stack-tensor",
        dln.stack_runs,
        lambda: dln.stack_runs(torch.ones(2, 3)),
        ValueError,
        "^runs",
    ),
    case(
        "stack-not-tensors",
        dln.stack_runs,
        lambda: dln.stack_runs([[1.0]]),
        ValueError,
        r"^runs\[0\]\[0\]",
    ),
    case(
        "stack-empty-run",
        dln.stack_runs,
        lambda: dln.stack_runs([_net()[0], []]),
        ValueError,
        r"^runs\[1\] ",
    ),
    case(
        "stack-depths",
        dln.stack_runs,
        lambda: dln.stack_runs([_net()[0], _net()[0][:1]]),
        ValueError,
        r"^runs: every run",
    ),
    case(
        "stack-shapes",
        dln.stack_runs,
        lambda: dln.stack_runs([_net()[0][:1], _net()[0][1:]]),
        ValueError,
        r"^runs\[1\]\[0\] \(W_1 of run 1\)",
    ),
    case(
        "stack-dtypes",
        dln.stack_runs,
        lambda: dln.stack_runs([_net()[0], [W.float() for W in _net()[0]]]),
        ValueError,
        r"^runs\[1\]\[0\] .* torch.float32",
    ),
    case(
        "stack-devices",
        dln.stack_runs,
        lambda: dln.stack_runs([_net()[0], [W.to("meta") for W in _net()[0]]]),
        ValueError,
        r"^runs\[1\]\[0\] .* on meta",
    ),
    case("unstack-empty", dln.unstack_runs, lambda: dln.unstack_runs([]), ValueError, r"^weights"),
    case("unstack-2d", dln.unstack_runs, lambda: dln.unstack_runs(_net()[0]), ValueError, r"^W_1 "),
    case(
        "unstack-runs-differ",
        dln.unstack_runs,
        lambda: dln.unstack_runs([_runs(2)[0], _runs(3)[1]]),
        ValueError,
        r"^weights must share the run axis B",
    ),
    case("e2e-empty", dln.end_to_end, lambda: dln.end_to_end([]), ValueError, r"^weights "),
    case(
        "e2e-chain",
        dln.end_to_end,
        lambda: dln.end_to_end([_net()[0][1], _net()[0][1]]),
        ValueError,
        r"W_2 has 4 input columns",
    ),
    case("e2e-not-tensor", dln.end_to_end, lambda: dln.end_to_end([[1.0]]), ValueError, r"^W_1 "),
    case(
        "e2e-dtypes",
        dln.end_to_end,
        lambda: dln.end_to_end([_net()[0][0], _net()[0][1].float()]),
        ValueError,
        r"W_2 is torch.float32",
    ),
    case(
        "e2e-devices",
        dln.end_to_end,
        lambda: dln.end_to_end([_net()[0][0], _net()[0][1].to("meta")]),
        ValueError,
        r"W_2 is torch.float64 on meta",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_WEIGHTS)
def test_bad_weights_are_refused(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@covers(dln.init_weights, dln.init_weights_batched, dln.stack_runs, dln.unstack_runs)
def test_weights_edge_inputs_are_accepted():
    Ws = dln.init_weights((3, 3), np.float32(0.5), dtype=torch.float16)
    assert Ws[0].dtype == torch.float16
    g = torch.Generator().manual_seed(0)
    Wb = dln.init_weights_batched(np.int64(2), [3, 3], torch.tensor([0.1, 0.2]), generator=g)
    assert Wb[0].shape == (2, 3, 3)
    assert len(dln.unstack_runs(dln.stack_runs([Ws, Ws]))) == 2


# --------------------------------------------------------------------------------------------
# lib.dln.training: train, train_batched, loss_coefficient, History
# --------------------------------------------------------------------------------------------


def _train(**kw):
    Ws, X, Y = _net()
    args = dict(weights=Ws, X=X, Y=Y, lr=0.1, steps=2) | kw
    return dln.train(**args)


def _batched(**kw):
    _, X, Y = _net()
    args = dict(weights=_runs(2), X=X, Y=Y, lr=0.1, steps=2) | kw
    return dln.train_batched(**args)


tr, tb, lc = dln.train, dln.train_batched, dln.loss_coefficient
BAD_TRAINING = [
    case("nan-lr", tr, lambda: _train(lr=NAN), ValueError, r"^lr "),
    case("inf-lr", tr, lambda: _train(lr=INF), ValueError, r"^lr "),
    case("zero-lr", tr, lambda: _train(lr=0.0), ValueError, r"^lr "),
    case("tensor-lr", tr, lambda: _train(lr=torch.tensor(0.1)), ValueError, r"^lr must be a num"),
    case("nan-weight-decay", tr, lambda: _train(weight_decay=NAN), ValueError, r"^weight_decay "),
    case("inf-weight-decay", tr, lambda: _train(weight_decay=INF), ValueError, r"^weight_decay "),
    case("neg-weight-decay", tr, lambda: _train(weight_decay=-1.0), ValueError, r"^weight_decay"),
    case("nan-momentum", tr, lambda: _train(momentum=NAN), ValueError, r"^momentum "),
    case("momentum-one", tr, lambda: _train(momentum=1.0), ValueError, r"^momentum "),
    case("negative-steps", tr, lambda: _train(steps=-1), ValueError, r"^steps "),
    case("float-steps", tr, lambda: _train(steps=2.0), ValueError, r"^steps "),
    case("record-every-zero", tr, lambda: _train(record_every=0), ValueError, r"^record_every "),
    case("reduction", tr, lambda: _train(reduction="max"), ValueError, r"^unknown reduction 'max"),
    case("activation", tr, lambda: _train(activation="tanh"), ValueError, r"^unknown activation"),
    case("empty-weights", tr, lambda: _train(weights=[]), ValueError, r"^weights "),
    case("tensor-weights", tr, lambda: _train(weights=_net()[0][0]), ValueError, r"^weights "),
    case(
        "chain-mismatch",
        tr,
        lambda: _train(weights=[_net()[0][0], _net()[0][0][:3, :3]]),
        ValueError,
        r"W_2 has 3 input columns",
    ),
    case("3d-weights", tr, lambda: _train(weights=_runs(1)), ValueError, r"^W_1 must be a tensor"),
    case(
        "weight-dtypes",
        tr,
        lambda: _train(weights=[_net()[0][0], _net()[0][1].float()]),
        ValueError,
        r"W_2 is torch.float32",
    ),
    case(
        "complex-weights",
        tr,
        lambda: _train(weights=[W.cdouble() for W in _net()[0]]),
        ValueError,
        r"^W_1 must be a floating",
    ),
    case(
        "meta-weights",
        tr,
        lambda: _train(weights=[W.to("meta") for W in _net()[0]]),
        ValueError,
        r"^W_1 is a 'meta'",
    ),
    case("row-mismatch", tr, lambda: _train(Y=_net()[2][:3]), ValueError, r"X has N=4 rows but Y"),
    case("Y-columns", tr, lambda: _train(Y=_net()[2][:, :2]), ValueError, r"Y has 2 columns"),
    case("X-columns", tr, lambda: _train(X=_net()[1][:, :3]), ValueError, r"X has 3 columns"),
    case("X-dtype", tr, lambda: _train(X=_net()[1].float()), ValueError, r"^X has dtype"),
    case("X-3d", tr, lambda: _train(X=_net()[1][None]), ValueError, r"^X must be 2-D"),
    case("X-meta", tr, lambda: _train(X=_net()[1].to("meta")), ValueError, r"^X is a 'meta'"),
    case("X-nan", tr, lambda: _train(X=_net()[1] * NAN), ValueError, r"^X contains NaN"),
    case("X-empty", tr, lambda: _train(X=_net()[1][:0], Y=_net()[2][:0]), ValueError, r"^X is emp"),
    case("Y-inf", tr, lambda: _train(Y=_net()[2] / 0), ValueError, r"^Y contains NaN"),
    case("Y-list", tr, lambda: _train(Y=[[0.0] * 3] * 4), ValueError, r"^Y must be a torch"),
    case(
        "batched-nan-momentum", tb, lambda: _batched(momentum=[0.0, NAN]), ValueError, "^momentum"
    ),
    case("batched-inf-lr", tb, lambda: _batched(lr=[0.1, INF]), ValueError, r"^lr "),
    case("batched-lr-length", tb, lambda: _batched(lr=[0.1] * 3), ValueError, r"^lr must"),
    case("batched-lr-str", tb, lambda: _batched(lr="0.1"), ValueError, r"^lr must"),
    case("batched-lr-2d", tb, lambda: _batched(lr=torch.ones(2, 2)), ValueError, r"^lr must"),
    case("batched-steps-bool", tb, lambda: _batched(steps=True), ValueError, r"^steps "),
    case(
        "batched-X-runs",
        tb,
        lambda: _batched(X=torch.eye(4, dtype=F64).expand(3, 4, 4)),
        ValueError,
        r"^X has 3 runs",
    ),
    case("batched-2d-weights", tb, lambda: _batched(weights=_net()[0]), ValueError, r"^W_1 must"),
    case(
        "batched-run-axes",
        tb,
        lambda: _batched(weights=[_runs(2)[0], _runs(3)[1]]),
        ValueError,
        r"W_2 has B=3",
    ),
    case("batched-Y-meta", tb, lambda: _batched(Y=_net()[2].to("meta")), ValueError, r"^Y is a"),
    case("lc-reduction", lc, lambda: lc("avg", 4, 3), ValueError, r"^unknown reduction 'avg'"),
    case("lc-no-samples", lc, lambda: lc("mean", 0, 3), ValueError, r"^n_samples "),
    case("lc-d-out-float", lc, lambda: lc("mean", 4, 3.0), ValueError, r"^d_out "),
    case("trajectory-past-end", dln.History, lambda: _history().trajectory(2), ValueError, r"^i "),
    case("trajectory-float", dln.History, lambda: _history().trajectory(1.0), ValueError, r"^i "),
    case("trajectory-bool", dln.History, lambda: _history().trajectory(True), ValueError, r"^i "),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_TRAINING)
def test_bad_training_arguments_are_refused(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@covers(dln.train, dln.end_to_end)
def test_dln_accepts_numpy_scalars_and_non_contiguous_tensors():
    Ws, X, Y = _net()
    ref = dln.train(Ws, X, Y, lr=0.1, steps=3)
    h = dln.train(
        [W.T.contiguous().T for W in Ws],
        X.T.contiguous().T,
        Y.T.contiguous().T,
        lr=np.float64(0.1),
        steps=np.int64(3),
        record_every=np.int64(1),
    )
    assert torch.equal(h.loss, ref.loss)
    assert torch.equal(dln.end_to_end(Ws), Ws[1] @ Ws[0])


@covers(dln.train, dln.train_batched, dln.loss_coefficient, dln.History)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_training_is_supported(dtype):
    Ws, X, Y = _net()
    h = dln.train([W.to(dtype) for W in Ws], X.to(dtype), Y.to(dtype), lr=0.1, steps=3)
    assert h.loss.dtype == dtype and torch.isfinite(h.loss).all()
    assert h.trajectory(-1).shape == (4, 3, 4)
    hb = dln.train_batched(_runs(2), X, Y, lr=[0.1, 0.2], steps=0)  # steps = 0: the init only
    assert hb.loss.shape == (1, 2) and hb.steps.tolist() == [0]
    assert dln.loss_coefficient("mean", np.int64(4), 3) == 1 / 12


# --------------------------------------------------------------------------------------------
# lib.parsimony.theory.rho_recursion (also lib.dln.rho_recursion)
# --------------------------------------------------------------------------------------------


def _rho(**over):
    kw = dict(scale=0.1, lr=0.5, steps=4, depth=3, reduction="sum") | over
    return theory.rho_recursion(**kw)


rr = theory.rho_recursion
BAD_RHO = [
    case("scale-0", rr, lambda: _rho(scale=0.0), ValueError, r"^scale "),
    case("scale-nan", rr, lambda: _rho(scale=NAN), ValueError, r"^scale "),
    case("scale-bool", rr, lambda: _rho(scale=True), TypeError, r"^scale "),
    case("scale-str", rr, lambda: _rho(scale="0.1"), TypeError, r"^scale "),
    case("scale-2d", rr, lambda: _rho(scale=torch.full((2, 2), 0.1)), ValueError, r"^scale "),
    case("scale-empty", rr, lambda: _rho(scale=[]), ValueError, r"^scale "),
    case("lr-0", rr, lambda: _rho(lr=0.0), ValueError, r"^lr "),
    case("lr-inf", rr, lambda: _rho(lr=INF), ValueError, r"^lr "),
    case("lr-nan", rr, lambda: _rho(lr=NAN), ValueError, r"^lr "),
    case("steps-1", rr, lambda: _rho(steps=-1), ValueError, r"^steps "),
    case("steps-float", rr, lambda: _rho(steps=2.5), ValueError, r"^steps "),
    case("depth-0", rr, lambda: _rho(depth=0), ValueError, r"^depth "),
    case("depth-float", rr, lambda: _rho(depth=3.0), ValueError, r"^depth "),
    case("momentum-1", rr, lambda: _rho(momentum=1.0), ValueError, r"^momentum "),
    case("weight-decay-inf", rr, lambda: _rho(weight_decay=INF), ValueError, r"^weight_decay "),
    case("record-every-0", rr, lambda: _rho(record_every=0), ValueError, r"^record_every "),
    case("reduction", rr, lambda: _rho(reduction="avg"), ValueError, r"^unknown reduction"),
    case("group", rr, lambda: _rho(group="all"), ValueError, r"^unknown group 'all'"),
    case("mean-needs-sizes", rr, lambda: _rho(reduction="mean"), ValueError, r"needs n_samples"),
    case(
        "mean-n-zero",
        rr,
        lambda: _rho(reduction="mean", n_samples=0, d_out=3),
        ValueError,
        r"^n_samples ",
    ),
    case(
        "per-run-lengths",
        rr,
        lambda: _rho(scale=[0.1, 0.2], lr=[0.1, 0.2, 0.3]),
        ValueError,
        r"scale with 2, lr with 3",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_RHO)
def test_rho_recursion_refuses_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@covers(theory.rho_recursion)
@pytest.mark.parametrize("fn", [theory.rho_recursion, dln.rho_recursion], ids=["theory", "dln"])
@pytest.mark.parametrize("record_every", [1, 3])
def test_rho_recursion_divergence_raises_naming_the_step(fn, record_every):
    # rho: 5, -3.1e4, 3e23, -2e118, then inf at step 4 (and NaN after)
    with pytest.raises(ValueError, match=r"diverged.*step (4|6)\b.*lr=10"):
        fn(5.0, 10.0, 20, depth=3, reduction="sum", record_every=record_every)


@covers(theory.rho_recursion)
def test_rho_recursion_divergence_names_the_runs_of_a_sweep():
    with pytest.raises(ValueError, match=r"runs? \[1\].*lr=10"):
        theory.rho_recursion(5.0, [1e-4, 10.0], 20, depth=3, reduction="sum")


@covers(theory.rho_recursion)
def test_rho_recursion_accepts_numpy_numbers():
    ref = theory.rho_recursion(0.1, 0.5, 4, depth=3, reduction="sum")
    got = theory.rho_recursion(
        np.float64(0.1), np.float64(0.5), np.int64(4), depth=np.int64(3), reduction="sum"
    )
    assert torch.equal(got, ref)
    assert torch.equal(
        theory.rho_recursion(0.1, torch.tensor(0.5), 4, 3, reduction="sum")[:, 0], ref
    )
    assert theory.rho_recursion(0.1, 0.5, 0, 3, reduction="sum").tolist() == [0.1]  # steps = 0
