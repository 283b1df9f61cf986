"""lib.spectra: SVD diagnostics against constructions with known answers and naive loops."""

from __future__ import annotations

import math

import pytest
import torch
from _linalg import orth as _orth
from _linalg import plane_rotation as _plane_rotation

from lib import dln, spectra

F64 = torch.float64


def test_singular_values_known_spectrum_batched():
    s = torch.tensor([5.0, 3.0, 2.0, 0.5], dtype=F64)
    U, V = _orth(6, 0)[:, :4], _orth(4, 1)
    W = U @ torch.diag(s) @ V.T  # (6, 4)
    S = spectra.singular_values(torch.stack([W, 2 * W]))  # (2, 4)
    assert torch.allclose(S, torch.stack([s, 2 * s]), atol=1e-13)


@pytest.mark.parametrize("theta", [1e-12, 1e-9, 1e-4, 0.3, 1.2, math.pi / 2])
def test_vector_angle_accurate_and_sign_invariant(theta):
    Q = _orth(5, 2)
    a = Q[:, 0]
    b = math.cos(theta) * Q[:, 0] + math.sin(theta) * Q[:, 1]
    assert spectra.vector_angle(a, b).item() == pytest.approx(theta, rel=1e-9)
    assert spectra.vector_angle(a, -3 * b).item() == pytest.approx(theta, rel=1e-9)
    if theta > 1e-4:
        assert spectra.vector_angle(a, -b, sign_invariant=False).item() == pytest.approx(
            math.pi - theta, rel=1e-9
        )
    naive = torch.arccos((a @ b).abs().clamp(max=1)).item()  # loses everything below ~1e-8
    if theta > 1e-4:
        assert naive == pytest.approx(theta, rel=1e-6)


def test_singular_vector_angles_known_rotation():
    n, theta = 5, 0.25
    s = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0], dtype=F64)
    U, V = _orth(n, 3), _orth(n, 4)
    W_ref = U @ torch.diag(s) @ V.T
    # rotate right singular vectors 1 and 2 in their plane by θ, flip the sign of v_4 and u_5
    V_t = V @ _plane_rotation(n, 0, 1, theta)
    V_t[:, 3] *= -1
    U_t = U.clone()
    U_t[:, 4] *= -1
    W = torch.stack([W_ref, U_t @ torch.diag(s) @ V_t.T])  # (T=2, n, n)
    right = spectra.singular_vector_angles(W, W_ref, side="right")
    left = spectra.singular_vector_angles(W, W_ref, side="left")
    assert right.shape == left.shape == (2, n)
    assert right[0].abs().max() < 1e-7 and left.abs().max() < 1e-7
    assert torch.allclose(right[1], torch.tensor([theta, theta, 0, 0, 0], dtype=F64), atol=1e-7)


def test_principal_angles_known_construction():
    n, a, b = 6, 0.2, 1e-9
    Q = _orth(n, 5)
    A = Q[:, [0, 1]]
    B = torch.stack(
        [
            math.cos(a) * Q[:, 0] + math.sin(a) * Q[:, 2],
            math.cos(b) * Q[:, 1] + math.sin(b) * Q[:, 3],
        ],
        1,
    )
    ang = spectra.principal_angles(A, B)
    assert ang[0].item() == pytest.approx(
        b, rel=1e-6
    )  # tiny angle resolved (cos-only would give 0)
    assert ang[1].item() == pytest.approx(a, rel=1e-12)
    assert spectra.largest_principal_angle(A, B).item() == pytest.approx(a, rel=1e-12)
    # invariant to the choice of basis inside each subspace
    R = _plane_rotation(2, 0, 1, 0.7)
    assert torch.allclose(spectra.principal_angles(A @ R, -B), ang, atol=1e-12)
    # unequal dimensions: min(p, q) angles; a 1-D subspace inside span(A) has angle 0
    v = (Q[:, 0] + Q[:, 1]).unsqueeze(1) / math.sqrt(2)
    assert (
        spectra.principal_angles(A, v).shape == (1,)
        and spectra.principal_angles(v, A).abs().max() < 1e-12
    )
    # orthogonal subspaces
    assert spectra.largest_principal_angle(Q[:, :2], Q[:, 2:4]).item() == pytest.approx(math.pi / 2)
    # batched
    assert spectra.principal_angles(torch.stack([A, A]), torch.stack([B, A])).shape == (2, 2)
    assert spectra.largest_principal_angle(A[:, :0], B[:, :0]).item() == 0.0


def _brute_cluster(S, tol):
    s = sorted(S.tolist())
    best = (0, 0)
    for i in range(len(s)):
        cnt = sum(1 for j in range(i, len(s)) if s[j] <= s[i] + tol)
        if cnt >= best[0]:  # ties -> the larger values
            best = (cnt, i)
    cnt, i = best
    return cnt, s[i + cnt - 1] - s[i], sum(s[i : i + cnt]) / cnt


