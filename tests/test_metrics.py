"""Oracle tests for lib.metrics: dense float64 formulas, closed forms, naive loops, invariances."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from _linalg import dense_reference

from lib import metrics
from lib.metrics import (
    CollapseAccumulator,
    between_class_covariance,
    class_means,
    equiangularity,
    equinorm,
    nc1,
    nc2,
    nc3,
    nc4,
    trace_ratio,
    within_class_covariance,
)

F64 = torch.float64


# ------------------------------------------------------------------------------------------
# References
# ------------------------------------------------------------------------------------------


def make_data(N, p, K, *, spread=1.0, offset=0.0, rank=None, weights=None, seed=0, centred=False):
    """Class means of size ``spread`` (optionally of rank ``rank``) plus unit within-class noise."""
    g = torch.Generator().manual_seed(seed)
    if weights is None:
        y = torch.randint(0, K, (N,), generator=g)
    else:
        y = torch.multinomial(torch.tensor(weights, dtype=F64), N, replacement=True, generator=g)
    y[:K] = torch.arange(K)  # every class present
    if rank is None:
        mu = torch.randn(K, p, generator=g, dtype=F64)
    else:
        mu = torch.randn(K, rank, generator=g, dtype=F64) @ torch.randn(
            rank, p, generator=g, dtype=F64
        )
    Z = torch.randn(N, p, generator=g, dtype=F64)
    if centred:  # make the class means exactly spread * mu (up to rounding)
        for k in range(K):
            Z[y == k] -= Z[y == k].mean(0)
    return spread * mu[y] + Z + offset, y


def orthonormal_rows(N, p, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(p, N, generator=g, dtype=F64))
    return Q.T.contiguous()  # (N, p), H Hᵀ = I


def rel(a, b):
    return float((a - b).abs() / b.abs())


# ------------------------------------------------------------------------------------------
# nc1 / trace_ratio against the dense formula
# ------------------------------------------------------------------------------------------

CASES = {
    "balanced": dict(N=300, p=40, K=6),
    "p_less_than_K": dict(N=200, p=3, K=10),
    "p_much_larger_than_N": dict(N=40, p=500, K=5),
    "imbalanced": dict(N=500, p=30, K=5, weights=[0.6, 0.25, 0.1, 0.04, 0.01], offset=5.0),
    "tiny_between_spread": dict(N=300, p=20, K=6, spread=1e-5, centred=True),
    "low_rank_means": dict(N=300, p=50, K=8, rank=3, centred=True),
    "low_rank_means_with_offset": dict(N=300, p=50, K=8, rank=3, offset=1e4, centred=True),
    "two_classes": dict(N=50, p=10, K=2),
}


@functools.cache
def case_data(case):
    spec = dict(CASES[case])
    return (*make_data(spec.pop("N"), spec.pop("p"), spec.pop("K"), **spec), CASES[case]["K"])


@functools.cache
def case_reference(case, variant):
    return dense_reference(*case_data(case), variant)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("variant", ["lecture", "papyan", "he_su"])
def test_nc1_matches_dense_pinv_formula(case, variant):
    H, y, K = case_data(case)
    expected, _ = case_reference(case, variant)
    got = nc1(H, y, K, variant=variant)
    assert got.dtype == F64 and got.ndim == 0
    assert rel(got, expected) <= 1e-10
    assert got >= 0


@pytest.mark.parametrize("case", list(CASES))
def test_trace_ratio_matches_dense_traces(case):
    H, y, _ = case_data(case)
    _, expected = case_reference(case, "lecture")
    assert rel(trace_ratio(H, y), expected) <= 1e-10


def test_nc1_float32_input_is_exact_and_never_negative():
    # Nearly collapsed float32 features: the float32 dense formula goes wrong here, ours is the
    # float64 dense value of the same float32 data, returned as float32.
    H, y = make_data(400, 64, 10, spread=1.0, seed=3)
    H = (H.mean(0) * 50 + H * 1e-3).to(torch.float32)
    expected, _ = dense_reference(H, y, 10)
    got = nc1(H, y)
    assert got.dtype == torch.float32 and got.ndim == 0
    assert got >= 0
    assert rel(got.to(F64), expected) <= 1e-6  # only the final cast to float32 rounds


def test_nc1_and_trace_ratio_are_zero_dim_on_input_device():
    H, y = make_data(60, 8, 3)
    for value in (nc1(H, y), trace_ratio(H, y), nc2(H, y), equinorm(H, y)):
        assert value.ndim == 0 and value.device == H.device and value.dtype == F64


# ------------------------------------------------------------------------------------------
# Closed forms
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "K", "p"), [(2, 3, 6), (5, 4, 30), (10, 7, 100)])
def test_orthonormal_features_closed_form(n, K, p):
    N = n * K
    H = orthonormal_rows(N, p, seed=n)
    y = torch.arange(K).repeat_interleave(n)
    expected = (1 - 1 / n) / (1 / n - 1 / N)
    assert rel(trace_ratio(H, y), torch.tensor(expected, dtype=F64)) <= 1e-12
    # Σ_W's range (h_i - h̄_k) is orthogonal to Σ_B's (h̄_k - h_G): NC1 = 0.
    assert 0 <= float(nc1(H, y)) < 1e-20


def test_features_equal_to_class_means_give_zero_within_class_terms():
    g = torch.Generator().manual_seed(0)
    means = torch.randint(-8, 8, (4, 6), generator=g).to(F64) / 4  # dyadic: means are exact
    y = torch.tensor([0, 1, 2, 3] * 5)
    H = means[y]
    assert float(nc1(H, y)) == 0.0
    assert float(trace_ratio(H, y)) == 0.0
    assert torch.count_nonzero(within_class_covariance(H, y)) == 0
    assert torch.equal(class_means(H, y), means)


def test_all_class_means_equal_gives_zero_nc1_and_infinite_trace_ratio():
    H = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]], dtype=F64)
    y = torch.tensor([0, 0, 1, 1])
    assert float(nc1(H, y)) == 0.0  # Σ_B = 0, Σ_B† = 0
    assert math.isinf(float(trace_ratio(H, y)))


# ------------------------------------------------------------------------------------------
# Dense matrices against naive loops
# ------------------------------------------------------------------------------------------


def test_class_means_and_covariances_match_naive_loops():
    H, y = make_data(37, 5, 4, weights=[0.5, 0.3, 0.15, 0.05], seed=1)
    N, K = 37, 4
    means = torch.stack(
        [sum(H[i] for i in range(N) if y[i] == k) / int((y == k).sum()) for k in range(K)]
    )
    h_G = sum(H[i] for i in range(N)) / N
    Sw = sum(torch.outer(H[i] - means[y[i]], H[i] - means[y[i]]) for i in range(N)) / N
    Sb = sum(torch.outer(means[k] - h_G, means[k] - h_G) for k in range(K)) / K
    torch.testing.assert_close(class_means(H, y), means, rtol=1e-13, atol=0)
    torch.testing.assert_close(within_class_covariance(H, y), Sw, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(between_class_covariance(H, y), Sb, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------------------
# Invariances
# ------------------------------------------------------------------------------------------


def test_invariant_to_relabelling_classes():
    H, y = make_data(200, 12, 6, weights=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1], seed=2)
    perm = torch.tensor([3, 5, 0, 1, 4, 2])
    for fn in (nc1, trace_ratio, nc2, equinorm, equiangularity):
        assert rel(fn(H, perm[y]), fn(H, y)) <= 1e-12
    assert rel(nc1(H, perm[y], variant="he_su"), nc1(H, y, variant="he_su")) <= 1e-12


@pytest.mark.parametrize("scale", [1e-6, 3.0, 1e5])
def test_invariant_to_scaling_features(scale):
    H, y = make_data(150, 10, 5, seed=4)
    assert rel(nc1(scale * H, y), nc1(H, y)) <= 1e-12
    assert rel(trace_ratio(scale * H, y), trace_ratio(H, y)) <= 1e-12


def test_invariant_to_rotation_and_translation():
    H, y = make_data(150, 10, 5, seed=5)
    Q, _ = torch.linalg.qr(
        torch.randn(10, 10, generator=torch.Generator().manual_seed(1), dtype=F64)
    )
    G = H @ Q + 7.0
    assert rel(nc1(G, y), nc1(H, y)) <= 1e-10
    assert rel(trace_ratio(G, y), trace_ratio(H, y)) <= 1e-10


def test_chunking_does_not_change_the_result(monkeypatch):
    H, y = make_data(300, 40, 6, seed=6)
    whole = nc1(H, y), trace_ratio(H, y)
    monkeypatch.setattr(metrics._core, "_CHUNK_ELEMENTS_CPU", 7 * 40)  # chunks of 7 rows
    monkeypatch.setattr(metrics._core, "_MIN_CHUNK_ROWS", 1)
    assert rel(nc1(H, y), whole[0]) <= 1e-12
    assert rel(trace_ratio(H, y), whole[1]) <= 1e-12


def test_nc1_grows_with_within_class_noise():
    H, y = make_data(300, 20, 5, seed=7, centred=True)
    means = class_means(H, y)
    values = [float(nc1(means[y] + s * (H - means[y]), y)) for s in (0.1, 0.5, 1.0)]
    # The class means do not change, so NC1 scales exactly with s².
    assert values[0] < values[1] < values[2]
    assert values[1] / values[0] == pytest.approx(25.0, rel=1e-10)


# ------------------------------------------------------------------------------------------
# Streaming
# ------------------------------------------------------------------------------------------


def batches_of(H, y, sizes):
    out, start = [], 0
    for size in sizes:
        out.append((H[start : start + size], y[start : start + size]))
        start += size
    return out


@pytest.mark.parametrize("variant", ["lecture", "papyan", "he_su"])
def test_streaming_equals_in_memory(variant):
    H, y = make_data(500, 60, 7, weights=[0.3, 0.2, 0.2, 0.1, 0.1, 0.05, 0.05], seed=8)
    sizes = [1, 33, 128, 200, 138]
    acc = CollapseAccumulator(7, variant=variant)
    for Hb, yb in batches_of(H, y, sizes):
        acc.update_means(Hb, yb)
    perm = torch.randperm(500, generator=torch.Generator().manual_seed(0))  # pass 2 reshuffled
    for Hb, yb in batches_of(H[perm], y[perm], [250, 250]):
        acc.update_within(Hb, yb)
    assert rel(acc.nc1(), nc1(H, y, variant=variant)) <= 1e-12
    assert rel(acc.trace_ratio(), trace_ratio(H, y)) <= 1e-12
    torch.testing.assert_close(acc.class_means(), class_means(H, y), rtol=1e-13, atol=1e-15)
    assert acc.num_samples == 500


def test_streaming_float32_batches_return_float32():
    H, y = make_data(120, 16, 4, seed=9)
    H32 = H.to(torch.float32)
    acc = CollapseAccumulator(4)
    for Hb, yb in batches_of(H32, y, [60, 60]):
        acc.update_means(Hb, yb)
    for Hb, yb in batches_of(H32, y, [60, 60]):
        acc.update_within(Hb, yb)
    assert acc.nc1().dtype == torch.float32
    assert rel(acc.nc1().to(F64), nc1(H32, y).to(F64)) <= 1e-6


def test_streaming_errors():
    H, y = make_data(40, 5, 3)
    acc = CollapseAccumulator(3)
    with pytest.raises(ValueError, match="before update_within"):
        acc.update_within(H, y)
    with pytest.raises(ValueError, match="run both passes"):
        CollapseAccumulator(3).nc1()
    acc.update_means(H, y)
    with pytest.raises(ValueError, match="feature dimension changed"):
        acc.update_means(H[:, :4], y)
    acc.update_within(H[:30], y[:30])
    with pytest.raises(ValueError, match="two passes saw different data"):
        acc.nc1()
    with pytest.raises(ValueError, match="after update_within"):
        acc.update_means(H, y)
    empty = CollapseAccumulator(4)
    empty.update_means(H, y)
    with pytest.raises(ValueError, match=r"class 3"):
        empty.update_within(H, y)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        CollapseAccumulator(3).update_means(H, y + 1)
    with pytest.raises(ValueError, match="at least two classes"):
        CollapseAccumulator(1)
    with pytest.raises(
        ValueError, match="unknown variant .*; allowed values: 'lecture', 'papyan', 'he_su'"
    ):
        CollapseAccumulator(3, variant="zhu")


# ------------------------------------------------------------------------------------------
# NC2, NC3, NC4
# ------------------------------------------------------------------------------------------


def simplex_etf_features(K, p, n, noise, seed=0):
    """Centred class means forming a simplex ETF in R^p (random rotation), plus centred noise."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(p, K, generator=g, dtype=F64))  # (p, K) orthonormal cols
    M = 3.0 * (torch.eye(K, dtype=F64) - 1.0 / K) @ U.T  # (K, p), rows: a simplex ETF
    y = torch.arange(K).repeat_interleave(n)
    Z = noise * torch.randn(K * n, p, generator=g, dtype=F64)
    for k in range(K):
        Z[y == k] -= Z[y == k].mean(0)
    return M[y] + Z + 2.0, y, M


