"""The two passes behind every metric (private): input checks, class sums, projected scatter.

Pass 1 accumulates class sums and counts; pass 2 the within-class scatter, whole and projected on
the span of the centred class means (:func:`_pinv_factor`). Rows are processed in chunks through
one reused buffer, always in float64 (float32 on MPS), so memory stays :math:`O(pK)` plus a chunk.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from lib._checks import check_not_meta, check_num_classes

Variant = Literal["lecture", "papyan", "he_su"]
_VARIANTS = ("lecture", "papyan", "he_su")
# Rows are processed in chunks of about this many elements, so the float64 copies have a fixed
# size whatever N is: 2 MiB chunks stay in the CPU allocator's reused memory (fresh large
# allocations cost page faults), 128 MiB chunks keep a GPU busy between kernel launches.
_CHUNK_ELEMENTS_CPU = 1 << 18
_CHUNK_ELEMENTS_GPU = 1 << 24
_MIN_CHUNK_ROWS = 64  # keeps the projection a matrix product even for p in the 100,000s


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_features(features: object, what: str = "features") -> Tensor:
    if not isinstance(features, Tensor):
        raise ValueError(
            f"{what} must be a torch.Tensor of shape (N, p), got {type(features).__name__}"
        )
    if features.ndim != 2:
        raise ValueError(
            f"{what} must be 2-D with shape (N, p), one row per sample; got shape "
            f"{tuple(features.shape)}. Pool or flatten feature maps first, e.g. H.flatten(1)"
        )
    if features.is_complex():
        raise ValueError(f"{what} must be real, got dtype {features.dtype}")
    check_not_meta(what, features)
    return features


def _check_finite(features: Tensor, accumulated: Tensor) -> None:
    """Raise if ``features`` hold NaN/Inf, found cheaply: such values make ``accumulated`` non-finite."""
    if bool(torch.isfinite(accumulated).all()):
        return
    bad = int((~torch.isfinite(features)).sum()) if features.is_floating_point() else 0
    if bad:
        raise ValueError(
            f"features contain {bad} non-finite value(s) (NaN or Inf); the metrics are undefined"
        )
    raise ValueError("features are so large that their sums overflow; rescale them")


def _check_labels(labels: object, num_rows: int, device: torch.device) -> Tensor:
    if not isinstance(labels, Tensor):
        raise ValueError(
            f"labels must be a torch.Tensor of shape (N,), got {type(labels).__name__}"
        )
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be integers (e.g. torch.long), got dtype {labels.dtype}")
    check_not_meta("labels", labels)
    if labels.ndim != 1 or labels.shape[0] != num_rows:
        raise ValueError(
            f"shape mismatch: features have {num_rows} rows but labels have shape "
            f"{tuple(labels.shape)}; expected labels of shape ({num_rows},)"
        )
    return labels.to(device=device, dtype=torch.long)


def _check_range(labels: Tensor, num_classes: int) -> None:
    if labels.numel() == 0:
        return
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"labels must lie in [0, K) = [0, {num_classes}); found values in [{lo}, {hi}]"
        )


def _check_nonempty(counts: Tensor) -> None:
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
        raise ValueError(
            f"{len(empty)} class(es) have no samples (class {shown}); every class in [0, K) needs "
            "at least one sample. Relabel classes to 0..K-1 or pass the right num_classes"
        )


def _prepare(
    features: object, labels: object, num_classes: int | None
) -> tuple[Tensor, Tensor, int]:
    """Validate ``(features, labels, num_classes)``; returns labels as long on the features' device."""
    H = _check_features(features)
    y = _check_labels(labels, H.shape[0], H.device)
    if H.shape[0] == 0:
        raise ValueError("features and labels are empty; need samples from at least two classes")
    if num_classes is None:
        lo = int(y.min())
        if lo < 0:
            _check_range(y, int(y.max()) + 1)
        if int(y.max()) + 1 < 2:
            raise ValueError(
                "need at least two classes to measure collapse; all labels are 0 "
                "(pass num_classes if some classes are absent on purpose)"
            )
        num_classes = int(y.max()) + 1
    K = check_num_classes(num_classes)
    _check_range(y, K)
    return H, y, K


# --------------------------------------------------------------------------------------------
# Functional core (private): the two passes and the between-class factor
# --------------------------------------------------------------------------------------------


def _compute_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _result_dtype(features: Tensor) -> torch.dtype:
    return features.dtype if features.is_floating_point() else torch.get_default_dtype()


