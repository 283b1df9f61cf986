r"""Neural-collapse and separation metrics: exact, fast, streaming.

Features are rows: ``H`` of shape ``(N, p)`` (``N`` samples, feature dimension ``p``), labels ``y``
of shape ``(N,)`` with integer values in ``[0, K)``. With class means :math:`\bar{\boldsymbol h}_k`,
class sizes :math:`n_k` and the global (sample) mean :math:`\boldsymbol h_G`,

.. math::
    \boldsymbol\Sigma_W = \frac1N \sum_{i=1}^N (\boldsymbol h_i - \bar{\boldsymbol h}_{y_i})
    (\boldsymbol h_i - \bar{\boldsymbol h}_{y_i})^\top, \qquad
    \boldsymbol\Sigma_B = \frac1K \sum_{k=1}^K (\bar{\boldsymbol h}_k - \boldsymbol h_G)
    (\bar{\boldsymbol h}_k - \boldsymbol h_G)^\top .

:func:`nc1` and :func:`trace_ratio` never build a ``p x p`` matrix: :math:`\boldsymbol\Sigma_B` has
rank at most :math:`K-1`, so :math:`\operatorname{tr}(\boldsymbol\Sigma_W\boldsymbol\Sigma_B^\dagger)`
is evaluated inside the span of the centred class means in :math:`O(NpK)` time and :math:`O(pK)`
memory, always accumulating in float64 (float32 on MPS, which has no float64). The same two passes
(class sums, then projected within-class scatter) power :class:`CollapseAccumulator`, so a data set
that does not fit in memory gives the same numbers as the in-memory functions.

The dense ``p x p`` matrices are still available (:func:`within_class_covariance`,
:func:`between_class_covariance`) for small ``p`` and for plots of spectra.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from lib._checks import check_num_classes
from lib._checks import check_option as _check_option

__all__ = [
    "CollapseAccumulator",
    "between_class_covariance",
    "class_means",
    "equiangularity",
    "equinorm",
    "nc1",
    "nc2",
    "nc3",
    "nc4",
    "trace_ratio",
    "within_class_covariance",
]

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


def _class_statistics(H: Tensor, y: Tensor, K: int) -> tuple[Tensor, Tensor]:
    """Class means (K, p) in the compute dtype and class counts (K,)."""
    dtype = _compute_dtype(H.device)
    sums = torch.zeros(K, H.shape[1], dtype=dtype, device=H.device)
    counts = torch.zeros(K, dtype=torch.long, device=H.device)
    _add_class_sums(H, y, sums, counts)
    _check_nonempty(counts)
    return sums / counts[:, None].to(dtype), counts


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def class_means(features: Tensor, labels: Tensor, num_classes: int | None = None) -> Tensor:
    r"""Class means of the rows of ``features``.

    .. math::
        \bar{\boldsymbol h}_k = \frac{1}{n_k}\sum_{i:\,y_i=k}\boldsymbol h_i,\qquad k=0,\dots,K-1.

    Args:
        features: ``H`` of shape ``(N, p)``, one sample per row.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        num_classes: ``K``; defaults to ``max(y) + 1``. Every class needs a sample.

    Returns:
        Tensor of shape ``(K, p)`` on the features' device, in their dtype (accumulated in float64).

    Reference:
        Papyan, Han & Donoho, *Prevalence of neural collapse during the terminal phase of deep
        learning training*, PNAS 2020 (class means and global mean, "Setting").

    Example:
        >>> H = torch.tensor([[0.0, 2.0], [2.0, 0.0], [4.0, 4.0]])
        >>> class_means(H, torch.tensor([0, 0, 1]))
        tensor([[1., 1.],
                [4., 4.]])
    """
    H, y, K = _prepare(features, labels, num_classes)
    means, _ = _class_statistics(H, y, K)
    return means.to(_result_dtype(H))


def within_class_covariance(
    features: Tensor, labels: Tensor, num_classes: int | None = None
) -> Tensor:
    r"""Dense within-class covariance :math:`\boldsymbol\Sigma_W` (averaged over the ``N`` samples).

    .. math::
        \boldsymbol\Sigma_W = \frac1N\sum_{i=1}^N(\boldsymbol h_i-\bar{\boldsymbol h}_{y_i})
        (\boldsymbol h_i-\bar{\boldsymbol h}_{y_i})^\top .

    Builds a ``p x p`` matrix in :math:`O(Np^2)` time; :func:`nc1` and :func:`trace_ratio` never do.

    Args:
        features: ``H`` of shape ``(N, p)``.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        num_classes: ``K``; defaults to ``max(y) + 1``.

    Returns:
        Tensor of shape ``(p, p)`` on the features' device, in their dtype.

    Reference:
        Lecture 6, "Measure of variability collapse"; Papyan, Han & Donoho, PNAS 2020 (:math:`\Sigma_W`).

    Example:
        >>> H = torch.tensor([[0.0, 1.0], [2.0, 1.0], [5.0, 5.0], [5.0, 7.0]])
        >>> within_class_covariance(H, torch.tensor([0, 0, 1, 1]))
        tensor([[0.5000, 0.0000],
                [0.0000, 0.5000]])
    """
    H, y, K = _prepare(features, labels, num_classes)
    means, _ = _class_statistics(H, y, K)
    cov = means.new_zeros(H.shape[1], H.shape[1])
    for rows, Hc in _chunks_as(H, means.dtype):
        R = Hc - means.index_select(0, y[rows])  # (n_chunk, p)
        cov += R.mT @ R
    return (cov / H.shape[0]).to(_result_dtype(H))


def between_class_covariance(
    features: Tensor, labels: Tensor, num_classes: int | None = None
) -> Tensor:
    r"""Dense between-class covariance :math:`\boldsymbol\Sigma_B` (averaged over the ``K`` classes).

    .. math::
        \boldsymbol\Sigma_B = \frac1K\sum_{k=1}^K(\bar{\boldsymbol h}_k-\boldsymbol h_G)
        (\bar{\boldsymbol h}_k-\boldsymbol h_G)^\top,\qquad
        \boldsymbol h_G=\frac1N\sum_{i=1}^N\boldsymbol h_i .

    Its rank is at most :math:`K-1` because :math:`\sum_k n_k(\bar{\boldsymbol h}_k-\boldsymbol h_G)=0`.

    Args:
        features: ``H`` of shape ``(N, p)``.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        num_classes: ``K``; defaults to ``max(y) + 1``.

    Returns:
        Tensor of shape ``(p, p)`` on the features' device, in their dtype.

    Reference:
        Lecture 6, "Measure of variability collapse"; Papyan, Han & Donoho, PNAS 2020 (:math:`\Sigma_B`).

    Example:
        >>> H = torch.tensor([[0.0, 1.0], [2.0, 1.0], [5.0, 5.0], [5.0, 7.0]])
        >>> between_class_covariance(H, torch.tensor([0, 0, 1, 1]))
        tensor([[4.0000, 5.0000],
                [5.0000, 6.2500]])
    """
    H, y, K = _prepare(features, labels, num_classes)
    means, counts = _class_statistics(H, y, K)
    C = _centred_means(means, counts)  # (K, p)
    return (C.mT @ C / K).to(_result_dtype(H))


def nc1(
    features: Tensor,
    labels: Tensor,
    num_classes: int | None = None,
    *,
    variant: Variant = "lecture",
) -> Tensor:
    r"""Within-class variability collapse :math:`\mathcal{NC}_1`, exact, without ``p x p`` matrices.

    .. math::
        \mathcal{NC}_1 = \operatorname{tr}\big(\boldsymbol\Sigma_W\boldsymbol\Sigma_B^\dagger\big)
        = \frac1N\sum_{i=1}^N\big\|\boldsymbol P^\top(\boldsymbol h_i-\bar{\boldsymbol h}_{y_i})\big\|^2,
        \qquad \boldsymbol\Sigma_B^\dagger = \boldsymbol P\boldsymbol P^\top,

    with :math:`\boldsymbol\Sigma_W, \boldsymbol\Sigma_B` as in the module docstring. Writing
    :math:`\boldsymbol\Sigma_B=\boldsymbol F^\top\boldsymbol F` with :math:`\boldsymbol F` the
    ``(K-1, p)`` matrix of weighted centred class means (the one structural null direction
    :math:`\sum_k n_k(\bar{\boldsymbol h}_k-\boldsymbol h_G)=0` rotated out exactly) and
    :math:`\boldsymbol F=\boldsymbol U\boldsymbol S\boldsymbol V_h`, the factor is
    :math:`\boldsymbol P=\boldsymbol V_{h,r}^\top\boldsymbol S_r^{-1}` of shape ``(p, r)``,
    ``r <= K-1``. Cost :math:`O(NpK + pK^2)` time, :math:`O(pK)` memory; the result is a sum of
    squares, so it is never negative (the dense float32 formula can be).

    **Pseudo-inverse cutoff.** With :math:`s_1 \ge s_2 \ge \dots` the singular values of
    :math:`\boldsymbol F`, :math:`w_k` the class weights of :math:`\boldsymbol\Sigma_B` (``1/K``, or
    ``n_k/N`` for ``variant="he_su"``) and :math:`\bar{\boldsymbol H}` the ``(K, p)`` class means,
    :math:`s_i` is kept when

    .. math::
        s_i > \max(K, p)\,\varepsilon\,\max\Big(s_1,\ \big(\textstyle\sum_k w_k
        \|\bar{\boldsymbol h}_k\|^2\big)^{1/2}\Big),

    :math:`\varepsilon` being the float64 machine epsilon. The first term is the usual
    numerical-rank rule (NumPy's ``matrix_rank``) applied to the matrix that is actually
    decomposed. Because :math:`\boldsymbol F` is a square root of :math:`\boldsymbol\Sigma_B`, it
    resolves directions down to :math:`s_i/s_1 \approx \max(K,p)\,\varepsilon` (about
    :math:`10^{-13}`), while the dense ``pinv(Σ_B)`` (default ``rtol = p ε`` on the *squared*
    values) stops at :math:`\sqrt{p\varepsilon} \approx 10^{-6}`. Any input whose class means are
    not degenerate to that level gets the same rank from both, and the values agree to rounding.
    The second term matters when the class means share a large common offset: centring them
    leaves rounding noise of size :math:`\varepsilon\|\bar{\boldsymbol H}\|`, which must not be
    inverted as if it were signal. If every singular value is cut (all class means equal),
    :math:`\boldsymbol\Sigma_B^\dagger=0` and the result is 0, as the definition says;
    :func:`trace_ratio` is then ``inf``. Like the definition itself, the value is as
    ill-conditioned as :math:`\boldsymbol\Sigma_B`: nearly degenerate class means give very
    large values.

    Args:
        features: ``H`` of shape ``(N, p)``, any floating dtype. Accumulated in float64 (float32 on
            MPS), so float32 features give the float64 value of their exact entries, rounded once
            to float32 on return.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``, on any device.
        num_classes: ``K``; defaults to ``max(y) + 1``. Every class needs a sample.
        variant: ``"lecture"`` (default) is the lecture's and Papyan, Han & Donoho's
            :math:`\operatorname{tr}(\Sigma_W\Sigma_B^\dagger)`. ``"papyan"`` divides it by ``K``,
            as plotted in Papyan, Han & Donoho (2020, Fig. 6) and computed in Zhu et al.'s public
            code (``validate_NC.py``). ``"he_su"`` weights each class of :math:`\Sigma_B` by its
            frequency :math:`n_k/N` instead of :math:`1/K` (He & Su's separation fuzziness, as in
            the public re-implementation of the equi-separation law); it equals ``"lecture"`` for
            balanced classes.

    Returns:
        0-dim tensor on the features' device, in their dtype.

    Reference:
        Lecture 6, "Measure of variability collapse"; Papyan, Han & Donoho, PNAS 2020, Fig. 6;
        Zhu et al., *A geometric analysis of neural collapse with unconstrained features*, NeurIPS
        2021 (metric :math:`\mathcal{NC}_1`; ``validate_NC.py`` in their code); He & Su, *A law
        of data separation in deep learning*, PNAS 2023.

    Example:
        >>> H = torch.eye(6, dtype=torch.float64)  # orthonormal rows: no variability in Σ_B's span
        >>> y = torch.tensor([0, 0, 1, 1, 2, 2])
        >>> bool(nc1(H, y) < 1e-20)
        True
        >>> H[1, 0] = 3.0  # within-class spread inside the span of the class means
        >>> nc1(H, y) > 0
        tensor(True)
    """
    _check_option("variant", variant, _VARIANTS)
    H, y, K = _prepare(features, labels, num_classes)
    means, counts = _class_statistics(H, y, K)
    proj = _pinv_factor(means, counts, variant)  # (p, r)
    _, projected = _within_sums(H, y, means, proj)
    value = projected / H.shape[0]
    if variant == "papyan":
        value = value / K
    return value.to(_result_dtype(H))


def trace_ratio(features: Tensor, labels: Tensor, num_classes: int | None = None) -> Tensor:
    r"""Separation measure :math:`D = \operatorname{tr}(\boldsymbol\Sigma_W)/\operatorname{tr}(\boldsymbol\Sigma_B)`.

    .. math::
        D = \frac{\operatorname{tr}\boldsymbol\Sigma_W}{\operatorname{tr}\boldsymbol\Sigma_B}
        = \frac{\frac1N\sum_i\|\boldsymbol h_i-\bar{\boldsymbol h}_{y_i}\|^2}
               {\frac1K\sum_k\|\bar{\boldsymbol h}_k-\boldsymbol h_G\|^2},

    computed in :math:`O(Np)` by two passes (class means, then residuals), never by expanding
    :math:`\sum\|h\|^2 - \ldots`, which cancels catastrophically once features collapse. For
    orthonormal features with ``n`` samples per class, :math:`D=(1-1/n)/(1/n-1/N)`. ``inf`` when all
    class means coincide.

    Args:
        features: ``H`` of shape ``(N, p)``, any floating dtype; computed in float64.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        num_classes: ``K``; defaults to ``max(y) + 1``.

    Returns:
        0-dim tensor on the features' device, in their dtype.

    Reference:
        Lecture 6, "Measure of data separation" :math:`D_l`; Wang et al., *Understanding deep
        representation learning via layerwise feature compression and discrimination*, 2023.

    Example:
        >>> H = torch.eye(6, dtype=torch.float64)
        >>> trace_ratio(H, torch.tensor([0, 0, 1, 1, 2, 2]))  # (1 - 1/2) / (1/2 - 1/6)
        tensor(1.5000, dtype=torch.float64)
    """
    H, y, K = _prepare(features, labels, num_classes)
    means, counts = _class_statistics(H, y, K)
    total, _ = _within_sums(H, y, means, means.new_zeros(H.shape[1], 0))
    between = _centred_means(means, counts).square().sum() / K
    return (total / H.shape[0] / between).to(_result_dtype(H))


def _simplex_gram(K: int, like: Tensor) -> Tensor:
    """Unit-Frobenius Gram matrix of a K-simplex ETF, (I - 11ᵀ/K)/sqrt(K-1); (K, K)."""
    eye = torch.eye(K, dtype=like.dtype, device=like.device)
    return (eye - 1.0 / K) / math.sqrt(K - 1)


def _centred_class_means(
    features: Tensor, labels: Tensor, num_classes: int | None
) -> tuple[Tensor, torch.dtype]:
    """Centred class means (K, p) in the compute dtype, and the dtype results are returned in."""
    H, y, K = _prepare(features, labels, num_classes)
    means, counts = _class_statistics(H, y, K)
    return _centred_means(means, counts), _result_dtype(H)


def nc2(features: Tensor, labels: Tensor, num_classes: int | None = None) -> Tensor:
    r"""Convergence of the centred class means to a simplex ETF (Gram-matrix distance).

    .. math::
        \mathcal{NC}_2 = \Big\|\frac{\boldsymbol M\boldsymbol M^\top}{\|\boldsymbol M\boldsymbol M^\top\|_F}
        - \frac{\boldsymbol I_K - \frac1K\boldsymbol 1\boldsymbol 1^\top}{\sqrt{K-1}}\Big\|_F,
        \qquad \boldsymbol M = [\bar{\boldsymbol h}_k - \boldsymbol h_G]_{k} \in\mathbb R^{K\times p}.

    Zero exactly when the centred means are equal-norm and equiangular with cosines
    :math:`-1/(K-1)`; invariant to rotations and scaling of the features; at most 2.

    Args:
        features: ``H`` of shape ``(N, p)``.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        num_classes: ``K``; defaults to ``max(y) + 1``.

    Returns:
        0-dim tensor on the features' device, in their dtype.

    Reference:
        Zhu et al., NeurIPS 2021 (the :math:`\mathcal{NC}_2` metric, applied to the class means);
        Papyan, Han & Donoho, PNAS 2020, Definition (NC2).

    Example:
        >>> H = torch.tensor([[1.0, 0.0], [-0.5, 3 ** 0.5 / 2], [-0.5, -(3 ** 0.5) / 2]])
        >>> bool(nc2(H, torch.tensor([0, 1, 2])) < 1e-6)  # a triangle is a 3-simplex ETF
        True
    """
    M, dtype = _centred_class_means(features, labels, num_classes)  # (K, p)
    G = M @ M.mT  # (K, K)
    value = (G / G.norm() - _simplex_gram(M.shape[0], M)).norm()
    return value.to(dtype)


def equinorm(features: Tensor, labels: Tensor, num_classes: int | None = None) -> Tensor:
    r"""Coefficient of variation of the centred class-mean norms (0 under collapse).

    .. math::
        \frac{\operatorname{std}_k\|\bar{\boldsymbol h}_k-\boldsymbol h_G\|}
             {\operatorname{avg}_k\|\bar{\boldsymbol h}_k-\boldsymbol h_G\|}
        \quad\text{(std with Bessel's correction, as in Papyan et al.'s code).}

    Args:
        features: ``H`` of shape ``(N, p)``.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        num_classes: ``K``; defaults to ``max(y) + 1``.

    Returns:
        0-dim tensor on the features' device, in their dtype.

    Reference:
        Papyan, Han & Donoho, PNAS 2020, Fig. 2 (equinorm of class means).

    Example:
        >>> H = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
        >>> equinorm(H, torch.tensor([0, 1, 2, 3]))
        tensor(0.5774)
    """
    M, dtype = _centred_class_means(features, labels, num_classes)  # (K, p)
    norms = M.norm(dim=1)  # (K,)
    return (norms.std() / norms.mean()).to(dtype)


def equiangularity(
    features: Tensor,
    labels: Tensor,
    num_classes: int | None = None,
    *,
    measure: Literal["std", "simplex"] = "std",
) -> Tensor:
    r"""How equiangular the centred class means are (0 under collapse).

    With :math:`\cos_{kk'}` the cosine between :math:`\bar{\boldsymbol h}_k-\boldsymbol h_G` and
    :math:`\bar{\boldsymbol h}_{k'}-\boldsymbol h_G`, over the :math:`K(K-1)/2` pairs :math:`k<k'`:

    .. math::
        \texttt{"std"}:\ \operatorname{std}_{k<k'}\cos_{kk'},\qquad
        \texttt{"simplex"}:\ \operatorname{avg}_{k<k'}\Big|\cos_{kk'}+\frac{1}{K-1}\Big|.

    Args:
        features: ``H`` of shape ``(N, p)``.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        num_classes: ``K``; defaults to ``max(y) + 1``. ``"std"`` needs ``K >= 3``.
        measure: ``"std"`` (equal angles, Papyan et al. Fig. 3) or ``"simplex"`` (angles equal to the
            maximal :math:`\arccos(-1/(K-1))`, Papyan et al. Fig. 4).

    Returns:
        0-dim tensor on the features' device, in their dtype.

    Reference:
        Papyan, Han & Donoho, PNAS 2020, Figs. 3 and 4.

    Example:
        >>> H = torch.tensor([[1.0, 0.0], [-0.5, 3 ** 0.5 / 2], [-0.5, -(3 ** 0.5) / 2]])
        >>> bool(equiangularity(H, torch.tensor([0, 1, 2]), measure="simplex") < 1e-6)
        True
    """
    _check_option("measure", measure, ("std", "simplex"))
    M, dtype = _centred_class_means(features, labels, num_classes)  # (K, p)
    K = M.shape[0]
    if measure == "std" and K < 3:
        raise ValueError("equiangularity(measure='std') needs K >= 3 (one pair has no spread)")
    U = M / M.norm(dim=1, keepdim=True)
    i, j = torch.triu_indices(K, K, offset=1, device=M.device)
    cos = (U[i] * U[j]).sum(dim=1)  # (K(K-1)/2,)
    value = cos.std() if measure == "std" else (cos + 1.0 / (K - 1)).abs().mean()
    return value.to(dtype)


def _check_classifier(weight: object, K: int, p: int, bias: object = None) -> None:
    if not isinstance(weight, Tensor) or tuple(weight.shape) != (K, p):
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(
            f"weight must have shape (K, p) = ({K}, {p}) like nn.Linear.weight; got {shape}"
        )
    if bias is not None and (not isinstance(bias, Tensor) or tuple(bias.shape) != (K,)):
        shape = tuple(bias.shape) if isinstance(bias, Tensor) else type(bias).__name__
        raise ValueError(f"bias must have shape (K,) = ({K},); got {shape}")


def nc3(
    features: Tensor,
    labels: Tensor,
    weight: Tensor,
    num_classes: int | None = None,
    *,
    measure: Literal["duality", "etf"] = "duality",
) -> Tensor:
    r"""Alignment of the last-layer classifier with the centred class means (0 under collapse).

    With :math:`\boldsymbol M=[\bar{\boldsymbol h}_k-\boldsymbol h_G]_k` and classifier
    :math:`\boldsymbol W`, both ``(K, p)``:

    .. math::
        \texttt{"duality"}:\ \Big\|\frac{\boldsymbol W}{\|\boldsymbol W\|_F}
        -\frac{\boldsymbol M}{\|\boldsymbol M\|_F}\Big\|_F^2,\qquad
        \texttt{"etf"}:\ \Big\|\frac{\boldsymbol W\boldsymbol M^\top}{\|\boldsymbol W\boldsymbol M^\top\|_F}
        -\frac{\boldsymbol I_K-\frac1K\boldsymbol 1\boldsymbol 1^\top}{\sqrt{K-1}}\Big\|_F .

    Args:
        features: ``H`` of shape ``(N, p)``, the classifier's inputs.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        weight: ``W`` of shape ``(K, p)`` (``nn.Linear.weight``), moved to the features' device.
        num_classes: ``K``; defaults to ``max(y) + 1``.
        measure: ``"duality"`` (self-duality, Papyan et al. Fig. 5, in ``[0, 4]``) or ``"etf"``
            (Zhu et al.'s :math:`\mathcal{NC}_3`, the ``W``-``H`` relation, in ``[0, 2]``).

    Returns:
        0-dim tensor on the features' device, in their dtype.

    Reference:
        Papyan, Han & Donoho, PNAS 2020, Fig. 5; Zhu et al., NeurIPS 2021 (metric
        :math:`\mathcal{NC}_3`).

    Example:
        >>> H = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
        >>> nc3(H, torch.tensor([0, 1]), weight=torch.tensor([[2.0, 0.0], [-2.0, 0.0]]))
        tensor(0.)
    """
    _check_option("measure", measure, ("duality", "etf"))
    M, dtype = _centred_class_means(features, labels, num_classes)  # (K, p)
    _check_classifier(weight, *M.shape)
    W = weight.detach().to(device=M.device, dtype=M.dtype)  # (K, p)
    if measure == "duality":
        value = (W / W.norm() - M / M.norm()).square().sum()
    else:
        WM = W @ M.mT  # (K, K)
        value = (WM / WM.norm() - _simplex_gram(M.shape[0], M)).norm()
    return value.to(dtype)


def nc4(
    features: Tensor,
    labels: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    num_classes: int | None = None,
) -> Tensor:
    r"""Disagreement between the classifier and the nearest-class-centre rule (0 under collapse).

    .. math::
        \mathcal{NC}_4 = \frac1N\sum_{i=1}^N\mathbb 1\Big[\arg\max_k(\boldsymbol W\boldsymbol h_i+
        \boldsymbol b)_k \ne \arg\min_k\|\boldsymbol h_i-\bar{\boldsymbol h}_k\|\Big].

    Labels only define the class means; the fraction is over all ``N`` samples. Ties go to the
    smaller class index in both rules.

    Args:
        features: ``H`` of shape ``(N, p)``, the classifier's inputs.
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        weight: ``W`` of shape ``(K, p)``.
        bias: ``b`` of shape ``(K,)`` or ``None``.
        num_classes: ``K``; defaults to ``max(y) + 1``.

    Returns:
        0-dim tensor in ``[0, 1]`` on the features' device, in their dtype.

    Reference:
        Papyan, Han & Donoho, PNAS 2020, Fig. 7 (simplification to nearest class centre).

    Example:
        >>> H = torch.tensor([[1.0, 0.0], [3.0, 0.0], [-1.0, 0.0], [-3.0, 0.0]])
        >>> y = torch.tensor([0, 0, 1, 1])
        >>> nc4(H, y, weight=torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        tensor(0.)
    """
    H, y, K = _prepare(features, labels, num_classes)
    means, _ = _class_statistics(H, y, K)  # (K, p)
    _check_classifier(weight, K, H.shape[1], bias)
    W = weight.detach().to(device=means.device, dtype=means.dtype)  # (K, p)
    b = means.new_zeros(K) if bias is None else bias.detach().to(means.device, means.dtype)
    sq_norms = means.square().sum(dim=1)  # (K,)
    wrong = means.new_zeros(())
    for _, Hc in _chunks_as(H, means.dtype):  # (n_chunk, p)
        net = (Hc @ W.mT + b).argmax(dim=1)
        ncc = (sq_norms - 2 * Hc @ means.mT).argmin(dim=1)  # ‖h‖² is the same for every k
        wrong += (net != ncc).sum()
    return (wrong / H.shape[0]).to(_result_dtype(H))


# --------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------


class CollapseAccumulator:
    r"""Two-pass streaming :func:`nc1` and :func:`trace_ratio` for data that does not fit in memory.

    Pass 1 (:meth:`update_means`) accumulates class sums and counts, ``(K, p)`` and ``(K,)``, in
    float64. Pass 2 (:meth:`update_within`) accumulates, with the final class means and the
    pseudo-inverse factor :math:`\boldsymbol P` of :func:`nc1` fixed,

    .. math::
        \sum_i\|\boldsymbol h_i-\bar{\boldsymbol h}_{y_i}\|^2 \quad\text{and}\quad
        \sum_i\|\boldsymbol P^\top(\boldsymbol h_i-\bar{\boldsymbol h}_{y_i})\|^2,

    exactly the sums the in-memory functions form, so the results agree with them up to the order
    of floating-point additions. Memory is :math:`O(pK)`. Both passes must see the same samples
    (any order and batching; no random augmentation): pass 2's class counts are checked against
    pass 1's. State lives on the device of the first batch; later batches are moved there.

    Args:
        num_classes: ``K >= 2``.
        variant: as in :func:`nc1`.

    Reference:
        Lecture 6; the exact low-rank evaluation of :func:`nc1`.

    Example:
        >>> H = torch.randn(12, 5, dtype=torch.float64)
        >>> y = torch.arange(12) % 3
        >>> batches = [(H[:5], y[:5]), (H[5:], y[5:])]
        >>> acc = CollapseAccumulator(num_classes=3)
        >>> for Hb, yb in batches:
        ...     acc.update_means(Hb, yb)
        >>> for Hb, yb in batches:
        ...     acc.update_within(Hb, yb)
        >>> bool(torch.allclose(acc.nc1(), nc1(H, y), rtol=1e-12))
        True
    """

    def __init__(self, num_classes: int, *, variant: Variant = "lecture") -> None:
        self.num_classes = check_num_classes(num_classes)
        _check_option("variant", variant, _VARIANTS)
        self.variant = variant
        self._sums: Tensor | None = None  # (K, p)
        self._counts: Tensor | None = None  # (K,)
        self._result_dtype: torch.dtype | None = None
        self._means: Tensor | None = None  # (K, p), set when pass 2 starts
        self._proj: Tensor | None = None  # (p, r)
        self._counts2: Tensor | None = None  # (K,)
        self._total: Tensor | None = None  # Σ‖h - h̄‖²
        self._projected: Tensor | None = None  # Σ‖Pᵀ(h - h̄)‖²

    def _batch(self, features: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        H = _check_features(features)
        if self._sums is not None:
            if H.shape[1] != self._sums.shape[1]:
                raise ValueError(
                    f"feature dimension changed between batches: expected p={self._sums.shape[1]}, "
                    f"got {H.shape[1]}"
                )
            H = H.to(self._sums.device)
        y = _check_labels(labels, H.shape[0], H.device)
        _check_range(y, self.num_classes)
        return H, y

    @property
    def num_samples(self) -> int:
        """Samples seen in pass 1."""
        return 0 if self._counts is None else int(self._counts.sum())

    def update_means(self, features: Tensor, labels: Tensor) -> None:
        """Pass 1: add a batch ``features`` ``(B, p)``, ``labels`` ``(B,)`` to the class sums."""
        if self._means is not None:
            raise ValueError(
                "update_means called after update_within: pass 1 (class means) must see all the "
                "data before pass 2 starts; create a new CollapseAccumulator to start over"
            )
        H, y = self._batch(features, labels)
        if self._sums is None:
            dtype = _compute_dtype(H.device)
            self._sums = torch.zeros(self.num_classes, H.shape[1], dtype=dtype, device=H.device)
            self._counts = torch.zeros(self.num_classes, dtype=torch.long, device=H.device)
            self._result_dtype = _result_dtype(H)
        _add_class_sums(H, y, self._sums, self._counts)

    def _start_within(self) -> None:
        if self._sums is None:
            raise ValueError(
                "pass 1 is empty: call update_means on every batch before update_within"
            )
        _check_nonempty(self._counts)
        self._means = self._sums / self._counts[:, None].to(self._sums.dtype)
        self._proj = _pinv_factor(self._means, self._counts, self.variant)
        self._counts2 = torch.zeros_like(self._counts)
        self._total = self._means.new_zeros(())
        self._projected = self._means.new_zeros(())

    def update_within(self, features: Tensor, labels: Tensor) -> None:
        """Pass 2: add a batch ``features`` ``(B, p)``, ``labels`` ``(B,)`` to the within-class sums."""
        H, y = self._batch(features, labels)
        if self._means is None:
            self._start_within()
        total, projected = _within_sums(H, y, self._means, self._proj)
        self._total += total
        self._projected += projected
        self._counts2 += torch.bincount(y, minlength=self.num_classes)

    def _finished(self) -> None:
        if self._means is None:
            raise ValueError(
                "run both passes (update_means, then update_within) before reading results"
            )
        if not torch.equal(self._counts, self._counts2):
            raise ValueError(
                f"the two passes saw different data: pass 1 had {int(self._counts.sum())} samples "
                f"and pass 2 {int(self._counts2.sum())} (or different class counts); feed the same "
                "samples to both passes"
            )

    def class_means(self) -> Tensor:
        """Class means after pass 1; shape ``(K, p)``, in the first batch's dtype."""
        if self._sums is None:
            raise ValueError("no data yet: call update_means first")
        _check_nonempty(self._counts)
        return (self._sums / self._counts[:, None].to(self._sums.dtype)).to(self._result_dtype)

    def _values(self) -> tuple[Tensor, Tensor]:
        """``(nc1, trace_ratio)`` in the accumulation dtype (float64 except on MPS)."""
        self._finished()
        N = int(self._counts.sum())
        value = self._projected / N
        if self.variant == "papyan":
            value = value / self.num_classes
        between = _centred_means(self._means, self._counts).square().sum() / self.num_classes
        return value, self._total / N / between

    def nc1(self) -> Tensor:
        """:func:`nc1` of all the data; 0-dim tensor in the first batch's dtype."""
        return self._values()[0].to(self._result_dtype)

    def trace_ratio(self) -> Tensor:
        """:func:`trace_ratio` of all the data; 0-dim tensor in the first batch's dtype."""
        return self._values()[1].to(self._result_dtype)
