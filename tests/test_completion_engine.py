"""lib.completion._steps and _engine: the dense and observed-entry paths against each other, the
padded layout, broadcast vs BLAS products, the step modes (compiled, Triton in its interpreter,
CUDA graphs on a GPU) against eager steps, and their error messages."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lib import completion
from lib.completion import _engine
from lib.completion._steps import _broadcast_mm, _padded

F64 = torch.float64


def _problem(d=20, r=2, p=0.5, seed=0, dtype=F64):
    return completion.make_problem(
        d, r, p, generator=torch.Generator().manual_seed(seed), dtype=dtype
    )


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b))


# ------------------------------------------------------------------------------------------
# dense and observed-entry paths, layouts
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["padded", "scatter"])
def test_dense_and_observed_paths_agree_to_1e_10(layout):
    P = _problem(d=40, r=3, p=0.3, seed=3)
    kw = dict(depth=3, scale=0.05, max_steps=300, rank_hat=4, record_every=50)
    for method in ("compressed", "narrow"):
        a = completion.fit(P, method, evaluation="dense", **kw)
        b = completion.fit(P, method, evaluation="observed", layout=layout, **kw)
        assert (a.evaluation, b.evaluation, a.layout, b.layout) == (
            "dense", "observed", None, layout
        )  # fmt: skip
        assert float((a.end_to_end - b.end_to_end).abs().max()) < 1e-10
        assert float((a.end_to_end - a.weights0[-1] @ a.weights0[0]).abs().max()) > 1e-3
        for x, y in zip(a.train_loss + a.test_loss, b.train_loss + b.test_loss):
            assert x == pytest.approx(y, rel=1e-10, abs=1e-14)


def test_padded_layout_lists_every_observed_entry_of_each_row_and_column():
    P = _problem(d=15, r=2, p=0.35, seed=5)
    pad = _padded(P)
    d = P.d
    for idx, val, M, T in ((pad.cols, pad.vals, P.mask, P.target), (pad.rows_t, pad.vals_t, P.mask.T, P.target.T)):  # fmt: skip
        assert idx.dtype == torch.int32 and idx.shape[0] == d
        assert idx.shape[1] == int(M.sum(1).max())  # padded to the fullest row
        for i in range(d):  # naive loop: row i of the mask, in column order, then padding
            want = [j for j in range(d) if M[i, j]]
            got = idx[i].tolist()
            assert got == want + [d] * (len(got) - len(want))
            assert val[i, : len(want)].tolist() == [float(T[i, j]) for j in want]
            assert not val[i, len(want) :].any()


def test_very_uneven_masks_use_the_scatter_and_both_layouts_stay_exact():
    P = _problem(d=30, r=2, p=0.1, seed=2)
    mask = P.mask.clone()
    mask[0] = True  # one fully observed row: padding every row to d would cost ~10x
    rows, cols = mask.nonzero(as_tuple=True)
    Q = completion.Problem(P.target, mask, P.rank, rows, cols, P.target[rows, cols], P.seed)
    kw = dict(scale=0.1, max_steps=50, record_every=50, evaluation="observed")
    auto = completion.fit(Q, "compressed", **kw)
    padded = completion.fit(Q, "compressed", layout="padded", **kw)
    dense = completion.fit(Q, "compressed", **dict(kw, evaluation="dense"))
    assert (auto.layout, padded.layout) == ("scatter", "padded")
    for res in (auto, padded):
        assert float((res.end_to_end - dense.end_to_end).abs().max()) < 1e-12
    assert completion.fit(_problem(d=200, r=2, p=0.2), "compressed", max_steps=1, evaluation="observed").layout == "padded"  # fmt: skip


def test_broadcast_products_equal_blas_products():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 4, generator=g, dtype=F64), torch.randn(4, 3, generator=g, dtype=F64)
    assert torch.allclose(_broadcast_mm(a, b), a @ b, rtol=0, atol=1e-14)
    assert torch.allclose(_broadcast_mm(a.T, a), a.T @ a, rtol=0, atol=1e-14)
    P = _problem(d=30, r=2, p=0.4, seed=4)
    kw = dict(depth=4, scale=0.3, max_steps=40, record_every=40, evaluation="observed")
    runs = {}
    for flag in (False, True):
        runs[flag] = completion.fit(P, "compressed", layout="padded", broadcast=flag, **kw)
    assert _rel(runs[True].end_to_end, runs[False].end_to_end) < 1e-12
    assert _rel(runs[True].end_to_end, runs[True].weights0[-1] @ runs[True].weights0[0]) > 1e-3


# ------------------------------------------------------------------------------------------
# step modes
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_compiled_padded_step_equals_the_eager_step_on_the_cpu(one_thread):
    """torch.compile of the fused observed-entry step (the GPU's fast path; ~15 s to compile)."""
    P = _problem(d=24, r=2, p=0.4, seed=6)
    kw = dict(scale=0.2, max_steps=60, record_every=30, evaluation="observed", layout="padded")
    eager = completion.fit(P, "compressed", step_mode="eager", **kw)
    compiled = completion.fit(P, "compressed", step_mode="compile", **kw)
    assert compiled.step_mode == "compile" and compiled.steps == eager.steps == 60
    assert _rel(compiled.end_to_end, eager.end_to_end) < 1e-10


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton")
def test_fused_triton_step_equals_the_pytorch_step_in_the_interpreter():
    """The GPU's Triton kernels, run by Triton's CPU emulator (~30 s): the same numbers as the
    PyTorch step to rounding, with 3, 1 and no inner factors, and the same stopping step."""
    script = Path(__file__).with_name("_fused_interpreted.py")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(script.parents[1]))
    run = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for case in out["cases"]:
        assert (case["mode"], case["layout"]) == ("fused", "padded"), case
        assert case["steps"] == [40, 40], case
        assert case["rel"] < 1e-12 and case["weights_rel"] < 1e-12, case
        assert case["moved"] > 1e-3, case  # the factors did move: the comparison is not vacuous
        for x, y in zip(*case["loss"]):
            assert x == pytest.approx(y, rel=1e-12)
    gate = out["gate"]
    assert gate["steps"] == [gate["expected"]] * 2 and gate["converged"]


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton")
def test_fused_step_mode_errors(monkeypatch):
    monkeypatch.setattr(_engine, "_triton_interpreter", lambda: True)  # pass the device check
    P = _problem(d=20, r=2)
    for kw, message in [
        (dict(method="original"), "the original network is dense"),
        (
            dict(method="compressed", evaluation="dense"),
            "evaluation='observed' and layout='padded'",
        ),
        (dict(method="narrow", layout="scatter"), "evaluation='observed' and layout='padded'"),
    ]:
        with pytest.raises(ValueError, match=message):
            completion.fit(P, step_mode="fused", max_steps=1, **kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_fused_step_mode_needs_cuda_or_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="needs a CUDA device.*TRITON_INTERPRET=1"):
        completion.fit(_problem(d=20, r=2), "compressed", step_mode="fused", max_steps=1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_graph_step_mode_needs_cuda():
    with pytest.raises(ValueError, match="needs a CUDA device"):
        completion.fit(_problem(d=20, r=2), "compressed", step_mode="graph", max_steps=1)


# ------------------------------------------------------------------------------------------
# GPU: fused step modes agree with eager steps
# ------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(
    "mode, layout",
    [(m, lay) for m in ("graph", "compile+graph") for lay in ("padded", "scatter")]
    + [("fused", "padded")],
)
def test_gpu_step_modes_match_eager(mode, layout):
    P = completion.make_problem(
        64, 3, 0.3, generator=torch.Generator().manual_seed(0), dtype=F64, device="cuda"
    )
    kw = dict(scale=0.1, max_steps=173, tol=0.0, record_every=60, layout=layout)
    eager = completion.fit(P, "compressed", step_mode="eager", **dict(kw, layout="scatter"))
    fused = completion.fit(P, "compressed", step_mode=mode, **kw)
    assert fused.step_mode == mode and fused.steps == eager.steps == 173
    assert fused.layout == layout and fused.evaluation == "observed"
    assert _rel(fused.end_to_end, eager.end_to_end) < 1e-10
    stop = completion.fit(P, "compressed", step_mode=mode, **dict(kw, max_steps=5000, tol=1e-6))
    ref = completion.fit(P, "compressed", step_mode="eager", **dict(kw, max_steps=5000, tol=1e-6))
    assert stop.steps == ref.steps and stop.converged
