"""lib.completion.train: the original / compressed / narrow networks against naive autograd
loops, the law of parsimony for deep matrix factorization (compressed = original along the
trajectory), discrepant learning rates for completion, and fit's error messages."""

from __future__ import annotations

import pytest
import torch

from lib import completion, dln

F64 = torch.float64


def _problem(d=20, r=2, p=0.5, seed=0, dtype=F64):
    return completion.make_problem(
        d, r, p, generator=torch.Generator().manual_seed(seed), dtype=dtype
    )


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(b))


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
