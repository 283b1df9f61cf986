"""lib.runtime / lib.plotting / lib.data: device, seeding, reporting, style, generated data."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import lib
from lib import data, runtime


def test_resolve_device_auto_and_explicit():
    expected = "cuda" if torch.cuda.is_available() else None
    dev = runtime.resolve_device("auto")
    assert isinstance(dev, torch.device)
    if expected:
        assert dev.type == expected
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    assert runtime.resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_resolve_device_cuda_without_gpu_says_what_to_do():
    with pytest.raises(ValueError, match="no CUDA GPU is available.*DEVICE='auto'"):
        runtime.resolve_device("cuda")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", 3])
def test_resolve_device_rejects_unknown(bad):
    with pytest.raises(ValueError, match="device"):
        runtime.resolve_device(bad)


def test_seed_everything_reproduces_draws():
    g = runtime.seed_everything(7)
    a = (torch.rand(3), torch.rand(2, generator=g))
    g = runtime.seed_everything(7)
    b = (torch.rand(3), torch.rand(2, generator=g))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    runtime.seed_everything(8)
    assert not torch.equal(torch.rand(3), a[0])


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seed(bad):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        runtime.seed_everything(bad)


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (0.123456, 4, "0.1235"),
        (123456.0, 3, "1.23e+05"),
        (torch.tensor(2.0 / 3.0, dtype=torch.float64), 3, "0.667"),
        (torch.tensor(-1e-30), 4, "-1e-30"),
        (-0.0, 4, "0"),
        (7, 4, "7"),
        (True, 4, "True"),
        (float("nan"), 4, "nan"),
    ],
)
def test_format_value_rounds_significant_digits(value, digits, text):
    assert runtime.format_value(value, digits) == text


def test_format_value_refuses_vectors():
    with pytest.raises(ValueError, match="scalars only.*shape \\(3,\\)"):
        runtime.format_value(torch.ones(3))


def test_report_prints_aligned_rounded_lines(capsys):
    assert lib.report({"NC1": 1 / 3}, digits=3, K=10) is None
    assert capsys.readouterr().out == "NC1  0.333\nK    10\n"
    assert runtime.format_report(K=10, NC1=1 / 3) == "K    10\nNC1  0.3333"
    with pytest.raises(ValueError, match="at least one"):
        lib.report()


def test_setup_seeds_resolves_and_styles(capsys):
    import matplotlib as mpl

    from lib.plotting import STYLE

    mpl.rcParams["axes.grid"] = False
    dev = lib.setup(seed=3, device="cpu")
    assert dev == torch.device("cpu")
    assert capsys.readouterr().out == "device: cpu  seed: 3\n"
    assert mpl.rcParams["axes.grid"] is STYLE["axes.grid"]
    x = torch.rand(2)
    lib.setup(seed=3, device="cpu")
    assert torch.equal(torch.rand(2), x)


_MATMUL_DIGEST = """
import hashlib, sys
import torch
if sys.argv[1] == "setup":
    import lib
    lib.setup(seed=0, device="cpu", style=False)
g = torch.Generator().manual_seed(0)
a, b = torch.randn(257, 513, generator=g), torch.randn(513, 129, generator=g)
print(hashlib.sha1((a @ b).numpy().tobytes()).hexdigest())
"""


def _digest(how: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    out = subprocess.run(
        [sys.executable, "-c", _MATMUL_DIGEST, how],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_setup_makes_mkl_round_the_same_on_every_cpu():
    """A float32 GEMM after ``setup`` is bit-identical to one run in MKL's COMPATIBLE mode from
    the start (MKL's own path for the CPU, on an AMD EPYC and on an Intel Xeon with AVX-512,
    rounds differently: there the two differ without the setting); an ``MKL_CBWR`` the user set
    is kept."""
    assert _digest("setup") == _digest("plain", MKL_CBWR="COMPATIBLE")
    assert _digest("setup", MKL_CBWR="AVX2") == _digest("plain", MKL_CBWR="AVX2")


_CONV_DIGEST = """
import hashlib, sys
import torch
if sys.argv[1] == "setup":
    import lib
    lib.setup(seed=0, device="cpu", style=False)
