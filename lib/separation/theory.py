r"""The law of progressive separation and the theorem behind it, for deep linear networks.

.. math::

    \log D_l \approx a + b\,l,\qquad
    \frac{D_{l+1}}{D_l} \le 2(\sqrt K + 1)\,\varepsilon^2 \ \text{(Wang et al. '23)},

measured (:func:`decay_ratios`, :func:`fit_decay`), bounded (:func:`ratio_bound`), predicted for
the idealised trained network (:func:`ideal_ratio`), and the theorem's assumptions measured on
trained weights (:func:`theorem_assumptions`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lib import dln, spectra
from lib._checks import check_int as _check_int
from lib._checks import check_not_meta, check_real
from lib.separation._validate import (
    _check_inputs,
    _check_positive,
    _check_series,
    _check_weights,
)

__all__ = [
    "Assumptions",
    "DecayFit",
    "decay_ratios",
    "fit_decay",
    "ideal_ratio",
    "ratio_bound",
    "theorem_assumptions",
]


def decay_ratios(D: Tensor) -> Tensor:
    r"""Per-layer ratios :math:`D_{l+1}/D_l`.

    .. math::

        r_l = D_{l+1} / D_l,\qquad l = 0, \dots, k - 2 \text{ for } k \text{ layers}.

    Args:
        D: ``(..., k)`` separation values, finite and > 0.

    Returns:
        ``(..., k - 1)``.

    Reference:
        Lecture 6, section 3, Thm. (Wang et al. '23): :math:`D_{l+1}/D_l \le 2(\sqrt K+1)\varepsilon^2`.

    Example:
        >>> decay_ratios(torch.tensor([8.0, 4.0, 1.0]))
        tensor([0.5000, 0.2500])
    """
    D = _check_series(D)
    return D[..., 1:] / D[..., :-1]


@dataclass(frozen=True)
class DecayFit:
    r"""Least-squares line through :math:`(l, \log D_l)` (see :func:`fit_decay`).

    Attributes:
        slope: ``(...)``, :math:`b` in :math:`\log D_l \approx a + b\,l`.
        intercept: ``(...)``, :math:`a`.
        ratio: ``(...)``, :math:`e^{b}`, the fitted per-layer ratio.
        r2: ``(...)``, squared Pearson correlation of :math:`l` and :math:`\log D_l` (1: a line).
    """

    slope: Tensor
    intercept: Tensor
    ratio: Tensor
    r2: Tensor

    def line(self, layers: Tensor) -> Tensor:
        r"""The fitted :math:`e^{a + b l}` at ``layers`` ``(k,)``; ``(..., k)``, on the fit's device."""
        if isinstance(layers, Tensor):
            check_not_meta("layers", layers)
        try:
            layers = torch.as_tensor(layers, dtype=self.slope.dtype, device=self.slope.device)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"layers must be a tensor or a list of layer indices, got {type(layers).__name__}"
            ) from None
        if not bool(torch.isfinite(layers).all()):
            raise ValueError("layers contains NaN or infinite entries; pass layer indices")
        return torch.exp(self.intercept[..., None] + self.slope[..., None] * layers)


def fit_decay(D: Tensor) -> DecayFit:
    r"""Fit the law of progressive separation, :math:`\log D_l \approx a + b\,l`, by least squares.

    .. math::

        b = \frac{\sum_l (l-\bar l)(\log D_l - \overline{\log D})}{\sum_l (l - \bar l)^2},\quad
        a = \overline{\log D} - b\,\bar l,\quad \text{ratio} = e^{b},

    over layers :math:`l = 0, \dots, k-1` (pass the layers to fit, e.g. ``D[..., :-1]`` to leave
    out the output). He & Su report the same fit and its Pearson correlation.

    Args:
        D: ``(..., k)``, ``k >= 2``, finite and > 0.

    Returns:
        A :class:`DecayFit` of ``(...)`` tensors in float64 (or D's dtype if wider).

    Reference:
        He & Su, *A law of data separation in deep learning*, PNAS 2023 (log-linear fit);
        Lecture 6, section 3, "Linear decay of feature separation".

    Example:
        >>> fit = fit_decay(torch.tensor([1.0, 0.5, 0.25, 0.125]))
        >>> round(float(fit.ratio), 6), round(float(fit.r2), 6)
        (0.5, 1.0)
    """
    D = _check_series(D)
    logD = torch.log(D.to(torch.promote_types(D.dtype, torch.float64)))  # (..., k)
    layers = torch.arange(D.shape[-1], dtype=logD.dtype, device=D.device)
    lc = layers - layers.mean()
    yc = logD - logD.mean(-1, keepdim=True)
    slope = (yc * lc).sum(-1) / lc.square().sum()
    intercept = logD.mean(-1) - slope * layers.mean()
    ss_tot = yc.square().sum(-1)
    ss_res = (yc - slope[..., None] * lc).square().sum(-1)
    r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp_min(torch.finfo(logD.dtype).tiny), 1.0)
    return DecayFit(slope, intercept, torch.exp(slope), r2)