def test_nc2_family_is_zero_for_a_simplex_etf():
    H, y, _ = simplex_etf_features(K=5, p=12, n=4, noise=0.3)
    assert float(nc2(H, y)) < 1e-12
    assert float(equinorm(H, y)) < 1e-12
    assert float(equiangularity(H, y)) < 1e-12
    assert float(equiangularity(H, y, measure="simplex")) < 1e-12


def test_nc2_family_matches_naive_formulas():
    H, y = make_data(90, 6, 4, seed=10)
    means = torch.stack([H[y == k].mean(0) for k in range(4)])
    M = means - H.mean(0)
    G = M @ M.T
    etf = (torch.eye(4, dtype=F64) - 0.25) / math.sqrt(3)
    expected_nc2 = torch.sqrt(((G / torch.linalg.norm(G) - etf) ** 2).sum())
    norms = torch.tensor([float(torch.linalg.norm(m)) for m in M], dtype=F64)
    expected_norm = norms.std() / norms.mean()
    cos = [float(M[i] @ M[j] / (norms[i] * norms[j])) for i in range(4) for j in range(i + 1, 4)]
    cos = torch.tensor(cos, dtype=F64)
    assert rel(nc2(H, y), expected_nc2) <= 1e-12
    assert rel(equinorm(H, y), expected_norm) <= 1e-12
    assert rel(equiangularity(H, y), cos.std()) <= 1e-12
    assert rel(equiangularity(H, y, measure="simplex"), (cos + 1 / 3).abs().mean()) <= 1e-12


