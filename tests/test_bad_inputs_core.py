"""Bad inputs of the shared modules lib.runtime, lib.data and lib.plotting (issue 15): every
error names the argument; a refused setup changes nothing; valid edge inputs (NumPy integers,
float16, NumPy arrays of axes) are accepted. lib.layerwise: tests/test_bad_inputs_core_2.py."""

from __future__ import annotations

import math
import random

import matplotlib
import numpy as np
import pytest
import torch
from _cases import case, covers

from lib import data, plotting, runtime

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the headless backend

NAN, INF = float("nan"), float("inf")


@pytest.fixture(autouse=True)
def _restore_global_state():
    """seed_everything/setup/use_style change process-wide state; put it back after each test."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()  # noqa: NPY002
    threads, mkldnn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    with matplotlib.rc_context():
        yield
    torch.backends.mkldnn.enabled = mkldnn
    random.setstate(states[0])
    np.random.set_state(states[1])  # noqa: NPY002
    torch.set_rng_state(states[2])
    torch.set_num_threads(threads)
    plt.close("all")


@pytest.fixture
def no_gpu(monkeypatch):
    """A machine without CUDA or MPS, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


# ------------------------------------------------------------------------------------------
# lib.runtime
# ------------------------------------------------------------------------------------------

rd, se, st, rep = runtime.resolve_device, runtime.seed_everything, runtime.setup, runtime.report

RUNTIME_ERRORS = [
    case("device-int", rd, lambda: rd(0), ValueError, r"^device must be a string"),
    case("device-none", rd, lambda: rd(None), ValueError, r"^device must be a string"),
    case("device-typo", rd, lambda: rd("gpu"), ValueError, r"^unknown device 'gpu'"),
    case("device-case", rd, lambda: rd("AUTO"), ValueError, r"^unknown device 'AUTO'"),
    case("device-cuda", rd, lambda: rd("cuda"), ValueError, r"^device 'cuda' was requested but no CUDA GPU"),
    case("device-cuda-1", rd, lambda: rd(torch.device("cuda", 1)), ValueError, r"^device device\(type='cuda', index=1\) was"),
    case("device-mps", rd, lambda: rd("mps"), ValueError, r"^device 'mps' was requested but Apple's MPS"),
    case("device-meta", rd, lambda: rd("meta"), ValueError, r"^device 'meta' holds shapes without data"),
    case("device-meta-object", rd, lambda: rd(torch.device("meta")), ValueError, r"^device device\(type='meta'\) holds"),
    case("seed-negative", se, lambda: se(-1), ValueError, r"^seed must be a non-negative integer below 2\*\*64"),
    case("seed-2**64", se, lambda: se(2**64), ValueError, r"^seed must be a non-negative integer below"),
    case("seed-float", se, lambda: se(1.0), ValueError, r"^seed must be a non-negative integer"),
    case("seed-str", se, lambda: se("0"), ValueError, r"^seed must be a non-negative integer"),
    case("seed-bool", se, lambda: se(True), ValueError, r"^seed must be a non-negative integer"),
    case("seed-none", se, lambda: se(None), ValueError, r"^seed must be a non-negative integer"),
    case("setup-threads-0", st, lambda: st(threads=0, style=False), ValueError, r"^threads must be an integer >= 1"),
    case("setup-threads-float", st, lambda: st(threads=1.0, style=False), ValueError, r"^threads must be an integer"),
    case("setup-seed", st, lambda: st(seed=-1, device="cpu", style=False), ValueError, r"^seed must be"),
    case("setup-device", st, lambda: st(device="gpu", style=False), ValueError, r"^unknown device 'gpu'"),
    case("setup-cuda", st, lambda: st(device="cuda", style=False), ValueError, r"^device 'cuda' was requested"),
    case("setup-style", st, lambda: st(device="cpu", style="no"), TypeError, r"^style must be a bool"),
    case("setup-reproducible", st, lambda: st(device="cpu", style=False, reproducible="yes"), TypeError, r"^reproducible must be a bool"),
    case("report-values-list", rep, lambda: rep([("x", 1)]), TypeError, r"^values must be a Mapping"),
    case("report-values-int-key", rep, lambda: rep({1: 2.0}), TypeError, r"^the name 1 in values must be a str"),
    case("report-digits-0", rep, lambda: rep(x=1.5, digits=0), ValueError, r"^digits must be an integer >= 1"),
    case("report-digits-negative", rep, lambda: rep(x=1.5, digits=-2), ValueError, r"^digits must be an integer"),
    case("report-digits-float", rep, lambda: rep(x=1.5, digits=3.0), ValueError, r"^digits must be an integer"),
    case("report-digits-str", rep, lambda: rep(x=1.5, digits="3"), ValueError, r"^digits must be an integer"),
    case("report-tensor", rep, lambda: rep(NC1=torch.ones(2)), ValueError, r"^NC1 is not a scalar.*tensor of shape \(2,\)"),
    case("report-array", rep, lambda: rep({"D": np.ones((2, 2))}), ValueError, r"^D is not a scalar.*array of shape \(2, 2\)"),
    case("report-empty-tensor", rep, lambda: rep(x=torch.ones(0)), ValueError, r"^x is not a scalar"),
    case("report-object", rep, lambda: rep(x=object()), ValueError, r"^x must be a number.*cannot format object"),
    case("report-list", rep, lambda: rep(x=[1.0]), ValueError, r"^x must be a number"),
    case("report-complex", rep, lambda: rep(x=1j), ValueError, r"^x must be a number"),
    case("report-meta", rep, lambda: rep(x=torch.ones((), device="meta")), ValueError, r"^x is a 'meta' tensor"),
    case("report-nothing", rep, lambda: rep(), ValueError, r"at least one name=value pair"),
    case("format-digits", runtime.format_value, lambda: runtime.format_value(1.5, digits=0), ValueError, r"^digits must be"),
    case("format-vector", runtime.format_value, lambda: runtime.format_value(torch.ones(3)), ValueError, r"^value is not a scalar"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), RUNTIME_ERRORS)
