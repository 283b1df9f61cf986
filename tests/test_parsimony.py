"""lib.parsimony: the chapter's checks against constructions with known answers, naive loops and
the theory of lib.dln; the law check must pass on whitened data and fail without whitening."""

from __future__ import annotations

import math

import pytest
import torch
from _linalg import orth as _orth
from _linalg import plane_rotation as _plane_rotation

from lib import dln, parsimony, spectra

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------


def test_conditioned_inputs_condition_energy_and_whitened_case():
    kappas = [1.0, 2.0, 10.0]
    X = parsimony.conditioned_inputs(40, 6, kappas, generator=_gen(0), dtype=F64)
    assert X.shape == (3, 40, 6)
    for x, k in zip(X, kappas):
        S = torch.linalg.svdvals(x)
        assert (S[0] / S[-1]).item() == pytest.approx(k, rel=1e-12)
        assert x.square().sum().item() == pytest.approx(6.0, rel=1e-12)  # ‖X‖_F² = d
    assert torch.allclose(X[0].T @ X[0], torch.eye(6, dtype=F64), atol=1e-13)
    # the runs share Q and R: the Gram matrices commute (same eigenvectors)
    G1, G2 = X[1].T @ X[1], X[2].T @ X[2]
    assert torch.allclose(G1 @ G2, G2 @ G1, atol=1e-12)
    single = parsimony.conditioned_inputs(40, 6, 2.0, generator=_gen(0), dtype=F64)
    assert torch.allclose(single, X[1], atol=1e-14)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(condition=0.5), "condition must be finite numbers >= 1"),
        (dict(condition=[1.0, float("inf")]), "condition must be finite numbers >= 1"),
        (dict(condition=2.0, d=1), "d must be an integer >= 2"),
    ],
)
def test_conditioned_inputs_errors(kwargs, match):
    args = dict(n_samples=10, d=4) | kwargs
    with pytest.raises(ValueError, match=match):
        parsimony.conditioned_inputs(**args)


# ------------------------------------------------------------------------------------------
# block measurements
# ------------------------------------------------------------------------------------------


def test_block_spread_against_a_loop():
    S = torch.rand(5, 4, 9, generator=_gen(1), dtype=F64).sort(-1, descending=True).values
    got = parsimony.block_spread(S, 2)
    for idx in torch.cartesian_prod(torch.arange(5), torch.arange(4)):
        mid = S[idx[0], idx[1], 2:7].tolist()
        want = (max(mid) - min(mid)) / (sum(mid) / len(mid))
        assert got[idx[0], idx[1]].item() == pytest.approx(want, rel=1e-12)
    assert parsimony.block_spread(torch.tensor([5.0, 1.0, 1.0, 0.1]), 1).item() == 0.0


def test_block_drift_known_rotations():
    n, r, theta = 7, 2, 0.3
    s = torch.tensor([9.0, 8.0, 3.0, 3.0, 3.0, 0.5, 0.4], dtype=F64)
    U, V = _orth(n, 2), _orth(n, 3)
    W_ref = U @ torch.diag(s) @ V.T
    # turning the middle block inside itself changes nothing (only its span counts)
    V_in = V @ _plane_rotation(n, 2, 4, 1.0)
    assert parsimony.block_drift(U @ torch.diag(s) @ V_in.T, W_ref, r).item() < 1e-12
    # turning a middle vector towards a top vector by θ: right angle θ, left angle 0
    V_out = V @ _plane_rotation(n, 0, 3, theta)
    W = U @ torch.diag(s) @ V_out.T
    assert parsimony.block_drift(W, W_ref, r, "right").item() == pytest.approx(theta, rel=1e-9)
    assert parsimony.block_drift(W, W_ref, r, "left").item() < 1e-12
    U_out = U @ _plane_rotation(n, 4, 6, theta)  # middle towards bottom, on the left
    W = U_out @ torch.diag(s) @ V.T
    assert parsimony.block_drift(W, W_ref, r, "left").item() == pytest.approx(theta, rel=1e-9)
    batch = parsimony.block_drift(torch.stack([W_ref, W]), W_ref, r, "left")  # (2,)
    assert batch.shape == (2,) and batch[0] < 1e-12


def test_block_errors():
    with pytest.raises(ValueError, match="min\\(d_l, d_\\(l-1\\)\\) - 2r >= 1"):
        parsimony.block_spread(torch.ones(4), 2)
    with pytest.raises(ValueError, match="rank must be an integer >= 1"):
        parsimony.block_spread(torch.ones(4), 0)
    with pytest.raises(ValueError, match="unknown side 'up'"):
        parsimony.block_drift(torch.eye(5), torch.eye(5), 1, "up")