g = torch.Generator().manual_seed(0)
x, w = torch.randn(64, 32, 16, 16, generator=g), torch.randn(64, 32, 3, 3, generator=g)
print(hashlib.sha1(torch.nn.functional.conv2d(x, w, padding=1).numpy().tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_setup_makes_convolutions_independent_of_the_cpu_kernels():
    """oneDNN picks its convolution kernels by instruction set (here forced down to AVX2, as on
    an older or another make of CPU); after ``setup`` the convolution does not go through oneDNN,
    so the result is the same bits either way."""

    def digest(how: str, isa: str | None) -> str:
        env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA")}
        if isa is not None:
            env["ONEDNN_MAX_CPU_ISA"] = isa
        out = subprocess.run(
            [sys.executable, "-c", _CONV_DIGEST, how],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1]

    assert digest("setup", None) == digest("setup", "AVX2")


def test_setup_turns_onednn_off_unless_told_not_to(capsys):
    enabled = torch.backends.mkldnn.enabled
    try:
        torch.backends.mkldnn.enabled = True
        lib.setup(seed=0, device="cpu", style=False, reproducible=False)
        assert torch.backends.mkldnn.enabled
        lib.setup(seed=0, device="cpu", style=False)
        assert not torch.backends.mkldnn.enabled
    finally:
        torch.backends.mkldnn.enabled = enabled


def test_setup_keeps_an_mkl_cbwr_the_user_set(monkeypatch, capsys):
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    lib.setup(seed=0, device="cpu", style=False)
    assert os.environ["MKL_CBWR"] == "AVX2"
    monkeypatch.delenv("MKL_CBWR")
    lib.setup(seed=0, device="cpu", style=False)
    assert os.environ["MKL_CBWR"] == "COMPATIBLE"


def test_environment_lists_the_stack():
    info = runtime.environment()
    assert {"python", "torch", "timm", "open_clip_torch", "gpu"} <= set(info)
    assert info["torch"] != "not installed"


def test_import_lib_touches_no_network_and_no_gpu():
    code = textwrap.dedent(
        """
        import socket
        def refuse(*a, **k):
            raise AssertionError("network touched on import")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        import sys, torch
        import lib
        lib.metrics, lib.runtime, lib.data, lib.plotting  # lazy submodules resolve
        assert not torch.cuda.is_initialized(), "CUDA initialised on import"
        assert "timm" not in sys.modules and "open_clip" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_lazy_attribute_error_names_the_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lib.nope  # noqa: B018


def test_gaussian_classes_shapes_order_and_determinism():
    H, y = data.gaussian_classes(3, 5, 4, generator=torch.Generator().manual_seed(0))
    assert H.shape == (15, 4) and y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    H2, _ = data.gaussian_classes(3, 5, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(H, H2)
    H64, _ = data.gaussian_classes(3, 5, 4, dtype=torch.float64)
    assert H64.dtype == torch.float64


def test_gaussian_classes_zero_noise_is_class_means():
    H, y = data.gaussian_classes(
        4, 3, 6, separation=2.0, noise=0.0, generator=torch.Generator().manual_seed(1)
    )
    for k in range(4):
        rows = H[y == k]
        assert torch.equal(rows, rows[:1].expand_as(rows))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes must be an integer >= 2"),
        ({"per_class": 0}, "per_class must be an integer >= 1"),
        ({"dim": 2.0}, "dim must be an integer >= 1"),
        ({"separation": -1.0}, "separation must be a finite number >= 0"),
        ({"noise": float("nan")}, "noise must be a finite number >= 0"),
    ],
)
def test_gaussian_classes_bad_input(kwargs, message):
    args = {"num_classes": 3, "per_class": 2, "dim": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        data.gaussian_classes(**args)


def test_panels_makes_or_checks_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lib.plotting import panels

    fig, axes = panels(None, 3, panel_width=2.0)
    assert len(axes) == 3 and tuple(fig.get_size_inches()) == (6.0, 3.4)
    assert panels(axes[0])[1] == [axes[0]]
    with pytest.raises(ValueError, match="expected 2 axes, got 3"):
        panels(axes, 2)
    plt.close(fig)


@pytest.mark.parametrize("bad", ["sum ", 3, None])
def test_check_option_lists_allowed_values(bad):
    from lib._checks import check_option

    check_option("reduction", "mean", ("mean", "sum"))
    with pytest.raises(ValueError, match="unknown reduction .*allowed values: 'mean', 'sum'"):
        check_option("reduction", bad, ("mean", "sum"))


# ------------------------------------------------------------------------------------------
# The shared argument checks (lib._checks): one wording each, numpy scalars accepted
# ------------------------------------------------------------------------------------------


def test_shared_checks_accept_numpy_scalars_and_name_the_argument():
    import numpy as np

    from lib._checks import check_int, check_num_classes, check_option, check_real

    assert check_num_classes(np.int64(3)) == 3 and type(check_num_classes(np.int64(3))) is int
    assert check_int("steps", np.int32(0), 0) == 0
    assert check_real("lr", np.float32(0.5), 0.0, strict=True) == 0.5
    assert check_real("tol", 0, 0.0, strict=False) == 0.0
    for bad in (1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="num_classes must be an integer >= 2 .*at least two"):
            check_num_classes(bad)
    for bad in (0.0, -1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got"):
            check_real("lr", bad, 0.0, strict=True)
    with pytest.raises(ValueError, match=r"tol must be a finite number >= 0, got -1"):
        check_real("tol", -1, 0.0, strict=False)
    with pytest.raises(ValueError, match=r"unknown mode 'x'; allowed values: 'a', 'b'"):
        check_option("mode", "x", ("a", "b"))
    with pytest.raises(ValueError, match=r"unknown mode tensor"):
        check_option("mode", torch.tensor(1), ("a", "b"))


def test_plot_collapse_sweep_draws_the_features_and_both_measures():
    import matplotlib.pyplot as plt
    import numpy as np

    from lib.plotting import plot_collapse_sweep

    g = torch.Generator().manual_seed(0)
    sweep = [(torch.randn(12, 3, generator=g), torch.arange(12) % 3) for _ in range(3)]
    seps, nc1s, ds = [0.5, 1.0, 2.0], [4.0, 1.0, 0.25], [2.0, 0.5, 0.125]
    fig = plot_collapse_sweep(seps, sweep, nc1s, ds)
    ax0, ax1 = fig.axes
    lo, hi = ax0.collections
    np.testing.assert_array_equal(lo.get_offsets(), sweep[0][0][:, :2].numpy())
    np.testing.assert_array_equal(hi.get_offsets(), sweep[-1][0][:, :2].numpy())
    np.testing.assert_array_equal(lo.get_array(), sweep[0][1].numpy())
    assert [t.get_text() for t in ax0.get_legend().get_texts()] == ["s = 0.5", "s = 2"]
    (l_nc1, l_d) = ax1.lines
    np.testing.assert_array_equal(l_nc1.get_xdata(), seps)
    np.testing.assert_array_equal(l_nc1.get_ydata(), nc1s)
    np.testing.assert_array_equal(l_d.get_ydata(), ds)
    assert ax1.get_xscale() == ax1.get_yscale() == "log"
    with pytest.raises(ValueError, match="one entry per separation"):
        plot_collapse_sweep(seps, sweep[:2], nc1s, ds)
    plt.close(fig)