def test_bad_runtime_input_is_refused(call, error, match, no_gpu):
    with pytest.raises(error, match=match):
        call()


@covers(runtime.setup)
def test_refused_setup_changes_nothing(no_gpu, capsys):
    before, threads = torch.get_rng_state(), torch.get_num_threads()
    for kwargs in (
        {"device": "cuda"},
        {"seed": -1, "device": "cpu"},
        {"style": 1, "device": "cpu"},
    ):
        with pytest.raises((ValueError, TypeError)):
            runtime.setup(seed=123, threads=threads + 1, **{"style": False} | kwargs)
        assert torch.equal(torch.get_rng_state(), before)
        assert torch.get_num_threads() == threads
    assert capsys.readouterr().out == ""


@covers(runtime.seed_everything, runtime.setup, runtime.resolve_device)
def test_runtime_accepts_numpy_integers_and_the_whole_seed_range(capsys):
    assert runtime.seed_everything(np.uint64(2**64 - 1)).initial_seed() == 2**64 - 1
    a = torch.rand(3)
    assert runtime.seed_everything(np.int64(7)).initial_seed() == 7
    b = torch.rand(3)
    runtime.seed_everything(7)
    assert torch.equal(torch.rand(3), b) and not torch.equal(a, b)
    dev = runtime.setup(
        seed=np.int64(0), device=torch.device("cpu"), style=False, threads=np.int32(1)
    )
    assert dev == torch.device("cpu") and torch.get_num_threads() == 1
    assert capsys.readouterr().out == "device: cpu  seed: 0\n"
    assert runtime.resolve_device("auto").type in ("cpu", "cuda", "mps")


@covers(runtime.report)
def test_report_shows_non_finite_and_numpy_values(capsys):
    runtime.report(
        {"a": np.float32(NAN)}, digits=np.int64(2), b=np.ones(1), c=torch.tensor([[INF]])
    )
    assert capsys.readouterr().out == "a  nan\nb  1\nc  inf\n"


