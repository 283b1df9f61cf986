"""Bad inputs of lib.separation's numbers (issue 15): settings that would not train are refused,
every error names the argument, degenerate data gets its documented value, valid edge inputs
(NumPy integers, float16, non-contiguous tensors) are accepted.

The figures and the widget are in ``test_bad_inputs_separation_2.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _cases import case, covers

from lib import dln
from lib.separation import (
    Assumptions,
    DecayFit,
    DigitsSetting,
    SeparationRun,
    Setting,
    decay_ratios,
    fit_decay,
    ideal_ratio,
    layer_features,
    layer_separation,
    load_digits,
    orthogonal_classes,
    ratio_bound,
    theorem_assumptions,
    train_digits_mlp,
    train_settings,
    train_to_tolerance,
)
from lib.separation.digits import _check_digits_setting

F64 = torch.float64
NAN, INF = float("nan"), float("inf")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is fastest

EXEMPT = {
    "lib.separation.train.Converged": "result record built by train_to_tolerance; never constructed",
    "lib.separation.digits.DigitsRun": "result record built by train_digits_mlp; never constructed",
}


def _data(K=2, n=3):
    return orthogonal_classes(K, n, generator=torch.Generator().manual_seed(0), dtype=F64)


def _weights(dims=(6, 6, 2)):
    return dln.init_weights(list(dims), 0.5, generator=torch.Generator().manual_seed(1), dtype=F64)


def _poison(t, value=NAN):
    t = t.contiguous().clone()
    t.view(-1)[1] = value
    return t


# --------------------------------------------------------------------------------------------
# the data and the features
# --------------------------------------------------------------------------------------------

OC = orthogonal_classes
DATA = [
    case("num_classes-1", OC, lambda: OC(1, 3), r"^num_classes "),
    case("num_classes-float", OC, lambda: OC(2.0, 3), r"^num_classes "),
    case("per_class-1", OC, lambda: OC(2, 1), r"^per_class "),
    case("width-0", OC, lambda: OC(2, 3, width=0), r"^width "),
    case("width-above-N", OC, lambda: OC(2, 3, width=7), r"^width d must be <= N"),
    case("generator-int", OC, lambda: OC(2, 3, generator=0), r"^generator "),
    case("dtype-int", OC, lambda: OC(2, 3, dtype=torch.int64), r"^dtype "),
    case("dtype-str", OC, lambda: OC(2, 3, dtype="float64"), r"^dtype "),
    case("device-meta", OC, lambda: OC(2, 3, device="meta"), r"^device "),
    case("device-typo", OC, lambda: OC(2, 3, device="gpu0"), r"^device "),
]

LF = layer_features
FEATURES = [
    case(
        "features-activation", LF, lambda Ws, X, y: LF(Ws, X, "tanh"), r"^unknown activation 'tanh'"
    ),
    case("features-weights-empty", LF, lambda Ws, X, y: LF([], X), r"^weights "),
    case("features-weights-tensor", LF, lambda Ws, X, y: LF(Ws[0], X), r"^weights "),
    case("features-W-int", LF, lambda Ws, X, y: LF([Ws[0].long(), Ws[1]], X), r"^W_1 "),
    case("features-W-chain", LF, lambda Ws, X, y: LF([Ws[1], Ws[0]], X), r"W_2 has 6 input"),
    case(
        "features-W-dtype-mix",
        LF,
        lambda Ws, X, y: LF([Ws[0], Ws[1].float()], X),
        r"^W_2 has dtype",
    ),
    case(
        "features-W-meta",
        LF,
        lambda Ws, X, y: LF([W.to("meta") for W in Ws], X),
        r"^W_1 is a 'meta'",
    ),
    case(
        "features-W-meta-second",
        LF,
        lambda Ws, X, y: LF([Ws[0], Ws[1].to("meta")], X),
        r"^W_2 has dtype",
    ),
    case(
        "features-W-nan", LF, lambda Ws, X, y: LF([_poison(Ws[0]), Ws[1]], X), r"^W_1 contains NaN"
    ),
    case(
        "features-W-inf",
        LF,
        lambda Ws, X, y: LF([Ws[0], _poison(Ws[1], INF)], X),
        r"^W_2 contains NaN",
    ),
    case("features-X-int", LF, lambda Ws, X, y: LF(Ws, X.long()), r"^X must be a floating"),
    case("features-X-numpy", LF, lambda Ws, X, y: LF(Ws, X.numpy()), r"^X must be a floating"),
    case("features-X-1-D", LF, lambda Ws, X, y: LF(Ws, X[0]), r"^X must be a floating"),
    case("features-X-columns", LF, lambda Ws, X, y: LF(Ws, X[:, :5]), r"X has 5 columns"),
    case("features-X-float32", LF, lambda Ws, X, y: LF(Ws, X.float()), r"^X has dtype"),
    case("features-X-meta", LF, lambda Ws, X, y: LF(Ws, X.to("meta")), r"^X is on meta"),
    case("features-X-nan", LF, lambda Ws, X, y: LF(Ws, _poison(X)), r"^X contains NaN"),
]

LS = layer_separation
SEPARATION = [
    case(
        "separation-labels-short", LS, lambda Ws, X, y: LS(Ws, X, y[:3]), r"^labels must have shape"
    ),
    case(
        "separation-labels-list",
        LS,
        lambda Ws, X, y: LS(Ws, X, y.tolist()),
        r"^labels must have shape",
    ),
    case(
        "separation-labels-float",
        LS,
        lambda Ws, X, y: LS(Ws, X, y.double()),
        r"^labels must be integers",
    ),
    case(
        "separation-labels-negative", LS, lambda Ws, X, y: LS(Ws, X, y - 1), r"^labels must lie in"
    ),
    case(
        "separation-labels-meta",
        LS,
        lambda Ws, X, y: LS(Ws, X, y.to("meta")),
        r"^labels is a 'meta'",
    ),
    case(
        "labels-one-class", LS, lambda Ws, X, y: LS(Ws, X, torch.zeros_like(y)), r"all labels are 0"
    ),
    case(
        "separation-num_classes-1",
        LS,
        lambda Ws, X, y: LS(Ws, X, y, num_classes=1),
        r"^num_classes ",
    ),
    case(
        "separation-num_classes-too-few",
        LS,
        lambda Ws, X, y: LS(Ws, X, y + 1, num_classes=2),
        r"^labels ",
    ),
    case(
        "separation-activation",
        LS,
        lambda Ws, X, y: LS(Ws, X, y, "gelu"),
        r"^unknown activation 'gelu'",
    ),
    case("separation-X-nan", LS, lambda Ws, X, y: LS(Ws, _poison(X), y), r"^X contains NaN"),
    case(
        "separation-W-meta",
        LS,
        lambda Ws, X, y: LS([W.to("meta") for W in Ws], X, y),
        r"^W_1 is a 'meta'",
    ),
]


@pytest.mark.parametrize(("call", "name"), DATA)
def test_orthogonal_classes_refuses(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize(("call", "name"), FEATURES + SEPARATION)
def test_features_refuse(call, name):
    X, y, _ = _data()
    with pytest.raises(ValueError, match=name):
        call(_weights(), X, y)


@covers(orthogonal_classes, layer_features, layer_separation)
def test_features_accept_edge_inputs():
    """NumPy integers, float16 (matmuls only) and non-contiguous tensors are valid."""
    X, y, Y = orthogonal_classes(np.int64(2), np.int32(3), dtype=F64)
    assert X.shape == (6, 6) and Y.shape == (6, 2)
    X16, _, _ = orthogonal_classes(2, 3, dtype=torch.float16)
    assert X16.dtype == torch.float16
    Ws = _weights()
    Zs = layer_features([W.half() for W in Ws], X.half())
    assert Zs[-1].dtype == torch.float16
    Wt = [W.mT.contiguous().mT for W in Ws]
    assert not Wt[0].is_contiguous()
    assert torch.allclose(layer_features(Wt, X.mT.contiguous().mT)[-1], layer_features(Ws, X)[-1])
    D = layer_separation(Ws, X, y, num_classes=np.int64(2))
    assert torch.equal(D, layer_separation(Ws, X, y))


@covers(layer_separation)
def test_collapsed_layer_has_the_documented_separation():
    """A zero layer has no between-class spread: D = inf (lib.metrics' one answer), never NaN."""
    X, y, _ = _data()
    D = layer_separation([torch.zeros(6, 6, dtype=F64), torch.ones(2, 6, dtype=F64)], X, y)
    assert float(D[0]) == pytest.approx(4.0) and float(D[1]) == INF and float(D[2]) == INF


# --------------------------------------------------------------------------------------------
# the decay and the theorem
# --------------------------------------------------------------------------------------------

_FIT = fit_decay(torch.tensor([1.0, 0.5, 0.25], dtype=F64))

THEORY = [
    case("ratios-one-layer", decay_ratios, lambda: decay_ratios(torch.tensor([1.0])), r"^D needs at least 2"),
    case("ratios-zero", decay_ratios, lambda: decay_ratios(torch.tensor([1.0, 0.0])), r"^D must hold finite values > 0"),
    case("ratios-nan", decay_ratios, lambda: decay_ratios(torch.tensor([1.0, NAN])), r"^D must hold finite values > 0"),
    case("ratios-meta", decay_ratios, lambda: decay_ratios(torch.ones(3, device="meta")), r"^D is a 'meta'"),
    case("ratios-int", decay_ratios, lambda: decay_ratios(torch.tensor([2, 1])), r"^D must be a floating"),
    case("ratios-list", decay_ratios, lambda: decay_ratios([2.0, 1.0]), r"^D must be a floating"),
    case("fit-negative", fit_decay, lambda: fit_decay(torch.tensor([1.0, -0.5])), r"^D must hold finite values > 0"),
    case("fit-inf", fit_decay, lambda: fit_decay(torch.tensor([INF, 0.5])), r"^D must hold finite values > 0"),
    case("fit-meta", fit_decay, lambda: fit_decay(torch.ones(2, 3, device="meta")), r"^D is a 'meta'"),
    case("fit-scalar", fit_decay, lambda: fit_decay(torch.tensor(1.0)), r"^D must be a floating"),
    case("line-str", DecayFit, lambda: _FIT.line("0 1 2"), r"^layers must be a tensor"),
    case("line-meta", DecayFit, lambda: _FIT.line(torch.arange(3, device="meta")), r"^layers is a 'meta'"),
    case("line-nan", DecayFit, lambda: _FIT.line([0.0, NAN]), r"^layers contains NaN"),
    case("bound-K-1", ratio_bound, lambda: ratio_bound(1, 0.5), r"^num_classes "),
    case("bound-scale-0", ratio_bound, lambda: ratio_bound(2, 0.0), r"^scale "),
    case("bound-scale-nan", ratio_bound, lambda: ratio_bound(2, NAN), r"^scale "),
    case("bound-scale-tensor", ratio_bound, lambda: ratio_bound(2, torch.tensor(0.5)), r"^scale "),
    case("ideal-per_class-0", ideal_ratio, lambda: ideal_ratio(0, 2, 0.5), r"^per_class "),
    case("ideal-depth-0", ideal_ratio, lambda: ideal_ratio(2, 0, 0.5), r"^depth "),
    case("ideal-scale-inf", ideal_ratio, lambda: ideal_ratio(2, 2, INF), r"^scale "),
    case("ideal-scale-str", ideal_ratio, lambda: ideal_ratio(2, 2, "0.5"), r"^scale "),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), THEORY)