def test_svd_evolution_against_independent_angles():
    run = parsimony.simulate(0.1, width=8, rank=2, n_samples=8, steps=200, record_every=20)
    traj = run.history.trajectory(0)  # (T, 8, 8)
    ev = parsimony.svd_evolution(traj, 2, ref=1)
    T = traj.shape[0]
    assert ev.values.shape == (T, 8) and ev.right.shape == ev.left.shape == (T, 5)
    assert torch.allclose(ev.values, torch.linalg.svdvals(traj), atol=1e-14)
    # top and bottom: the i-th vector against the i-th vector at ref (NumPy SVD, arccos)
    import numpy as np

    for t in range(1, T):
        U, _, Vt = np.linalg.svd(traj[t].numpy())
        U0, _, Vt0 = np.linalg.svd(traj[1].numpy())
        for col, i in zip([0, 1, 3, 4], [0, 1, 6, 7]):
            right = math.acos(min(1.0, abs(float(Vt[i] @ Vt0[i]))))
            left = math.acos(min(1.0, abs(float(U[:, i] @ U0[:, i]))))
            assert ev.right[t, col].item() == pytest.approx(right, abs=1e-6)
            assert ev.left[t, col].item() == pytest.approx(left, abs=1e-6)
    mid = parsimony.block_drift(traj, traj[1], 2)
    assert torch.equal(ev.right[:, 2], mid)
    assert ev.right[1:, 2].max() < 1e-10  # the middle span never moves (whitened data)


def test_svd_evolution_errors():
    with pytest.raises(ValueError, match="shape \\(T, m, n\\)"):
        parsimony.svd_evolution(torch.eye(5), 1, 0)
    with pytest.raises(ValueError, match="ref must index one of the 2 records"):
        parsimony.svd_evolution(torch.eye(5).expand(2, 5, 5), 1, 2)


# ------------------------------------------------------------------------------------------
# the law, checked
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wd,mu,n_samples", [(0.0, 0.0, 10), (2e-4, 0.0, 25), (1e-4, 0.8, 25)], ids=["gd", "wd", "mom"]
)
def test_check_law_passes_in_the_theorem_setting(wd, mu, n_samples):
    d, r, L, eps, lr, steps = 10, 2, 3, 0.4, 2.0 * (1 - mu), 300
    run = parsimony.simulate(eps, L, d, r, n_samples, lr, steps, wd, mu, seed=3, record_every=10)
    rho = dln.rho_recursion(eps, lr, steps, L, n_samples, d, wd, mu, record_every=10)
    M = run.Y.T @ run.X  # (d, d), what W_{L:1} learns
    e2e = dln.end_to_end(run.history.weights[-1])
    assert torch.linalg.matrix_norm(e2e - M) < 0.1 * torch.linalg.matrix_norm(M)  # it learned
    check = parsimony.check_law(run.history, run.X, run.Y, rho)
    assert check.count_min.eq(d - 2 * r).all() and check.count_max.eq(d - 2 * r).all()
    assert check.spread.max() <= 1e-10 and check.rho_error.max() <= 1e-10
    assert check.angle.max() <= 1e-6
    assert check.learned_rank.eq(2 * r).all()
    # the same numbers from rho_measured, another route
    assert (parsimony.rho_measured(run.history)[:, 1:] - rho[1:]).abs().max() <= 1e-10


def test_check_law_fails_without_whitening():
    """The check could fail: with κ(X) = 3 the structure is only approximate."""
    d, r, L, eps, lr, steps = 10, 2, 3, 0.4, 2.0, 300
    run = parsimony.simulate(eps, L, d, r, 10, lr, steps, condition=3.0, seed=3, record_every=10)
    rho = dln.rho_recursion(eps, lr, steps, L, 10, d, record_every=10)
    check = parsimony.check_law(run.history, run.X, run.Y, rho)
    assert check.count_min.min() < d - 2 * r or check.angle.max() > 1e-6


def test_check_law_errors():
    run = parsimony.simulate([0.1, 0.2], width=8, rank=2, n_samples=8, steps=20)
    with pytest.raises(ValueError, match="one unbatched run"):
        parsimony.check_law(run.history, run.X, run.Y, torch.zeros(3))
    single = parsimony.simulate(0.1, width=8, rank=2, n_samples=8, steps=20)
    with pytest.raises(ValueError, match="rho must be a \\(3,\\) tensor"):
        parsimony.check_law(single.history, single.X, single.Y, torch.zeros(4))