@covers(runtime.environment)
def test_environment_describes_the_stack():
    info = runtime.environment()
    assert {"python", "torch", "gpu"} <= set(info) and all(
        isinstance(v, str) for v in info.values()
    )
    assert info["torch"] == torch.__version__.split("+")[0] or info["torch"] == torch.__version__
    with pytest.raises(TypeError, match=r"environment\(\) takes 0 positional arguments"):
        runtime.environment("torch")


# ------------------------------------------------------------------------------------------
# lib.data
# ------------------------------------------------------------------------------------------

gc = data.gaussian_classes


def _gc(**kwargs):
    return gc(**{"num_classes": 3, "per_class": 2, "dim": 4} | kwargs)


DATA_ERRORS = [
    case("digits-str", data.digits, lambda: data.digits("float64"), TypeError, r"^dtype must be a dtype"),
    case("digits-none", data.digits, lambda: data.digits(None), TypeError, r"^dtype must be a dtype"),
    case("digits-int", data.digits, lambda: data.digits(torch.int64), ValueError, r"^dtype must be a real floating dtype"),
    case("digits-complex", data.digits, lambda: data.digits(torch.complex64), ValueError, r"^dtype must be a real floating"),
    case("K-1", gc, lambda: _gc(num_classes=1), ValueError, r"^num_classes must be an integer >= 2"),
    case("K-float", gc, lambda: _gc(num_classes=3.0), ValueError, r"^num_classes must be an integer"),
    case("per-class-0", gc, lambda: _gc(per_class=0), ValueError, r"^per_class must be an integer >= 1"),
    case("dim-0", gc, lambda: _gc(dim=0), ValueError, r"^dim must be an integer >= 1"),
    case("dim-bool", gc, lambda: _gc(dim=True), ValueError, r"^dim must be an integer"),
    case("separation-nan", gc, lambda: _gc(separation=NAN), ValueError, r"^separation must be a finite number >= 0"),
    case("separation-negative", gc, lambda: _gc(separation=-1), ValueError, r"^separation must be a finite number"),
    case("separation-inf", gc, lambda: _gc(separation=INF), ValueError, r"^separation must be a finite number"),
    case("separation-str", gc, lambda: _gc(separation="1"), ValueError, r"^separation must be a finite number"),
    case("separation-none", gc, lambda: _gc(separation=None), ValueError, r"^separation must be a finite number"),
    case("separation-tensor", gc, lambda: _gc(separation=torch.tensor(1.0)), ValueError, r"^separation must be"),
    case("noise-negative-inf", gc, lambda: _gc(noise=-INF), ValueError, r"^noise must be a finite number >= 0"),
    case("noise-bool", gc, lambda: _gc(noise=True), ValueError, r"^noise must be a finite number"),
    case("dtype-int", gc, lambda: _gc(dtype=torch.int64), ValueError, r"^dtype must be a real floating dtype"),
    case("dtype-str", gc, lambda: _gc(dtype="float32"), TypeError, r"^dtype must be a dtype"),
    case("generator-int", gc, lambda: _gc(generator=0), TypeError, r"^generator must be a Generator"),
    case("device-typo", gc, lambda: _gc(device="gpu"), ValueError, r"^unknown device 'gpu'"),
    case("device-int", gc, lambda: _gc(device=0), ValueError, r"^device must be a string"),
    case("device-meta", gc, lambda: _gc(device="meta"), ValueError, r"^device 'meta' holds shapes"),
    case("device-cuda", gc, lambda: _gc(device="cuda"), ValueError, r"^device 'cuda' was requested"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), DATA_ERRORS)
def test_bad_data_request_is_refused(call, error, match, no_gpu):
    with pytest.raises(error, match=match):
        call()


@covers(data.gaussian_classes)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_gaussian_classes_refuses_a_gpu_generator():
    with pytest.raises(ValueError, match=r"^generator must be a CPU generator"):
        data.gaussian_classes(3, 2, 4, generator=torch.Generator(device="cuda"))


