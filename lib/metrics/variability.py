r"""Within-class variability collapse (NC1) and the separation measure D, exact and fast.

The functions behind the lecture's "measure of variability collapse":
:math:`\mathcal{NC}_1 = \operatorname{tr}(\boldsymbol\Sigma_W\boldsymbol\Sigma_B^\dagger)` and
:math:`D = \operatorname{tr}\boldsymbol\Sigma_W/\operatorname{tr}\boldsymbol\Sigma_B`, with
:math:`\boldsymbol\Sigma_W, \boldsymbol\Sigma_B` as in :mod:`lib.metrics`. Neither forms a
``p x p`` matrix; the dense covariances are here too, for small ``p`` and for plots.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lib._checks import check_option as _check_option
from lib.metrics._core import (
    _VARIANTS,
    Variant,
    _centred_means,
    _chunks_as,
    _class_statistics,
    _means_coincide,
    _pinv_factor,
    _prepare,
    _result_dtype,
    _within_sums,
)


def _check_products(cov: Tensor) -> None:
    """Refuse a covariance whose float64 products overflowed (features above about 1e154).

    The features themselves were checked finite by the class sums; one host sync, after the
    ``O(N p^2)`` work.
    """
    if not bool(torch.isfinite(cov).all()):
        raise ValueError(
            "features are so large that their covariance overflows float64 (products of entries "
            "above about 1e154); rescale them, e.g. H / H.abs().max()"
        )


def class_means(features: Tensor, labels: Tensor, num_classes: int | None = None) -> Tensor:
    r"""Class means of the rows of ``features``.

    .. math::
        \bar{\boldsymbol h}_k = \frac{1}{n_k}\sum_{i:\,y_i=k}\boldsymbol h_i,\qquad k=0,\dots,K-1.

    Args:
        features: ``H`` of shape ``(N, p)``, one sample per row, any real dtype (float16 and
            bfloat16 included: every metric accumulates in float64 and rounds once on return).
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
        features: ``H`` of shape ``(N, p)``, any real dtype (float16 and bfloat16 included).
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        num_classes: ``K``; defaults to ``max(y) + 1``.

    Returns:
        Tensor of shape ``(p, p)`` on the features' device, in their dtype (accumulated in
        float64; in float16 an entry above 65504 reads ``inf``, see :mod:`lib.metrics`). All
        features identical give the zero matrix up to rounding. Entries large enough to
        overflow float64 products raise a ``ValueError``.

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
    _check_products(cov)
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
        features: ``H`` of shape ``(N, p)``, any real dtype (float16 and bfloat16 included).
        labels: ``y`` of shape ``(N,)``, integers in ``[0, K)``.
        num_classes: ``K``; defaults to ``max(y) + 1``.

    Returns:
        Tensor of shape ``(p, p)`` on the features' device, in their dtype (accumulated in
        float64; in float16 an entry above 65504 reads ``inf``, see :mod:`lib.metrics`). All
        features identical give the zero matrix up to rounding. Entries large enough to
        overflow float64 products raise a ``ValueError``.

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
    cov = C.mT @ C
    _check_products(cov)
    return (cov / K).to(_result_dtype(H))


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

    **Pseudo-inverse cutoff.** A singular value :math:`s_i` of :math:`\boldsymbol F` is kept when
    :math:`s_i > \max(K, p)\,\varepsilon\,\max\big(s_1, (\sum_k w_k\|\bar{\boldsymbol h}_k\|^2)^{1/2}\big)`
    (:math:`w_k` the class weights of :math:`\boldsymbol\Sigma_B`, :math:`\varepsilon` the float64
    machine epsilon). If every value is cut (all class means equal, up to rounding, so
    :math:`\boldsymbol\Sigma_B = 0`), the result is 0, as the definition says
    (:math:`\boldsymbol 0^\dagger = \boldsymbol 0`) -- even when all features are identical;
    read it together with :func:`trace_ratio`, which is ``inf`` there (no separation). Why this rule, and how it compares with
    the dense ``pinv``: book, Notation page, Notes § "The pseudo-inverse cutoff of NC1".

    Args:
        features: ``H`` of shape ``(N, p)``, any real dtype (float16 and bfloat16 included).
            Accumulated in float64 (float32 on MPS), so float32 features give the float64 value
            of their exact entries, rounded once to float32 on return.
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
    orthonormal features with ``n`` samples per class, :math:`D=(1-1/n)/(1/n-1/N)`.

    **Zero between-class spread.** When all class means coincide up to rounding
    (:math:`\frac1K\sum_k\|\bar{\boldsymbol h}_k-\boldsymbol h_G\|^2 \le
    (\max(K,p)\,\varepsilon)^2\,\frac1K\sum_k\|\bar{\boldsymbol h}_k\|^2`, the scale of
    :func:`nc1`'s cutoff) the result is ``inf``: the classes are not separated at all. This holds
    even when :math:`\operatorname{tr}\boldsymbol\Sigma_W = 0` too (all features identical),
    where the quotient would be 0/0: "no separation" is never reported as NaN or as a small value.

    Args:
        features: ``H`` of shape ``(N, p)``, any real dtype (float16 and bfloat16 included);
            computed in float64.
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
    value = torch.where(_means_coincide(means, counts), torch.inf, total / H.shape[0] / between)
    return value.to(_result_dtype(H))
