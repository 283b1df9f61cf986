"""lib.dln: data, init, the GD trainer (vs autograd), the batched trainer (vs one run at a time).

The law of parsimony checked against the ρ(t) recursion (lib.parsimony.theory) is in
tests/test_parsimony_theory.py."""

from __future__ import annotations

import math

import pytest
import torch
from _linalg import deep_linear_problem as _problem
from _linalg import generator as _gen

from lib import dln, spectra

F64 = torch.float64


# ------------------------------------------------------------------------------------------
# train vs an autograd reference
# ------------------------------------------------------------------------------------------


def _autograd_reference(Ws, X, Y, lr, steps, wd, mu, reduction, activation):
    """Naive loop with torch.autograd and the update written out by hand."""
    Ws = [W.detach().clone().requires_grad_(True) for W in Ws]
    bufs = [None] * len(Ws)
    weights, losses = [], []
    for t in range(steps + 1):
        H = X
        for i, W in enumerate(Ws):
            H = H @ W.T
            if activation == "relu" and i < len(Ws) - 1:
                H = torch.relu(H)
        diff = H - Y
        loss = 0.5 * (diff**2).mean() if reduction == "mean" else 0.5 * (diff**2).sum()
        weights.append([W.detach().clone() for W in Ws])
        losses.append(loss.detach())
        if t == steps:
            break
        grads = torch.autograd.grad(loss, Ws)
        with torch.no_grad():
            for i, (W, gW) in enumerate(zip(Ws, grads)):
                if mu == 0:
                    W.mul_(1 - lr * wd).sub_(lr * gW)
                else:
                    gW = gW + wd * W
                    bufs[i] = gW.clone() if bufs[i] is None else mu * bufs[i] + gW
                    W.sub_(lr * bufs[i])
    return weights, torch.stack(losses)


@pytest.mark.parametrize(
    "reduction,wd,mu,activation",
    [
        ("mean", 0.0, 0.0, None),
        ("sum", 0.0, 0.0, None),
        ("mean", 0.05, 0.0, None),
        ("sum", 0.01, 0.7, None),
        ("mean", 0.0, 0.0, "relu"),
        ("mean", 0.02, 0.5, "relu"),
    ],
)
def test_train_matches_autograd_reference(reduction, wd, mu, activation):
    g = _gen(10)
    dims = [5, 7, 4, 3]  # non-square, L = 3
    X = torch.randn(9, 5, generator=g, dtype=F64)
    Y = torch.randn(9, 3, generator=g, dtype=F64)
    Ws = dln.init_weights(dims, 0.8, kind="normal", generator=g, dtype=F64)
    lr = 0.5 if reduction == "mean" else 0.02
    h = dln.train(Ws, X, Y, lr, 25, wd, mu, reduction, activation)
    ref_w, ref_loss = _autograd_reference(Ws, X, Y, lr, 25, wd, mu, reduction, activation)
    assert torch.allclose(h.loss, ref_loss, rtol=1e-12, atol=1e-14)
    assert h.loss[-1] < h.loss[0]
    for Ws_t, ref_t in zip(h.weights, ref_w):
        for W, R in zip(Ws_t, ref_t):
            assert torch.allclose(W, R, rtol=1e-12, atol=1e-14)


def test_train_momentum_and_weight_decay_follow_torch_sgd():
    g = _gen(11)
    X = torch.randn(8, 4, generator=g, dtype=F64)
    Y = torch.randn(8, 2, generator=g, dtype=F64)
    Ws = dln.init_weights([4, 6, 2], 0.7, generator=g, dtype=F64)
    h = dln.train(Ws, X, Y, 0.3, 15, weight_decay=0.05, momentum=0.8, record_every=15)
    params = [W.clone().requires_grad_(True) for W in Ws]
    opt = torch.optim.SGD(params, lr=0.3, momentum=0.8, weight_decay=0.05)
    for _ in range(15):
        opt.zero_grad()
        (0.5 * ((X @ params[0].T @ params[1].T - Y) ** 2).mean()).backward()
        opt.step()
    for W, P in zip(h.weights[-1], params):
        assert torch.allclose(W, P.detach(), rtol=1e-12, atol=1e-14)


