"""Bad inputs of lib.completion.project_trajectories, lib.completion.figures (issue 15) and
lib.completion.sweep (issue 14): wrong objects (None, a tensor where a run is expected, an empty
mapping, an unknown option) are refused at entry with a message naming the argument."""

from __future__ import annotations

import functools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from _cases import case, covers  # noqa: E402

from lib.completion import (  # noqa: E402
    SampleComplexity,
    fit,
    make_problem,
    min_nuclear_norm,
    project_trajectories,
    relative_error,
    sample_complexity,
)
from lib.completion.figures import (  # noqa: E402
    explorer,
    plot_curves,
    plot_depth_width,
    plot_explorer,
    plot_explorer_grid,
    plot_factorization,
    plot_sample_complexity,
    plot_spectra,
    plot_sweep,
)

F64 = torch.float64
NAN, INF = float("nan"), float("inf")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is fastest


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------------------------
# project_trajectories
# --------------------------------------------------------------------------------------------


def _traj(T=5, d=3, dtype=F64):
    return torch.randn(T, d, d, generator=torch.Generator().manual_seed(0), dtype=F64).to(dtype)


def _with_nan():
    T = _traj()
    T[2, 1, 1] = NAN
    return T


PT = project_trajectories
TRAJECTORIES = [
    case("none", PT, lambda: PT(), r"needs at least one trajectory"),
    case("2-D", PT, lambda: PT(_traj()[0]), r"^trajectories\[0\] must be 3-D"),
    case("list", PT, lambda: PT([_traj()]), r"^trajectories\[0\] must be a torch.Tensor"),
    case("numpy", PT, lambda: PT(_traj().numpy()), r"^trajectories\[0\] must be a torch.Tensor"),
    case("int", PT, lambda: PT(_traj().long()), r"^trajectories\[0\] must be a floating"),
    case("float16", PT, lambda: PT(_traj(dtype=torch.float16)), r"^trajectories\[0\] must be float32"),
    case("bfloat16", PT, lambda: PT(_traj(dtype=torch.bfloat16)), r"^trajectories\[0\] must be float32"),
    case("nan", PT, lambda: PT(_with_nan()), r"^trajectories\[0\] contains NaN"),
    case("inf-second", PT, lambda: PT(_traj(), _traj() / 0), r"^trajectories\[1\] contains NaN"),
    case("meta", PT, lambda: PT(_traj().to("meta")), r"^trajectories\[0\] is a 'meta' tensor"),
    case("meta-second", PT, lambda: PT(_traj(), _traj().to("meta")), r"^trajectories\[1\] is"),
    case("dtype-mismatch", PT, lambda: PT(_traj(), _traj(dtype=torch.float32)), r"^trajectories\[1\] is"),
    case("shape-mismatch", PT, lambda: PT(_traj(), _traj(d=4)), r"^trajectories\[1\] is"),
    case("empty-T", PT, lambda: PT(_traj()[:0]), r"^trajectories\[0\] is empty"),
    case("n_components-0", PT, lambda: PT(_traj(), n_components=0), r"^n_components "),
    case("n_components-float", PT, lambda: PT(_traj(), n_components=2.0), r"^n_components "),
    case("n_components-above-T", PT, lambda: PT(_traj(T=3), n_components=4), r"^n_components "),
    case("one-matrix", PT, lambda: PT(_traj(T=1)), r"^n_components must be <= 1"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), TRAJECTORIES)