def test_theory_refuses(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@covers(fit_decay, decay_ratios, ratio_bound, ideal_ratio, DecayFit)
def test_theory_degenerate_and_edge_inputs():
    """A flat profile fits a line exactly (ratio 1, R² 1 by definition, not 0/0); float16 and
    NumPy integers are accepted."""
    flat = fit_decay(torch.ones(4, dtype=F64))
    assert float(flat.ratio) == 1.0 and float(flat.r2) == 1.0
    half = fit_decay(torch.tensor([1.0, 0.5, 0.25], dtype=torch.float16))
    assert half.ratio.dtype == F64 and float(half.ratio) == pytest.approx(0.5)
    assert decay_ratios(torch.tensor([2.0, 1.0], dtype=torch.float16)).tolist() == [0.5]
    assert ratio_bound(np.int64(3), np.float64(0.5)) == ratio_bound(3, 0.5)
    assert ideal_ratio(np.int64(10), np.int32(8), 0.5) == ideal_ratio(10, 8, 0.5)
    assert torch.allclose(_FIT.line([0, 1]), torch.tensor([1.0, 0.5], dtype=F64))


def _theorem_data():
    X, _, Y = orthogonal_classes(2, 5, generator=torch.Generator().manual_seed(0), dtype=F64)
    return _weights((10, 10, 10, 2)), X, Y


TA = theorem_assumptions
THEOREM = [
    case("depth-1", TA, lambda Ws, X, Y: TA(Ws[-1:], X[:, :10], Y, 0.5), r"depth L >= 2"),
    case("scale-nan", TA, lambda Ws, X, Y: TA(Ws, X, Y, NAN), r"^scale "),
    case("rtol-negative", TA, lambda Ws, X, Y: TA(Ws, X, Y, 0.5, rtol=-1), r"^rtol "),
    case("rtol-bool", TA, lambda Ws, X, Y: TA(Ws, X, Y, 0.5, rtol=True), r"^rtol "),
    case("rtol-nan", TA, lambda Ws, X, Y: TA(Ws, X, Y, 0.5, rtol=NAN), r"^rtol "),
    case("Y-shape", TA, lambda Ws, X, Y: TA(Ws, X, Y[:, :1], 0.5), r"^Y must have shape"),
    case("Y-numpy", TA, lambda Ws, X, Y: TA(Ws, X, Y.numpy(), 0.5), r"^Y must have shape"),
    case("Y-nan", TA, lambda Ws, X, Y: TA(Ws, X, _poison(Y), 0.5), r"^Y contains NaN"),
    case("Y-meta", TA, lambda Ws, X, Y: TA(Ws, X, Y.to("meta"), 0.5), r"^Y is on meta"),
    case("W-nan", TA, lambda Ws, X, Y: TA([_poison(Ws[0])] + Ws[1:], X, Y, 0.5), r"^W_1 contains"),
    case("W-meta", TA, lambda Ws, X, Y: TA([W.to("meta") for W in Ws], X, Y, 0.5), r"^W_1 is"),
    case("X-meta", TA, lambda Ws, X, Y: TA(Ws, X.to("meta"), Y, 0.5), r"^X is on meta"),
    case("narrow", TA, lambda Ws, X, Y: TA(_weights((10, 4, 2)), X, Y, 0.5), r"square hidden"),
    case("width-2K", TA, lambda Ws, X, Y: TA(_weights((4, 4, 2)), X[:4, :4], Y[:4], 0.5), r"d > 2K"),
    case("summary-batch", Assumptions, lambda Ws, X, Y: TA(dln.stack_runs([Ws, Ws]), X, Y, 0.5).summary(), r"^summary\(\) needs"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), THEOREM)
def test_theorem_assumptions_refuse(call, name):
    with pytest.raises(ValueError, match=name):
        call(*_theorem_data())


@covers(theorem_assumptions, Assumptions)
def test_theorem_assumptions_accept_integer_targets():
    """One-hot targets as integers are the same targets."""
    Ws, X, Y = _theorem_data()
    a = theorem_assumptions(Ws, X, Y.long(), 0.5, rtol=np.float64(1e-6))
    assert float(a.optimality) == float(theorem_assumptions(Ws, X, Y, 0.5).optimality)
    assert a.summary()["spectrum  needed d - 2K"] == 6


# --------------------------------------------------------------------------------------------
# training: train_to_tolerance, train_settings, Setting, SeparationRun
# --------------------------------------------------------------------------------------------


def _batch():
    X, _, Y = _data()
    return dln.stack_runs([_weights()]), X, Y


TT = train_to_tolerance
TRAIN = [
    case("weights-2-D", TT, lambda Wb, X, Y: TT([W[0] for W in Wb], X, Y, 1.0), r"^weights must be L tensors \(B"),
    case("lr-count", TT, lambda Wb, X, Y: TT(Wb, X, Y, [1.0, 2.0]), r"^lr must be one or 1"),
    case("lr-str", TT, lambda Wb, X, Y: TT(Wb, X, Y, "1"), r"^lr must be a number"),
    case("lr-nan", TT, lambda Wb, X, Y: TT(Wb, X, Y, NAN), r"^lr must be one or 1"),
    case("lr-inf", TT, lambda Wb, X, Y: TT(Wb, X, Y, [INF]), r"^lr must be one or 1"),
    case("tol-0", TT, lambda Wb, X, Y: TT(Wb, X, Y, 1.0, tol=0), r"^tol "),
    case("tol-nan", TT, lambda Wb, X, Y: TT(Wb, X, Y, 1.0, tol=NAN), r"^tol "),
    case("max_steps-0", TT, lambda Wb, X, Y: TT(Wb, X, Y, 1.0, max_steps=0), r"^max_steps "),
    case("check_every-0", TT, lambda Wb, X, Y: TT(Wb, X, Y, 1.0, check_every=0), r"^check_every "),
    case("activation", TT, lambda Wb, X, Y: TT(Wb, X, Y, 1.0, activation="tanh"), r"^unknown activation"),
    case("Y-columns", TT, lambda Wb, X, Y: TT(Wb, X, X, 1.0), r"^Y must have shape \(N, d_L\)"),
    case("Y-rows", TT, lambda Wb, X, Y: TT(Wb, X, Y[:3], 1.0), r"^Y has 3 rows but X has 6"),
    case("Y-int", TT, lambda Wb, X, Y: TT(Wb, X, Y.long(), 1.0), r"^Y has dtype torch.int64"),
    case("Y-float32", TT, lambda Wb, X, Y: TT(Wb, X, Y.float(), 1.0), r"^Y has dtype torch.float32"),
    case("Y-meta", TT, lambda Wb, X, Y: TT(Wb, X, Y.to("meta"), 1.0), r"^Y has dtype .* on meta"),
    case("Y-nan", TT, lambda Wb, X, Y: TT(Wb, X, _poison(Y), 1.0), r"^Y contains NaN"),
    case("Y-runs", TT, lambda Wb, X, Y: TT(Wb, X, Y.expand(3, 6, 2), 1.0), r"^Y has 3 runs"),
    case("X-nan", TT, lambda Wb, X, Y: TT(Wb, _poison(X), Y, 1.0), r"^X contains NaN"),
    case("X-meta", TT, lambda Wb, X, Y: TT(Wb, X.to("meta"), Y, 1.0), r"^X is on meta"),
    case("W-meta", TT, lambda Wb, X, Y: TT([W.to("meta") for W in Wb], X, Y, 1.0), r"^W_1 is a 'meta'"),
    case("W-nan", TT, lambda Wb, X, Y: TT([_poison(Wb[0]), Wb[1]], X, Y, 1.0), r"^W_1 contains NaN"),
    case("diverges", TT, lambda Wb, X, Y: TT(Wb, X, Y, 1e6, check_every=50), r"diverged.*runs \[0\] of this call"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), TRAIN)
def test_train_to_tolerance_refuses(call, name):
    with pytest.raises(ValueError, match=name):
        call(*_batch())


def _tiny(**over):
    return Setting(**(dict(num_classes=2, per_class=3, depth=2, max_steps=20) | over))


TS = train_settings
SETTINGS = [
    case("empty", TS, lambda: TS([]), r"^settings must be a non-empty list"),
    case("one-Setting", Setting, lambda: TS(Setting()), r"^settings must be a non-empty list"),
    case("dict", TS, lambda: TS([{"depth": 3}]), r"^settings must hold Setting objects"),
    case("init", Setting, lambda: TS([Setting(init="xavier")]), r"^unknown init 'xavier'"),
    case("activation", Setting, lambda: TS([Setting(activation="tanh")]), r"^unknown activation"),
    case("num_classes-1", Setting, lambda: TS([Setting(num_classes=1)]), r"^num_classes "),
    case("per_class-1", Setting, lambda: TS([Setting(per_class=1)]), r"^per_class "),
    case("width-0", Setting, lambda: TS([Setting(width=0)]), r"^width "),
    case("width-above-N", Setting, lambda: TS([_tiny(width=7)]), r"^width d must be <= N"),
    case("depth-0", Setting, lambda: TS([Setting(depth=0)]), r"^depth "),
    case("seed-negative", Setting, lambda: TS([Setting(seed=-1)]), r"^seed "),
    case("scale-nan", Setting, lambda: TS([Setting(scale=NAN)]), r"^scale "),
    case("lr-nan", Setting, lambda: TS([Setting(lr=NAN)]), r"^lr "),
    case("lr-inf", Setting, lambda: TS([Setting(lr=INF)]), r"^lr "),
    case("tol-nan", Setting, lambda: TS([Setting(tol=NAN)]), r"^tol "),
    case("max_steps-0", Setting, lambda: TS([Setting(max_steps=0)]), r"^max_steps "),
    case("check_every-0", Setting, lambda: TS([Setting(check_every=0)]), r"^check_every "),
    case("second-bad", Setting, lambda: TS([_tiny(), _tiny(lr=-1.0)]), r"^lr "),
    case("dtype-int", TS, lambda: TS([_tiny()], dtype=torch.int64), r"^dtype "),
    case("dtype-str", TS, lambda: TS([_tiny()], dtype="float64"), r"^dtype "),
    case("device-meta", TS, lambda: TS([_tiny()], device="meta"), r"^device "),
    case("diverges", TS, lambda: TS([_tiny(lr=1e6, max_steps=100)]), r"diverged.*lr=1e\+06"),
    case("assumptions-rtol", SeparationRun, lambda: TS([_tiny()])[0].assumptions(rtol=-1), r"^rtol "),
    case("assumptions-relu", SeparationRun, lambda: TS([_tiny(activation="relu")])[0].assumptions(), r"linear networks"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), SETTINGS)
def test_train_settings_refuses(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@covers(train_settings, Setting, SeparationRun, train_to_tolerance)
def test_separation_accepts_numpy_integers():
    kw = dict(num_classes=2, per_class=4, depth=3, lr=2.0, width=8, max_steps=200, check_every=10)
    ref = train_settings([Setting(**kw)])[0]
    npkw = {k: (np.int64(v) if isinstance(v, int) else v) for k, v in kw.items()}
    got = train_settings((Setting(**npkw),))[0]
    assert torch.equal(got.separation, ref.separation)
    assert got.steps == ref.steps and got.summary()["run"] == ref.summary()["run"]
    Wb, X, Y = _batch()
    c = train_to_tolerance(Wb, X, Y, np.float64(1.0), max_steps=np.int64(10), check_every=5)
    assert c.curve_steps.tolist() == [0, 5, 10]


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------

_SMALL = dict(depth=1, width=8, epochs=1)

DIGITS = [
    case("batch_size-1-BatchNorm", DigitsSetting, dict(batch_size=1), r"^batch_size "),
    case("batch_size-0", DigitsSetting, dict(batch_size=0), r"^batch_size "),
    case("depth-0", DigitsSetting, dict(depth=0), r"^depth "),
    case("width-float", DigitsSetting, dict(width=8.0), r"^width "),
    case("epochs-0", DigitsSetting, dict(epochs=0), r"^epochs "),
    case("seed-negative", DigitsSetting, dict(seed=-1), r"^seed "),
    case("lr-nan", DigitsSetting, dict(lr=NAN), r"^lr "),
    case("lr-inf", DigitsSetting, dict(lr=INF), r"^lr "),
    case("momentum-nan", DigitsSetting, dict(momentum=NAN), r"^momentum "),
    case("momentum-1", DigitsSetting, dict(momentum=1.0), r"^momentum "),
    case("momentum-str", DigitsSetting, dict(momentum="0.9"), r"^momentum "),
    case("weight_decay-inf", DigitsSetting, dict(weight_decay=INF), r"^weight_decay "),
    case("weight_decay-nan", DigitsSetting, dict(weight_decay=NAN), r"^weight_decay "),
    case("batchnorm-str", DigitsSetting, dict(batchnorm="no"), r"^batchnorm "),
    case("test_fraction-0", DigitsSetting, dict(test_fraction=0.0), r"^test_fraction "),
]


@pytest.mark.parametrize(("over", "name"), DIGITS)
def test_train_digits_mlp_refuses_settings_that_would_not_train(over, name):
    with pytest.raises(ValueError, match=name):
        train_digits_mlp(DigitsSetting(**(_SMALL | over)))


TD = train_digits_mlp
DIGITS_CALLS = [
    case("setting-none", TD, lambda: TD(None), r"^setting must be a DigitsSetting"),
    case("setting-dict", TD, lambda: TD({"depth": 2}), r"^setting must be a DigitsSetting"),
    case("dtype-int", TD, lambda: TD(DigitsSetting(**_SMALL), dtype=torch.int64), r"^dtype "),
    case("device-meta", TD, lambda: TD(DigitsSetting(**_SMALL), device="meta"), r"^device "),
    case("diverges", TD, lambda: TD(DigitsSetting(depth=1, width=4, epochs=2, lr=1e30)), r"diverged.*lr=1e\+30.*lower setting.lr"),
    case("split-0", load_digits, lambda: load_digits(0), r"^test_fraction "),
    case("split-1", load_digits, lambda: load_digits(1.0), r"^test_fraction "),
    case("split-nan", load_digits, lambda: load_digits(NAN), r"^test_fraction "),
    case("split-str", load_digits, lambda: load_digits("0.3"), r"^test_fraction "),
    case("generator-int", load_digits, lambda: load_digits(0.3, 0), r"^generator "),
    case("dtype-int", load_digits, lambda: load_digits(0.3, dtype=torch.uint8), r"^dtype "),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), DIGITS_CALLS)
def test_digits_entry_points_refuse(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@covers(DigitsSetting)
def test_train_digits_mlp_accepts_numpy_integers():
    """NumPy integers become the same ints, so the run is the one of the int setting."""
    s = DigitsSetting(
        depth=np.int64(1), width=np.int64(8), epochs=np.int64(1), batch_size=np.int64(256),
        seed=np.int64(0),
    )  # fmt: skip
    got = _check_digits_setting(s)
    assert got == DigitsSetting(**{**_SMALL, "batch_size": 256, "seed": 0})
    assert all(type(getattr(got, k)) is int for k in ("depth", "width", "epochs", "batch_size"))
    plain = DigitsSetting(**_SMALL)
    assert _check_digits_setting(plain) == plain
    assert _check_digits_setting(DigitsSetting(batchnorm=np.True_)).batchnorm


@covers(load_digits)
def test_load_digits_edge_splits():
    """A tiny test fraction still holds out one image per class; float16 is a valid dtype."""
    _, ytr, _, yte = load_digits(1e-9)
    assert len(yte) == 10 and sorted(yte.tolist()) == list(range(10))
    Xtr, *_ = load_digits(np.float64(0.3), dtype=torch.float16)
    assert Xtr.dtype == torch.float16 and math.isfinite(float(Xtr.float().abs().max()))