@covers(data.gaussian_classes)
def test_gaussian_classes_accepts_numpy_numbers_auto_device_and_half():
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    H, y = data.gaussian_classes(3, 2, 4, separation=2.0, noise=0.5, generator=g())
    H2, y2 = data.gaussian_classes(
        np.int64(3), np.int32(2), np.int64(4), np.float64(2.0), np.float32(0.5), g(), None, "cpu"
    )
    assert torch.equal(H, H2) and torch.equal(y, y2) and H2.device.type == "cpu"
    H3, _ = data.gaussian_classes(3, 2, 4, generator=g(), dtype=torch.float16, device="auto")
    assert H3.dtype == torch.float16 and H3.shape == (6, 4)
    H0, _ = data.gaussian_classes(3, 2, 4, separation=0, noise=0, generator=g())
    assert torch.equal(H0, torch.zeros(6, 4))  # documented extreme: all features at the origin


@covers(data.digits)
def test_digits_in_half_precision_are_the_exact_pixels():
    X, y = data.digits(torch.float16)
    X64, _ = data.digits()
    assert X.dtype == torch.float16 and torch.equal(X.double(), X64)  # integers 0..16 are exact
    assert y.dtype == torch.int64 and X.shape == (1797, 64)


# ------------------------------------------------------------------------------------------
# lib.plotting
# ------------------------------------------------------------------------------------------


def _sweep(n=2, p=2):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(6, p, generator=g), torch.arange(6) % 2) for _ in range(n)]


def _one_axes():
    return plt.subplots()[1]


pcs, pn = plotting.plot_collapse_sweep, plotting.panels
S2, NC, D = [1.0, 2.0], [1.0, 0.5], [0.5, 0.1]

