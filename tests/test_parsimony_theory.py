"""lib.parsimony.theory: the law of parsimony (Yaras et al. '23) checked numerically against the
ρ(t) recursion and the invariant subspaces, in square, whitened, momentum and non-square settings;
ρ(t) against naive loops and closed forms; and the old names lib.dln.rho_recursion and
lib.dln.invariant_subspaces."""

from __future__ import annotations

import pytest
import torch
from _linalg import deep_linear_problem as _problem
from _linalg import generator as _gen

from lib import dln, spectra
from lib.parsimony import theory

F64 = torch.float64


# ------------------------------------------------------------------------------------------
# the law of parsimony: acceptance
# ------------------------------------------------------------------------------------------

# (d, r, L, eps, lr, reduction, steps): square layers d_0 = ... = d_L = d, X = I.
LAW_CASES = [
    (12, 2, 3, 0.3, 0.015, "sum", 300),
    (10, 3, 2, 0.5, 5.0, "mean", 200),
    (16, 1, 4, 0.6, 0.003, "sum", 200),
    (30, 3, 3, 0.2, 0.004, "sum", 300),  # the lecture's L = 3, d = 30, r = 3
]


@pytest.mark.parametrize("total_decay", [0.0, 0.5], ids=["no-wd", "wd"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", LAW_CASES, ids=lambda c: f"d{c[0]}-r{c[1]}-L{c[2]}-{c[5]}")
def test_law_of_parsimony_square_layers_identity_inputs(case, seed, total_decay):
    d, r, L, eps, lr, reduction, steps = case
    weight_decay = total_decay / (lr * steps)  # ηλ·steps = total_decay
    Ws, X, Y = _problem(d, d, r, L, eps, seed)
    h = dln.train(
        Ws,
        X,
        Y,
        lr,
        steps,
        weight_decay=weight_decay,
        reduction=reduction,
        record_every=steps // 10,
    )
    assert h.loss[-1] < 0.05 * h.loss[0]  # it did learn
    rho = theory.rho_recursion(
        eps,
        lr,
        steps,
        L,
        n_samples=d,
        d_out=d,
        weight_decay=weight_decay,
        reduction=reduction,
        record_every=steps // 10,
    )
    subspaces = theory.invariant_subspaces(Ws, X, Y)
    m = d - 2 * r
    for i in range(L):
        traj = h.trajectory(i)  # (T, d, d)
        S = spectra.singular_values(traj)  # (T, d)
        c = spectra.coinciding_singular_values(S[1:], tol=1e-10)  # t = 0: all equal ε
        assert c.count.eq(m).all(), (
            f"layer {i + 1}: counts {c.count.tolist()}, expected d - 2r = {m}"
        )
        assert c.spread.max() <= 1e-10
        assert (c.value - rho[1:]).abs().max() <= 1e-10
        # "exactly": the nearest other singular value is far from the cluster
        others = torch.cat([S[1:, :r], S[1:, d - r :]], dim=1)  # (T-1, 2r), cluster is S[:, r:d-r]
        assert ((others - rho[1:, None]).abs().min() > 1e-8).item()
        assert (S[1:, r : d - r] - rho[1:, None]).abs().max() <= 1e-10
        # the cluster's singular subspaces: theory (from the init and the data) and a reference step
        U2, V2 = subspaces[i]
        assert U2.shape == (d, m) and V2.shape == (d, m)
        U_ref, Vh_ref = spectra.coinciding_subspaces(traj[1], tol=1e-10)
        for k in range(1, traj.shape[0]):
            U_c, Vh_c = spectra.coinciding_subspaces(traj[k], tol=1e-10)
            assert spectra.largest_principal_angle(Vh_c.mT, V2) <= 1e-6
            assert spectra.largest_principal_angle(U_c, U2) <= 1e-6
            assert spectra.largest_principal_angle(Vh_c.mT, Vh_ref.mT) <= 1e-6
            assert spectra.largest_principal_angle(U_c, U_ref) <= 1e-6
        # the block itself: U2ᵀ W_l(t) V2 = ρ(t) I and W_l(t) V2 stays inside span U2
        block = U2.mT @ traj @ V2  # (T, m, m)
        assert (block - rho[:, None, None] * torch.eye(m, dtype=F64)).abs().max() <= 1e-10
        leak = traj @ V2 - U2 @ block
        assert leak.abs().max() <= 1e-10


def test_law_of_parsimony_learning_happens_in_2r_dimensions():
    """The top r grow, the bottom r shrink, the middle d - 2r follow ρ(t) (the lecture's figure)."""
    d, r, L = 30, 3, 3
    Ws, X, Y = _problem(d, d, r, L, 0.1, seed=0)
    h = dln.train(Ws, X, Y, 0.01, 1000, reduction="sum", record_every=100)
    S = spectra.singular_values(h.trajectory(0))
    assert (S[-1, :r] > 1.0).all()  # learned: ~ σ_i(M)^{1/L}
    assert (S[-1, d - r :] < S[-1, r]).all()  # bottom r below the flat middle
    assert torch.allclose(S[-1, r : d - r], S[0, r : d - r], atol=1e-3)  # middle ~ flat at ε
    rank = spectra.numerical_rank(dln.end_to_end(h.weights[-1]), rtol=1e-2)
    assert rank == r


@pytest.mark.parametrize("total_decay", [0.0, 0.5], ids=["no-wd", "wd"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_law_of_parsimony_whitened_inputs_momentum_mean(total_decay, momentum):
    """X whitened with N > d (not X = I), heavy-ball momentum: the structure is still exact."""
    d, r, L, N, eps, steps = 10, 2, 3, 25, 0.5, 200
    lr = 10.0 * (1 - momentum)  # same effective step η / (1 - μ)
    weight_decay = total_decay / (lr * steps)
    Ws, X, Y = _problem(d, d, r, L, eps, seed=3, n_samples=N)
    assert torch.allclose(X.T @ X, torch.eye(d, dtype=F64), atol=1e-13)
    h = dln.train(Ws, X, Y, lr, steps, weight_decay, momentum, reduction="mean", record_every=20)
    rho = theory.rho_recursion(
        eps, lr, steps, L, N, d, weight_decay, momentum, "mean", record_every=20
    )
    for (U2, V2), i in zip(theory.invariant_subspaces(Ws, X, Y), range(L)):
        assert U2.shape[1] == d - 2 * r
        block = U2.mT @ h.trajectory(i) @ V2
        assert (block - rho[:, None, None] * torch.eye(d - 2 * r, dtype=F64)).abs().max() <= 1e-10
        c = spectra.coinciding_singular_values(spectra.singular_values(h.trajectory(i))[1:])
        assert c.count.eq(d - 2 * r).all() and (c.value - rho[1:]).abs().max() <= 1e-10


@pytest.mark.parametrize("d_out,r", [(5, 2), (3, 3)], ids=["dL5-r2", "case1-dL=r"])
def test_law_of_parsimony_nonsquare_last_layer(d_out, r):
    """d_L < d: layers 1..L-1 keep d - d_L - r values at (1-ηλ)^t ε ("decoupled") and all layers
    d_L - 2r values at ρ(t) ("coupled", when d_L > 2r); Case 1 (d_L = r) is the lecture's m = d - 2d_y."""
    d, L, eps, lr, wd, steps = 12, 3, 0.3, 0.05, 1e-2, 300
    Ws, X, Y = _problem(d, d_out, r, L, eps, seed=4)
    h = dln.train(Ws, X, Y, lr, steps, weight_decay=wd, reduction="sum", record_every=30)
    for group, expected in (("decoupled", d - d_out - r), ("coupled", max(d_out - 2 * r, 0))):
        rho = theory.rho_recursion(
            eps, lr, steps, L, weight_decay=wd, reduction="sum", group=group, record_every=30
        )
        if group == "decoupled":
            assert torch.allclose(rho, eps * (1 - lr * wd) ** h.steps.to(F64), rtol=1e-13)
        subs = theory.invariant_subspaces(Ws, X, Y, group=group)
        assert len(subs) == (L - 1 if group == "decoupled" else L)
        for i, (U2, V2) in enumerate(subs):
            assert V2.shape[1] == expected
            S = spectra.singular_values(h.trajectory(i))  # (T, k)
            near = ((S - rho[:, None]).abs() <= 1e-10).sum(-1)
            assert near[1:].eq(expected).all()
            if expected:
                block = U2.mT @ h.trajectory(i) @ V2
                assert (
                    block - rho[:, None, None] * torch.eye(expected, dtype=F64)
                ).abs().max() <= 1e-10


def test_law_of_parsimony_breaks_without_whitening():
    """Sanity: the test above could fail — with non-whitened X the cluster is not exact."""
    d, r, L = 12, 2, 3
    g = _gen(5)
    X = torch.randn(40, d, generator=g, dtype=F64)
    Y = dln.low_rank_targets(40, d, r, generator=g, dtype=F64)
    Ws = dln.init_weights([d] * (L + 1), 0.3, generator=g, dtype=F64)
    h = dln.train(Ws, X, Y, 1e-3, 300, reduction="sum", record_every=300)
    c = spectra.coinciding_singular_values(spectra.singular_values(h.weights[-1][0]), tol=1e-10)
    assert c.count < d - 2 * r


# ------------------------------------------------------------------------------------------
# the recursion itself
# ------------------------------------------------------------------------------------------


def test_rho_recursion_per_run_matches_scalar_calls():
    eps, lr, wd = [0.1, 0.5], [0.2, 0.05], [0.0, 0.1]
    rho = theory.rho_recursion(
        eps, lr, 30, 3, weight_decay=wd, momentum=0.5, reduction="sum", record_every=10
    )
    assert rho.shape == (4, 2)
    for b in range(2):
        one = theory.rho_recursion(
            eps[b], lr[b], 30, 3, weight_decay=wd[b], momentum=0.5, reduction="sum", record_every=10
        )
        assert torch.allclose(rho[:, b], one, rtol=0, atol=0)


def test_rho_recursion_naive_loop_and_closed_forms():
    eps, lr, wd, L, N, dL = 0.4, 3.0, 0.02, 3, 10, 5
    rho = theory.rho_recursion(eps, lr, 50, L, n_samples=N, d_out=dL, weight_decay=wd)
    x, c = eps, 1 / (N * dL)
    for t in range(51):
        assert rho[t].item() == pytest.approx(x, rel=1e-14)
        x = (1 - lr * wd) * x - lr * c * x ** (2 * L - 1)
    dec = theory.rho_recursion(eps, lr, 50, L, weight_decay=wd, group="decoupled")
    assert torch.allclose(dec, eps * (1 - lr * wd) ** torch.arange(51, dtype=F64), rtol=1e-13)
    assert torch.equal(theory.rho_recursion(eps, lr, 0, L, N, dL), torch.tensor([eps], dtype=F64))


# ------------------------------------------------------------------------------------------
# old names and errors
# ------------------------------------------------------------------------------------------


def test_old_names_in_dln_resolve_to_the_theory():
    """Students call lib.dln.rho_recursion / invariant_subspaces: they are the same functions."""
    assert dln.rho_recursion is theory.rho_recursion
    assert dln.invariant_subspaces is theory.invariant_subspaces
    assert {"rho_recursion", "invariant_subspaces"} <= set(dln.__all__) & set(dir(dln))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dln.nope  # noqa: B018


def _ok():
    g = _gen(70)
    Ws = dln.init_weights([4, 4, 3], 0.5, generator=g, dtype=F64)
    X = torch.randn(6, 4, generator=g, dtype=F64)
    Y = torch.randn(6, 3, generator=g, dtype=F64)
    return Ws, X, Y


ERRORS = [
    (
        "rho mean",
        lambda Ws, X, Y: theory.rho_recursion(0.1, 0.1, 5, 3),
        r'reduction="mean" needs n_samples \(N\) and d_out',
    ),
    (
        "rho group",
        lambda Ws, X, Y: theory.rho_recursion(0.1, 0.1, 5, 3, reduction="sum", group="top"),
        r"unknown group 'top'; allowed values: 'coupled', 'decoupled'",
    ),
    (
        "rho lr",
        lambda Ws, X, Y: theory.rho_recursion(0.1, -0.1, 5, 3, reduction="sum"),
        r"lr must be finite and > 0",
    ),
    (
        "subspace group",
        lambda Ws, X, Y: theory.invariant_subspaces(Ws, X, Y, group="x"),
        r"unknown group 'x'",
    ),
]


@pytest.mark.parametrize("call,match", [(c, m) for _, c, m in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_are_clear(call, match):
    Ws, X, Y = _ok()
    with pytest.raises(ValueError, match=match):
        call(Ws, X, Y)
