"""lib.completion: the problem, the original / compressed / narrow networks against naive autograd
loops, the dense and observed-entry paths against each other, the law of parsimony for deep matrix
factorization (compressed = original along the trajectory), discrepant learning rates for
completion, and the error messages."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lib import completion, dln

F64 = torch.float64


def _problem(d=20, r=2, p=0.5, seed=0, dtype=F64):
    return completion.make_problem(
        d, r, p, generator=torch.Generator().manual_seed(seed), dtype=dtype
    )


def _naive_fit(weights, problem, lrs, steps):
    """GD with autograd on ½·mean(Ω ⊙ (W_{L:1} − Φ))², one learning rate per layer."""
    Ws = [W.detach().clone().requires_grad_(True) for W in weights]
    mask = problem.mask.to(problem.target.dtype)
    for _ in range(steps):
        loss = 0.5 * (mask * (dln.end_to_end(Ws) - problem.target)).square().mean()
        grads = torch.autograd.grad(loss, Ws)
        with torch.no_grad():
            for W, g, lr in zip(Ws, grads, lrs):
                W.sub_(lr * g)
    return [W.detach() for W in Ws]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b))


# ------------------------------------------------------------------------------------------
# the problem
# ------------------------------------------------------------------------------------------


def test_make_problem_rank_mask_and_determinism():
    P = _problem(d=40, r=3, p=0.25)
    assert P.target.shape == (40, 40) and P.mask.shape == (40, 40) and P.mask.dtype == torch.bool
    assert int(torch.linalg.matrix_rank(P.target)) == 3
    assert P.n_observed == int(P.mask.sum()) == 400 and P.observed_fraction == 0.25
    assert torch.equal(P.values, P.target[P.mask])  # row-major order, as mask.nonzero()
    assert torch.equal(P.target[P.rows, P.cols], P.values)
    # scale of the public code's target: singular values close to 2 sqrt(d)
    S = torch.linalg.svdvals(P.target)[:3]
    assert bool(((S > 0.8 * math.sqrt(40)) & (S < 4.5 * math.sqrt(40))).all())
    Q = _problem(d=40, r=3, p=0.25)
    assert torch.equal(P.target, Q.target) and torch.equal(P.mask, Q.mask) and P.seed == Q.seed
    full = _problem(d=10, r=2, p=1.0)
    assert bool(full.mask.all()) and full.n_observed == 100


def test_losses_match_the_definition():
    P = _problem(d=15, r=2, p=0.4)
    W = torch.randn(15, 15, generator=torch.Generator().manual_seed(1), dtype=F64)
    train, test = completion.losses(P, W)
    m = P.mask.to(F64)
    assert float(train) == pytest.approx(0.5 * float(((m * (W - P.target)) ** 2).mean()), rel=1e-13)
    assert float(test) == pytest.approx(
        0.5 * float((((1 - m) * (W - P.target)) ** 2).mean()), rel=1e-13
    )


# ------------------------------------------------------------------------------------------
# the three networks against naive autograd loops
# ------------------------------------------------------------------------------------------


def test_original_fit_equals_a_naive_autograd_loop():
    P = _problem(d=16, r=2, p=0.5)
    res = completion.fit(P, "original", depth=3, scale=0.5, lr=5.0, max_steps=25, record_every=5)
    W0 = completion.init_original(P, depth=3, scale=0.5)
    for W, W_res in zip(W0, res.weights0):
        assert torch.equal(W, W_res)
    naive = _naive_fit(W0, P, [5.0] * 3, 25)
    assert _rel(res.end_to_end, dln.end_to_end(naive)) < 1e-12
    for W, Wn in zip(res.weights, naive):
        assert _rel(W, Wn) < 1e-12
    assert _rel(res.end_to_end, dln.end_to_end(W0)) > 1e-3  # it did move
    assert res.record_steps == [0, 5, 10, 15, 20, 25] and res.steps == 25
    train, test = completion.losses(P, res.end_to_end)
    assert res.train_loss[-1] == pytest.approx(float(train), rel=1e-12)
    assert res.test_loss[-1] == pytest.approx(float(test), rel=1e-12)


@pytest.mark.parametrize("method", ["compressed", "narrow"])
@pytest.mark.parametrize("evaluation", ["observed", "dense"])
def test_thin_networks_equal_naive_autograd_loops_with_discrepant_rates(method, evaluation):
    P = _problem(d=18, r=2, p=0.4)
    lr, gamma = 30.0, 0.2
    res = completion.fit(
        P, method, depth=3, scale=0.4, lr=lr, max_steps=20, rank_hat=3, gamma=gamma,
        evaluation=evaluation, record_every=20,
    )  # fmt: skip
    W0 = res.weights0
    k = 6
    assert W0[0].shape == (k, 18) and W0[-1].shape == (18, k)
    outer = gamma * lr if method == "compressed" else lr
    lrs = [outer] + [lr] * (len(W0) - 2) + [outer]
    naive = _naive_fit(W0, P, lrs, 20)
    for W, Wn in zip(res.weights, naive):
        assert _rel(W, Wn) < 1e-12
    assert _rel(res.end_to_end, dln.end_to_end(naive)) < 1e-12


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
    pad = completion._padded(P)
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


def test_broadcast_products_equal_blas_products(monkeypatch):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 4, generator=g, dtype=F64), torch.randn(4, 3, generator=g, dtype=F64)
    assert torch.allclose(completion._broadcast_mm(a, b), a @ b, rtol=0, atol=1e-14)
    assert torch.allclose(completion._broadcast_mm(a.T, a), a.T @ a, rtol=0, atol=1e-14)
    P = _problem(d=30, r=2, p=0.4, seed=4)
    kw = dict(depth=4, scale=0.3, max_steps=40, record_every=40, evaluation="observed")
    runs = {}
    for flag in (False, True):
        monkeypatch.setattr(completion, "_BROADCAST_MM", flag)
        runs[flag] = completion.fit(P, "compressed", layout="padded", **kw)
    assert _rel(runs[True].end_to_end, runs[False].end_to_end) < 1e-12
    assert _rel(runs[True].end_to_end, runs[True].weights0[-1] @ runs[True].weights0[0]) > 1e-3


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
    monkeypatch.setattr(completion, "_triton_interpreter", lambda: True)  # pass the device check
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


def test_compress_builds_the_subspace_of_the_first_gradient():
    P = _problem(d=24, r=2, p=0.5, seed=1)
    W0 = completion.init_original(P, depth=3, scale=1e-2)
    Wc = completion.compress(P, W0, rank_hat=3)
    V11, UL1 = Wc[0].T, Wc[-1]
    eye = torch.eye(6, dtype=F64)
    assert len(Wc) == 5 and all(torch.allclose(W, 1e-2 * eye) for W in Wc[1:-1])
    assert torch.allclose(V11.T @ V11, eye, atol=1e-12)
    assert torch.allclose(UL1, dln.end_to_end(W0) @ V11 / 1e-6, atol=1e-9)
    # V11 spans the top-3 right singular vectors of the first gradient and W_1(0)ᵀ U_g / ε
    U, _, Vh = torch.linalg.svd(completion.first_gradient(P, W0))
    for block in (Vh[:3].T, W0[0].T @ U[:, :3] / 1e-2):
        assert torch.allclose(V11 @ (V11.T @ block), block, atol=1e-10)


def test_parameter_counts():
    P = _problem(d=30, r=2, p=0.5)
    kw = dict(depth=4, max_steps=0, rank_hat=3)
    for method, expected in (("original", 4 * 900), ("compressed", 4 * 36 + 2 * 30 * 6), ("narrow", 2 * 36 + 2 * 30 * 6)):  # fmt: skip
        assert completion.fit(P, method, **kw).n_params == expected
        assert completion.parameter_count(method, 30, 4, 3) == expected
    assert completion.parameter_count("original", 1000, 3) == 3_000_000
    assert completion.parameter_count("compressed", 1000, 3, 5) == 20_300  # O(L r̂² + d r̂)


def test_gamma_zero_keeps_the_outer_factors_fixed():
    P = _problem(d=20, r=2, p=0.5)
    res = completion.fit(P, "compressed", scale=0.3, lr=30.0, max_steps=30, gamma=0.0)
    assert torch.equal(res.weights[0], res.weights0[0])
    assert torch.equal(res.weights[-1], res.weights0[-1])
    assert not torch.equal(res.weights[1], res.weights0[1])
    moved = completion.fit(P, "compressed", scale=0.3, lr=30.0, max_steps=30, gamma=0.01)
    assert not torch.equal(moved.weights[0], moved.weights0[0])


def test_tol_stops_at_the_first_step_below_it():
    P = _problem(d=20, r=2, p=0.6)
    kw = dict(scale=0.3, lr=10.0, record_every=7)
    res = completion.fit(P, "compressed", max_steps=2000, tol=1e-4, **kw)
    assert res.converged and 0 < res.steps < 2000 and res.train_loss[-1] < 1e-4
    assert res.record_steps[-1] == res.steps and res.record_steps[:3] == [0, 7, 14]
    before = completion.fit(P, "compressed", max_steps=res.steps - 1, **kw)
    assert before.train_loss[-1] >= 1e-4 and not before.converged
    same = completion.fit(P, "compressed", max_steps=res.steps, **kw)
    assert torch.equal(same.end_to_end, res.end_to_end)


# ------------------------------------------------------------------------------------------
# acceptance: the law of parsimony and discrepant learning rates
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "r", "rank_hat", "depth", "scale", "steps"),
    [(30, 2, 2, 2, 1e-5, 400), (30, 2, 3, 2, 1e-5, 400), (12, 1, 1, 3, 1.5e-3, 3000)],
    ids=["L2", "L2-rank_hat>r", "L3"],
)
def test_full_observation_compressed_trajectory_equals_the_original(
    d, r, rank_hat, depth, scale, steps
):
    """Deep matrix factorization, γ = 0: the compressed network *is* the original one, up to the
    untouched directions of size ρ(t)^L ≤ ε^L."""
    P = _problem(d=d, r=r, p=1.0, seed=2)
    lr = 1.8 * completion.default_lr(P, depth)  # below the edge of stability, 2x
    kw = dict(depth=depth, scale=scale, lr=lr, max_steps=steps, record_every=steps // 20)
    kw["keep_trajectory"] = True
    orig = completion.fit(P, "original", **kw)
    comp = completion.fit(P, "compressed", rank_hat=rank_hat, gamma=0.0, **kw)
    assert orig.train_loss[-1] < 1e-12 * orig.train_loss[0]  # it learned the target
    norm = float(torch.linalg.matrix_norm(P.target))
    gap = (orig.trajectory - comp.trajectory).flatten(1).norm(dim=1) / norm  # (T,)
    assert float(gap.max()) <= 1e-8
    a, b = completion.project_trajectories(orig.trajectory, comp.trajectory)
    assert float((a - b).abs().max()) <= 1e-8 * norm


def test_completion_needs_discrepant_learning_rates():
    """d = 100, r = 5, 30 % observed: γ = 0.01 recovers Φ; γ = 0 stalls with the same budget."""
    P = _problem(d=100, r=5, p=0.3, seed=0)
    kw = dict(depth=3, scale=0.1, max_steps=3000, record_every=500, evaluation="dense")
    fixed = completion.fit(P, "compressed", gamma=0.0, **kw)
    tuned = completion.fit(P, "compressed", gamma=0.01, **kw)
    assert tuned.test_loss[-1] < 1e-5 * tuned.test_loss[0]
    assert fixed.test_loss[-1] > 1e3 * tuned.test_loss[-1]


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(d=10, rank=10, observed_fraction=0.5), "rank must be < d"),
        (dict(d=10, rank=12, observed_fraction=0.5), "rank must be < d"),
        (dict(d=10, rank=0, observed_fraction=0.5), "rank must be an integer >= 1"),
        (dict(d=10, rank=2, observed_fraction=0.0), r"observed_fraction must be in \(0, 1\]"),
        (dict(d=10, rank=2, observed_fraction=1.5), r"observed_fraction must be in \(0, 1\]"),
        (dict(d=10, rank=2, observed_fraction=-0.2), r"observed_fraction must be in \(0, 1\]"),
        (dict(d=10, rank=2, observed_fraction="half"), "observed_fraction must be a number"),
        (dict(d=100, rank=2, observed_fraction=1e-6), "observes no entry"),
        (dict(d=1, rank=1, observed_fraction=0.5), "d must be an integer >= 2"),
    ],
)
def test_make_problem_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        completion.make_problem(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(method="wide"),
            "unknown method 'wide'; allowed values: 'original', 'compressed', 'narrow'",
        ),
        (
            dict(method="compressed", rank_hat=11),
            r"rank_hat is too large.*2\*rank_hat = 22.*d = 20",
        ),
        (dict(method="narrow", rank_hat=0), "rank_hat must be an integer >= 1"),
        (dict(method="narrow", depth=1), "depth must be an integer >= 2"),
        (dict(method="compressed", gamma=-0.1), "gamma must be a finite number >= 0"),
        (dict(method="compressed", lr=0.0), "lr must be a finite number > 0"),
        (dict(method="original", scale=0.0), "scale must be a finite number > 0"),
        (dict(method="original", max_steps=-1), "max_steps must be an integer >= 0"),
        (dict(method="original", tol=float("nan")), "tol must be a finite number >= 0"),
        (dict(method="original", evaluation="sparse"), "unknown evaluation 'sparse'"),
        (dict(method="original", evaluation="observed"), "evaluation='observed' applies to"),
        (dict(method="compressed", step_mode="turbo"), "unknown step_mode 'turbo'"),
        (dict(method="compressed", layout="csr"), "unknown layout 'csr'"),
    ],
)
def test_fit_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        completion.fit(_problem(d=20, r=2), **kwargs)


def test_fit_rejects_a_non_problem_and_reports_divergence():
    with pytest.raises(ValueError, match="problem must be a lib.completion.Problem"):
        completion.fit(torch.zeros(4, 4), "original")
    with pytest.raises(ValueError, match=r"training diverged.*lr=1e\+06.*lower lr"):
        completion.fit(_problem(d=20, r=2), "original", scale=0.5, lr=1e6, max_steps=200)


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