def test_project_trajectories_refuses(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@covers(project_trajectories)
def test_project_trajectories_accepts_edge_inputs():
    """Non-contiguous trajectories, NumPy integers and n_components = min(T, d²) are fine."""
    T = _traj()
    ref = PT(T, n_components=2)[0]
    (got,) = PT(T.transpose(1, 2).contiguous().transpose(1, 2), n_components=np.int64(2))
    assert torch.allclose(got, ref)
    assert PT(T, n_components=5)[0].shape == (5, 5)


# --------------------------------------------------------------------------------------------
# figures: wrong objects are refused before anything is drawn
# --------------------------------------------------------------------------------------------


@functools.cache
def _fitted():
    P = make_problem(12, 2, 0.5, generator=torch.Generator().manual_seed(0), dtype=F64)
    kw = dict(lr=1.0, max_steps=4, record_every=2, keep_trajectory=True)
    return P, fit(P, "original", **kw), fit(P, "compressed", **kw)


def _P():
    return _fitted()[0]


def _orig():
    return _fitted()[1]


def _comp():
    return _fitted()[2]


def _no_trajectory():
    return fit(_P(), "compressed", lr=1.0, max_steps=2)


FIGURE_TYPES = [
    case("factorization-original-none", plot_factorization, lambda: plot_factorization(None, _comp(), _P()), r"^original "),
    case("factorization-tensor", plot_factorization, lambda: plot_factorization(_orig(), _comp().trajectory, _P()), r"^compressed "),
    case("curves-list", plot_curves, lambda: plot_curves([_orig()]), r"^results must be a Mapping"),
    case("curves-none-run", plot_curves, lambda: plot_curves({"a": None}), r"^results\['a'\] must be a FitResult"),
    case("sweep-runs-list", plot_sweep, lambda: plot_sweep([1], [_orig()], "γ"), r"^runs must be a Mapping"),
    case("sweep-run-none", plot_sweep, lambda: plot_sweep([1], {"a": [None]}, "γ"), r"^runs\['a'\]\[0\] must be"),
    case("sweep-reference-str", plot_sweep, lambda: plot_sweep([1], {"a": [_comp()]}, "γ", reference="orig"), r"^reference "),
    case("sweep-values-str", plot_sweep, lambda: plot_sweep("γ", {"a": [_comp()]}, "γ"), r"^values must be a list"),
    case("depth_width-list", plot_depth_width, lambda: plot_depth_width([4], [[_comp()]]), r"^by_depth must be a Mapping"),
    case("depth_width-run-none", plot_depth_width, lambda: plot_depth_width([4], {2: [None]}), r"^by_depth\[2\]\[0\] must be"),
    case("depth_width-widths-int", plot_depth_width, lambda: plot_depth_width(4, {2: [_comp()]}), r"^widths must be a list"),
    case("explorer-original-none", plot_explorer, lambda: plot_explorer(_P(), None, 0.01, 2, 2, max_steps=2), r"^original "),
    case("widget-original-none", explorer, lambda: explorer(_P(), None), r"^original "),
    case("grid-original-none", plot_explorer_grid, lambda: plot_explorer_grid(None, {"a": {"b": _comp()}}), r"^original "),
    case("grid-panel-list", plot_explorer_grid, lambda: plot_explorer_grid(_orig(), {"a": [_comp()]}), r"^panels\['a'\] must be a Mapping"),
    case("grid-run-none", plot_explorer_grid, lambda: plot_explorer_grid(_orig(), {"a": {"b": None}}), r"^panels\['a'\]\['b'\] must be"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), FIGURE_TYPES)
def test_figures_refuse_wrong_objects(call, name):
    with pytest.raises(TypeError, match=name):
        call()
    assert not plt.get_fignums()  # refused before a figure was made


FIGURE_VALUES = [
    case("factorization-problem-none", plot_factorization, lambda: plot_factorization(_orig(), _comp(), None), r"^problem must be"),
    case("factorization-no-trajectory", plot_factorization, lambda: plot_factorization(_orig(), _no_trajectory(), _P()), r"keep_trajectory=True"),
    case("spectra-problem-none", plot_spectra, lambda: plot_spectra(None), r"^problem must be"),
    case("spectra-problem-tensor", plot_spectra, lambda: plot_spectra(_P().target), r"^problem must be"),
    case("spectra-weights-float32", plot_spectra, lambda: plot_spectra(_P(), [W.float() for W in _orig().weights0]), r"^W_1 "),
    case("spectra-weights-empty", plot_spectra, lambda: plot_spectra(_P(), []), r"^weights "),
    case("curves-empty", plot_curves, lambda: plot_curves({}), r"^results is empty"),
    case("curves-key", plot_curves, lambda: plot_curves({"a": _orig()}, key="loss"), r"^key must be"),
    case("curves-x", plot_curves, lambda: plot_curves({"a": _orig()}, x="time"), r"x 'steps' or 'seconds'"),
    case("sweep-values-empty", plot_sweep, lambda: plot_sweep([], {"a": []}, "γ"), r"^values is empty"),
    case("sweep-runs-empty", plot_sweep, lambda: plot_sweep([1], {}, "γ"), r"^runs is empty"),
    case("sweep-length", plot_sweep, lambda: plot_sweep([1, 2], {"a": [_comp()]}, "γ"), r"^runs\['a'\]: 1 runs for 2 values"),
    case("sweep-logx-categories", plot_sweep, lambda: plot_sweep(["a"], {"a": [_comp()]}, "γ", logx=True), r"^logx=True needs positive"),
    case("sweep-logx-zero", plot_sweep, lambda: plot_sweep([0.0], {"a": [_comp()]}, "γ", logx=True), r"^logx=True needs positive"),
    case("depth_width-empty", plot_depth_width, lambda: plot_depth_width([], {}), r"^widths is empty"),
    case("depth_width-length", plot_depth_width, lambda: plot_depth_width([4, 8], {2: [_comp()]}), r"^by_depth\[2\]: 1 runs for 2 widths"),
    case("depth_width-by_depth-empty", plot_depth_width, lambda: plot_depth_width([4], {}), r"^by_depth is empty"),
    case("explorer-problem-none", plot_explorer, lambda: plot_explorer(None, _orig(), 0.01, 2, 2), r"^problem must be"),
    case("explorer-lr_scale-nan", plot_explorer, lambda: plot_explorer(_P(), _orig(), 0.01, 2, 2, NAN), r"^lr_scale "),
    case("explorer-lr_scale-str", plot_explorer, lambda: plot_explorer(_P(), _orig(), 0.01, 2, 2, "1"), r"^lr_scale "),
    case("explorer-gamma-negative", plot_explorer, lambda: plot_explorer(_P(), _orig(), -0.1, 2, 2, max_steps=2), r"^gamma "),
    case("explorer-rank_hat-large", plot_explorer, lambda: plot_explorer(_P(), _orig(), 0.01, 7, 2, max_steps=2), r"^rank_hat "),
    case("widget-problem-none", explorer, lambda: explorer(None, _orig()), r"^problem must be"),
    case("widget-gamma-nan", explorer, lambda: explorer(_P(), _orig(), gamma=NAN), r"^gamma "),
    case("widget-gamma-str", explorer, lambda: explorer(_P(), _orig(), gamma="0.01"), r"^gamma "),
    case("widget-rank_hat-slider", explorer, lambda: explorer(_P(), _orig(), rank_hat=99), r"^rank_hat must be an integer in \[1, 6\]"),
    case("widget-rank_hat-0", explorer, lambda: explorer(_P(), _orig(), rank_hat=0), r"^rank_hat "),
    case("widget-depth-slider", explorer, lambda: explorer(_P(), _orig(), depth=9), r"^depth must be an integer in \[1, 5\]"),
    case("widget-lr_scale-0", explorer, lambda: explorer(_P(), _orig(), lr_scale=0), r"^lr_scale "),
    case("grid-empty", plot_explorer_grid, lambda: plot_explorer_grid(_orig(), {}), r"^panels is empty"),
    case("grid-panel-empty", plot_explorer_grid, lambda: plot_explorer_grid(_orig(), {"a": {}}), r"^panels\['a'\] is empty"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), FIGURE_VALUES)
def test_figures_refuse_bad_values(call, name):
    _fitted()  # the runs exist before the count of figures starts
    with pytest.raises(ValueError, match=name):
        call()


@covers(plot_sweep, plot_depth_width)
def test_sweep_figures_accept_numpy_values():
    """An array of hyperparameter values (NumPy floats, positive) is a valid list of values."""
    runs = {"compressed": [_comp(), _comp()]}
    fig = plot_sweep(np.array([1e-3, 1e-2]), runs, "γ", reference=_orig(), logx=True)
    assert [tuple(line.get_xdata()) for line in fig.axes[0].lines][0] == (1e-3, 1e-2)
    fig = plot_depth_width(np.array([4, 8]), {np.int64(2): [_comp(), _comp()]})
    assert tuple(fig.axes[1].lines[0].get_xdata()) == (4, 8)


# --------------------------------------------------------------------------------------------
# the sample-complexity sweep (issue 14)
# --------------------------------------------------------------------------------------------

SC, MNN, RE = sample_complexity, min_nuclear_norm, relative_error
SWEEP = [
    case("d-1", SC, lambda: SC(1, 1, [0.5]), r"^d must be an integer >= 2"),
    case("rank-0", SC, lambda: SC(8, 0, [0.5]), r"^rank must be an integer >= 1"),
    case("fractions-float", SC, lambda: SC(8, 1, 0.5), r"^observed_fractions must be a list"),
    case("fractions-str", SC, lambda: SC(8, 1, "0.5"), r"^observed_fractions must be a list"),
    case("fractions-tensor", SC, lambda: SC(8, 1, torch.tensor([0.5])), r"^observed_fractions must be a list"),
    case("fractions-empty", SC, lambda: SC(8, 1, []), r"^observed_fractions is empty"),
    case("fractions-zero", SC, lambda: SC(8, 1, [0.5, 0.0]), r"^observed_fractions\[1\] must be a number in \(0, 1\]"),
    case("fractions-above-one", SC, lambda: SC(8, 1, [1.5]), r"^observed_fractions\[0\] "),
    case("fractions-nan", SC, lambda: SC(8, 1, [NAN]), r"^observed_fractions\[0\] "),
    case("fractions-bool", SC, lambda: SC(8, 1, [True]), r"^observed_fractions\[0\] "),
    case("depths-int", SC, lambda: SC(8, 1, [0.5], depths=3), r"^depths must be a list"),
    case("depths-0", SC, lambda: SC(8, 1, [0.5], depths=[0]), r"^depths\[0\] must be an integer >= 1"),
    case("compressed-float", SC, lambda: SC(8, 1, [0.5], compressed_depths=[2.0]), r"^compressed_depths\[0\] "),
    case("seeds-empty", SC, lambda: SC(8, 1, [0.5], seeds=[]), r"^seeds is empty"),
    case("seeds-negative", SC, lambda: SC(8, 1, [0.5], seeds=[-1]), r"^seeds\[0\] must be an integer >= 0"),
    case("nuclear-str", SC, lambda: SC(8, 1, [0.5], nuclear_norm="yes"), r"^nuclear_norm must be True or False"),
    case("nothing", SC, lambda: SC(8, 1, [0.5], depths=[], compressed_depths=[], nuclear_norm=False), r"^nothing to sweep"),
    case("rank-wide", SC, lambda: SC(8, 5, [0.5]), r"^rank must be <= d / 2 with compressed networks"),
    case("scale-0", SC, lambda: SC(8, 1, [0.5], scale=0.0), r"^scale "),
    case("lr_scale-inf", SC, lambda: SC(8, 1, [0.5], lr_scale=INF), r"^lr_scale "),
    case("gamma-negative", SC, lambda: SC(8, 1, [0.5], gamma=-1.0), r"^gamma "),
    case("tol-nan", SC, lambda: SC(8, 1, [0.5], tol=NAN), r"^tol "),
    case("max_steps-float", SC, lambda: SC(8, 1, [0.5], max_steps=10.0), r"^max_steps "),
    case("record_every-0", SC, lambda: SC(8, 1, [0.5], record_every=0), r"^record_every "),
    case("dtype-int", SC, lambda: SC(8, 1, [0.5], dtype=torch.int64), r"^dtype "),
    case("device-int", SC, lambda: SC(8, 1, [0.5], device=1.5), r"^device "),
    case("mnn-problem-none", MNN, lambda: MNN(None), r"^problem must be"),
    case("mnn-problem-tensor", MNN, lambda: MNN(torch.eye(3)), r"^problem must be"),
    case("mnn-tol-0", MNN, lambda: MNN(_P(), tol=0.0), r"^tol must be a finite number > 0"),
    case("mnn-max_iter-0", MNN, lambda: MNN(_P(), max_iter=0), r"^max_iter must be an integer >= 1"),
    case("re-problem-none", RE, lambda: RE(None, torch.eye(12)), r"^problem must be"),
    case("re-shape", RE, lambda: RE(_P(), torch.eye(11, dtype=F64)), r"^end_to_end must be a floating \(12, 12\)"),
    case("re-int", RE, lambda: RE(_P(), torch.ones(12, 12, dtype=torch.int64)), r"^end_to_end must be a floating"),
    case("re-meta", RE, lambda: RE(_P(), torch.eye(12, device="meta")), r"^end_to_end is on meta"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), SWEEP)
def test_the_sweep_refuses(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@covers(relative_error)
def test_relative_error_refuses_a_list():
    with pytest.raises(TypeError, match=r"^end_to_end must be a Tensor"):
        relative_error(_P(), [[0.0] * 12] * 12)


def _record():
    errors = torch.zeros(1, 1, 1, dtype=F64)
    return SampleComplexity((0.5,), (0,), ("original, L = 2",), errors, errors > 0, 12, 2)


@covers(SampleComplexity)
def test_sample_complexity_record_refuses_an_unknown_label():
    record = SampleComplexity((0.5,), (0,), ("original, L = 2",), torch.zeros(1, 1, 1), torch.zeros(1, 1, 1) > 0, 12, 2)  # fmt: skip
    with pytest.raises(ValueError, match=r"^label must be one of \['original, L = 2'\]"):
        record.error("original, L = 3")


@pytest.mark.parametrize("bad", [None, _orig, {"a": 1}], ids=["none", "fit-result", "dict"])
@covers(plot_sample_complexity)
def test_plot_sample_complexity_refuses_anything_but_a_sweep(bad):
    with pytest.raises(TypeError, match=r"^result must be a SampleComplexity"):
        plot_sample_complexity(bad() if callable(bad) else bad)
    assert not plt.get_fignums()
    plt.close(plot_sample_complexity(_record()))