def ratio_bound(num_classes: int, scale: float) -> float:
    r"""The theorem's bound on the per-layer ratio.

    .. math::

        \frac{D_{l+1}}{D_l} \le 2(\sqrt K + 1)\,\varepsilon^2,

    vacuous (at least 1, while :math:`D_{l+1} \le D_l` needs no theorem) once
    :math:`\varepsilon \ge (2\sqrt K + 2)^{-1/2}` — about 0.39 for ``K = 5``.

    Args:
        num_classes: ``K >= 2``.
        scale: ε > 0.

    Returns:
        The bound as a Python float.

    Reference:
        Wang et al. 2023, Thm. 1; Lecture 6, section 3, Thm. (Wang et al. '23).

    Example:
        >>> round(ratio_bound(5, 0.5), 4)
        1.618
    """
    K = _check_int("num_classes", num_classes, 2)
    eps = _check_positive("scale", scale)
    return 2.0 * (math.sqrt(K) + 1.0) * eps**2


def ideal_ratio(per_class: int, depth: int, scale: float) -> float:
    r"""The per-layer ratio of the idealised trained linear network (a heuristic, not the theorem).

    .. math::

        \frac{D_{l+1}}{D_l} = \frac{\varepsilon^2}{s^2} = \varepsilon^2\, n^{-1/L},
        \qquad s = n^{1/(2L)}.

    Idealisation: inputs orthonormal and square, the network exactly at the balanced global
    optimum, every layer acting as :math:`s` times an isometry on the span of the class means and
    as :math:`\varepsilon` times an isometry on the within-class directions. The end-to-end map
    then equals :math:`M = Y^\top X` there, whose ``K`` singular values are all :math:`\sqrt n`, so
    :math:`s^L = \sqrt n`; within-class energy shrinks by :math:`\varepsilon^2` per layer and
    between-class energy grows by :math:`s^2`. Trained networks leave ``K`` of the within-class
    directions away from ε, so this is an approximation (see the chapter's exercise).

    Args:
        per_class: ``n >= 1``.
        depth: ``L >= 1``.
        scale: ε > 0.

    Returns:
        The predicted ratio as a Python float.

    Reference:
        Derived in the book's chapter 3 from the structure in Yaras et al. 2023, Thm. 1.

    Example:
        >>> round(ideal_ratio(10, 8, 0.5), 4)
        0.1875
    """
    n = _check_int("per_class", per_class, 1)
    L = _check_int("depth", depth, 1)
    eps = _check_positive("scale", scale)
    return eps**2 * n ** (-1.0 / L)


@dataclass(frozen=True)
class Assumptions:
    r"""The assumptions of the theorem, measured on trained weights (see :func:`theorem_assumptions`).

    Attributes:
        optimality: ``(...)``, :math:`\|W_{L:1}X - Y\|_F/\|Y\|_F` (0 at a global optimum).
        balancedness: ``(..., L - 1)``, :math:`\|W_{l+1}^\top W_{l+1} - W_l W_l^\top\|_F`; the
            theorem needs 0 for :math:`l \le L-2` and at most ``allowed_gap`` for the last one.
        allowed_gap: :math:`\varepsilon^2\sqrt{d - K}`.
        at_scale: ``(..., L - 1)``, how many singular values of :math:`W_l`, :math:`l < L`, are
            within ``rtol`` of ε.
        common_at_scale: ``(...)``, how many *indices* :math:`i` (singular values in descending
            order) have :math:`\sigma_i(W_l) \approx \varepsilon` for every :math:`l < L`: the
            size of the theorem's index set :math:`\mathcal A`.
        needed: :math:`d - 2K`, the size the theorem asks of :math:`\mathcal A`.
        bound: :math:`2(\sqrt K + 1)\varepsilon^2` (:func:`ratio_bound`).
    """

    optimality: Tensor
    balancedness: Tensor
    allowed_gap: float
    at_scale: Tensor
    common_at_scale: Tensor
    needed: int
    bound: float

    def summary(self) -> dict[str, object]:
        """Named scalars of one run, for :func:`lib.report` (raises for a batch of runs)."""
        if self.optimality.ndim != 0:
            raise ValueError(
                f"summary() needs the assumptions of one run, got a batch of shape "
                f"{tuple(self.optimality.shape)}; index the weights first"
            )
        gaps = self.balancedness
        return {
            "global optimality  |W_L:1 X - Y| / |Y|": self.optimality,
            "balancedness  max gap, l <= L-2 (needs 0)": gaps[:-1].max() if gaps.numel() > 1 else 0,
            "balancedness  last gap": gaps[-1],
            "balancedness  allowed last gap": self.allowed_gap,
            "spectrum  #{i : sigma_i(W_l) = eps for all l < L}": self.common_at_scale,
            "spectrum  needed d - 2K": self.needed,
            "bound  2(sqrt K + 1) eps^2": self.bound,
        }