def test_nc3_zero_when_classifier_is_proportional_to_centred_means():
    H, y, M = simplex_etf_features(K=4, p=9, n=5, noise=0.2, seed=1)
    assert float(nc3(H, y, 2.5 * M)) < 1e-24
    assert float(nc3(H, y, 2.5 * M, measure="etf")) < 1e-12


def test_nc3_matches_naive_formulas():
    H, y = make_data(80, 7, 4, seed=11)
    W = torch.randn(4, 7, generator=torch.Generator().manual_seed(3), dtype=F64)
    M = torch.stack([H[y == k].mean(0) for k in range(4)]) - H.mean(0)
    duality = ((W / torch.linalg.norm(W) - M / torch.linalg.norm(M)) ** 2).sum()
    WM = W @ M.T
    etf = (torch.eye(4, dtype=F64) - 0.25) / math.sqrt(3)
    assert rel(nc3(H, y, W), duality) <= 1e-12
    assert (
        rel(nc3(H, y, W, measure="etf"), torch.linalg.norm(WM / torch.linalg.norm(WM) - etf))
        <= 1e-12
    )


def test_nc4_matches_naive_loop_and_vanishes_for_the_ncc_classifier():
    H, y = make_data(120, 6, 5, spread=0.7, seed=12)
    g = torch.Generator().manual_seed(5)
    W, b = torch.randn(5, 6, generator=g, dtype=F64), torch.randn(5, generator=g, dtype=F64)
    means = torch.stack([H[y == k].mean(0) for k in range(5)])
    wrong = 0
    for h in H:
        net = int(torch.argmax(W @ h + b))
        ncc = int(torch.argmin(torch.stack([torch.linalg.norm(h - m) for m in means])))
        wrong += net != ncc
    assert float(nc4(H, y, W, b)) == pytest.approx(wrong / 120, abs=1e-15)
    assert 0 < wrong < 120  # the oracle is not trivial
    # argmax_k (m_k·h - |m_k|²/2) is the nearest class centre.
    assert float(nc4(H, y, means, -0.5 * (means**2).sum(1))) == 0.0