def test_train_float32_runs_and_keeps_dtype():
    g = _gen(12)
    Ws = dln.init_weights([6, 6, 6], 0.3, generator=g, dtype=torch.float32)
    X = dln.whitened_inputs(6, 6, generator=g, dtype=torch.float32)
    Y = dln.low_rank_targets(6, 6, 2, generator=g, dtype=torch.float32)
    h = dln.train(Ws, X, Y, 0.05, 50, reduction="sum")
    assert h.weights[-1][0].dtype == torch.float32 and h.loss.dtype == torch.float32
    assert h.loss[-1] < h.loss[0]


# ------------------------------------------------------------------------------------------
# batched runs == the same runs one at a time
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", [None, "relu"])
def test_train_batched_equals_runs_one_at_a_time(activation):
    B, dims, N = 5, [6, 6, 6, 4], 8
    g = _gen(20)
    eps = [0.1, 0.3, 0.5, 0.7, 0.9]
    lrs = torch.tensor([0.2, 0.4, 0.6, 0.8, 1.0], dtype=F64)
    wds = [0.0, 0.01, 0.0, 0.02, 0.05]
    mus = [0.0, 0.0, 0.5, 0.9, 0.3]
    Ws = dln.init_weights_batched(B, dims, eps, generator=g, dtype=F64)
    X = dln.whitened_inputs(N, 6, generator=g, dtype=F64)  # shared
    Ys = torch.stack(
        [dln.low_rank_targets(N, 4, 2, generator=g, dtype=F64) for _ in range(B)]
    )  # per run
    for mom in (0.0, mus):  # per-run momentum, and the momentum-free path
        h = dln.train_batched(Ws, X, Ys, lrs, 40, wds, mom, "mean", activation, record_every=7)
        assert h.loss.shape == (len(h.steps), B)
        for b, run in enumerate(dln.unstack_runs(Ws)):
            mu_b = 0.0 if mom == 0.0 else mus[b]
            hb = dln.train(
                run, X, Ys[b], float(lrs[b]), 40, wds[b], mu_b, "mean", activation, record_every=7
            )
            assert torch.equal(hb.steps, h.steps)
            assert torch.allclose(h.loss[:, b], hb.loss, rtol=1e-12, atol=1e-15)
            for Ws_t, Wb_t in zip(h.weights, hb.weights):
                for W, Wb in zip(Ws_t, Wb_t):
                    assert torch.allclose(W[b], Wb, rtol=1e-12, atol=1e-15)


def test_train_batched_shared_hyperparameters_and_per_run_data():
    B = 3
    g = _gen(21)
    Ws = dln.init_weights_batched(B, [4, 4, 4], 0.4, generator=g, dtype=F64)
    Xs = torch.stack([dln.whitened_inputs(6, 4, generator=g, dtype=F64) for _ in range(B)])
    Ys = torch.randn(B, 6, 4, generator=g, dtype=F64)
    h = dln.train_batched(Ws, Xs, Ys, 0.5, 20, weight_decay=0.01, reduction="mean", record_every=20)
    for b in range(B):
        hb = dln.train([W[b] for W in Ws], Xs[b], Ys[b], 0.5, 20, 0.01, record_every=20)
        assert torch.allclose(h.weights[-1][1][b], hb.weights[-1][1], rtol=1e-12, atol=1e-15)


def test_init_weights_batched_equals_sequential_init_weights():
    g1, g2 = _gen(22), _gen(22)
    Ws = dln.init_weights_batched(
        3, [3, 5, 2], [0.1, 0.2, 0.3], kind="uniform", generator=g1, dtype=F64
    )
    for b, s in enumerate([0.1, 0.2, 0.3]):
        ref = dln.init_weights([3, 5, 2], s, kind="uniform", generator=g2, dtype=F64)
        for W, R in zip(Ws, ref):
            assert torch.equal(W[b], R)
    assert [tuple(W.shape) for W in Ws] == [(3, 5, 3), (3, 2, 5)]
    assert all(torch.equal(a, b) for a, b in zip(dln.stack_runs(dln.unstack_runs(Ws)), Ws))


# ------------------------------------------------------------------------------------------
# init, data, history semantics
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [[5, 5, 5], [3, 7, 2], [8, 4, 4, 9]])
def test_init_weights_orthogonal(dims):
    eps = 0.37
    Ws = dln.init_weights(dims, eps, generator=_gen(30), dtype=F64)
    assert len(Ws) == len(dims) - 1
    for W, d_in, d_out in zip(Ws, dims[:-1], dims[1:]):
        assert W.shape == (d_out, d_in) and W.dtype == F64
        if d_out >= d_in:
            assert torch.allclose(W.T @ W, eps**2 * torch.eye(d_in, dtype=F64), atol=1e-14)
        else:
            assert torch.allclose(W @ W.T, eps**2 * torch.eye(d_out, dtype=F64), atol=1e-14)