def _row_chunks(num_rows: int, dim: int, device: torch.device):
    elements = _CHUNK_ELEMENTS_CPU if device.type == "cpu" else _CHUNK_ELEMENTS_GPU
    step = max(_MIN_CHUNK_ROWS, elements // max(1, dim))
    for start in range(0, num_rows, step):
        yield slice(start, min(start + step, num_rows))


def _chunks_as(H: Tensor, dtype: torch.dtype):
    """Yield ``(rows, H[rows])`` as contiguous ``dtype`` chunks, converting through one reused buffer.

    Reusing the buffer matters on CPUs: every fresh allocation of a large block is paid again in
    page faults, which for ``p`` in the 100,000s cost more than the arithmetic.
    """
    buf = None
    for rows in _row_chunks(H.shape[0], H.shape[1], H.device):
        if H.dtype == dtype and H[rows].is_contiguous():
            yield rows, H[rows]
            continue
        n = rows.stop - rows.start
        if buf is None:
            buf = torch.empty(n, H.shape[1], dtype=dtype, device=H.device)
        yield rows, buf[:n].copy_(H[rows])


def _add_class_sums(H: Tensor, y: Tensor, sums: Tensor, counts: Tensor) -> None:
    """Pass 1, in place: ``sums[k] += sum of rows of class k`` (K, p); ``counts[k] += n_k`` (K,)."""
    for rows, Hc in _chunks_as(H, sums.dtype):
        sums.index_add_(0, y[rows], Hc)
    counts += torch.bincount(y, minlength=counts.shape[0])
    _check_finite(H, sums)


def _within_sums(H: Tensor, y: Tensor, means: Tensor, proj: Tensor) -> tuple[Tensor, Tensor]:
    r"""Pass 2: :math:`\sum_i\|h_i-\bar h_{y_i}\|^2` and :math:`\sum_i\|P^\top(h_i-\bar h_{y_i})\|^2`."""
    total = means.new_zeros(())
    projected = means.new_zeros(())
    gathered = None  # reused (n_chunk, p) buffer: class means of the chunk's rows, then residuals
    for rows, Hc in _chunks_as(H, means.dtype):
        if gathered is None:
            gathered = torch.empty_like(Hc)
        R = gathered[: Hc.shape[0]]
        torch.index_select(means, 0, y[rows], out=R)
        torch.sub(Hc, R, out=R)  # (n_chunk, p) residuals h_i - h̄_{y_i}
        flat = R.view(-1)
        total += torch.dot(flat, flat)
        if proj.shape[1] > 0:
            Z = (R @ proj).view(-1)  # (n_chunk r,)
            projected += torch.dot(Z, Z)
    _check_finite(H, total)
    return total, projected


def _class_weights(counts: Tensor, variant: str, dtype: torch.dtype) -> Tensor:
    """Weights w_k of the between-class matrix, Σ_B = Σ_k w_k c_k c_kᵀ; (K,)."""
    n = counts.to(dtype)
    if variant == "he_su":
        return n / n.sum()
    return torch.full_like(n, 1.0 / n.shape[0])


def _centred_means(means: Tensor, counts: Tensor) -> Tensor:
    """Class means minus the global sample mean h_G = Σ_k n_k h̄_k / N; (K, p)."""
    n = counts.to(means.dtype)
    return means - (n @ means) / n.sum()


def _pinv_factor(means: Tensor, counts: Tensor, variant: str) -> Tensor:
    r"""``P`` of shape (p, r) with :math:`\Sigma_B^\dagger = P P^\top` (see :func:`nc1` for the cutoff)."""
    K, p = means.shape
    w = _class_weights(counts, variant, means.dtype).sqrt()  # (K,)
    C = _centred_means(means, counts) * w[:, None]  # (K, p), Σ_B = CᵀC
    # Σ_k n_k (h̄_k - h_G) = 0 exactly, i.e. u = n / w is a left null vector of C. Rotating it out
    # removes that structural zero singular value exactly instead of thresholding rounding noise.
    u = counts.to(means.dtype) / w  # (K,)
    Q = torch.linalg.qr(u[:, None], mode="complete").Q  # (K, K), Q[:, 0] = ±u/|u|
    F = Q[:, 1:].mT @ C  # (K-1, p), Σ_B = FᵀF up to rounding
    if p > K - 1:
        # Wide F: Householder QR of Fᵀ, then the SVD of the small triangle. As stable as
        # svd(F) and several times faster for p >> K (LAPACK's wide SVD is slow to form Vh).
        Qf, R = torch.linalg.qr(F.mT)  # (p, K-1), (K-1, K-1); F = Rᵀ Qfᵀ
        _, S, Wh = torch.linalg.svd(R.mT)  # Rᵀ = U S Wh, so F = U S (Wh Qfᵀ)
        V = Qf @ Wh.mT  # (p, K-1), columns = right singular vectors of F
    else:
        _, S, Vh = torch.linalg.svd(F, full_matrices=False)  # S (p,), Vh (p, p)
        V = Vh.mT
    if S.numel() == 0:
        return means.new_zeros(p, 0)
    scale = torch.maximum(S[0], (means * w[:, None]).norm())
    tol = max(K, p) * torch.finfo(means.dtype).eps * scale
    keep = S > tol
    return V[:, keep] / S[keep]  # (p, r)


def _means_coincide(means: Tensor, counts: Tensor) -> Tensor:
    r"""0-dim bool tensor: are all class means equal up to rounding (:math:`\Sigma_B = 0`)?

    True when :math:`\frac1K\sum_k\|\bar h_k-h_G\|^2 \le (\max(K,p)\,\varepsilon)^2
    \frac1K\sum_k\|\bar h_k\|^2`, the squared-Frobenius form of :func:`nc1`'s cutoff: a
    between-class spread at rounding level is no spread. No host synchronisation.
    """
    K, p = means.shape
    spread = _centred_means(means, counts).square().sum()
    scale = means.square().sum() * (max(K, p) * torch.finfo(means.dtype).eps) ** 2
    return spread <= scale


def _class_statistics(H: Tensor, y: Tensor, K: int) -> tuple[Tensor, Tensor]:
    """Class means (K, p) in the compute dtype and class counts (K,)."""
    dtype = _compute_dtype(H.device)
    sums = torch.zeros(K, H.shape[1], dtype=dtype, device=H.device)
    counts = torch.zeros(K, dtype=torch.long, device=H.device)
    _add_class_sums(H, y, sums, counts)
    _check_nonempty(counts)
    return sums / counts[:, None].to(dtype), counts