# ------------------------------------------------------------------------------------------
# Bad input: every message is checked
# ------------------------------------------------------------------------------------------

GOOD_H = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
GOOD_Y = torch.tensor([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize(
    "fn", [nc1, trace_ratio, class_means, nc2, equinorm, within_class_covariance]
)
@pytest.mark.parametrize(
    ("features", "labels", "num_classes", "message"),
    [
        (
            GOOD_H,
            GOOD_Y[:5],
            None,
            r"shape mismatch: features have 6 rows but labels have shape \(5,\)",
        ),
        (GOOD_H, GOOD_Y[None], None, r"shape mismatch"),
        (GOOD_H, GOOD_Y.to(torch.float32), None, r"labels must be integers.*float32"),
        (GOOD_H, GOOD_Y.bool(), None, r"labels must be integers.*bool"),
        (GOOD_H, GOOD_Y - 1, None, r"labels must lie in \[0, K\).*\[-1, 1\]"),
        (GOOD_H, GOOD_Y, 2, r"labels must lie in \[0, K\) = \[0, 2\); found values in \[0, 2\]"),
        (GOOD_H, torch.zeros(6, dtype=torch.long), None, r"at least two classes"),
        (GOOD_H, GOOD_Y, 1, r"at least two classes"),
        (GOOD_H, GOOD_Y, 2.0, r"num_classes must be an integer"),
        (
            GOOD_H,
            torch.tensor([0, 1, 3, 0, 1, 3]),
            None,
            r"1 class\(es\) have no samples \(class 2\)",
        ),
        (GOOD_H, GOOD_Y, 5, r"2 class\(es\) have no samples \(class 3, 4\)"),
        (
            GOOD_H.clone().index_fill_(0, torch.tensor([1]), float("nan")),
            GOOD_Y,
            None,
            r"3 non-finite",
        ),
        (GOOD_H.clone().fill_(float("inf")), GOOD_Y, None, r"non-finite value\(s\) \(NaN or Inf\)"),
        (
            GOOD_H.reshape(6, 3, 1),
            GOOD_Y,
            None,
            r"features must be 2-D with shape \(N, p\).*\(6, 3, 1\)",
        ),
        (GOOD_H[0], GOOD_Y, None, r"features must be 2-D"),
        (GOOD_H.numpy(), GOOD_Y, None, r"features must be a torch.Tensor"),
        (GOOD_H, [0, 1, 2, 0, 1, 2], None, r"labels must be a torch.Tensor"),
        (GOOD_H[:0], GOOD_Y[:0], None, r"empty"),
    ],
)
def test_bad_input_messages(fn, features, labels, num_classes, message):
    with pytest.raises(ValueError, match=message):
        fn(features, labels, num_classes)


def test_bad_options_list_allowed_values():
    with pytest.raises(
        ValueError, match=r"unknown variant 'zhu'; allowed values: 'lecture', 'papyan', 'he_su'"
    ):
        nc1(GOOD_H, GOOD_Y, variant="zhu")
    with pytest.raises(ValueError, match=r"unknown measure .*; allowed values: 'std', 'simplex'"):
        equiangularity(GOOD_H, GOOD_Y, measure="max")
    with pytest.raises(ValueError, match=r"unknown measure .*; allowed values: 'duality', 'etf'"):
        nc3(GOOD_H, GOOD_Y, torch.zeros(3, 3), measure="zhu")
    with pytest.raises(ValueError, match=r"weight must have shape \(K, p\) = \(3, 3\)"):
        nc3(GOOD_H, GOOD_Y, torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"bias must have shape \(K,\) = \(3,\)"):
        nc4(GOOD_H, GOOD_Y, torch.zeros(3, 3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"needs K >= 3"):
        equiangularity(GOOD_H[:4], torch.tensor([0, 1, 0, 1]))


def test_non_finite_values_are_caught_in_both_streaming_passes_and_overflow_is_named():
    H, y = make_data(40, 5, 3)
    acc = CollapseAccumulator(3)
    acc.update_means(H, y)
    with pytest.raises(ValueError, match=r"features contain 1 non-finite value"):
        acc.update_within(
            H.clone().index_put_(
                (torch.tensor([4]), torch.tensor([2])), torch.tensor(float("inf"), dtype=F64)
            ),
            y,
        )
    with pytest.raises(ValueError, match="overflow"):
        nc1(torch.full((6, 2), 1e308, dtype=F64), GOOD_Y)


def test_non_contiguous_and_half_precision_features():
    H, y = make_data(120, 9, 4, seed=14)
    Ht = H.T.contiguous().T  # column-major view
    assert not Ht.is_contiguous()
    assert rel(nc1(Ht, y), nc1(H, y)) <= 1e-14
    assert rel(trace_ratio(H[::2], y[::2]), trace_ratio(H[::2].contiguous(), y[::2])) <= 1e-14
    Hb = H.to(torch.bfloat16)
    value = nc1(Hb, y)
    assert value.dtype == torch.bfloat16
    expected, _ = dense_reference(Hb.to(F64), y, 4)
    assert rel(value.to(F64), expected) <= 1e-2  # only the final rounding to bfloat16


def test_integer_labels_of_any_width_are_accepted():
    for dtype in (torch.int8, torch.int32, torch.int64, torch.uint8):
        assert rel(nc1(GOOD_H, GOOD_Y.to(dtype)), nc1(GOOD_H, GOOD_Y)) == 0.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu_and_stays_on_device():
    H, y = make_data(400, 50, 8, seed=13)
    Hc, yc = H.to("cuda", torch.float32), y.to("cuda")
    value = nc1(Hc, yc)
    assert value.device.type == "cuda" and value.dtype == torch.float32
    assert rel(value.cpu().to(F64), nc1(H.to(torch.float32), y).to(F64)) <= 1e-6
    assert trace_ratio(Hc, yc).device.type == "cuda"