def test_deviation_matches_block_functions_and_separates_settings():
    run = parsimony.simulate(
        0.1, width=8, rank=2, n_samples=8, steps=300, condition=[1.0, 4.0], record_every=30
    )
    dev = parsimony.deviation(run.history, 2, ref=1)
    T = len(run.history.weights)
    assert dev.spread.shape == dev.right.shape == dev.left.shape == (3, T - 1, 2)
    for i in range(3):
        traj = run.history.trajectory(i)[1:]
        S = torch.linalg.svdvals(traj)
        assert torch.allclose(dev.spread[i], parsimony.block_spread(S, 2))
        assert torch.allclose(dev.left[i], parsimony.block_drift(traj, traj[0], 2, "left"))
    assert dev.spread[:, :, 0].max() < 1e-10 and dev.right[:, :, 0].max() < 1e-10  # whitened
    assert dev.spread[0, -1, 1] > 1e-6 and dev.right[0, -1, 1] > 1e-3  # κ = 4: approximate
    with pytest.raises(ValueError, match="ref must be a record index"):
        parsimony.deviation(run.history, 2, ref=0)


# ------------------------------------------------------------------------------------------
# simulate
# ------------------------------------------------------------------------------------------


def test_simulate_batched_equals_single_runs():
    kw = dict(depth=3, width=8, rank=2, n_samples=12, steps=100, seed=5, record_every=50)
    scales, lrs, mus, kappas = [0.05, 0.3], [4.0, 1.0], [0.0, 0.75], [1.0, 2.0]
    batched = parsimony.simulate(scales, lr=lrs, momentum=mus, condition=kappas, **kw)
    assert batched.X.shape == (2, 12, 8) and batched.history.loss.shape == (3, 2)
    for b in range(2):
        one = parsimony.simulate(scales[b], lr=lrs[b], momentum=mus[b], condition=kappas[b], **kw)
        assert torch.allclose(one.X, batched.X[b], atol=1e-14)
        assert torch.equal(one.Y, batched.Y)
        for Ws_b, Ws_1 in zip(batched.history.weights, one.history.weights):
            for W_b, W_1 in zip(Ws_b, Ws_1):
                assert torch.allclose(W_b[b], W_1, atol=1e-12)
    # the init is ε times the same orthogonal matrices in every run
    W0 = [Ws[0] for Ws in batched.history.weights[:1]][0]
    assert torch.allclose(W0[0] / scales[0], W0[1] / scales[1], atol=1e-14)


def test_simulate_setting_and_errors():
    run = parsimony.simulate(0.2, width=6, rank=1, n_samples=9, steps=10)
    I6 = torch.eye(6, dtype=F64)
    assert torch.allclose(run.X.T @ run.X, I6, atol=1e-13)  # whitened by default
    assert int(spectra.numerical_rank(run.Y, rtol=1e-10)) == 1
    W0 = run.history.weights[0][0]
    assert torch.allclose(W0.T @ W0, 0.04 * I6, atol=1e-14)  # ε-orthogonal
    with pytest.raises(ValueError, match="same length"):
        parsimony.simulate([0.1, 0.2], lr=[1.0, 2.0, 3.0], width=6, rank=1, n_samples=6)


# ------------------------------------------------------------------------------------------
# printing and presets
# ------------------------------------------------------------------------------------------


def test_floor_small():
    assert parsimony.floor_small(3e-15) == "< 1e-10"
    assert parsimony.floor_small(torch.tensor(2.5e-3, dtype=F64), 1e-8) == 2.5e-3
    assert parsimony.floor_small(1e-10) == 1e-10  # the bound itself is printed
    assert parsimony.floor_small(1e-9, 1e-8) == "< 1e-8"  # no zero-padded exponent
    assert parsimony.floor_small(0.01, 0.05) == "< 0.05"


def test_sweep_presets():
    assert set(parsimony.SWEEPS) == {"book", "paper"}
    book, paper = parsimony.SWEEPS["book"], parsimony.SWEEPS["paper"]
    assert min(paper.scales) == pytest.approx(1e-4) and max(paper.scales) == pytest.approx(1.0)
    assert len(paper.scales) > len(book.scales) and paper.steps > book.steps
    # steps scale with 1/ε_min: the paper sweep gives its smallest ε at least as long
    assert paper.steps * min(paper.scales) >= 0.5 * book.steps * min(book.scales)
