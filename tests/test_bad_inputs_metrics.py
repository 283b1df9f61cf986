"""Bad and degenerate inputs of lib.metrics, lib.spectra, lib.runtime.format_value and
lib.parsimony.floor_small (issue 15): errors name the argument, NaN never reads as success,
degenerate valid data gets its one documented answer, valid edge inputs are accepted.
(More of lib.spectra: tests/test_bad_inputs_metrics_2.py.)"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from _cases import case, covers

from lib import parsimony, runtime, spectra
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
NAN, INF = float("nan"), float("inf")


def _data(dtype=F64):
    g = torch.Generator().manual_seed(0)
    H = torch.randn(30, 5, generator=g, dtype=F64).to(dtype)  # (N, p)
    y = torch.arange(30) % 3
    return H, y


def _weight(dtype=F64):
    return torch.randn(3, 5, generator=torch.Generator().manual_seed(1), dtype=F64).to(dtype)


# ------------------------------------------------------------------------------------------
# 1. floor_small and format_value keep NaN / inf visible
# ------------------------------------------------------------------------------------------


@covers(parsimony.floor_small)
@pytest.mark.parametrize(
    "value", [NAN, INF, -INF, torch.tensor(NAN, dtype=F64), np.float64(NAN), torch.tensor(INF)]
)
def test_floor_small_keeps_non_finite_visible(value):
    out = parsimony.floor_small(value, 1e-10)
    assert isinstance(out, float) and not math.isfinite(out)
    assert math.isnan(out) == math.isnan(float(value))
    assert out == float(value) or math.isnan(out)


@covers(runtime.format_value, runtime.format_report)
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (NAN, "nan"),
        (INF, "inf"),
        (-INF, "-inf"),
        (torch.tensor(NAN), "nan"),
        (torch.tensor(INF, dtype=F64), "inf"),
        (np.float32(NAN), "nan"),
        (np.float64(-INF), "-inf"),
    ],
)
def test_format_value_shows_non_finite(value, text):
    assert runtime.format_value(value) == text
    assert runtime.format_report(x=value) == f"x  {text}"


# ------------------------------------------------------------------------------------------
# 2. non-finite classifiers are refused
# ------------------------------------------------------------------------------------------


def _poisoned(value, index=(0, 0)):
    W = _weight()
    W[index] = value
    return W


CLASSIFIER_ERRORS = [
    case("nc4-weight-nan", nc4, lambda H, y: nc4(H, y, _poisoned(NAN)), "weight"),
    case("nc4-weight-inf", nc4, lambda H, y: nc4(H, y, _poisoned(INF)), "weight"),
    case("nc4-weight-all-nan", nc4, lambda H, y: nc4(H, y, torch.full((3, 5), NAN)), "weight"),
    case(
        "nc4-bias-nan",
        nc4,
        lambda H, y: nc4(H, y, _weight(), torch.tensor([0.0, NAN, 0.0])),
        "bias",
    ),
    case(
        "nc4-bias-inf",
        nc4,
        lambda H, y: nc4(H, y, _weight(), torch.tensor([-INF, 0.0, 0.0])),
        "bias",
    ),
    case("nc3-duality-nan", nc3, lambda H, y: nc3(H, y, _poisoned(NAN)), "weight"),
    case("nc3-etf-inf", nc3, lambda H, y: nc3(H, y, _poisoned(-INF), measure="etf"), "weight"),
    case(
        "nc4-weight-meta", nc4, lambda H, y: nc4(H, y, torch.empty(3, 5, device="meta")), "weight"
    ),
    case(
        "nc3-weight-complex", nc3, lambda H, y: nc3(H, y, _weight().to(torch.complex128)), "weight"
    ),
]


@pytest.mark.parametrize(("call", "name"), CLASSIFIER_ERRORS)
def test_bad_classifier_is_refused(call, name):
    H, y = _data()
    with pytest.raises(ValueError, match=rf"^{name} "):
        call(H, y)


# ------------------------------------------------------------------------------------------
# 3. zero between-class spread: one documented answer everywhere
# ------------------------------------------------------------------------------------------


def _identical_features(dtype):
    """All features equal (0.1 is inexact, and class sizes differ): tr Σ_W = tr Σ_B = 0."""
    return torch.full((7, 4), 0.1, dtype=dtype), torch.tensor([0, 0, 0, 1, 1, 2, 2])


def _equal_means(dtype):
    """Within-class spread, but every class mean is the same point: tr Σ_B = 0 < tr Σ_W."""
    base = torch.tensor([[1.0, -2.0, 0.5], [-1.0, 2.0, -0.5]], dtype=F64) + 3.0
    H = torch.cat([base, base, base]).to(dtype)  # (6, 3), mean of every class = 3
    return H, torch.tensor([0, 0, 1, 1, 2, 2])


DEGENERATE = {"identical": _identical_features, "equal-means": _equal_means}


def _accumulate(H, y, K):
    acc = CollapseAccumulator(num_classes=K)
    for rows in (slice(0, 2), slice(2, None)):
        acc.update_means(H[rows], y[rows])
    for rows in (slice(0, 3), slice(3, None)):
        acc.update_within(H[rows], y[rows])
    return acc


@covers(nc1, trace_ratio, CollapseAccumulator, nc2, equinorm, equiangularity, nc3, nc4)
@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("case", list(DEGENERATE))
def test_zero_between_spread_documented_values(case, dtype):
    H, y = DEGENERATE[case](dtype)
    K = int(y.max()) + 1
    assert float(nc1(H, y)) == 0.0  # Σ_B^† = 0 by the pseudo-inverse's definition
    assert float(nc1(H, y, variant="he_su")) == 0.0
    assert float(trace_ratio(H, y)) == INF  # no separation, never NaN (0/0) or small
    acc = _accumulate(H, y, K)
    assert float(acc.nc1()) == 0.0 and float(acc.trace_ratio()) == INF
    assert acc.nc1().dtype == dtype and trace_ratio(H, y).dtype == dtype
    W = torch.ones(K, H.shape[1], dtype=dtype)
    for value in (
        nc2(H, y),
        equinorm(H, y),
        equiangularity(H, y),
        equiangularity(H, y, measure="simplex"),
        nc3(H, y, W),
        nc3(H, y, W, measure="etf"),
    ):
        assert math.isnan(float(value))  # the class-mean geometry is undefined
    assert 0.0 <= float(nc4(H, y, W)) <= 1.0  # still defined: ties go to class 0


@covers(trace_ratio, CollapseAccumulator)
def test_nondegenerate_trace_ratio_unchanged():
    H = torch.eye(6, dtype=F64)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    assert float(trace_ratio(H, y)) == 1.5  # the docstring's closed form, bit for bit
    acc = _accumulate(H, y, 3)
    assert torch.equal(acc.trace_ratio(), trace_ratio(H, y))


# ------------------------------------------------------------------------------------------
# 4. principal angles need orthonormal bases
# ------------------------------------------------------------------------------------------


def _basis(n=6, k=2, dtype=F64):
    A = torch.randn(n, k, generator=torch.Generator().manual_seed(2), dtype=F64)
    return torch.linalg.qr(A).Q.to(dtype)


BASIS_ERRORS = [
    case("scaled-A", spectra.principal_angles, lambda: spectra.principal_angles(2 * _basis(), _basis()), "A"),
    case("scaled-B", spectra.principal_angles, lambda: spectra.principal_angles(_basis(), 3 * _basis()), "B"),
    case("raw-span", spectra.principal_angles, lambda: spectra.principal_angles(_basis() @ torch.tensor([[1.0, 1], [0, 1]], dtype=F64), _basis()), "A"),
    case("nan-A", spectra.principal_angles, lambda: spectra.principal_angles(_basis().fill_(NAN), _basis()), "A"),
    case("largest-B", spectra.largest_principal_angle, lambda: spectra.largest_principal_angle(_basis(), _basis() * 1.001), "B"),
    case("batched-B", spectra.principal_angles, lambda: spectra.principal_angles(_basis(), torch.stack([_basis(), 2 * _basis()])), "B"),
    case("float32-A", spectra.largest_principal_angle, lambda: spectra.largest_principal_angle(2 * _basis(dtype=torch.float32), _basis(dtype=torch.float32)), "A"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), BASIS_ERRORS)
def test_non_orthonormal_basis_is_refused(call, name):
    with pytest.raises(ValueError, match=rf"^{name} must have orthonormal columns.*linalg\.qr"):
        call()


@covers(spectra.largest_principal_angle)
@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_orthonormal_bases_accepted(dtype):
    M = torch.randn(40, 40, generator=torch.Generator().manual_seed(3), dtype=F64).to(dtype)
    U, _, Vh = torch.linalg.svd(M)
    assert float(spectra.largest_principal_angle(U[:, :10], U[:, :10].flip(-1))) < 1e-3
    assert float(spectra.largest_principal_angle(Vh[:10].mT, Vh[:10].mT)) < 1e-3  # non-contiguous
    assert not Vh[:10].mT.is_contiguous()


# ------------------------------------------------------------------------------------------
# 5. coinciding_singular_values needs descending, finite S
# ------------------------------------------------------------------------------------------


@covers(spectra.coinciding_singular_values)
@pytest.mark.parametrize(
    "S",
    [
        torch.tensor([0.5, 1.0, 1.0, 1.0, 3.0]),  # ascending: svdvals flipped
        torch.tensor([3.0, 0.5, 1.0, 1.0]),  # unsorted
        torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]], dtype=F64),  # one batch row ascending
        torch.tensor([3.0, NAN, 1.0]),
        torch.tensor([INF, 2.0, 1.0]),
    ],
    ids=["ascending", "unsorted", "batched-ascending", "nan", "inf"],
)
def test_bad_singular_values_refused(S):
    with pytest.raises(ValueError, match=r"^S "):
        spectra.coinciding_singular_values(S, tol=1e-6)


@covers(spectra.coinciding_singular_values)
@pytest.mark.parametrize("tol", [1e-6, np.float64(1e-6), 0])
def test_descending_singular_values_accepted(tol):
    S = torch.tensor([[3.0, 1.0, 1.0, 1.0, 0.5]], dtype=F64).mT.contiguous().mT[0]
    c = spectra.coinciding_singular_values(S, tol=tol)
    assert int(c.count) == 3 and int(c.start) == 1
    base = torch.tensor([9.0, 3.0, 3.0, 2.0, 1.0])
    c = spectra.coinciding_singular_values(base[::2], tol=tol)  # non-contiguous view
    assert int(c.count) == 1 and int(c.start) == 0


# ------------------------------------------------------------------------------------------
# 6. half-precision features are supported (accumulated in float64)
# ------------------------------------------------------------------------------------------

HALF_METRICS = [
    case("nc1", nc1, lambda H, y: nc1(H, y)),
    case("nc1-papyan", nc1, lambda H, y: nc1(H, y, variant="papyan")),
    case("trace_ratio", trace_ratio, lambda H, y: trace_ratio(H, y)),
    case("nc2", nc2, lambda H, y: nc2(H, y)),
    case("equinorm", equinorm, lambda H, y: equinorm(H, y)),
    case("equiangularity", equiangularity, lambda H, y: equiangularity(H, y)),
    case("class_means", class_means, lambda H, y: class_means(H, y)),
    case("nc3", nc3, lambda H, y: nc3(H, y, _weight(H.dtype))),
    case("nc4", nc4, lambda H, y: nc4(H, y, _weight(H.dtype), _weight(H.dtype)[:, 0])),
    case("accumulator", CollapseAccumulator, lambda H, y: _accumulate(H, y, 3).trace_ratio()),
    case("within_cov", within_class_covariance, lambda H, y: within_class_covariance(H, y)),
    case("between_cov", between_class_covariance, lambda H, y: between_class_covariance(H, y)),
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("f", HALF_METRICS)
def test_half_features_supported(f, dtype):
    H, y = _data(dtype)
    out = f(H, y)
    assert out.dtype == dtype
    # The float64 value of the exactly representable half entries, rounded once.
    assert torch.equal(out, f(H.to(F64), y).to(dtype))


# ------------------------------------------------------------------------------------------
# 7. meta tensors are refused by name; labels on another device are moved
# ------------------------------------------------------------------------------------------

META = torch.empty(30, 5, device="meta")
META_ERRORS = [
    case("nc1", nc1, lambda y: nc1(META, y), "features"),
    case("trace_ratio", trace_ratio, lambda y: trace_ratio(META, y), "features"),
    case("nc2", nc2, lambda y: nc2(META, y), "features"),
    case("class_means", class_means, lambda y: class_means(META, y, 3), "features"),
    case("nc4", nc4, lambda y: nc4(META, y, _weight()), "features"),
    case(
        "accumulator",
        CollapseAccumulator,
        lambda y: CollapseAccumulator(3).update_means(META, y),
        "features",
    ),
    case("labels", nc1, lambda y: nc1(_data()[0], y.to("meta"), 3), "labels"),
]


@pytest.mark.parametrize(("call", "name"), META_ERRORS)
def test_meta_tensor_refused(call, name):
    with pytest.raises(ValueError, match=rf"^{name} is a 'meta' tensor"):
        call(_data()[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_labels_on_other_device_are_moved():
    H, y = _data()
    assert torch.equal(nc1(H.cuda(), y).cpu(), nc1(H.cuda(), y.cuda()).cpu())


# ------------------------------------------------------------------------------------------
# Valid edge inputs stay accepted
# ------------------------------------------------------------------------------------------


NUMPY_K = [
    case(f.__name__, f, f)
    for f in (
        nc1,
        trace_ratio,
        nc2,
        equinorm,
        class_means,
        within_class_covariance,
        between_class_covariance,
    )
]


@pytest.mark.parametrize("metric", NUMPY_K)
def test_numpy_num_classes_and_non_contiguous_features_accepted(metric):
    H, y = _data()
    Ht = H.mT.contiguous().mT  # same values, column-major
    assert not Ht.is_contiguous()
    assert torch.equal(metric(Ht, y, np.int64(3)), metric(H, y, 3))
    assert torch.equal(metric(H, y.to(torch.int32)), metric(H, y))


# ------------------------------------------------------------------------------------------
# 8. the dense covariances: every kind of bad input, named
# ------------------------------------------------------------------------------------------

COVARIANCES = {"within": within_class_covariance, "between": between_class_covariance}
Y6 = torch.tensor([0, 0, 1, 1, 2, 2])


def _features(value=None, index=(0, 0), scale=1.0):
    H = scale * torch.randn(6, 3, generator=torch.Generator().manual_seed(4), dtype=F64)
    if value is not None:
        H[index] = value
    return H


COVARIANCE_ERRORS = [  # (id, call(f), error, match)
    ("list", lambda f: f(_features().tolist(), Y6), ValueError, r"^features must be a torch\.Tensor"),
    ("numpy", lambda f: f(_features().numpy(), Y6), ValueError, r"^features must be a torch\.Tensor"),
    ("1-D", lambda f: f(_features()[:, 0], Y6), ValueError, r"^features must be 2-D"),
    ("3-D", lambda f: f(_features()[:, :, None], Y6), ValueError, r"^features must be 2-D"),
    ("complex", lambda f: f(_features().to(torch.complex128), Y6), ValueError, r"^features must be real"),
    ("meta", lambda f: f(_features().to("meta"), Y6), ValueError, r"^features is a 'meta' tensor"),
    ("nan", lambda f: f(_features(NAN), Y6), ValueError, r"^features contain 1 non-finite"),
    ("inf", lambda f: f(_features(-INF, (5, 2)), Y6), ValueError, r"^features contain 1 non-finite"),
    ("overflow", lambda f: f(_features(scale=1e200), Y6), ValueError, r"^features are so large"),
    ("empty", lambda f: f(_features()[:0], Y6[:0]), ValueError, r"^features and labels are empty"),
    ("labels-float", lambda f: f(_features(), Y6.double()), ValueError, r"^labels must be integers"),
    ("labels-bool", lambda f: f(_features(), Y6 > 0), ValueError, r"^labels must be integers"),
    ("labels-list", lambda f: f(_features(), Y6.tolist()), ValueError, r"^labels must be a torch\.Tensor"),
    ("labels-short", lambda f: f(_features(), Y6[:4]), ValueError, r"labels have shape \(4,\)"),
    ("labels-2-D", lambda f: f(_features(), Y6[:, None]), ValueError, r"labels have shape \(6, 1\)"),
    ("labels-meta", lambda f: f(_features(), Y6.to("meta")), ValueError, r"^labels is a 'meta' tensor"),
    ("labels-range", lambda f: f(_features(), Y6 + 1, 3), ValueError, r"^labels must lie in \[0, K\)"),
    ("labels-negative", lambda f: f(_features(), Y6 - 1), ValueError, r"^labels must lie in"),
    ("one-class", lambda f: f(_features(), Y6 * 0), ValueError, r"two classes.*pass num_classes"),
    ("K-1", lambda f: f(_features(), Y6, 1), ValueError, r"^num_classes must be an integer >= 2"),
    ("K-float", lambda f: f(_features(), Y6, 3.0), ValueError, r"^num_classes must be an integer"),
    ("K-bool", lambda f: f(_features(), Y6, True), ValueError, r"^num_classes must be an integer"),
    ("K-empty-class", lambda f: f(_features(), Y6, 4), ValueError, r"class 3\).*num_classes"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        case(f"{name}-{cid}", f, functools.partial(call, f), error, match)
        for name, f in COVARIANCES.items()
        for cid, call, error, match in COVARIANCE_ERRORS
    ],
)
def test_bad_covariance_input_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


@covers(within_class_covariance, between_class_covariance)
def test_covariances_of_degenerate_data_are_documented():
    H, y = _identical_features(F64)  # every feature equal: both matrices are zero to rounding
    assert float(within_class_covariance(H, y).abs().max()) <= 1e-30
    assert float(between_class_covariance(H, y).abs().max()) <= 1e-30
    H, y = _equal_means(F64)  # class means coincide: Σ_B = 0 while Σ_W > 0
    assert float(between_class_covariance(H, y).abs().max()) <= 1e-15
    assert float(torch.linalg.matrix_norm(within_class_covariance(H, y))) > 1.0
    H = torch.eye(3, dtype=F64)  # N = K, one sample per class: Σ_W = 0
    assert torch.equal(within_class_covariance(H, torch.arange(3)), torch.zeros(3, 3, dtype=F64))


# ------------------------------------------------------------------------------------------
# 9. float16 at the edge of its range (the behaviour the lib.metrics docstring documents)
# ------------------------------------------------------------------------------------------


@covers(within_class_covariance, between_class_covariance, class_means, trace_ratio, nc1)
def test_float16_range_edges_are_as_documented():
    y = torch.tensor([0, 0, 1, 1])
    # An entry above 65504 is inf once stored in float16, before lib sees it: refused.
    H = torch.tensor([[7e4, 0.0], [1.0, 0.0], [2.0, 3.0], [4.0, 5.0]]).half()
    assert math.isinf(float(H[0, 0]))
    with pytest.raises(ValueError, match=r"^features contain 1 non-finite"):
        nc1(H, y)
    # Sums are float64: class sums of 1.2e8 (float16's own sum overflows) are exact.
    H = torch.full((4000, 2), 6e4, dtype=torch.float16)
    H[::4] = -6e4
    y2 = torch.arange(4000) % 2
    assert torch.isinf(H.sum(0)).all()
    assert torch.equal(class_means(H, y2), class_means(H.double(), y2).half())
    assert torch.equal(nc1(H, y2), nc1(H.double(), y2).half())
    # A result above 65504 reads inf: covariance entries are squares (300^2 = 90000).
    H = torch.tensor([[300.0, 0.0], [-300.0, 0.0], [1.0, 1.0], [1.0, -1.0]])
    exact = within_class_covariance(H.double(), y)
    assert float(exact[0, 0]) == 45000.0  # (300^2 + 300^2) / 4, still finite in float16
    assert float(within_class_covariance(H.half(), y)[0, 0]) == 44992.0  # rounded once
    assert float(within_class_covariance(2 * H.half(), y)[0, 0]) == INF  # 180000 > 65504
    assert float(within_class_covariance(2 * H.bfloat16(), y)[0, 0]) > 1e5  # float32's range
    H = torch.tensor([[300.0, 0.0], [300.0, 1.0], [-300.0, 0.0], [-300.0, 1.0]])
    assert float(between_class_covariance(H.double(), y)[0, 0]) == 90000.0  # (300^2 + 300^2) / 2
    assert float(between_class_covariance(H.half(), y)[0, 0]) == INF
    # A large ratio reads inf in float16 (8e8 here), not "no separation" as the name suggests.
    H = torch.tensor([[100.0, 0.0], [-100.0, 0.0], [0.01, 0.0], [0.0, 0.0]])
    assert 1e8 < float(trace_ratio(H.double(), y)) < math.inf
    assert float(trace_ratio(H.half(), y)) == INF
    assert math.isfinite(float(trace_ratio(H.half().float(), y)))  # the documented fix
    # A result below about 6e-8 reads 0.
    H = torch.tensor([[1e-4, 0.0], [-1e-4, 0.0], [1.0, 1.0], [1.0, -1.0]])
    assert 0 < float(within_class_covariance(H.double(), y)[0, 0]) < 6e-8
    assert float(within_class_covariance(H.half(), y)[0, 0]) == 0.0
