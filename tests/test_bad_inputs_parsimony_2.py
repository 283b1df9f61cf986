"""Bad inputs of lib.parsimony's figures and explorer (issue 15): a wrong object (None, a tensor
where a run is expected, an empty list, an unknown index) is refused at entry, naming the
argument, before anything is drawn; valid edge inputs are accepted."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from _cases import case, covers
from test_bad_inputs_parsimony import _batched, _run

from lib.parsimony import figures, interactive

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)

F64 = torch.float64
NAN = float("nan")
D, R = 6, 1  # width and rank of the small runs


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _h():
    return _run().history


def _hb():
    return _batched().history


def _curves(T=3, B=2):
    return torch.arange(T), torch.ones(T, B, dtype=F64), torch.ones(T, B, dtype=F64)


# --------------------------------------------------------------------------------------------
# runs drawn: plot_singular_values, plot_svd_evolution, plot_run, plot_small_multiples
# --------------------------------------------------------------------------------------------

psv, pse, prun = figures.plot_singular_values, figures.plot_svd_evolution, interactive.plot_run
psm = figures.plot_small_multiples
BAD_RUNS = [
    case("sv-none", psv, lambda: psv(None), TypeError, r"^history must be a History"),
    case("sv-run", psv, lambda: psv(_run()), TypeError, r"^history must be a History"),
    case("sv-tensor", psv, lambda: psv(_h().trajectory(0)), TypeError, r"^history must be a Hi"),
    case("sv-layer-past", psv, lambda: psv(_h(), layer=3), ValueError, r"^layer must be a layer"),
    case("sv-layer-float", psv, lambda: psv(_h(), layer=0.0), ValueError, r"^layer must be"),
    case("sv-run-missing", psv, lambda: psv(_hb()), ValueError, r"pass run=b .* of its 2 runs"),
    case("sv-run-unbatched", psv, lambda: psv(_h(), run=0), ValueError, r"^run is only for batch"),
    case("sv-run-past", psv, lambda: psv(_hb(), run=2), ValueError, r"^run must be a run index"),
    case("sv-run-str", psv, lambda: psv(_hb(), run="0"), ValueError, r"^run must be a run index"),
    case("sv-rank-0", psv, lambda: psv(_h(), rank=0), ValueError, r"^rank must be an integer"),
    case("sv-rank-big", psv, lambda: psv(_h(), rank=4), ValueError, r"^rank must satisfy 2r <="),
    case("sv-rank-str", psv, lambda: psv(_h(), rank="1"), ValueError, r"^rank must be an integer"),
    case("evo-none", pse, lambda: pse(None, 0, R), TypeError, r"^history must be a History"),
    case("evo-layer", pse, lambda: pse(_h(), 5, R), ValueError, r"^layer must be a layer index"),
    case("evo-rank", pse, lambda: pse(_h(), 0, 3), ValueError, r"middle block needs"),
    case("evo-rank-str", pse, lambda: pse(_h(), 0, "1"), ValueError, r"^rank must be"),
    case("evo-ref", pse, lambda: pse(_h(), 0, R, ref=9), ValueError, r"^ref must index one of"),
    case("evo-run", pse, lambda: pse(_hb(), 0, R), ValueError, r"pass run=b"),
    case("run-run", prun, lambda: prun(_run(), R), TypeError, r"^history must be a History"),
    case("run-rank-0", prun, lambda: prun(_h(), 0), ValueError, r"^rank must be an integer"),
    case("run-rank-big", prun, lambda: prun(_h(), 4), ValueError, r"^rank must satisfy"),
    case("run-missing", prun, lambda: prun(_hb(), R), ValueError, r"pass run=b"),
    case("run-past", prun, lambda: prun(_hb(), R, run=-3), ValueError, r"^run must be a run index"),
    case("sm-empty", psm, lambda: psm([], R), ValueError, r"^rows is empty"),
    case("sm-none", psm, lambda: psm(None, R), TypeError, r"^rows must be a Sequence"),
    case("sm-history", psm, lambda: psm([_hb()], R), TypeError, r"^rows\[0\] must be a tuple"),
    case("sm-pair", psm, lambda: psm([(3, _hb())], R), ValueError, r"^rows\[0\] must be an \(L"),
    case(
        "sm-unbatched",
        psm,
        lambda: psm([(3, [0.3], _h())], R),
        ValueError,
        r"^rows\[0\]\[2\] must be one batched run",
    ),
    case(
        "sm-scales-number",
        psm,
        lambda: psm([(3, 0.3, _hb())], R),
        TypeError,
        r"^rows\[0\]\[1\] must be a Sequence",
    ),
    case(
        "sm-scales-vs-runs",
        psm,
        lambda: psm([(3, [0.1, 0.3, 1.0], _hb())], R),
        ValueError,
        r"^rows\[0\]: its history has 2 runs but 3 scales",
    ),
    case(
        "sm-row-lengths",
        psm,
        lambda: psm([(3, [0.1, 0.3], _hb()), (3, [0.1], _hb())], R),
        ValueError,
        r"same number of scales",
    ),
    case("sm-rank", psm, lambda: psm([(3, [0.1, 0.3], _hb())], 4), ValueError, r"^rank must sat"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_RUNS)
def test_bad_runs_are_refused_before_drawing(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
    assert not plt.get_fignums()  # nothing drawn


# --------------------------------------------------------------------------------------------
# numbers drawn: plot_rho, plot_rank_bias, plot_deviation
# --------------------------------------------------------------------------------------------

prho, prb, pdev = figures.plot_rho, figures.plot_rank_bias, figures.plot_deviation
S2 = torch.tensor([[1.0, 0.5, 1e-3, 1e-3], [1.0, 0.5, 1e-6, 1e-6]], dtype=F64)
TAIL = torch.tensor([1e-3, 1e-6], dtype=F64)
t3, m3, p3 = _curves()
BAD_NUMBERS = [
    case("rho-steps-list", prho, lambda: prho([0, 1, 2], m3, p3, "ab"), TypeError, r"^steps must"),
    case(
        "rho-steps-len", prho, lambda: prho(t3[:2], m3, p3, "ab"), ValueError, r"^steps must have"
    ),
    case("rho-meas-np", prho, lambda: prho(t3, m3.numpy(), p3, "ab"), TypeError, r"^measured mus"),
    case("rho-pred-none", prho, lambda: prho(t3, m3, None, "ab"), TypeError, r"^predicted must"),
    case("rho-shapes", prho, lambda: prho(t3, m3, p3[:, :1], "ab"), ValueError, r"measured and p"),
    case("rho-labels", prho, lambda: prho(t3, m3, p3, ["a"]), ValueError, r"need 2 labels, got 1"),
    case("rho-labels-none", prho, lambda: prho(t3, m3, p3, None), TypeError, r"^labels must be"),
    case("rho-empty", prho, lambda: prho(t3[:0], m3[:0], p3[:0], "ab"), ValueError, "^measured is"),
    case("rho-meta", prho, lambda: prho(t3.to("meta"), m3, p3, "ab"), ValueError, r"^steps is a"),
    case("rb-scales-none", prb, lambda: prb(None, S2, TAIL, 2, 1e-4), TypeError, r"^scales must"),
    case("rb-scales-empty", prb, lambda: prb([], S2[:0], TAIL[:0], 2, 1e-4), ValueError, "^scales"),
    case(
        "rb-spectra-list",
        prb,
        lambda: prb([0.1, 0.01], S2.tolist(), TAIL, 2, 1e-4),
        TypeError,
        r"^spectra_e2e must be a Tensor",
    ),
    case(
        "rb-spectra-rows", prb, lambda: prb([0.1], S2, TAIL, 2, 1e-4), ValueError, r"^spectra_e2e"
    ),
    case(
        "rb-tail-short",
        prb,
        lambda: prb([0.1, 0.01], S2, TAIL[:1], 2, 1e-4),
        ValueError,
        r"^predicted_tail must have shape \(2,\)",
    ),
    case(
        "rb-tail-list",
        prb,
        lambda: prb([0.1, 0.01], S2, [1e-3, 1e-6], 2, 1e-4),
        TypeError,
        r"^predicted_tail must be a Tensor",
    ),
    case("rb-rank-0", prb, lambda: prb([0.1, 0.01], S2, TAIL, 0, 1e-4), ValueError, r"^rank must"),
    case("rb-rank-k", prb, lambda: prb([0.1, 0.01], S2, TAIL, 4, 1e-4), ValueError, r"^rank must "),
    case("rb-rtol-0", prb, lambda: prb([0.1, 0.01], S2, TAIL, 2, 0.0), ValueError, r"^rtol must"),
    case("rb-rtol-str", prb, lambda: prb([0.1, 0.01], S2, TAIL, 2, "1e-4"), ValueError, "^rtol "),
    case("dev-labels-none", pdev, lambda: pdev(t3, m3, p3, None), TypeError, r"^labels must be"),
    case("dev-spread-np", pdev, lambda: pdev(t3, m3.numpy(), p3, "ab"), TypeError, r"^spread mu"),
    case("dev-drift-none", pdev, lambda: pdev(t3, m3, None, "ab"), TypeError, r"^drift must be"),
    case("dev-labels", pdev, lambda: pdev(t3, m3, p3, ["x"]), ValueError, r"with B labels"),
    case("dev-steps", pdev, lambda: pdev(t3[:2], m3, p3, "ab"), ValueError, r"^steps must have"),
    case("dev-steps-list", pdev, lambda: pdev([0, 1, 2], m3, p3, "ab"), TypeError, r"^steps must"),
    case("dev-colors", pdev, lambda: pdev(t3, m3, p3, "ab", ["C0"]), ValueError, r"need 2 colors"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_NUMBERS)
def test_bad_numbers_are_refused_before_drawing(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
    assert not plt.get_fignums()


@covers(figures.plot_rho, figures.plot_rank_bias, figures.plot_deviation)
def test_figures_accept_integer_steps_tuples_and_numpy_numbers():
    steps, meas, pred = _curves(4, 2)
    fig = figures.plot_rho(torch.arange(8)[::2], meas, pred * 2, ("a", "b"))  # non-contiguous
    assert [len(ax.lines) for ax in fig.axes] == [4, 2]
    fig = figures.plot_rank_bias((0.1, 0.01), S2, TAIL, np.int64(2), np.float64(1e-4))
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [1e-3, 1e-6])
    fig = figures.plot_deviation(steps, meas, pred, ["a", "b"])
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]


@covers(figures.plot_singular_values, interactive.plot_run)
def test_run_figures_accept_numpy_indices_and_negative_ones():
    fig = figures.plot_singular_values(_hb(), layer=np.int64(-1), rank=np.int64(R), run=-1)
    S = torch.linalg.svdvals(_hb().trajectory(-1)[:, -1])  # (T, D)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), S[:, 0].numpy(), rtol=1e-12)
    assert [len(ax.lines) for ax in interactive.plot_run(_hb(), R, run=np.int64(1)).axes] == [D, 1]


# --------------------------------------------------------------------------------------------
# the explorer: plot_explorer, explorer (arguments checked before training or widgets)
# --------------------------------------------------------------------------------------------


def _pexp(**kw):
    args = dict(eps=0.1, depth=3, lr=5.0, rank=R, width=D, n_samples=D, steps=10) | kw
    return figures.plot_explorer(**args)


def _exp(**kw):
    args = dict(eps=0.1, depth=3, lr=5.0, rank=R, width=D, n_samples=D, steps=10) | kw
    return figures.explorer(**args)


pexp, exp = figures.plot_explorer, figures.explorer
BAD_EXPLORER = [
    case("pe-eps-negative", pexp, lambda: _pexp(eps=-0.1), ValueError, r"^eps must be a finite"),
    case("pe-eps-nan", pexp, lambda: _pexp(eps=NAN), ValueError, r"^eps "),
    case("pe-eps-list", pexp, lambda: _pexp(eps=[0.1, 0.3]), ValueError, r"^eps "),
    case("pe-lr-zero", pexp, lambda: _pexp(lr=0.0), ValueError, r"^lr "),
    case("pe-depth-zero", pexp, lambda: _pexp(depth=0), ValueError, r"^depth "),
    case("pe-rank-big", pexp, lambda: _pexp(rank=D + 1), ValueError, r"^rank must be <= width"),
    case("pe-width-str", pexp, lambda: _pexp(width="6"), ValueError, r"^width "),
    case("pe-few-samples", pexp, lambda: _pexp(n_samples=D - 1), ValueError, r"^n_samples "),
    case("pe-steps", pexp, lambda: _pexp(steps=-1), ValueError, r"^steps "),
    case("pe-seed", pexp, lambda: _pexp(seed=-1), ValueError, r"^seed "),
    case("pe-device", pexp, lambda: _pexp(device="gpu"), ValueError, r"^device "),
    case("ex-eps-range", exp, lambda: _exp(eps=10.0), ValueError, r"^eps must be within its slid"),
    case("ex-eps-negative", exp, lambda: _exp(eps=-1.0), ValueError, r"^eps must be a finite"),
    case("ex-depth-range", exp, lambda: _exp(depth=7), ValueError, r"^depth must be within"),
    case("ex-lr-range", exp, lambda: _exp(lr=100.0), ValueError, r"^lr must be within"),
    case("ex-rank-range", exp, lambda: _exp(rank=3), ValueError, r"^rank must be within .*2r >= 1"),
    case("ex-width", exp, lambda: _exp(width=1), ValueError, r"^width "),
    case("ex-seed", exp, lambda: _exp(seed="0"), ValueError, r"^seed "),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_EXPLORER)
def test_bad_explorer_arguments_are_refused_not_drawn_as_divergence(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
    assert not plt.get_fignums()  # a bad argument is not drawn as "GD diverged"


@covers(figures.plot_explorer)
def test_divergence_is_still_drawn():
    fig = _pexp(eps=0.5, lr=1e4, steps=20, seed=np.int64(0))
    assert "GD diverged" in fig.axes[0].texts[0].get_text()


@covers(figures.explorer)
def test_explorer_accepts_the_ends_of_its_sliders():
    pytest.importorskip("ipywidgets")
    w = _exp(eps=1.0, depth=np.int64(1), lr=0.1, rank=(D - 1) // 2)
    assert [s.value for s in w.children[:4]] == pytest.approx([1.0, 1, 0.1, 2])
    with pytest.raises(ValueError, match=r"^eps must be within"):
        _exp(eps=0.99e-4)