@pytest.mark.parametrize("kind", ["normal", "uniform"])
def test_init_weights_random_kinds_match_orthogonal_frobenius_norm(kind):
    dims, eps = [3, 7, 2, 2], 0.2
    Ws = dln.init_weights(dims, eps, kind=kind, generator=_gen(31), dtype=F64)
    ortho = dln.init_weights(dims, eps, generator=_gen(31), dtype=F64)
    for W, W_orth, d_in, d_out in zip(Ws, ortho, dims[:-1], dims[1:]):
        assert torch.linalg.matrix_norm(W) == pytest.approx(
            eps * math.sqrt(min(d_in, d_out)), rel=1e-14
        )
        assert torch.linalg.matrix_norm(W) == pytest.approx(
            torch.linalg.matrix_norm(W_orth).item(), rel=1e-14
        )
    assert not torch.allclose(Ws[0], ortho[0])  # a different distribution
    if kind == "uniform":
        assert all((W.abs() <= W.abs().max()).all() for W in Ws)
    else:  # Gaussian entries: not orthogonal
        assert not torch.allclose(Ws[0].T @ Ws[0], eps**2 * torch.eye(3, dtype=F64), atol=1e-3)


def test_init_weights_reproducible_and_dtype_device():
    a = dln.init_weights([4, 4], 1.0, generator=_gen(1), dtype=F64)
    b = dln.init_weights([4, 4], 1.0, generator=_gen(1), dtype=torch.float32, device="cpu")
    c = dln.init_weights([4, 4], 1.0, generator=_gen(2), dtype=F64)
    assert torch.allclose(a[0].float(), b[0]) and b[0].dtype == torch.float32
    assert not torch.allclose(a[0], c[0])
    assert dln.init_weights([2, 3], 1.0)[0].dtype == torch.get_default_dtype()


def test_data_generators():
    g = _gen(40)
    X = dln.whitened_inputs(20, 6, generator=g, dtype=F64)
    assert X.shape == (20, 6) and torch.allclose(X.T @ X, torch.eye(6, dtype=F64), atol=1e-14)
    Q = dln.whitened_inputs(6, 6, generator=g, dtype=F64)
    assert torch.allclose(Q @ Q.T, torch.eye(6, dtype=F64), atol=1e-14)
    Z = torch.randn(30, 5, generator=g, dtype=F64) @ torch.randn(5, 5, generator=g, dtype=F64)
    Zw = dln.whiten(Z)
    assert torch.allclose(Zw.T @ Zw, torch.eye(5, dtype=F64), atol=1e-12)
    # same column space, so a least-squares fit is unchanged
    assert torch.allclose(Zw @ torch.linalg.lstsq(Zw, Z).solution, Z, atol=1e-10)
    Y = dln.low_rank_targets(30, 12, 3, generator=g, dtype=F64)
    assert Y.shape == (30, 12) and torch.linalg.matrix_rank(Y) == 3
    assert 0.3 < Y.var().item() < 3.0  # unit-variance entries on average
    labels = torch.tensor([2, 0, 1, 1])
    Yc = dln.one_hot_targets(labels, 4, dtype=F64)
    assert torch.equal(Yc, torch.eye(4, dtype=F64)[labels]) and Yc.shape == (4, 4)
    assert dln.one_hot_targets(labels).shape == (4, 3)
    Ws = dln.init_weights([3, 4, 2], 1.0, generator=g, dtype=F64)
    assert torch.allclose(dln.end_to_end(Ws), Ws[1] @ Ws[0])


