r"""Neural collapse beyond NC1: simplex ETF of the class means (NC2), self-duality (NC3),
nearest class-centre decisions (NC4).

**Degenerate data.** :func:`nc2`, :func:`equinorm`, :func:`equiangularity` and :func:`nc3`
compare the *directions* of the centred class means. When all class means coincide (up to
rounding, the test of :func:`~lib.metrics.trace_ratio`) those directions do not exist and the
result is ``nan`` -- never a small number that reads as collapse. :func:`nc4` stays defined
(ties go to the smaller class index). Classifier weights and biases must be finite.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from lib._checks import check_not_meta
from lib._checks import check_option as _check_option
from lib.metrics._core import (
    _centred_means,
    _chunks_as,
    _class_statistics,
    _means_coincide,
    _prepare,
    _result_dtype,
)


def _simplex_gram(K: int, like: Tensor) -> Tensor:
    """Unit-Frobenius Gram matrix of a K-simplex ETF, (I - 11ᵀ/K)/sqrt(K-1); (K, K)."""
    eye = torch.eye(K, dtype=like.dtype, device=like.device)
    return (eye - 1.0 / K) / math.sqrt(K - 1)


def _centred_class_means(
    features: Tensor, labels: Tensor, num_classes: int | None
) -> tuple[Tensor, torch.dtype, Tensor]:
    """Centred class means (K, p) in the compute dtype, the dtype results are returned in, and
    the 0-dim bool "all class means coincide" (results are then ``nan``)."""
    H, y, K = _prepare(features, labels, num_classes)
    means, counts = _class_statistics(H, y, K)
    return _centred_means(means, counts), _result_dtype(H), _means_coincide(means, counts)


def _nan_if(degenerate: Tensor, value: Tensor, dtype: torch.dtype) -> Tensor:
    """``value`` in ``dtype``, or ``nan`` where the class means coincide (no host sync)."""
    return torch.where(degenerate, torch.nan, value).to(dtype)


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
        0-dim tensor on the features' device, in their dtype; ``nan`` if all class means
        coincide (see the module docstring).

    Reference:
        Zhu et al., NeurIPS 2021 (the :math:`\mathcal{NC}_2` metric, applied to the class means);
        Papyan, Han & Donoho, PNAS 2020, Definition (NC2).

    Example:
        >>> H = torch.tensor([[1.0, 0.0], [-0.5, 3 ** 0.5 / 2], [-0.5, -(3 ** 0.5) / 2]])
        >>> bool(nc2(H, torch.tensor([0, 1, 2])) < 1e-6)  # a triangle is a 3-simplex ETF
        True
    """
    M, dtype, degenerate = _centred_class_means(features, labels, num_classes)  # (K, p)
    G = M @ M.mT  # (K, K)
    value = (G / G.norm() - _simplex_gram(M.shape[0], M)).norm()
    return _nan_if(degenerate, value, dtype)


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
        0-dim tensor on the features' device, in their dtype; ``nan`` if all class means
        coincide (see the module docstring).

    Reference:
        Papyan, Han & Donoho, PNAS 2020, Fig. 2 (equinorm of class means).

    Example:
        >>> H = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
        >>> equinorm(H, torch.tensor([0, 1, 2, 3]))
        tensor(0.5774)
    """
    M, dtype, degenerate = _centred_class_means(features, labels, num_classes)  # (K, p)
    norms = M.norm(dim=1)  # (K,)
    return _nan_if(degenerate, norms.std() / norms.mean(), dtype)


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
        0-dim tensor on the features' device, in their dtype; ``nan`` if all class means
        coincide (see the module docstring).

    Reference:
        Papyan, Han & Donoho, PNAS 2020, Figs. 3 and 4.

    Example:
        >>> H = torch.tensor([[1.0, 0.0], [-0.5, 3 ** 0.5 / 2], [-0.5, -(3 ** 0.5) / 2]])
        >>> bool(equiangularity(H, torch.tensor([0, 1, 2]), measure="simplex") < 1e-6)
        True
    """
    _check_option("measure", measure, ("std", "simplex"))
    M, dtype, degenerate = _centred_class_means(features, labels, num_classes)  # (K, p)
    K = M.shape[0]
    if measure == "std" and K < 3:
        raise ValueError("equiangularity(measure='std') needs K >= 3 (one pair has no spread)")
    U = M / M.norm(dim=1, keepdim=True)
    i, j = torch.triu_indices(K, K, offset=1, device=M.device)
    cos = (U[i] * U[j]).sum(dim=1)  # (K(K-1)/2,)
    value = cos.std() if measure == "std" else (cos + 1.0 / (K - 1)).abs().mean()
    return _nan_if(degenerate, value, dtype)


def _check_classifier(weight: object, K: int, p: int, bias: object = None) -> None:
    if not isinstance(weight, Tensor) or tuple(weight.shape) != (K, p):
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(
            f"weight must have shape (K, p) = ({K}, {p}) like nn.Linear.weight; got {shape}"
        )
    if bias is not None and (not isinstance(bias, Tensor) or tuple(bias.shape) != (K,)):
        shape = tuple(bias.shape) if isinstance(bias, Tensor) else type(bias).__name__
        raise ValueError(f"bias must have shape (K,) = ({K},); got {shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"{name} must be real numbers, got dtype {t.dtype}")
        check_not_meta(name, t)
        bad = int((~torch.isfinite(t)).sum()) if t.is_floating_point() else 0
        if bad:
            raise ValueError(
                f"{name} contains {bad} non-finite value(s) (NaN or Inf): the classifier has "
                "diverged, so its decisions mean nothing; check the training run (learning "
                "rate, loss) before measuring collapse"
            )


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
        0-dim tensor on the features' device, in their dtype; ``nan`` if all class means
        coincide (see the module docstring).

    Reference:
        Papyan, Han & Donoho, PNAS 2020, Fig. 5; Zhu et al., NeurIPS 2021 (metric
        :math:`\mathcal{NC}_3`).

    Example:
        >>> H = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
        >>> nc3(H, torch.tensor([0, 1]), weight=torch.tensor([[2.0, 0.0], [-2.0, 0.0]]))
        tensor(0.)
    """
    _check_option("measure", measure, ("duality", "etf"))
    M, dtype, degenerate = _centred_class_means(features, labels, num_classes)  # (K, p)
    _check_classifier(weight, *M.shape)
    W = weight.detach().to(device=M.device, dtype=M.dtype)  # (K, p)
    if measure == "duality":
        value = (W / W.norm() - M / M.norm()).square().sum()
    else:
        WM = W @ M.mT  # (K, K)
        value = (WM / WM.norm() - _simplex_gram(M.shape[0], M)).norm()
    return _nan_if(degenerate, value, dtype)


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