def theorem_assumptions(
    weights: Sequence[Tensor], X: Tensor, Y: Tensor, scale: float, rtol: float = 1e-6
) -> Assumptions:
    r"""Measure each assumption of the progressive-separation theorem on (trained) linear weights.

    Theorem (Wang et al. '23, as in the lecture): square orthogonal ``X``, width
    :math:`d > 2K`, ε-orthogonal initialisation; if

    * global optimality: :math:`W_{L:1}X = Y` (rows: :math:`X W_{L:1}^\top = Y`);
    * balancedness: :math:`W_{l+1}^\top W_{l+1} = W_l W_l^\top` for :math:`l \le L-2` and
      :math:`\|W_L^\top W_L - W_{L-1}W_{L-1}^\top\|_F \le \varepsilon^2\sqrt{d-K}`;
    * unchanged spectrum: an index set :math:`\mathcal A`, :math:`|\mathcal A| = d - 2K`, with
      :math:`\sigma_i(W_l) = \varepsilon` for all :math:`i\in\mathcal A`, :math:`l \le L-1`,

    then :math:`D_{l+1}/D_l \le 2(\sqrt K+1)\varepsilon^2` for :math:`l = 0, \dots, L-2`.
    This function returns how far each holds; SVDs in float64.

    Args:
        weights: ``L >= 2`` tensors ``(..., d_l, d_{l-1})``, hidden layers square ``d x d``.
        X: ``(N, d)`` inputs (``N = d`` for the theorem).
        Y: ``(N, K)`` one-hot targets.
        scale: the initial scale ε.
        rtol: :math:`|\sigma_i - \varepsilon| \le \mathrm{rtol}\cdot\varepsilon` counts as "at ε".

    Returns:
        An :class:`Assumptions` (tensors with the weights' leading axes).

    Reference:
        Wang et al. 2023, Thm. 1; Lecture 6, section 3, Thm. (Wang et al. '23).

    Example:
        >>> from lib.separation import orthogonal_classes
        >>> X, y, Y = orthogonal_classes(2, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> Ws = dln.init_weights([10, 10, 10, 2], 0.5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        >>> a = theorem_assumptions(Ws, X, Y, 0.5)
        >>> int(a.common_at_scale), a.needed  # at initialisation every σ_i equals ε
        (10, 6)
    """
    Ws = _check_weights(weights)
    if len(Ws) < 2:
        raise ValueError("the theorem needs depth L >= 2 (balancedness pairs consecutive layers)")
    X = _check_inputs(X, Ws)
    eps = _check_positive("scale", scale)
    rtol = check_real("rtol", rtol, 0.0, strict=False)
    d, K = Ws[0].shape[-1], Ws[-1].shape[-2]
    if any(W.shape[-1] != d or W.shape[-2] != d for W in Ws[:-1]):
        raise ValueError(
            f"the theorem needs square hidden layers d x d with d = d_0 = {d}; got shapes "
            f"{[tuple(W.shape[-2:]) for W in Ws]}"
        )
    if d <= 2 * K:
        raise ValueError(f"the theorem needs width d > 2K; got d={d}, K={K}")
    if not isinstance(Y, Tensor) or Y.shape[-2:] != (X.shape[-2], K):
        got = tuple(Y.shape) if isinstance(Y, Tensor) else type(Y).__name__
        raise ValueError(f"Y must have shape (N, K) = ({X.shape[-2]}, {K}), got {got}")
    if Y.device != X.device:
        raise ValueError(f"Y is on {Y.device} but X is on {X.device}; move it with .to(X.device)")
    check_not_meta("Y", Y)
    if Y.is_floating_point() and not bool(torch.isfinite(Y).all()):
        raise ValueError("Y contains NaN or infinite entries; pass the one-hot targets")
    Ws64 = [W.to(torch.float64) for W in Ws]
    P = dln.end_to_end(Ws64)  # (..., K, d)
    residual = X.to(torch.float64) @ P.mT - Y.to(torch.float64)  # (..., N, K)
    optimality = torch.linalg.matrix_norm(residual) / torch.linalg.matrix_norm(Y.to(torch.float64))
    gaps = spectra.balancedness_gap(Ws64)  # (..., L - 1)
    S = torch.stack([torch.linalg.svdvals(W) for W in Ws64[:-1]], dim=-2)  # (..., L - 1, d)
    close = (S - eps).abs() <= rtol * eps
    return Assumptions(
        optimality=optimality,
        balancedness=gaps,
        allowed_gap=eps**2 * math.sqrt(d - K),
        at_scale=close.sum(-1),
        common_at_scale=close.all(-2).sum(-1),
        needed=d - 2 * K,
        bound=ratio_bound(K, eps),
    )