def test_train_does_not_modify_inputs():
    g = _gen(50)
    Ws = [W.requires_grad_(True) for W in dln.init_weights([4, 5, 3], 0.5, generator=g, dtype=F64)]
    X = torch.randn(6, 4, generator=g, dtype=F64)
    Y = torch.randn(6, 3, generator=g, dtype=F64)
    before = [W.detach().clone() for W in Ws] + [X.clone(), Y.clone()]
    h = dln.train(Ws, X, Y, 0.5, 10, weight_decay=0.1, momentum=0.5, activation="relu")
    hb = dln.train_batched([W.detach().unsqueeze(0) for W in Ws], X, Y, 0.5, 10, momentum=0.5)
    for a, b in zip(before, [*Ws, X, Y]):
        assert torch.equal(a, b.detach())
    assert all(W.grad is None for W in Ws)
    # the history owns its tensors: editing it does not touch the caller's weights, and vice versa
    h.weights[0][0].zero_()
    hb.weights[0][0].zero_()
    assert torch.equal(Ws[0].detach(), before[0])
    assert not h.weights[-1][0].requires_grad


def test_record_every_semantics():
    Ws, X, Y = _problem(5, 5, 1, 2, 0.5, seed=60)
    h = dln.train(Ws, X, Y, 0.1, 10, reduction="sum", record_every=3)
    assert h.steps.tolist() == [0, 3, 6, 9, 10]
    assert len(h.weights) == len(h.loss) == 5
    assert all(torch.equal(a, b) for a, b in zip(h.weights[0], Ws))  # first = init
    full = dln.train(Ws, X, Y, 0.1, 10, reduction="sum")  # record_every=1
    assert full.steps.tolist() == list(range(11))
    for k, t in enumerate(h.steps.tolist()):
        assert all(torch.equal(a, b) for a, b in zip(h.weights[k], full.weights[t]))
        assert h.loss[k] == full.loss[t]
        assert h.loss[k].item() == pytest.approx(
            0.5 * ((X @ h.weights[k][0].T @ h.weights[k][1].T - Y) ** 2).sum().item(), rel=1e-13
        )
    last = dln.train(Ws, X, Y, 0.1, 10, reduction="sum", record_every=100)
    assert last.steps.tolist() == [0, 10]  # last = after `steps` updates
    assert all(torch.equal(a, b) for a, b in zip(last.weights[-1], full.weights[-1]))
    zero = dln.train(Ws, X, Y, 0.1, 0)
    assert zero.steps.tolist() == [0] and len(zero.weights) == 1
    assert h.trajectory(0).shape == (5, 5, 5) and h.trajectory(-1).shape == (5, 5, 5)


# ------------------------------------------------------------------------------------------
# errors, checked by message
# ------------------------------------------------------------------------------------------


def _ok():
    g = _gen(70)
    Ws = dln.init_weights([4, 4, 3], 0.5, generator=g, dtype=F64)
    X = torch.randn(6, 4, generator=g, dtype=F64)
    Y = torch.randn(6, 3, generator=g, dtype=F64)
    return Ws, X, Y


def _with_nan(t):
    t = t.clone()
    t[0, 0] = float("nan")
    return t