PLOTTING_ERRORS = [
    case("panels-n-0", pn, lambda: pn(None, 0), ValueError, r"^n must be an integer >= 1"),
    case("panels-n-float", pn, lambda: pn(None, 2.0), ValueError, r"^n must be an integer"),
    case("panels-n-bool", pn, lambda: pn(None, True), ValueError, r"^n must be an integer"),
    case("panels-width-negative", pn, lambda: pn(None, 1, panel_width=-1), ValueError, r"^panel_width must be a finite number > 0"),
    case("panels-width-nan", pn, lambda: pn(None, 1, panel_width=NAN), ValueError, r"^panel_width must be"),
    case("panels-figsize-number", pn, lambda: pn(None, 1, figsize=3), ValueError, r"^figsize must be \(width, height\)"),
    case("panels-figsize-zero", pn, lambda: pn(None, 1, figsize=(0, 3)), ValueError, r"^figsize must be"),
    case("panels-figsize-nan", pn, lambda: pn(None, 1, figsize=(4, NAN)), ValueError, r"^figsize must be"),
    case("panels-ax-str", pn, lambda: pn("ax", 1), TypeError, r"^ax must be a Axes"),
    case("panels-ax-int", pn, lambda: pn(3, 1), TypeError, r"^ax must be a Axes.*got int"),
    case("panels-ax-figure", pn, lambda: pn(plt.figure(), 1), TypeError, r"^ax must be a Axes.*got Figure"),
    case("panels-ax-count", pn, lambda: pn([_one_axes()], 2), ValueError, r"^ax: this figure draws 2 panel\(s\)"),
    case("panels-ax-empty", pn, lambda: pn([], 1), ValueError, r"^ax: this figure draws 1 panel\(s\).*got 0"),
    case("sweep-separations-none", pcs, lambda: pcs(None, _sweep(), NC, D), TypeError, r"^separations must be a sequence"),
    case("sweep-separations-str", pcs, lambda: pcs("ab", _sweep(), NC, D), TypeError, r"^separations must be a sequence"),
    case("sweep-separations-zero", pcs, lambda: pcs([0.0, 2.0], _sweep(), NC, D), ValueError, r"^separations\[0\] must be finite and > 0"),
    case("sweep-separations-inf", pcs, lambda: pcs([1.0, INF], _sweep(), NC, D), ValueError, r"^separations\[1\] must be finite"),
    case("sweep-separations-label", pcs, lambda: pcs(["a", "b"], _sweep(), NC, D), TypeError, r"^separations\[0\] must be a real number"),
    case("sweep-nc1-nan", pcs, lambda: pcs(S2, _sweep(), [NAN, 0.5], D), ValueError, r"^nc1s\[0\] is NaN"),
    case("sweep-nc1-tensor-nan", pcs, lambda: pcs(S2, _sweep(), torch.tensor([1.0, NAN]), D), ValueError, r"^nc1s\[1\] is NaN"),
    case("sweep-ratio-str", pcs, lambda: pcs(S2, _sweep(), NC, [0.5, "0.1"]), TypeError, r"^trace_ratios\[1\] must be a real number"),
    case("sweep-ratio-none", pcs, lambda: pcs(S2, _sweep(), NC, None), TypeError, r"^trace_ratios must be a sequence"),
    case("sweep-lengths", pcs, lambda: pcs(S2, _sweep(3), NC, D), ValueError, r"^separations, sweep, nc1s and trace_ratios need one entry"),
    case("sweep-one", pcs, lambda: pcs(S2[:1], _sweep(1), NC[:1], D[:1]), ValueError, r"^separations, sweep.*at least two"),
    case("sweep-tensor", pcs, lambda: pcs(S2, torch.randn(2, 6, 2), NC, D), TypeError, r"^sweep\[0\] must be a pair \(H, y\)"),
    case("sweep-triple", pcs, lambda: pcs(S2, [(*p, None) for p in _sweep()], NC, D), TypeError, r"^sweep\[0\] must be a pair"),
    case("sweep-H-numpy", pcs, lambda: pcs(S2, [(H.numpy(), y) for H, y in _sweep()], NC, D), ValueError, r"^sweep\[0\]: H must be a tensor \(N, p\)"),
    case("sweep-H-1-D", pcs, lambda: pcs(S2, [(H[:, 0], y) for H, y in _sweep()], NC, D), ValueError, r"^sweep\[0\]: H must be a tensor"),
    case("sweep-H-p-1", pcs, lambda: pcs(S2, _sweep(p=1), NC, D), ValueError, r"^sweep\[0\]: H must be a tensor \(N, p\) with p >= 2, got \(6, 1\)"),
    case("sweep-y-short", pcs, lambda: pcs(S2, [_sweep()[0], (_sweep()[1][0], torch.arange(5))], NC, D), ValueError, r"^sweep\[1\]: y must be a tensor of shape \(6,\)"),
    case("sweep-ax", pcs, lambda: pcs(S2, _sweep(), NC, D, ax=_one_axes()), ValueError, r"^ax: this figure draws 2 panel\(s\)"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), PLOTTING_ERRORS)
def test_bad_plotting_input_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


@covers(plotting.panels, plotting.plot_collapse_sweep)
def test_plotting_accepts_numpy_axes_numbers_tensors_and_inf():
    fig, grid = plt.subplots(2, 1)
    assert plotting.panels(grid, np.int64(2)) == (fig, list(grid))  # a NumPy array of axes
    fig = plotting.plot_collapse_sweep(
        np.array([0.5, 2.0]), _sweep(), torch.tensor([1.0, 0.0]), [0.5, INF]
    )  # 0 and inf are documented values; the log axes leave them out
    _, ax1 = fig.axes
    assert list(ax1.lines[1].get_ydata()) == [0.5, INF]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["s = 0.5", "s = 2"]


@covers(plotting.use_style)
def test_use_style_applies_the_book_style_and_takes_no_arguments():
    plotting.use_style()
    for key, value in plotting.STYLE.items():
        assert matplotlib.rcParams[key] == (list(value) if isinstance(value, tuple) else value)
    with pytest.raises(TypeError, match=r"use_style\(\) takes 0 positional arguments"):
        plotting.use_style("dark")


@covers(runtime.format_value)
def test_format_value_accepts_numpy_digits():
    assert runtime.format_value(math.pi, digits=np.int64(3)) == "3.14"
