"""Bad and degenerate inputs of lib.spectra (issue 15), continued from test_bad_inputs_metrics.py:
singular values and vectors, angles, coinciding subspaces, balancedness and numerical rank.

SVD-based functions take float32/float64 only (torch has no SVD kernel for float16/bfloat16) and
refuse NaN/Inf naming the argument, before the SVD fails to converge; a meta tensor stands in for
"a tensor on another device"."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _cases import case, covers

from lib import spectra

F64 = torch.float64
NAN, INF = float("nan"), float("inf")

EXEMPT = {
    "lib.spectra.Cluster": (
        "result record that coinciding_singular_values builds; callers only read its fields"
    ),
}


def _M(m=4, n=3, dtype=F64, seed=0):
    return torch.randn(m, n, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


def _poisoned(value, m=4, n=3):
    W = _M(m, n)
    W[1, 2] = value
    return W


sv, va, sva = spectra.singular_values, spectra.vector_angle, spectra.singular_vector_angles
cs, bg, nr = spectra.coinciding_subspaces, spectra.balancedness_gap, spectra.numerical_rank
V2 = torch.tensor([1.0, 0.0], dtype=F64)
META = torch.empty(4, 3, dtype=F64, device="meta")

SPECTRA_ERRORS = [
    # singular_values
    case("sv-list", sv, lambda: sv(_M().tolist()), ValueError, r"^W must be a tensor"),
    case("sv-numpy", sv, lambda: sv(_M().numpy()), ValueError, r"^W must be a tensor"),
    case("sv-1-D", sv, lambda: sv(_M()[0]), ValueError, r"^W must be a tensor with at least 2"),
    case("sv-int", sv, lambda: sv(_M().long()), ValueError, r"^W must be floating point"),
    case("sv-complex", sv, lambda: sv(_M().to(torch.complex128)), ValueError, r"^W must be floating"),
    case("sv-float16", sv, lambda: sv(_M(dtype=torch.float16)), ValueError, r"^W must be float32 or float64.*W\.double\(\)"),
    case("sv-bfloat16", sv, lambda: sv(_M(dtype=torch.bfloat16)), ValueError, r"^W must be float32 or float64"),
    case("sv-meta", sv, lambda: sv(META), ValueError, r"^W is a 'meta' tensor"),
    case("sv-nan", sv, lambda: sv(_poisoned(NAN)), ValueError, r"^W contains 1 non-finite"),
    case("sv-inf", sv, lambda: sv(_poisoned(-INF)[None].expand(2, 4, 3)), ValueError, r"^W contains 2 non-finite"),
    # vector_angle
    case("va-list", va, lambda: va([1.0, 0.0], V2), ValueError, r"^a must be a tensor"),
    case("va-0-D", va, lambda: va(V2, torch.tensor(1.0)), ValueError, r"^b must be a tensor with at least 1 dimension,"),
    case("va-int", va, lambda: va(V2, torch.tensor([1, 1])), ValueError, r"^b must be floating point"),
    case("va-meta", va, lambda: va(V2, V2.to("meta")), ValueError, r"^b is a 'meta' tensor"),
    case("va-length", va, lambda: va(torch.ones(3), torch.ones(2)), ValueError, r"^a and b must have the same length"),
    case("va-batch", va, lambda: va(torch.ones(3, 2), torch.ones(2, 2)), ValueError, r"^b has batch shape \(2,\)"),
    case("va-zero-a", va, lambda: va(torch.zeros(2), V2), ValueError, r"^a has 1 zero vector"),
    case("va-zero-row-b", va, lambda: va(V2, torch.eye(2, dtype=F64) * torch.tensor([[1.0], [0.0]], dtype=F64)), ValueError, r"^b has 1 zero vector"),
    case("va-empty", va, lambda: va(torch.ones(0), torch.ones(0)), ValueError, r"^a has 1 zero vector"),
    case("va-nan", va, lambda: va(V2, torch.tensor([NAN, 1.0])), ValueError, r"^b has NaN or Inf"),
    case("va-inf", va, lambda: va(torch.tensor([INF, 1.0]), V2), ValueError, r"^a has NaN or Inf"),
    case("va-overflow", va, lambda: va(torch.full((2,), 1e200, dtype=F64), V2), ValueError, r"^a has NaN or Inf.*norm overflows"),
    case("va-sign", va, lambda: va(V2, V2, sign_invariant="no"), TypeError, r"^sign_invariant must be a bool"),
    # singular_vector_angles
    case("sva-side", sva, lambda: sva(_M(), _M(), side="up"), ValueError, r"^unknown side 'up'; allowed"),
    case("sva-side-none", sva, lambda: sva(_M(), _M(), side=None), ValueError, r"^unknown side None"),
    case("sva-list", sva, lambda: sva(_M().tolist(), _M()), ValueError, r"^W must be a tensor"),
    case("sva-int-ref", sva, lambda: sva(_M(), _M().long()), ValueError, r"^W_ref must be floating"),
    case("sva-half", sva, lambda: sva(_M(dtype=torch.float16), _M()), ValueError, r"^W must be float32 or float64"),
    case("sva-meta-ref", sva, lambda: sva(_M(), META), ValueError, r"^W_ref is a 'meta' tensor"),
    case("sva-shape", sva, lambda: sva(_M(), _M().mT), ValueError, r"^W is \(4, 3\) but W_ref is \(3, 4\)"),
    case("sva-batch", sva, lambda: sva(_M()[None].expand(3, 4, 3), _M()[None].expand(2, 4, 3)), ValueError, r"^W_ref has batch shape \(2,\)"),
    case("sva-nan", sva, lambda: sva(_poisoned(NAN), _M()), ValueError, r"^W contains 1 non-finite"),
    case("sva-inf-ref", sva, lambda: sva(_M(), _poisoned(INF)), ValueError, r"^W_ref contains 1 non-finite"),
    # coinciding_subspaces
    case("cs-list", cs, lambda: cs(_M().tolist()), ValueError, r"^W must be a tensor"),
    case("cs-3-D", cs, lambda: cs(_M()[None]), ValueError, r"^W must be one \(m, n\) matrix"),
    case("cs-tol-negative", cs, lambda: cs(_M(), tol=-1e-9), ValueError, r"^tol must be a finite number >= 0"),
    case("cs-tol-nan", cs, lambda: cs(_M(), tol=NAN), ValueError, r"^tol must be a finite number"),
    case("cs-tol-str", cs, lambda: cs(_M(), tol="1e-9"), ValueError, r"^tol must be a finite number"),
    case("cs-empty", cs, lambda: cs(torch.empty(0, 3, dtype=F64)), ValueError, r"^W is empty \(shape \(0, 3\)\)"),
    case("cs-nan", cs, lambda: cs(_poisoned(NAN)), ValueError, r"^W contains 1 non-finite"),
    case("cs-meta", cs, lambda: cs(META), ValueError, r"^W is a 'meta' tensor"),
    case("cs-float16", cs, lambda: cs(_M(dtype=torch.float16)), ValueError, r"^W must be float32 or float64"),
    # balancedness_gap
    case("bg-stacked", bg, lambda: bg(torch.stack([_M(3, 3), _M(3, 3)])), ValueError, r"^weights must be a list.*list\(W\)"),
    case("bg-one", bg, lambda: bg([_M()]), ValueError, r"^weights must be a list of at least 2"),
    case("bg-empty", bg, lambda: bg([]), ValueError, r"^weights must be a list of at least 2"),
    case("bg-none", bg, lambda: bg(None), TypeError, r"^weights must be a list or tuple"),
    case("bg-generator", bg, lambda: bg(W for W in (_M(), _M().mT)), TypeError, r"^weights must be a list or tuple"),
    case("bg-item", bg, lambda: bg([_M(), "W"]), ValueError, r"^W_2 must be a tensor"),
    case("bg-int", bg, lambda: bg([_M().long(), _M().mT]), ValueError, r"^W_1 must be floating point"),
    case("bg-shape", bg, lambda: bg([_M(), _M()]), ValueError, r"W_2 has 3 columns, W_1 has 4 rows"),
    case("bg-batch", bg, lambda: bg([_M()[None].expand(2, 4, 3), _M().mT[None].expand(3, 3, 4)]), ValueError, r"^W_2 has batch shape \(3,\)"),
    case("bg-meta", bg, lambda: bg([_M(), META.mT]), ValueError, r"^W_2 is a 'meta' tensor"),
    case("bg-nan", bg, lambda: bg([_M(), _poisoned(NAN).mT]), ValueError, r"^W_2 contains 1 non-finite"),
    case("bg-inf", bg, lambda: bg([_poisoned(INF), _M().mT]), ValueError, r"^W_1 contains 1 non-finite"),
    # numerical_rank
    case("nr-rtol-negative", nr, lambda: nr(_M(), rtol=-1), ValueError, r"^rtol must be a finite number >= 0"),
    case("nr-rtol-nan", nr, lambda: nr(_M(), rtol=NAN), ValueError, r"^rtol must be a finite number"),
    case("nr-rtol-none", nr, lambda: nr(_M(), rtol=None), ValueError, r"^rtol must be a finite number"),
    case("nr-nan", nr, lambda: nr(_poisoned(NAN)), ValueError, r"^W contains 1 non-finite"),
    case("nr-1-D", nr, lambda: nr(_M()[0]), ValueError, r"^W must be a tensor with at least 2"),
    case("nr-meta", nr, lambda: nr(META), ValueError, r"^W is a 'meta' tensor"),
    case("nr-bfloat16", nr, lambda: nr(_M(dtype=torch.bfloat16)), ValueError, r"^W must be float32 or float64"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), SPECTRA_ERRORS)
def test_bad_spectra_input_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------------------------
# Degenerate data: the documented answers
# ------------------------------------------------------------------------------------------


@covers(spectra.numerical_rank, spectra.singular_values)
def test_rank_of_zero_and_empty_matrices_is_zero():
    assert int(spectra.numerical_rank(torch.zeros(3, 3, dtype=F64))) == 0
    assert int(spectra.numerical_rank(torch.empty(0, 3, dtype=F64))) == 0
    assert spectra.singular_values(torch.empty(2, 0, 3, dtype=F64)).shape == (2, 0)
    assert spectra.numerical_rank(torch.zeros(2, 3, 3), rtol=0).tolist() == [0, 0]


@covers(spectra.balancedness_gap, spectra.coinciding_subspaces)
def test_balanced_and_scalar_layers():
    eye = torch.eye(3, dtype=F64)
    assert torch.equal(spectra.balancedness_gap((eye, eye, eye)), torch.zeros(2, dtype=F64))
    U_c, Vh_c = spectra.coinciding_subspaces(2 * eye, tol=0)  # one cluster: the whole space
    assert U_c.shape == Vh_c.shape == (3, 3)


# ------------------------------------------------------------------------------------------
# Valid edge inputs stay accepted
# ------------------------------------------------------------------------------------------


@covers(spectra.vector_angle)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_vector_angle_half_and_mixed_dtypes_accepted(dtype):
    a, b = torch.tensor([1.0, 0.0], dtype=dtype), torch.tensor([1.0, 1.0], dtype=dtype)
    out = spectra.vector_angle(a, b)
    assert out.dtype == dtype and abs(float(out) - np.pi / 4) < 1e-2
    assert abs(float(spectra.vector_angle(a, b.double())) - np.pi / 4) < 1e-2
    rows = torch.tensor([[1.0, 3.0], [0.0, 3.0]], dtype=F64).mT  # non-contiguous (2, 2)
    assert not rows.is_contiguous()
    assert torch.equal(spectra.vector_angle(rows, V2), spectra.vector_angle(rows.contiguous(), V2))


@covers(spectra.singular_values, spectra.singular_vector_angles, spectra.numerical_rank)
def test_spectra_accept_non_contiguous_float32_and_numpy_tolerances():
    W = _M(5, 4, dtype=torch.float32).mT  # non-contiguous (4, 5)
    assert not W.is_contiguous()
    assert torch.equal(spectra.singular_values(W), spectra.singular_values(W.contiguous()))
    assert float(spectra.singular_vector_angles(W, -W).max()) < 1e-3
    assert int(spectra.numerical_rank(W, rtol=np.float64(1e-6))) == 4
    U_c, _ = spectra.coinciding_subspaces(W.double(), tol=np.float32(0.0))
    assert U_c.shape[1] >= 1