def test_coinciding_singular_values_against_brute_force():
    g = torch.Generator().manual_seed(6)
    for trial in range(20):
        k = 12
        vals = torch.rand(k, generator=g, dtype=F64)
        m = 1 + trial % 6
        vals[:m] = 0.5 + 1e-12 * torch.rand(m, generator=g, dtype=F64)
        S = vals.sort(descending=True).values
        c = spectra.coinciding_singular_values(S, tol=1e-10)
        cnt, spread, value = _brute_cluster(S, 1e-10)
        assert int(c.count) == cnt and float(c.spread) == pytest.approx(spread, abs=1e-15)
        assert float(c.value) == pytest.approx(value, rel=1e-14)
        assert torch.allclose(S[int(c.start) : int(c.start) + cnt].mean(), c.value)
    # batched over (T, B)
    S = torch.tensor([[[3.0, 2.0, 2.0, 1.0], [1.0, 1.0, 1.0, 0.0]]], dtype=F64)
    c = spectra.coinciding_singular_values(S)
    assert (
        c.count.tolist() == [[2, 3]]
        and c.start.tolist() == [[1, 0]]
        and c.value.tolist() == [[2.0, 1.0]]
    )
    # all distinct: the largest singleton is the top value; ties go to the larger values
    c = spectra.coinciding_singular_values(torch.tensor([3.0, 2.0, 1.0]))
    assert int(c.count) == 1 and int(c.start) == 0 and float(c.spread) == 0.0


def test_coinciding_subspaces_of_known_matrix():
    d, m = 7, 3
    U, V = _orth(d, 7), _orth(d, 8)
    s = torch.tensor([4.0, 3.0, 0.2, 0.2, 0.2, 0.1, 0.05], dtype=F64)
    W = U @ torch.diag(s) @ V.T
    U_c, Vh_c = spectra.coinciding_subspaces(W, tol=1e-12)
    assert U_c.shape == (d, m) and Vh_c.shape == (m, d)
    assert spectra.largest_principal_angle(U_c, U[:, 2:5]) < 1e-10
    assert spectra.largest_principal_angle(Vh_c.mT, V[:, 2:5]) < 1e-10


def test_balancedness_gap_against_loop_and_orthogonal_init():
    g = torch.Generator().manual_seed(9)
    Ws = [
        torch.randn(3, 4, 5, generator=g, dtype=F64),
        torch.randn(3, 6, 4, generator=g, dtype=F64),
    ]
    gap = spectra.balancedness_gap(Ws)  # (B=3, L-1=1)
    assert gap.shape == (3, 1)
    for b in range(3):
        ref = torch.linalg.norm(Ws[1][b].T @ Ws[1][b] - Ws[0][b] @ Ws[0][b].T)
        assert gap[b, 0].item() == pytest.approx(ref.item(), rel=1e-13)
    square = dln.init_weights([6, 6, 6, 6], 0.3, generator=g, dtype=F64)
    assert spectra.balancedness_gap(square).abs().max() < 1e-14


def test_numerical_rank():
    W = (
        _orth(5, 10)
        @ torch.diag(torch.tensor([1.0, 0.5, 1e-4, 1e-9, 0.0], dtype=F64))
        @ _orth(5, 11)
    )
    assert int(spectra.numerical_rank(W, rtol=1e-6)) == 3
    assert int(spectra.numerical_rank(W, rtol=1e-3)) == 2
    assert spectra.numerical_rank(torch.stack([W, W]), rtol=1e-6).tolist() == [3, 3]


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: spectra.singular_vector_angles(torch.eye(3), torch.eye(3), side="up"),
            r"unknown side 'up'; allowed values: 'right', 'left'",
        ),
        (
            lambda: spectra.singular_vector_angles(torch.eye(3), torch.eye(4)),
            r"W is \(3, 3\) but W_ref is \(4, 4\)",
        ),
        (lambda: spectra.principal_angles(torch.eye(3), torch.eye(4)), r"same space: 3 vs 4 rows"),
        (
            lambda: spectra.singular_values(torch.ones(3)),
            r"W must be a tensor with at least 2 dimensions",
        ),
        (
            lambda: spectra.singular_values(torch.ones(2, 2, dtype=torch.int64)),
            r"W must be floating point",
        ),
        (
            lambda: spectra.coinciding_singular_values(torch.ones(3), tol=-1.0),
            r"tol must be a finite number >= 0",
        ),
        (
            lambda: spectra.coinciding_subspaces(torch.ones(2, 3, 3)),
            r"W must be one \(m, n\) matrix",
        ),
        (lambda: spectra.balancedness_gap([torch.eye(3)]), r"at least 2 weight matrices"),
        (
            lambda: spectra.balancedness_gap([torch.ones(4, 3), torch.ones(2, 3)]),
            r"shape mismatch: W_2 has 3 columns, W_1 has 4 rows",
        ),
    ],
)
def test_errors_are_clear(call, match):
    with pytest.raises(ValueError, match=match):
        call()