ERRORS = [
    (
        "W chain",
        lambda Ws, X, Y: dln.train([Ws[0], Ws[1].T], X, Y, 0.1, 1),
        r"shape mismatch: W_2 has 3 input columns but W_1 has 4 output rows",
    ),
    (
        "X cols",
        lambda Ws, X, Y: dln.train(Ws, X[:, :3], Y, 0.1, 1),
        r"shape mismatch: X has 3 columns but d_0",
    ),
    (
        "Y cols",
        lambda Ws, X, Y: dln.train(Ws, X, Y[:, :2], 0.1, 1),
        r"shape mismatch: Y has 2 columns but d_L",
    ),
    ("N", lambda Ws, X, Y: dln.train(Ws, X, Y[:5], 0.1, 1), r"X has N=6 rows but Y has N=5"),
    ("X 1-D", lambda Ws, X, Y: dln.train(Ws, X[0], Y, 0.1, 1), r"X must be 2-D"),
    ("empty", lambda Ws, X, Y: dln.train([], X, Y, 0.1, 1), r"non-empty list of L tensors"),
    (
        "W 3-D",
        lambda Ws, X, Y: dln.train([Ws[0][None], Ws[1]], X, Y, 0.1, 1),
        r"W_1 must be a tensor of shape \(d_l, d_\{l-1\}\)",
    ),
    (
        "dtype",
        lambda Ws, X, Y: dln.train(Ws, X.float(), Y, 0.1, 1),
        r"X has dtype torch.float32 but the weights have torch.float64",
    ),
    (
        "nan X",
        lambda Ws, X, Y: dln.train(Ws, _with_nan(X), Y, 0.1, 1),
        r"X contains NaN or infinite",
    ),
    ("inf Y", lambda Ws, X, Y: dln.train(Ws, X, Y / 0.0, 0.1, 1), r"Y contains NaN or infinite"),
    (
        "nan W",
        lambda Ws, X, Y: dln.train([_with_nan(Ws[0]), Ws[1]], X, Y, 0.1, 1),
        r"W_1 contains NaN",
    ),
    (
        "lr 0",
        lambda Ws, X, Y: dln.train(Ws, X, Y, 0.0, 1),
        r"lr must be finite with lr > 0, got 0.0",
    ),
    ("lr <0", lambda Ws, X, Y: dln.train(Ws, X, Y, -1.0, 1), r"lr must be finite with lr > 0"),
    ("lr nan", lambda Ws, X, Y: dln.train(Ws, X, Y, float("nan"), 1), r"lr must be finite"),
    (
        "wd",
        lambda Ws, X, Y: dln.train(Ws, X, Y, 0.1, 1, weight_decay=-0.1),
        r"weight_decay must be finite with weight_decay >= 0",
    ),
    (
        "mom",
        lambda Ws, X, Y: dln.train(Ws, X, Y, 0.1, 1, momentum=1.0),
        r"momentum must be finite with momentum >= 0 and < 1",
    ),
    ("steps", lambda Ws, X, Y: dln.train(Ws, X, Y, 0.1, -1), r"steps must be an integer >= 0"),
    (
        "steps float",
        lambda Ws, X, Y: dln.train(Ws, X, Y, 0.1, 2.5),
        r"steps must be an integer >= 0",
    ),
    (
        "record",
        lambda Ws, X, Y: dln.train(Ws, X, Y, 0.1, 1, record_every=0),
        r"record_every must be an integer >= 1",
    ),
    (
        "reduction",
        lambda Ws, X, Y: dln.train(Ws, X, Y, 0.1, 1, reduction="avg"),
        r"unknown reduction 'avg'; allowed values: 'mean', 'sum'",
    ),
    (
        "activation",
        lambda Ws, X, Y: dln.train(Ws, X, Y, 0.1, 1, activation="tanh"),
        r"unknown activation 'tanh'; allowed values: None, 'relu'",
    ),
    (
        "lr list",
        lambda Ws, X, Y: dln.train(Ws, X, Y, [0.1], 1),
        r"lr must be a number for train \(use train_batched",
    ),
    (
        "diverge",
        lambda Ws, X, Y: dln.train(Ws, X, 100 * Y, 10.0, 200, reduction="sum", record_every=50),
        r"training diverged: .* the learning rate lr=10 is too large",
    ),
    (
        "kind",
        lambda Ws, X, Y: dln.init_weights([3, 3], 1.0, kind="xavier"),
        r"unknown kind 'xavier'; allowed values: 'orthogonal', 'normal', 'uniform'",
    ),
    (
        "scale",
        lambda Ws, X, Y: dln.init_weights([3, 3], 0.0),
        r"scale \(ε\) must be a finite number > 0",
    ),
    (
        "dims",
        lambda Ws, X, Y: dln.init_weights([3], 1.0),
        r"dims must be a sequence \[d_0, ..., d_L\] with L >= 1",
    ),
    (
        "dims 0",
        lambda Ws, X, Y: dln.init_weights([3, 0], 1.0),
        r"every entry of dims must be an integer >= 1",
    ),
    (
        "whitened N<d",
        lambda Ws, X, Y: dln.whitened_inputs(3, 5),
        r"whitened inputs need n_samples >= d",
    ),
    (
        "rank",
        lambda Ws, X, Y: dln.low_rank_targets(4, 3, 4),
        r"rank r must be <= min\(n_samples, d_out\) = 3",
    ),
    (
        "whiten rank",
        lambda Ws, X, Y: dln.whiten(torch.ones(5, 2, dtype=F64)),
        r"X is rank deficient",
    ),
    (
        "labels",
        lambda Ws, X, Y: dln.one_hot_targets(torch.tensor([0.0, 1.0])),
        r"labels must be a 1-D integer tensor",
    ),
    (
        "labels K",
        lambda Ws, X, Y: dln.one_hot_targets(torch.tensor([0, 3]), 3),
        r"labels must be < n_classes=3",
    ),
]


