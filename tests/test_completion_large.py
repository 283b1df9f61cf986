"""lib.completion.large: completion on the observed entries only, checked against the dense path.

Oracles: :func:`lib.completion.make_problem` (the same target from the same seed),
:func:`lib.completion.first_gradient` and :func:`lib.completion.compress` at ``Ws0 = [ε I] * L``,
:func:`lib.completion.fit` started from that same initialisation, and a naive autograd loop of
the same gradient-descent steps. The no-``d²`` rule is checked by watching every tensor the path
allocates (a ``TorchDispatchMode``) and by running at ``d = 10⁶``, where ``d²`` floats would need
4 TB.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lib import completion, dln
from lib.completion import _engine, large

F64 = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: one thread is fastest


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _problem(d=40, rank=2, p=0.4, seed=0, **kw):
    return large.make_large_problem(d, rank, p, generator=_gen(seed), dtype=F64, **kw)


def _projector(W):
    Q, _ = torch.linalg.qr(W)
    return Q @ Q.T


# --------------------------------------------------------------------------------------------
# the problem
# --------------------------------------------------------------------------------------------


def test_target_is_make_problems_target():
    """Same seed, same Φ (the factors are drawn first, as make_problem draws them)."""
    P = _problem(d=30, rank=3, p=0.3)
    ref = completion.make_problem(30, 3, 0.3, generator=_gen(0), dtype=F64)
    D = large.to_dense(P)
    assert torch.equal(D.target, ref.target)
    assert D.n_observed == ref.n_observed == P.n_observed == round(0.3 * 900)


def test_entries_are_unique_sorted_disjoint_and_exact():
    P = _problem(d=30, p=0.3, n_test=200)
    keys, test = P.rows * 30 + P.cols, P.test_rows * 30 + P.test_cols
    assert keys.dtype == torch.int64 and bool((keys[1:] > keys[:-1]).all())
    assert test.numel() == 200 and bool((test[1:] > test[:-1]).all())
    assert not bool(torch.isin(test, keys).any())
    T = large.to_dense(P).target
    assert torch.allclose(P.values, T[P.rows, P.cols], rtol=0, atol=1e-14)
    assert torch.allclose(P.test_values, T[P.test_rows, P.test_cols], rtol=0, atol=1e-14)
    assert large.make_large_problem(5, 1, 0.5, generator=_gen()).test_rows.numel() == 25 - 12


def test_entries_are_uniform():
    """Each entry is observed with probability p, each unobserved one held out alike (5σ)."""
    d, n, runs = 8, 20, 400
    seen, held = torch.zeros(d * d), torch.zeros(d * d)
    for s in range(runs):
        P = large.make_large_problem(d, 1, n / d**2, n_test=10, generator=_gen(s))
        seen[P.rows * d + P.cols] += 1
        held[P.test_rows * d + P.test_cols] += 1
    p = n / d**2
    assert (seen - runs * p).abs().max() < 5 * math.sqrt(runs * p * (1 - p))
    q = 10 / (d * d - n)  # P(held out) = P(unobserved) · 10 / (d² − n)
    mean, sd = runs * (1 - p) * q, math.sqrt(runs * (1 - p) * q)
    assert (held - mean).abs().max() < 5 * sd


def test_runs_at_a_d_whose_square_would_not_fit():
    """d = 3·10⁵: d² floats are 360 GB; keys above 2³¹ are int64, rows and columns exact."""
    d = 300_000
    P = large.make_large_problem(d, 2, 5e4 / d**2, n_test=1000, generator=_gen(1))
    assert P.n_observed == 50_000 and int((P.rows * d + P.cols).max()) > 2**31
    v = P.scale * (P.left[P.rows[:5]] * P.right[P.cols[:5]]).sum(1)
    assert torch.allclose(P.values[:5].double(), v.float().double())
    res = large.fit_large(P, scale=0.1, max_steps=2, record_every=1, iterations=2)
    assert res.steps == 2 and len(res.test_error) == 3 and all(map(math.isfinite, res.test_error))


class _Largest(TorchDispatchMode):
    """Records the most elements of any tensor an op returns (factories and in-place ops too)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_no_tensor_has_d_squared_elements():
    d = 400  # |Ω| k (1 + padding) < d²: every O(|Ω| r̂) temporary is smaller than d²
    with _Largest() as mode:
        P = large.make_large_problem(d, 2, 0.04, 2000, generator=_gen(), dtype=torch.float32)
        res = large.fit_large(P, scale=0.1, max_steps=3, record_every=1, iterations=3)
    assert res.steps == 3
    assert P.n_observed <= mode.largest < d * d  # it sees the big tensors, none of d² elements
    with _Largest() as control:  # the check can fail: the dense problem has d² entries
        large.to_dense(P)
    assert control.largest >= d * d


