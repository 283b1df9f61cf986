"""Bad inputs of lib.parsimony's checks, theory and simulation (issue 15): errors name the
argument, degenerate valid data gets its documented answer, valid edge inputs are accepted.
The figures are in tests/test_bad_inputs_parsimony_2.py."""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pytest
import torch
from _cases import case, covers

from lib import parsimony
from lib.parsimony import checks, simulation

F64 = torch.float64
NAN, INF = float("nan"), float("inf")
D, R = 6, 1  # width and rank of the small runs

EXEMPT = {
    "lib.parsimony.checks.Deviation": "a result record that deviation builds; callers only read it",
    "lib.parsimony.checks.LawCheck": "a result record that check_law builds; callers only read it",
    "lib.parsimony.checks.SvdEvolution": "a result record that svd_evolution builds for callers",
    "lib.parsimony.simulation.Run": "a result record that simulate builds; callers only read it",
}


@functools.cache
def _run():
    return parsimony.simulate(0.3, width=D, rank=R, n_samples=D, steps=20, record_every=5)


@functools.cache
def _batched():
    return parsimony.simulate([0.1, 0.3], width=D, rank=R, n_samples=D, steps=20, record_every=5)


def _rho():
    return parsimony.rho_recursion(0.3, 5.0, 20, 3, D, D, record_every=5)  # (5,)


def _traj():
    return _run().history.trajectory(0)  # (5, D, D)


def _W():
    return torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.5, 1.0], dtype=F64))


def _law(**kw):
    run = _run()
    args = dict(history=run.history, X=run.X, Y=run.Y, rho=_rho()) | kw
    return parsimony.check_law(**args)


# --------------------------------------------------------------------------------------------
# lib.parsimony.checks
# --------------------------------------------------------------------------------------------

