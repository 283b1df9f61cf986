"""lib.parsimony.checks: the chapter's checks against constructions with known answers, naive loops
and the theory of lib.parsimony.theory; the law check must pass on whitened data and fail without
whitening."""

from __future__ import annotations

import math

import pytest
import torch
from _linalg import orth as _orth
from _linalg import plane_rotation as _plane_rotation

from lib import dln, parsimony

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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
# printing and presets
# ------------------------------------------------------------------------------------------


def test_floor_small():
    assert parsimony.floor_small(3e-15) == "< 1e-10"
    assert parsimony.floor_small(torch.tensor(2.5e-3, dtype=F64), 1e-8) == 2.5e-3
    assert parsimony.floor_small(1e-10) == 1e-10  # the bound itself is printed
    assert parsimony.floor_small(1e-9, 1e-8) == "< 1e-8"  # no zero-padded exponent
    assert parsimony.floor_small(0.01, 0.05) == "< 0.05"