# --------------------------------------------------------------------------------------------
# first gradient and compression
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 3])
def test_sparse_first_gradient_is_the_dense_one(depth):
    P = _problem(d=30, p=0.5)
    D = large.to_dense(P)
    eps = 0.3
    ref = completion.first_gradient(D, [eps * torch.eye(30, dtype=F64)] * depth)
    G = torch.zeros(30, 30, dtype=F64)
    G[P.rows, P.cols] = large.sparse_first_gradient(P, depth, eps)
    assert torch.allclose(G, ref, rtol=1e-12, atol=1e-15 * float(ref.abs().max()))
    assert bool((P.rows == P.cols).any())  # the diagonal term ε^L I is exercised


def test_compress_large_spans_compress_subspaces():
    P = _problem(d=50, rank=2, p=0.4)
    eps, L = 0.01, 3
    ref = completion.compress(large.to_dense(P), [eps * torch.eye(50, dtype=F64)] * L)
    got = large.compress_large(P, L, eps, iterations=60)
    assert [W.shape for W in got] == [W.shape for W in ref]
    assert torch.allclose(_projector(got[0].T), _projector(ref[0].T), atol=1e-9)
    assert torch.allclose(_projector(got[-1]), _projector(ref[-1]), atol=1e-9)
    for W, R in zip(got[1:-1], ref[1:-1]):
        assert torch.allclose(W, R, rtol=1e-14, atol=0)
    assert torch.allclose(dln.end_to_end(got), dln.end_to_end(ref), atol=1e-14)
    # the rank-r̂ = 1 subspace differs: the check distinguishes subspaces
    one = large.compress_large(P, L, eps, rank_hat=1, iterations=60)
    assert (_projector(one[0].T) - _projector(ref[0].T)).abs().max() > 1e-2


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


def _identity_init(monkeypatch, d):
    def init(problem, depth=3, scale=1e-3, generator=None):
        return [scale * torch.eye(d, dtype=F64) for _ in range(depth)]

    monkeypatch.setattr(_engine, "init_original", init)


def _naive(D, W0, lr, gamma, steps):
    """Plain autograd GD on ½/d²‖Ω⊙(U W̃_L⋯W̃_1 Vᵀ − Φ)‖², outer factors at γη."""
    Ws = [W.clone().requires_grad_() for W in W0]
    for _ in range(steps):
        loss = 0.5 * (D.mask * (dln.end_to_end(Ws) - D.target)).square().sum() / D.d**2
        grads = torch.autograd.grad(loss, Ws)
        with torch.no_grad():
            for i, (W, g) in enumerate(zip(Ws, grads)):
                W -= (gamma * lr if i in (0, len(Ws) - 1) else lr) * g
    return dln.end_to_end([W.detach() for W in Ws])


@pytest.mark.parametrize("layout", ["padded", "scatter"])
def test_fit_large_steps_are_fits_and_naive_steps(monkeypatch, layout):
    d, L, eps, gamma, n = 40, 3, 0.1, 0.1, 30
    P = _problem(d=d, rank=2, p=0.4)
    D = large.to_dense(P)
    res = large.fit_large(
        P, L, eps, gamma=gamma, max_steps=n, tol=0.0, record_every=10, layout=layout, iterations=60
    )
    assert res.lr == pytest.approx(completion.default_lr(D, L), rel=1e-12)
    _identity_init(monkeypatch, d)
    ref = completion.fit(
        D, "compressed", L, eps, lr=res.lr, max_steps=n, gamma=gamma, record_every=n,
        evaluation="dense",
    )  # fmt: skip
    W = dln.end_to_end(res.weights)
    assert float((W - D.target).abs().max()) > 1e-2  # not yet converged: the steps matter
    assert torch.allclose(W, ref.end_to_end, atol=1e-10)
    assert torch.allclose(W, _naive(D, res.weights0, res.lr, gamma, n), atol=1e-10)
    t = (ref.end_to_end - D.target)[P.test_rows, P.test_cols]
    assert res.test_error[-1] == pytest.approx(float(t.norm() / P.test_values.norm()), rel=1e-9)
    assert res.train_loss[-1] == pytest.approx(ref.train_loss[-1], rel=1e-9)
    assert res.record_steps == [0, 10, 20, 30] and res.layout == layout


def test_fit_large_converges_to_the_tolerance():
    P = _problem(d=60, rank=2, p=0.4)
    res = large.fit_large(P, scale=0.3, gamma=0.1, max_steps=3000, tol=1e-3)
    assert res.converged and res.test_error[-1] <= 1e-3 < res.test_error[-2]
    assert res.test_error[0] > 0.99 and res.steps == res.record_steps[-1] < 3000
    W = dln.end_to_end(res.weights)
    T = large.to_dense(P).target
    assert float((W - T).norm() / T.norm()) < 3e-3  # the whole matrix, not only the sample
    short = large.fit_large(P, scale=0.3, gamma=0.1, max_steps=100, tol=1e-3)
    assert not short.converged and short.steps == 100