bs, bd, se = parsimony.block_spread, parsimony.block_drift, parsimony.svd_evolution
dev = parsimony.deviation
S4 = torch.tensor([3.0, 2.0, 2.0, 1.0], dtype=F64)
BAD_CHECKS = [
    case("spread-list", bs, lambda: bs([3.0, 2.0, 1.0], 1), ValueError, r"^S must be a tensor"),
    case("spread-0d", bs, lambda: bs(torch.tensor(1.0), 1), ValueError, r"^S must be a tensor"),
    case("spread-int", bs, lambda: bs(S4.long(), 1), ValueError, r"^S must be a floating"),
    case("spread-meta", bs, lambda: bs(S4.to("meta"), 1), ValueError, r"^S is a 'meta'"),
    case("spread-rank-0", bs, lambda: bs(S4, 0), ValueError, r"^rank must be an integer"),
    case("spread-rank-bool", bs, lambda: bs(S4, True), ValueError, r"^rank must be an integer"),
    case("spread-no-middle", bs, lambda: bs(S4, 2), ValueError, r"middle block needs"),
    case("drift-side", bd, lambda: bd(_W(), _W(), 1, "up"), ValueError, r"^unknown side 'up'"),
    case("drift-side-none", bd, lambda: bd(_W(), _W(), 1, None), ValueError, r"^unknown side"),
    case("drift-1d", bd, lambda: bd(S4, S4, 1), ValueError, r"^W must be a tensor"),
    case("drift-ref-list", bd, lambda: bd(_W(), [[1.0]], 1), ValueError, r"^W_ref must be a"),
    case("drift-int", bd, lambda: bd(_W().long(), _W(), 1), ValueError, r"^W must be a floating"),
    case("drift-half", bd, lambda: bd(_W().half(), _W(), 1), ValueError, r"^W has dtype"),
    case("drift-nan", bd, lambda: bd(_W() * NAN, _W(), 1), ValueError, r"^W contains NaN"),
    case("drift-ref-inf", bd, lambda: bd(_W(), _W() / 0, 1), ValueError, r"^W_ref contains NaN"),
    case("drift-ref-meta", bd, lambda: bd(_W(), _W().to("meta"), 1), ValueError, r"^W_ref is a"),
    case("drift-ref-shape", bd, lambda: bd(_W(), _W()[:4, :4], 1), ValueError, r"^W_ref must be"),
    case("drift-ref-dtype", bd, lambda: bd(_W(), _W().float(), 1), ValueError, r"^W_ref must be"),
    case("drift-rank", bd, lambda: bd(_W(), _W(), 3), ValueError, r"middle block needs"),
    case(
        "rho-measured-run",
        parsimony.rho_measured,
        lambda: parsimony.rho_measured(_run()),
        TypeError,
        r"^history must be a History",
    ),
    case(
        "rho-measured-none",
        parsimony.rho_measured,
        lambda: parsimony.rho_measured(None),
        TypeError,
        r"^history must be a History",
    ),
    case(
        "rho-measured-tol",
        parsimony.rho_measured,
        lambda: parsimony.rho_measured(_run().history, tol=-1.0),
        ValueError,
        r"^tol ",
    ),
    case(
        "rho-measured-tol-nan",
        parsimony.rho_measured,
        lambda: parsimony.rho_measured(_run().history, tol=NAN),
        ValueError,
        r"^tol ",
    ),
    case("dev-tensor", dev, lambda: dev(_traj(), R), TypeError, r"^history must be a History"),
    case("dev-ref-0", dev, lambda: dev(_run().history, R, ref=0), ValueError, r"^ref must be"),
    case("dev-ref-bool", dev, lambda: dev(_run().history, R, ref=True), ValueError, r"^ref "),
    case("dev-ref-float", dev, lambda: dev(_run().history, R, ref=1.5), ValueError, r"^ref "),
    case("dev-ref-end", dev, lambda: dev(_run().history, R, ref=5), ValueError, r"^ref "),
    case("dev-rank", dev, lambda: dev(_run().history, 3), ValueError, r"middle block needs"),
    case("dev-rank-str", dev, lambda: dev(_run().history, "1"), ValueError, r"^rank must be"),
    case("evo-2d", se, lambda: se(_W(), 1, 0), ValueError, r"^trajectory must be one layer"),
    case("evo-history", se, lambda: se(_run().history, 1, 0), ValueError, r"^trajectory must"),
    case("evo-int", se, lambda: se(_traj().long(), R, 1), ValueError, r"^trajectory must be a fl"),
    case("evo-half", se, lambda: se(_traj().half(), R, 1), ValueError, r"^trajectory has dtype"),
    case("evo-nan", se, lambda: se(_traj() * NAN, R, 1), ValueError, r"^trajectory contains NaN"),
    case("evo-meta", se, lambda: se(_traj().to("meta"), R, 1), ValueError, r"^trajectory is a"),
    case("evo-ref-float", se, lambda: se(_traj(), R, 1.0), ValueError, r"^ref must index"),
    case("evo-ref-end", se, lambda: se(_traj(), R, 5), ValueError, r"^ref must index one of the 5"),
    case("evo-rank-0", se, lambda: se(_traj(), 0, 1), ValueError, r"^rank must be"),
    case("evo-rank-big", se, lambda: se(_traj(), 3, 1), ValueError, r"middle block needs"),
    case("law-run", parsimony.check_law, lambda: _law(history=_run()), TypeError, r"^history must"),
    case(
        "law-batched",
        parsimony.check_law,
        lambda: _law(history=_batched().history),
        ValueError,
        r"^history must be one unbatched run",
    ),
    case(
        "law-one-record",
        parsimony.check_law,
        lambda: _law(
            history=dataclasses.replace(
                _run().history, weights=_run().history.weights[:1], loss=_run().history.loss[:1]
            ),
            rho=_rho()[:1],
        ),
        ValueError,
        r"^history needs at least two records",
    ),
    case("law-rho-list", parsimony.check_law, lambda: _law(rho=[0.3] * 5), ValueError, r"^rho "),
    case("law-rho-short", parsimony.check_law, lambda: _law(rho=_rho()[:4]), ValueError, "^rho "),
    case("law-rho-nan", parsimony.check_law, lambda: _law(rho=_rho() * NAN), ValueError, "^rho c"),
    case("law-tol", parsimony.check_law, lambda: _law(tol=-1.0), ValueError, r"^tol "),
    case("law-rtol", parsimony.check_law, lambda: _law(rtol=NAN), ValueError, r"^rtol "),
    case(
        "law-X-rows",
        parsimony.check_law,
        lambda: _law(X=_run().X[:3]),
        ValueError,
        r"X has N=3 rows but Y has N=6",
    ),
    case(
        "law-X-columns",
        parsimony.check_law,
        lambda: _law(X=_run().X[:, :3]),
        ValueError,
        r"X has 3 columns",
    ),
    case(
        "law-Y-dtype",
        parsimony.check_law,
        lambda: _law(Y=_run().Y.float()),
        ValueError,
        r"^Y has dtype torch.float32",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_CHECKS)
def test_bad_check_arguments_are_refused(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


fs = parsimony.floor_small
BAD_FLOOR = [
    case(
        "floor-nan", fs, lambda: fs(1e-20, NAN), ValueError, r"^floor must be a finite number > 0"
    ),
    case("floor-inf", fs, lambda: fs(1e-20, INF), ValueError, r"^floor "),
    case("floor-zero", fs, lambda: fs(1e-20, 0.0), ValueError, r"^floor "),
    case("floor-negative", fs, lambda: fs(1e-20, -1e-10), ValueError, r"^floor "),
    case("floor-str", fs, lambda: fs(1e-20, "1e-10"), ValueError, r"^floor "),
    case("floor-bool", fs, lambda: fs(1e-20, True), ValueError, r"^floor "),
    case("floor-tensor", fs, lambda: fs(1e-20, torch.tensor(1e-10)), ValueError, r"^floor "),
    case("value-str", fs, lambda: fs("0.1"), TypeError, r"^value must be"),
    case("value-none", fs, lambda: fs(None), TypeError, r"^value must be"),
    case("value-vector", fs, lambda: fs(torch.ones(2)), ValueError, r"^value must be 0-D"),
    case("value-meta", fs, lambda: fs(torch.tensor(1.0).to("meta")), ValueError, r"^value is a"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_FLOOR)
def test_floor_small_refuses_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@covers(parsimony.floor_small)
def test_floor_small_accepts_numpy_numbers_and_integer_tensors():
    assert parsimony.floor_small(np.float32(3e-15), np.float64(1e-10)) == "< 1e-10"
    assert parsimony.floor_small(torch.tensor(4), 1) == 4.0
    assert parsimony.floor_small(np.int64(0), 0.5) == "< 0.5"


@covers(parsimony.block_spread, parsimony.block_drift)
def test_block_of_equal_values_has_zero_spread_zeros_included():
    """Degenerate data: one repeated value (0 included) has spread 0, never 0/0 = NaN."""
    S = torch.tensor([[3.0, 0.0, 0.0, 0.0, 0.0], [3.0, 2.0, 2.0, 2.0, 1.0]], dtype=F64)
    assert parsimony.block_spread(S, np.int64(1)).tolist() == [0.0, 0.0]
    assert parsimony.block_spread(S.half(), 1).tolist() == [0.0, 0.0]  # float16 is supported
    assert math.isnan(float(parsimony.block_spread(S[1] * NAN, 1)))  # NaN data stays visible
    W = _W().T.contiguous().T  # non-contiguous
    assert float(parsimony.block_drift(W, 2 * W, np.int64(1), "left")) == 0.0


@covers(parsimony.rho_measured, parsimony.deviation, parsimony.svd_evolution, parsimony.check_law)
def test_checks_accept_numpy_integers_and_a_batched_history():
    h = _batched().history
    assert parsimony.rho_measured(h, tol=np.float64(1e-10)).shape == (3, 5, 2)
    assert parsimony.deviation(h, np.int64(R), ref=np.int64(2)).spread.shape == (3, 3, 2)
    ev = parsimony.svd_evolution(_traj().float(), np.int64(R), np.int64(-1))  # float32
    assert ev.values.shape == (5, D) and bool(torch.isfinite(ev.left).all())
    law = _law(rho=_rho().float())  # rho is cast to the weights' dtype
    assert law.count_min.tolist() == [D - 2 * R] * 3


# --------------------------------------------------------------------------------------------
# lib.parsimony.theory.invariant_subspaces
# --------------------------------------------------------------------------------------------


def _inv(**kw):
    run = _run()
    args = dict(weights0=run.history.weights[0], X=run.X, Y=run.Y) | kw
    return parsimony.invariant_subspaces(**args)


inv = parsimony.invariant_subspaces
BAD_SUBSPACES = [
    case("group", inv, lambda: _inv(group="both"), ValueError, r"^unknown group 'both'"),
    case("rtol-negative", inv, lambda: _inv(rtol=-1.0), ValueError, r"^rtol "),
    case("rtol-zero", inv, lambda: _inv(rtol=0.0), ValueError, r"^rtol "),
    case("rtol-nan", inv, lambda: _inv(rtol=NAN), ValueError, r"^rtol "),
    case("weights-empty", inv, lambda: _inv(weights0=[]), ValueError, r"^weights "),
    case(
        "weights-half",
        inv,
        lambda: _inv(weights0=[W.half() for W in _run().history.weights[0]]),
        ValueError,
        r"^weights0 have dtype torch.float16",
    ),
    case(
        "weights-batched",
        inv,
        lambda: _inv(weights0=_batched().history.weights[0]),
        ValueError,
        r"^W_1 must be a tensor of shape \(d_l",
    ),
    case("X-rows", inv, lambda: _inv(X=_run().X[:4]), ValueError, r"X has N=4 rows but Y"),
    case("X-columns", inv, lambda: _inv(X=_run().X[:, :4]), ValueError, r"X has 4 columns"),
    case("X-meta", inv, lambda: _inv(X=_run().X.to("meta")), ValueError, r"^X is a 'meta'"),
    case("Y-nan", inv, lambda: _inv(Y=_run().Y * NAN), ValueError, r"^Y contains NaN"),
    case("Y-dtype", inv, lambda: _inv(Y=_run().Y.float()), ValueError, r"^Y has dtype"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_SUBSPACES)
def test_invariant_subspaces_refuses_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@covers(parsimony.invariant_subspaces)
def test_invariant_subspaces_accepts_float32_and_numpy_tolerances():
    run = _run()
    pairs = parsimony.invariant_subspaces(
        [W.float() for W in run.history.weights[0]], run.X.float(), run.Y.float(), rtol=1e-5
    )
    ref = _inv(rtol=np.float64(1e-9))
    assert [U.shape for U, _ in pairs] == [U.shape for U, _ in ref] == [(D, D - 2 * R)] * 3


# --------------------------------------------------------------------------------------------
# lib.parsimony.simulation: conditioned_inputs, RunConfig, SweepConfig, simulate
# --------------------------------------------------------------------------------------------

ci, RC, SC = parsimony.conditioned_inputs, parsimony.RunConfig, parsimony.SweepConfig
BAD_SIMULATION = [
    case("ci-cond-str", ci, lambda: ci(8, 4, "2"), ValueError, r"^condition must be"),
    case("ci-cond-below-1", ci, lambda: ci(8, 4, 0.5), ValueError, r"^condition must be"),
    case("ci-cond-nan", ci, lambda: ci(8, 4, NAN), ValueError, r"^condition must be"),
    case("ci-cond-empty", ci, lambda: ci(8, 4, []), ValueError, r"^condition must be"),
    case("ci-cond-2d", ci, lambda: ci(8, 4, torch.ones(2, 2)), ValueError, r"^condition must be"),
    case("ci-cond-bool", ci, lambda: ci(8, 4, True), ValueError, r"^condition must be"),
    case("ci-d-1", ci, lambda: ci(8, 1, 1.0), ValueError, r"^d must be an integer >= 2"),
    case("ci-d-bool", ci, lambda: ci(8, True, 1.0), ValueError, r"^d must be"),
    case("ci-n-below-d", ci, lambda: ci(3, 4, 1.0), ValueError, r"n_samples >= d"),
    case("ci-dtype-int", ci, lambda: ci(8, 4, 1.0, dtype=torch.int64), ValueError, r"^dtype "),
    case("ci-generator", ci, lambda: ci(8, 4, 1.0, generator=0), TypeError, r"^generator "),
    case("ci-device", ci, lambda: ci(8, 4, 1.0, device="gpu"), ValueError, r"^device "),
    case("rc-scale-0", RC, lambda: RC(scale=0.0), ValueError, r"^scale must be a finite number"),
    case("rc-scale-neg-run", RC, lambda: RC(scale=(0.1, -0.1)), ValueError, r"^scale "),
    case("rc-scale-str", RC, lambda: RC(scale="0.1"), ValueError, r"^scale "),
    case("rc-scale-bool", RC, lambda: RC(scale=True), ValueError, r"^scale "),
    case("rc-scale-empty", RC, lambda: RC(scale=[]), ValueError, r"^scale "),
    case("rc-lr-nan", RC, lambda: RC(lr=NAN), ValueError, r"^lr "),
    case("rc-lr-2d", RC, lambda: RC(lr=torch.ones(2, 2)), ValueError, r"^lr "),
    case("rc-weight-decay", RC, lambda: RC(weight_decay=-1e-4), ValueError, r"^weight_decay "),
    case("rc-momentum-1", RC, lambda: RC(momentum=1.0), ValueError, r"^momentum .* and < 1"),
    case("rc-condition", RC, lambda: RC(condition=0.5), ValueError, r"^condition .* >= 1"),
    case("rc-condition-inf", RC, lambda: RC(condition=[1.0, INF]), ValueError, r"^condition "),
    case("rc-lengths", RC, lambda: RC(scale=(0.1, 0.2), lr=[1.0] * 3), ValueError, r"same length"),
    case("rc-depth-0", RC, lambda: RC(depth=0), ValueError, r"^depth "),
    case("rc-width-1", RC, lambda: RC(width=1), ValueError, r"^width "),
    case("rc-width-float", RC, lambda: RC(width=30.0), ValueError, r"^width "),
    case("rc-rank-0", RC, lambda: RC(rank=0), ValueError, r"^rank "),
    case("rc-rank-above-width", RC, lambda: RC(width=4, rank=5), ValueError, r"^rank must be <="),
    case("rc-few-samples", RC, lambda: RC(n_samples=10), ValueError, r"^n_samples must be >= w"),
    case("rc-steps", RC, lambda: RC(steps=-1), ValueError, r"^steps "),
    case("rc-record-every", RC, lambda: RC(record_every=0), ValueError, r"^record_every "),
    case("rc-dtype", RC, lambda: RC(dtype=torch.int64), ValueError, r"^dtype "),
    case("rc-dtype-str", RC, lambda: RC(dtype="float64"), ValueError, r"^dtype "),
    case("rc-device", RC, lambda: RC(device="gpu"), ValueError, r"^device "),
    case(
        "rc-replace",
        RC,
        lambda: dataclasses.replace(RC(), momentum=-0.5),
        ValueError,
        r"^momentum ",
    ),
    case("sc-no-scales", SC, lambda: SC(scales=()), ValueError, r"^scales is empty"),
    case("sc-scale-neg", SC, lambda: SC(scales=(0.1, -1.0)), ValueError, r"^scales "),
    case("sc-scale-number", SC, lambda: SC(scales=0.1), ValueError, r"^scales must be a seq"),
    case("sc-steps", SC, lambda: SC(steps=-1), ValueError, r"^steps "),
    case("sc-steps-float", SC, lambda: SC(steps=1.5e4), ValueError, r"^steps "),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_SIMULATION)
def test_bad_settings_are_refused(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def _sim(**kw):
    args = dict(width=D, rank=R, n_samples=D, steps=2) | kw
    return parsimony.simulate(**args)


sim = parsimony.simulate
BAD_SIMULATE = [
    case("config-dict", sim, lambda: _sim(config={"width": D}), TypeError, r"^config must be a R"),
    case("seed-negative", sim, lambda: _sim(seed=-1), ValueError, r"^seed "),
    case("seed-str", sim, lambda: _sim(seed="0"), ValueError, r"^seed "),
    case("seed-float", sim, lambda: _sim(seed=1.0), ValueError, r"^seed "),
    case(
        "seed-and-generator",
        sim,
        lambda: _sim(seed=1, generator=torch.Generator()),
        ValueError,
        r"either seed or generator",
    ),
    case("generator-int", sim, lambda: _sim(generator=0), TypeError, r"^generator "),
    case("scale-negative", sim, lambda: _sim(scale=-0.1), ValueError, r"^scale "),
    case("scale-run-nan", sim, lambda: _sim(scale=[0.1, NAN]), ValueError, r"^scale "),
    case("lr-inf", sim, lambda: _sim(lr=INF), ValueError, r"^lr "),
    case("momentum-run", sim, lambda: _sim(momentum=[0.0, 1.5]), ValueError, r"^momentum "),
    case("lengths", sim, lambda: _sim(scale=[0.1, 0.2], lr=[1.0] * 3), ValueError, "same length"),
    case("rank-above-width", sim, lambda: _sim(rank=D + 1), ValueError, r"^rank "),
    case("depth-zero", sim, lambda: _sim(depth=0), ValueError, r"^depth "),
    case("few-samples", sim, lambda: _sim(n_samples=D - 1), ValueError, r"^n_samples "),
    case("dtype", sim, lambda: _sim(dtype=torch.int32), ValueError, r"^dtype "),
    case("diverges", sim, lambda: _sim(scale=0.5, lr=1e4, steps=20), ValueError, r"lr=10000"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_SIMULATE)
def test_simulate_refuses_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@covers(parsimony.simulate, parsimony.RunConfig, parsimony.conditioned_inputs)
def test_settings_accept_numpy_numbers_and_tensors_and_keep_them():
    cfg = parsimony.RunConfig(
        scale=torch.tensor([0.1, 0.3], dtype=F64),
        lr=np.float64(5.0),
        width=np.int64(D),
        rank=R,
        n_samples=D,  # N = d
        steps=np.int64(4),
        record_every=2,
        device=torch.device("cpu"),
    )
    assert cfg.width == D and isinstance(cfg.scale, torch.Tensor)  # kept as given
    run = parsimony.simulate(config=cfg, seed=np.int64(0))
    ref = parsimony.simulate([0.1, 0.3], width=D, rank=R, n_samples=D, steps=4, record_every=2)
    assert torch.equal(run.history.loss, ref.history.loss)
    X = parsimony.conditioned_inputs(D, D, np.float64(1.0), dtype=torch.float16)
    assert X.dtype == torch.float16 and X.shape == (D, D)


@covers(parsimony.SweepConfig)
def test_sweep_presets_pass_their_checks():
    for sweep in parsimony.SWEEPS.values():
        assert dataclasses.replace(sweep) == sweep
    assert parsimony.SweepConfig(scales=[0.1], steps=np.int64(0)).scales == [0.1]
    assert simulation.SweepConfig is parsimony.SweepConfig and checks.LawCheck._fields