@pytest.mark.parametrize("call,match", [(c, m) for _, c, m in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_are_clear(call, match):
    Ws, X, Y = _ok()
    with pytest.raises(ValueError, match=match):
        call(Ws, X, Y)


BATCHED_ERRORS = [
    (
        "run axis",
        lambda Ws, X, Y: dln.train_batched([Ws[0], Ws[1][:2]], X, Y, 0.1, 1),
        r"all weights must share the run axis B: W_1 has B=3, W_2 has B=2",
    ),
    (
        "X runs",
        lambda Ws, X, Y: dln.train_batched(Ws, X[:2], Y, 0.1, 1),
        r"X has 2 runs on its leading axis but the weights have B=3",
    ),
    (
        "lr len",
        lambda Ws, X, Y: dln.train_batched(Ws, X, Y, [0.1, 0.2], 1),
        r"lr must be a number or have 3 entries, got 2",
    ),
    (
        "lr shape",
        lambda Ws, X, Y: dln.train_batched(Ws, X, Y, torch.ones(2, 2), 1),
        r"lr must be a number or have shape \(3,\)",
    ),
    (
        "mom run",
        lambda Ws, X, Y: dln.train_batched(Ws, X, Y, 0.1, 1, momentum=[0.0, 0.5, 1.5]),
        r"momentum must be finite with momentum >= 0 and < 1, got 1.5",
    ),
    (
        "2-D W",
        lambda Ws, X, Y: dln.train_batched([W[0] for W in Ws], X, Y, 0.1, 1),
        r"W_1 must be a tensor of shape \(B, d_l, d_\{l-1\}\)",
    ),
    (
        "diverge",
        lambda Ws, X, Y: dln.train_batched(
            Ws, X, 100 * Y, [1e-4, 10.0, 20.0], 100, reduction="sum"
        ),
        r"training diverged: .*runs \[1, 2\].*lr=10, 20 is too large",
    ),
]


@pytest.mark.parametrize(
    "call,match", [(c, m) for _, c, m in BATCHED_ERRORS], ids=[e[0] for e in BATCHED_ERRORS]
)
def test_batched_errors_are_clear(call, match):
    g = _gen(71)
    Ws = dln.init_weights_batched(3, [4, 4, 3], 0.5, generator=g, dtype=F64)
    X = torch.randn(3, 6, 4, generator=g, dtype=F64)
    Y = torch.randn(3, 6, 3, generator=g, dtype=F64)
    with pytest.raises(ValueError, match=match):
        call(Ws, X, Y)


# ------------------------------------------------------------------------------------------
# GPU: the device follows the data
# ------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_train_batched_on_gpu_matches_cpu_and_keeps_the_law():
    d, r, L, eps, lr, steps, B = 12, 2, 3, 0.3, 0.015, 300, 4
    runs = [_problem(d, d, r, L, eps, seed) for seed in range(B)]
    Ws = dln.stack_runs([run[0] for run in runs])
    X = runs[0][1]
    Y = torch.stack([run[2] for run in runs])
    cpu = dln.train_batched(
        Ws, X, Y, lr, steps, weight_decay=1e-2, reduction="sum", record_every=30
    )
    gpu = dln.train_batched(
        [W.cuda() for W in Ws],
        X.cuda(),
        Y.cuda(),
        lr,
        steps,
        weight_decay=1e-2,
        reduction="sum",
        record_every=30,
    )
    assert gpu.weights[-1][0].device.type == "cuda" and gpu.loss.device.type == "cuda"
    for Wc, Wg in zip(cpu.weights[-1], gpu.weights[-1]):
        assert torch.allclose(Wc, Wg.cpu(), rtol=1e-10, atol=1e-12)
    rho = dln.rho_recursion(eps, lr, steps, L, weight_decay=1e-2, reduction="sum", record_every=30)
    S = spectra.singular_values(gpu.trajectory(0))  # (T, B, d) on the GPU
    c = spectra.coinciding_singular_values(S[1:])
    assert c.count.eq(d - 2 * r).all()
    assert (c.value.cpu() - rho[1:, None]).abs().max() <= 1e-10
    g = torch.Generator(device="cuda").manual_seed(0)
    W0 = dln.init_weights([5, 5], 0.1, generator=g, dtype=F64, device="cuda")[0]
    assert W0.device.type == "cuda" and torch.allclose(
        W0 @ W0.T, 0.01 * torch.eye(5, dtype=F64, device="cuda")
    )
