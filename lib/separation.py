r"""Progressive feature separation: the per-layer measure :math:`D_l`, its log-linear decay, the theorem.

Lecture 6, section 3 (Wang et al. '23; He & Su '23). A network with weights
``Ws = [W_1, ..., W_L]`` maps an input row :math:`\boldsymbol x` to the features of layer :math:`l`,

.. math::

    \boldsymbol z^0 = \boldsymbol x,\qquad
    \boldsymbol z^l = \sigma(W_l \boldsymbol z^{l-1})\ (l < L),\qquad
    \boldsymbol z^L = W_L \boldsymbol z^{L-1},

with :math:`\sigma` the identity (linear network, :math:`\boldsymbol z^l = W_{l:1}\boldsymbol x`) or
ReLU. The separation of layer :math:`l` is
:math:`D_l = \operatorname{tr}\Sigma_W^l / \operatorname{tr}\Sigma_B^l`
(:func:`lib.metrics.trace_ratio`); the law of progressive separation says
:math:`\log D_l` falls on a line, i.e. :math:`D_{l+1}/D_l` is the same for every layer.

Functional core:

* data — :func:`orthogonal_classes` (the lecture's square orthogonal inputs with one-hot targets);
* features — :func:`layer_features`, :func:`layer_separation`;
* the decay — :func:`decay_ratios`, :func:`fit_decay`, :func:`ideal_ratio`;
* the theorem — :func:`ratio_bound` and :func:`theorem_assumptions` (each assumption measured);
* training — :func:`train_to_tolerance` (batched GD until the loss is below a tolerance, on top of
  :func:`lib.dln.train_batched`) and :func:`train_settings` (a sweep of :class:`Setting` s, runs
  of equal shapes trained as one batch);
* beyond the lecture — :func:`load_digits` and :func:`train_digits_mlp`: a ReLU MLP trained on
  scikit-learn's offline ``digits`` images.

Data are rows, as everywhere in ``lib``: ``X`` is ``(N, d_0)`` and ``W_l`` is ``(d_l, d_{l-1})``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

import torch
from torch import Tensor, nn

from lib import dln, metrics, spectra
from lib._checks import check_int as _check_int
from lib._checks import check_option as _check_option

__all__ = [
    "Assumptions",
    "Converged",
    "DecayFit",
    "DigitsRun",
    "DigitsSetting",
    "Run",
    "Setting",
    "decay_ratios",
    "fit_decay",
    "ideal_ratio",
    "layer_features",
    "layer_separation",
    "load_digits",
    "orthogonal_classes",
    "ratio_bound",
    "theorem_assumptions",
    "train_digits_mlp",
    "train_settings",
    "train_to_tolerance",
]

Activation = Literal["linear", "relu"]
_ACTIVATIONS = ("linear", "relu")
_INIT_KINDS = ("orthogonal", "normal", "uniform")
PerRun = Union[float, Sequence, Tensor]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _check_positive(name: str, value: object) -> float:
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_weights(weights: object) -> list[Tensor]:
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError("weights must be a non-empty list of L tensors [W_1, ..., W_L]")
    for i, W in enumerate(weights):
        if not isinstance(W, Tensor) or W.ndim < 2 or not W.is_floating_point():
            got = tuple(W.shape) if isinstance(W, Tensor) else type(W).__name__
            raise ValueError(
                f"W_{i + 1} must be a floating-point tensor of shape (..., d_l, d_{{l-1}}), got {got}"
            )
        if i > 0 and W.shape[-1] != weights[i - 1].shape[-2]:
            raise ValueError(
                f"shape mismatch: W_{i + 1} has {W.shape[-1]} input columns but W_{i} has "
                f"{weights[i - 1].shape[-2]} output rows (W_l must be (d_l, d_{{l-1}}))"
            )
    return list(weights)


def _check_inputs(X: object, Ws: list[Tensor]) -> Tensor:
    if not isinstance(X, Tensor) or X.ndim < 2 or not X.is_floating_point():
        got = tuple(X.shape) if isinstance(X, Tensor) else type(X).__name__
        raise ValueError(f"X must be a floating-point tensor of shape (N, d_0), got {got}")
    if X.shape[-1] != Ws[0].shape[-1]:
        raise ValueError(
            f"shape mismatch: X has {X.shape[-1]} columns but W_1 expects d_0 = "
            f"{Ws[0].shape[-1]} (data are rows: X is (N, d_0))"
        )
    if X.dtype != Ws[0].dtype:
        raise ValueError(f"X has dtype {X.dtype} but the weights have {Ws[0].dtype}")
    return X


def _check_series(D: object) -> Tensor:
    if not isinstance(D, Tensor) or D.ndim < 1 or not D.is_floating_point():
        got = tuple(D.shape) if isinstance(D, Tensor) else type(D).__name__
        raise ValueError(f"D must be a floating-point tensor of shape (..., layers), got {got}")
    if D.shape[-1] < 2:
        raise ValueError(f"D needs at least 2 layers to measure a decay, got {D.shape[-1]}")
    if not bool(torch.isfinite(D).all()) or bool((D <= 0).any()):
        raise ValueError(
            "D must hold finite values > 0 (log D_l is fitted); a layer with D_l = 0 or inf "
            "has collapsed or lost its class means — leave it out"
        )
    return D


# --------------------------------------------------------------------------------------------
# data and features
# --------------------------------------------------------------------------------------------


def orthogonal_classes(
    num_classes: int,
    per_class: int,
    width: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""The lecture's classification data: orthonormal inputs, balanced classes, one-hot targets.

    .. math::

        X^\top X = I_d,\qquad y_i = \lfloor i / n \rfloor,\qquad Y_{ik} = \mathbb 1[y_i = k],

    with :math:`N = nK` samples; ``width=None`` gives :math:`d = N`, so ``X`` is a random
    orthogonal matrix (the setting of the theorem and of the public code behind the lecture's
    figures). For such inputs every within-class deviation is orthogonal to every class mean and
    :math:`D_0 = (1 - 1/n)/(1/n - 1/N)` exactly.

    Args:
        num_classes: ``K >= 2``.
        per_class: ``n >= 2`` samples per class.
        width: ``d <= N`` (default ``N``).
        generator: random source (CPU when ``None``).
        dtype: floating dtype (default: torch's default); use float64 for the theorem checks.
        device: result device (default: CPU).

    Returns:
        ``(X, y, Y)``: ``X`` ``(N, d)``, labels ``y`` ``(N,)`` int64, targets ``Y`` ``(N, K)``.

    Reference:
        Lecture 6, section 3, "Problem setup"; Wang et al. 2023, Thm. (orthogonal square X).

    Example:
        >>> X, y, Y = orthogonal_classes(3, 4, generator=torch.Generator().manual_seed(0))
        >>> tuple(X.shape), y.tolist()[:5], tuple(Y.shape)
        ((12, 12), [0, 0, 0, 0, 1], (12, 3))
    """
    K = _check_int("num_classes", num_classes, 2)
    n = _check_int("per_class", per_class, 2)
    N = K * n
    d = N if width is None else _check_int("width", width, 1)
    if d > N:
        raise ValueError(f"width d must be <= N = nK = {N} so that X^T X = I_d, got d={d}")
    X = dln.whitened_inputs(N, d, generator=generator, dtype=dtype, device=device)
    y = torch.arange(K, device=device).repeat_interleave(n)  # (N,)
    Y = dln.one_hot_targets(y, K, dtype=X.dtype)  # (N, K)
    return X, y, Y


def layer_features(
    weights: Sequence[Tensor], X: Tensor, activation: Activation = "linear"
) -> list[Tensor]:
    r"""Features of every layer, the input included.

    .. math::

        Z_0 = X,\qquad Z_l = \sigma(Z_{l-1} W_l^\top)\ (1 \le l < L),\qquad Z_L = Z_{L-1} W_L^\top,

    rows of :math:`Z_l` being the lecture's :math:`\boldsymbol z^l_i`
    (:math:`= W_{l:1}\boldsymbol x_i` for the linear network); :math:`\sigma` is ReLU for
    ``activation="relu"``, after every layer but the last.

    Args:
        weights: ``L`` tensors ``(..., d_l, d_{l-1})`` (any common leading run axes).
        X: ``(N, d_0)``, or ``(..., N, d_0)`` with the weights' leading axes.
        activation: ``"linear"`` or ``"relu"``.

    Returns:
        ``L + 1`` tensors, ``Z_l`` of shape ``(..., N, d_l)``, on the weights' device.

    Reference:
        Lecture 6, section 3, "Feature in the l-th layer of DLN".

    Example:
        >>> Ws = [2 * torch.eye(3), torch.ones(1, 3)]
        >>> [tuple(Z.shape) for Z in layer_features(Ws, torch.eye(3))]
        [(3, 3), (3, 3), (3, 1)]
    """
    _check_option("activation", activation, _ACTIVATIONS)
    Ws = _check_weights(weights)
    Z = _check_inputs(X, Ws)
    out = [Z]
    for i, W in enumerate(Ws):
        Z = Z @ W.mT  # (..., N, d_l)
        if activation == "relu" and i < len(Ws) - 1:
            Z = torch.relu(Z)
        out.append(Z)
    return out


def layer_separation(
    weights: Sequence[Tensor],
    X: Tensor,
    labels: Tensor,
    activation: Activation = "linear",
    num_classes: int | None = None,
) -> Tensor:
    r"""The separation measure of every layer, :math:`D_0, D_1, \dots, D_L`.

    .. math::

        D_l = \frac{\operatorname{tr}\Sigma_W^l}{\operatorname{tr}\Sigma_B^l}
        \quad\text{of the features } Z_l \text{ of } :func:`layer_features`,

    each computed by :func:`lib.metrics.trace_ratio` (two passes, float64 accumulation).

    Args:
        weights: ``L`` tensors ``(..., d_l, d_{l-1})``.
        X: ``(N, d_0)`` or ``(..., N, d_0)``.
        labels: ``(N,)`` integers in ``[0, K)``.
        activation: ``"linear"`` or ``"relu"``.
        num_classes: ``K`` (default ``labels.max() + 1``).

    Returns:
        ``(..., L + 1)`` in the features' dtype, on their device.

    Reference:
        Lecture 6, section 3, "Measure of data separation" :math:`D_l`.

    Example:
        >>> X, y, _ = orthogonal_classes(2, 3, dtype=torch.float64)
        >>> Ws = [torch.eye(6, dtype=torch.float64)]
        >>> [round(v, 12) for v in layer_separation(Ws, X, y).tolist()]  # (1 - 1/3)/(1/3 - 1/6)
        [4.0, 4.0]
    """
    Zs = layer_features(weights, X, activation)
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.shape[0] != X.shape[-2]:
        got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must have shape (N,) = ({X.shape[-2]},), got {got}")
    batch = torch.broadcast_shapes(*(Z.shape[:-2] for Z in Zs))
    out = []
    for Z in Zs:
        flat = Z.expand(*batch, *Z.shape[-2:]).reshape(-1, *Z.shape[-2:])  # (B, N, d_l)
        out.append(torch.stack([metrics.trace_ratio(H, labels, num_classes) for H in flat]))
    return torch.stack(out, dim=-1).reshape(*batch, len(Zs))  # (..., L + 1)


# --------------------------------------------------------------------------------------------
# the decay
# --------------------------------------------------------------------------------------------


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
        layers = torch.as_tensor(layers, dtype=self.slope.dtype, device=self.slope.device)
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


# --------------------------------------------------------------------------------------------
# the theorem's assumptions, measured
# --------------------------------------------------------------------------------------------


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
    if not (isinstance(rtol, numbers.Real) and rtol >= 0 and math.isfinite(rtol)):
        raise ValueError(f"rtol must be a finite number >= 0, got {rtol!r}")
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


# --------------------------------------------------------------------------------------------
# training until the loss is below a tolerance
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Converged:
    """What :func:`train_to_tolerance` returns for ``B`` runs.

    Attributes:
        weights: ``L`` tensors ``(B, d_l, d_{l-1})``: each run's weights at the first check
            where its loss was below ``tol`` (or after ``max_steps`` if it never was).
        steps: ``(B,)`` int64, the GD step of those weights: iterations to converge.
        loss: ``(B,)``, the loss there.
        converged: ``(B,)`` bool, whether the loss went below ``tol``.
        curve: ``(T, B)``, the loss at every check (``NaN`` once a run has stopped).
        curve_steps: ``(T,)`` int64, the GD step of every check (``0, k, 2k, ...``).
    """

    weights: list
    steps: Tensor
    loss: Tensor
    converged: Tensor
    curve: Tensor
    curve_steps: Tensor


def _per_run(name: str, value: PerRun, n_runs: int) -> Tensor:
    try:
        t = torch.as_tensor(value, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a number or {n_runs} numbers, got {value!r}") from None
    if t.numel() == 1:
        t = t.expand(n_runs)
    if t.numel() != n_runs or not bool((torch.isfinite(t) & (t > 0)).all()):
        raise ValueError(f"{name} must be one or {n_runs} finite numbers > 0, got {value!r}")
    return t.clone()


def _mean_loss(Ws: list[Tensor], X: Tensor, Y: Tensor, activation: str) -> Tensor:
    F = layer_features(Ws, X, activation)[-1]  # (B, N, d_L)
    return 0.5 * (F - Y).square().mean(dim=(-2, -1))  # (B,)


def train_to_tolerance(
    weights: Sequence[Tensor],
    X: Tensor,
    Y: Tensor,
    lr: PerRun,
    tol: float = 1e-6,
    max_steps: int = 100_000,
    check_every: int = 100,
    activation: Activation = "linear",
) -> Converged:
    r"""Full-batch GD on ``B`` runs at once until each run's training loss is below ``tol``.

    .. math::

        \ell = \frac{1}{2 N d_L}\|F(X) - Y\|_F^2,\qquad
        W_l \leftarrow W_l - \eta\,\nabla_{W_l}\ell,\qquad
        \text{stop run } b \text{ at the first } t \in \{0, k, 2k, \dots\}
        \text{ with } \ell_b(t) < \mathrm{tol},

    the public code's protocol (mean loss, checks every ``k = 100`` steps, ``tol = 1e-6``). The
    steps are :func:`lib.dln.train_batched` calls of ``check_every`` steps; runs that have
    converged leave the batch, so the cost follows the slowest run only while it is alone.

    Args:
        weights: ``L`` tensors ``(B, d_l, d_{l-1})`` (e.g. from :func:`lib.dln.stack_runs`).
        X: ``(N, d_0)`` shared, or ``(B, N, d_0)``.
        Y: ``(N, d_L)`` shared, or ``(B, N, d_L)``.
        lr: η > 0, one number or ``B`` numbers.
        tol: loss tolerance > 0.
        max_steps: give up after this many steps (``>= 1``).
        check_every: steps between loss checks (``>= 1``).
        activation: ``"linear"`` or ``"relu"``.

    Returns:
        A :class:`Converged`, on the weights' device.

    Raises:
        ValueError: bad arguments, or divergence (from :func:`lib.dln.train_batched`, with the
            indices of the runs it refers to).

    Reference:
        Lecture 6, section 3 (public code ``cjyaras/law-of-parsimony``, ``fig_collapse``).

    Example:
        >>> X, y, Y = orthogonal_classes(2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> Ws = dln.init_weights_batched(2, [8, 8, 8, 2], [0.5, 1.0], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        >>> c = train_to_tolerance(Ws, X, Y, lr=2.0, tol=1e-6, check_every=10)
        >>> c.converged.tolist(), c.steps.tolist()  # the smaller ε takes longer
        ([True, True], [30, 20])
    """
    _check_option("activation", activation, _ACTIVATIONS)
    Ws = _check_weights(weights)
    if any(W.ndim != 3 or W.shape[0] != Ws[0].shape[0] for W in Ws):
        raise ValueError(
            "weights must be L tensors (B, d_l, d_{l-1}) with a common run axis B; "
            "use lib.dln.stack_runs or init_weights_batched"
        )
    B = Ws[0].shape[0]
    X = _check_inputs(X, Ws)
    tol = _check_positive("tol", tol)
    max_steps = _check_int("max_steps", max_steps, 1)
    check_every = _check_int("check_every", check_every, 1)
    lrs = _per_run("lr", lr, B)
    if not isinstance(Y, Tensor) or Y.ndim not in (2, 3) or Y.shape[-1] != Ws[-1].shape[-2]:
        got = tuple(Y.shape) if isinstance(Y, Tensor) else type(Y).__name__
        raise ValueError(f"Y must have shape (N, d_L) with d_L = {Ws[-1].shape[-2]}, got {got}")
    for name, t in (("X", X), ("Y", Y)):
        if t.ndim == 3 and t.shape[0] != B:
            raise ValueError(f"{name} has {t.shape[0]} runs on its leading axis but B = {B}")
    act = None if activation == "linear" else "relu"

    out_w = [W.detach().clone() for W in Ws]
    steps = torch.full((B,), max_steps, dtype=torch.int64)
    done_loss = torch.full((B,), float("nan"), dtype=Ws[0].dtype, device=Ws[0].device)
    conv = torch.zeros(B, dtype=torch.bool)
    curve, curve_steps = [], []
    active = torch.arange(B)
    cur = [W.detach() for W in Ws]
    Xa, Ya = X, Y
    loss = _mean_loss(cur, Xa, Ya, activation)  # (B,)
    t = 0
    while True:
        row = torch.full((B,), float("nan"), dtype=loss.dtype, device=loss.device)
        row[active.to(loss.device)] = loss
        curve.append(row)
        curve_steps.append(t)
        stop = (loss < tol).cpu() if t < max_steps else torch.ones(len(active), dtype=torch.bool)
        if bool(stop.any()):
            idx = active[stop]
            for i in range(len(out_w)):
                out_w[i][idx.to(out_w[i].device)] = cur[i][stop.to(cur[i].device)]
            steps[idx] = t
            done_loss[idx.to(done_loss.device)] = loss[stop.to(loss.device)]
            conv[idx] = (loss[stop.to(loss.device)] < tol).cpu()
            keep = ~stop
            active, lrs = active[keep], lrs[keep]
            cur = [W[keep.to(W.device)] for W in cur]
            Xa = Xa[keep.to(Xa.device)] if Xa.ndim == 3 else Xa
            Ya = Ya[keep.to(Ya.device)] if Ya.ndim == 3 else Ya
        if len(active) == 0:
            break
        k = min(check_every, max_steps - t)
        try:
            h = dln.train_batched(cur, Xa, Ya, lrs, k, activation=act, record_every=k)
        except ValueError as err:
            raise ValueError(
                f"{err} (train_to_tolerance: those indices count only the runs still training "
                f"after step {t}, which are runs {active.tolist()} of this call)"
            ) from err
        cur, loss, t = h.weights[-1], h.loss[-1], t + k
    return Converged(
        weights=out_w,
        steps=steps,
        loss=done_loss,
        converged=conv,
        curve=torch.stack(curve),
        curve_steps=torch.tensor(curve_steps, dtype=torch.int64),
    )


# --------------------------------------------------------------------------------------------
# sweeps of settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One run of the lecture's experiment; defaults are the public code's introductory figure."""

    num_classes: int = 5  # K
    per_class: int = 10  # n samples per class, N = nK
    width: int | None = None  # d; None: d = N, X square orthogonal (the theorem's setting)
    depth: int = 8  # L; hidden layers d x d, last layer K x d
    scale: float = 0.5  # ε, initial scale
    init: dln.InitKind = "orthogonal"  # "orthogonal", "normal" or "uniform" (same Frobenius norm)
    activation: Activation = "linear"  # "linear" or "relu"
    lr: float = 1.0  # η for the mean loss
    tol: float = 1e-6  # stop once the training loss is below this
    max_steps: int = 100_000  # give up after this many GD steps
    check_every: int = 100  # steps between loss checks
    seed: int = 0  # seeds the data, then the initialisation


@dataclass(frozen=True)
class Run:
    r"""One trained network of :func:`train_settings`.

    Attributes:
        setting: its :class:`Setting`.
        weights: ``L`` tensors :math:`W_l` ``(d_l, d_{l-1})`` at convergence.
        X, y, Y: its data ``(N, d)``, ``(N,)``, ``(N, K)``.
        steps: iterations to converge (or ``max_steps``).
        converged: whether the loss went below ``tol``.
        loss: final training loss.
        curve, curve_steps: loss ``(T,)`` at checks ``(T,)`` (``NaN`` after stopping).
        separation: ``(L + 1,)``, :math:`D_0, \dots, D_L`.
    """

    setting: Setting
    weights: list
    X: Tensor
    y: Tensor
    Y: Tensor
    steps: int
    converged: bool
    loss: float
    curve: Tensor
    curve_steps: Tensor
    separation: Tensor

    @property
    def hidden(self) -> Tensor:
        r""":math:`D_0, \dots, D_{L-1}`: the input and hidden layers, where the law is fitted.

        The output's :math:`D_L` measures the residual left at the loss tolerance, not the
        weights' structure, so it is excluded.
        """
        return self.separation[:-1]

    @property
    def fit(self) -> DecayFit:
        """:func:`fit_decay` of :attr:`hidden`."""
        return fit_decay(self.hidden)

    @property
    def ratios(self) -> Tensor:
        r""":math:`D_{l+1}/D_l` for :math:`l = 0, \dots, L-2` (the theorem's range)."""
        return decay_ratios(self.hidden)

    def summary(self) -> dict[str, object]:
        """Named scalars for :func:`lib.report`: the run, its iterations and its fitted decay."""
        s = self.setting
        out: dict[str, object] = {
            "run": f"{s.activation}, L={s.depth}, eps={s.scale:g}, {s.init} init, lr={s.lr:g}",
            "iterations to converge": self.steps if self.converged else f"> {self.steps}",
            "fitted ratio D_(l+1)/D_l": self.fit.ratio,
            "R^2 of log D_l on l": self.fit.r2,
        }
        if s.activation == "linear":
            out["ideal ratio eps^2 n^(-1/L)"] = ideal_ratio(s.per_class, s.depth, s.scale)
        return out

    def assumptions(self, rtol: float = 1e-6) -> Assumptions:
        """:func:`theorem_assumptions` of this run (linear networks only)."""
        if self.setting.activation != "linear":
            raise ValueError("the theorem is about linear networks; this run uses ReLU")
        return theorem_assumptions(self.weights, self.X, self.Y, self.setting.scale, rtol)


def _group_key(s: Setting) -> tuple:
    return (
        s.num_classes,
        s.per_class,
        s.width,
        s.depth,
        s.activation,
        s.tol,
        s.max_steps,
        s.check_every,
    )


def train_settings(
    settings: Sequence[Setting],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> list[Run]:
    r"""Train every :class:`Setting` to tolerance and measure :math:`D_l`; equal shapes share a batch.

    Runs with the same data shape, depth, activation and stopping rule are trained together by
    one :func:`train_to_tolerance` call (per-run ε, init and η); a run depends only on its own
    setting, so adding a run to a sweep never changes the others. The data come from
    ``torch.Generator().manual_seed(seed)`` (:func:`orthogonal_classes`), the weights from the
    same generator afterwards (:func:`lib.dln.init_weights`): runs that differ only in ε share
    their data and the directions of their initial weights.

    Args:
        settings: the runs.
        dtype: float64 by default (the theorem checks need it).
        device: where to train (default CPU).

    Returns:
        One :class:`Run` per setting, in order.

    Reference:
        Lecture 6, section 3, figures "Linear decay of feature separation".

    Example:
        >>> runs = train_settings([Setting(num_classes=2, per_class=4, depth=3, scale=s, lr=2.0)
        ...                        for s in (0.5, 0.35)])
        >>> [round(float(r.fit.ratio), 2) for r in runs]  # ≈ ε² n^(-1/L): smaller ε, faster decay
        [0.14, 0.07]
    """
    if isinstance(settings, Setting) or not isinstance(settings, Sequence) or not settings:
        raise ValueError("settings must be a non-empty list of Setting")
    for s in settings:
        if not isinstance(s, Setting):
            raise ValueError(f"settings must hold Setting objects, got {type(s).__name__}")
        _check_option("init", s.init, _INIT_KINDS)
        _check_option("activation", s.activation, _ACTIVATIONS)
        _check_int("depth", s.depth, 1)
        _check_int("seed", s.seed, 0)
        _check_positive("scale", s.scale)
        _check_positive("lr", s.lr)
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(settings):
        groups.setdefault(_group_key(s), []).append(i)
    runs: list[Run | None] = [None] * len(settings)
    for idx in groups.values():
        members = [settings[i] for i in idx]
        first = members[0]
        data, inits = [], []
        for s in members:
            g = torch.Generator().manual_seed(s.seed)
            X, y, Y = orthogonal_classes(s.num_classes, s.per_class, s.width, g, dtype, device)
            dims = [X.shape[1]] * s.depth + [s.num_classes]
            inits.append(dln.init_weights(dims, s.scale, s.init, g, dtype, device))
            data.append((X, y, Y))
        shared = all(s.seed == first.seed for s in members)
        Xb = data[0][0] if shared else torch.stack([X for X, _, _ in data])
        Yb = data[0][2] if shared else torch.stack([Y for _, _, Y in data])
        c = train_to_tolerance(
            dln.stack_runs(inits),
            Xb,
            Yb,
            [s.lr for s in members],
            first.tol,
            first.max_steps,
            first.check_every,
            first.activation,
        )
        for b, (i, s) in enumerate(zip(idx, members)):
            X, y, Y = data[b]
            Ws = [W[b] for W in c.weights]
            runs[i] = Run(
                setting=s,
                weights=Ws,
                X=X,
                y=y,
                Y=Y,
                steps=int(c.steps[b]),
                converged=bool(c.converged[b]),
                loss=float(c.loss[b]),
                curve=c.curve[:, b],
                curve_steps=c.curve_steps,
                separation=layer_separation(Ws, X, y, s.activation, s.num_classes),
            )
    return runs  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# beyond the lecture: a ReLU MLP on real, offline data (scikit-learn's digits)
# --------------------------------------------------------------------------------------------


def load_digits(
    test_fraction: float = 0.3,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""scikit-learn's 8x8 handwritten digits (1797 images, ``K = 10``, ships with the package).

    A random split, stratified by class; every pixel standardised with the training split's
    mean and standard deviation (constant pixels stay 0):

    .. math::

        x_{ij} \leftarrow (x_{ij} - \mu_j)/\sigma_j.

    Args:
        test_fraction: share of each class held out, in ``(0, 1)``.
        generator: random source for the split.
        dtype: floating dtype (default: torch's default).

    Returns:
        ``(X_train, y_train, X_test, y_test)``: ``(N_tr, 64)``, ``(N_tr,)``, ``(N_te, 64)``,
        ``(N_te,)`` on the CPU.

    Raises:
        ModuleNotFoundError: when scikit-learn is not installed.

    Reference:
        Alpaydin & Kaynak, *Optical recognition of handwritten digits*, UCI, 1998
        (``sklearn.datasets.load_digits``).

    Example:
        >>> Xtr, ytr, Xte, yte = load_digits(generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
        >>> Xtr.shape[1], int(ytr.max()) + 1  # doctest: +SKIP
        (64, 10)
    """
    if not (isinstance(test_fraction, numbers.Real) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ModuleNotFoundError as err:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "the digits experiment needs scikit-learn: pip install scikit-learn"
        ) from err
    raw = _sk_load_digits()
    dtype = dtype or torch.get_default_dtype()
    X = torch.as_tensor(raw.data, dtype=torch.float64)  # (1797, 64)
    y = torch.as_tensor(raw.target, dtype=torch.int64)  # (1797,)
    train, test = [], []
    for k in range(int(y.max()) + 1):
        members = (y == k).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = max(1, round(test_fraction * len(members)))
        test.append(members[:n_test])
        train.append(members[n_test:])
    tr, te = torch.cat(train).sort().values, torch.cat(test).sort().values
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd = torch.where(sd > 0, sd, torch.ones_like(sd))
    Xs = ((X - mu) / sd).to(dtype)
    return Xs[tr], y[tr], Xs[te], y[te]


@dataclass(frozen=True)
class DigitsSetting:
    """A ReLU MLP on digits, trained as in He & Su's experiments (SGD, momentum, cross-entropy)."""

    depth: int = 6  # hidden layers, each Linear -> [BatchNorm] -> ReLU; then a linear classifier
    width: int = 64  # hidden width
    batchnorm: bool = True  # He & Su's networks use BatchNorm
    epochs: int = 60  # passes over the training split
    batch_size: int = 128  # mini-batch size
    lr: float = 0.05  # SGD learning rate
    momentum: float = 0.9  # heavy-ball momentum
    weight_decay: float = 5e-4  # L2 penalty
    test_fraction: float = 0.3  # held-out share of each class
    seed: int = 0  # seeds the split, the initialisation and the batches


@dataclass(frozen=True)
class DigitsRun:
    r"""Result of :func:`train_digits_mlp`.

    Attributes:
        setting: its :class:`DigitsSetting`.
        train_separation: ``(depth + 1,)``, :math:`D_0` (pixels) to :math:`D_{\text{depth}}`
            (last hidden layer) on the training split.
        test_separation: the same on the test split.
        train_accuracy, test_accuracy: classification accuracy.
        model: the trained ``nn.Sequential`` (hidden blocks, then the classifier), eval mode.
    """

    setting: DigitsSetting
    train_separation: Tensor
    test_separation: Tensor
    train_accuracy: float
    test_accuracy: float
    model: nn.Module

    @property
    def fit(self) -> DecayFit:
        """:func:`fit_decay` of the training-split separations (all hidden layers and the input)."""
        return fit_decay(self.train_separation)

    def summary(self) -> dict[str, object]:
        """Named scalars for :func:`lib.report`."""
        return {
            "network": f"{self.setting.depth} hidden layers of {self.setting.width}, "
            + ("with" if self.setting.batchnorm else "without")
            + " BatchNorm",
            "train / test accuracy": f"{self.train_accuracy:.3f} / {self.test_accuracy:.3f}",
            "D_0 (pixels), train split": self.train_separation[0],
            "D_last hidden, train split": self.train_separation[-1],
            "fitted ratio D_(l+1)/D_l": self.fit.ratio,
            "R^2 of log D_l on l": self.fit.r2,
        }


def _digits_model(s: DigitsSetting, g: torch.Generator, dtype: torch.dtype) -> nn.Sequential:
    blocks: list[nn.Module] = []
    d_in = 64
    for _ in range(s.depth):
        mods = [nn.Linear(d_in, s.width, dtype=dtype)]
        if s.batchnorm:
            mods.append(nn.BatchNorm1d(s.width, dtype=dtype))
        blocks.append(nn.Sequential(*mods, nn.ReLU()))
        d_in = s.width
    model = nn.Sequential(*blocks, nn.Linear(d_in, 10, dtype=dtype))
    with torch.no_grad():  # PyTorch's default init, drawn from our generator (no global seed)
        for m in model.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.uniform_(-bound, bound, generator=g)
    return model


def train_digits_mlp(
    setting: DigitsSetting = DigitsSetting(),
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> DigitsRun:
    r"""Train a ReLU MLP on scikit-learn's digits and measure :math:`D_l` after every hidden layer.

    .. math::

        \boldsymbol z^0 = \boldsymbol x,\quad
        \boldsymbol z^l = \mathrm{ReLU}(\mathrm{BN}(A_l \boldsymbol z^{l-1} + \boldsymbol b_l)),
        \quad \text{logits} = C\boldsymbol z^{\text{depth}} + \boldsymbol c,

    minimising cross-entropy with mini-batch SGD (momentum, weight decay). The features are taken
    in eval mode (BatchNorm with its running statistics). A network of the kind He & Su study —
    beyond the lecture's theory, which covers linear networks on orthogonal data.

    Args:
        setting: the :class:`DigitsSetting`.
        dtype: float64 by default (deterministic, and cheap at this size).
        device: where to train (default CPU).

    Returns:
        A :class:`DigitsRun`.

    Reference:
        He & Su, *A law of data separation in deep learning*, PNAS 2023 (Fig. 1 set-up, on
        Fashion-MNIST there).

    Example:
        >>> run = train_digits_mlp(DigitsSetting(depth=2, epochs=2))  # doctest: +SKIP
        >>> tuple(run.train_separation.shape)  # doctest: +SKIP
        (3,)
    """
    if not isinstance(setting, DigitsSetting):
        raise ValueError(f"setting must be a DigitsSetting, got {type(setting).__name__}")
    s = setting
    for name in ("depth", "width", "epochs", "batch_size"):
        _check_int(name, getattr(s, name), 1)
    _check_int("seed", s.seed, 0)
    _check_positive("lr", s.lr)
    if not (0 <= s.momentum < 1 and s.weight_decay >= 0):
        raise ValueError(
            f"momentum must lie in [0, 1) and weight_decay be >= 0, got {s.momentum!r}, "
            f"{s.weight_decay!r}"
        )
    g = torch.Generator().manual_seed(s.seed)
    Xtr, ytr, Xte, yte = load_digits(s.test_fraction, g, dtype)
    Xtr, ytr, Xte, yte = (t.to(device) for t in (Xtr, ytr, Xte, yte))
    model = _digits_model(s, g, dtype).to(device)
    opt = torch.optim.SGD(
        model.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay
    )
    model.train()
    for _ in range(s.epochs):
        order = torch.randperm(len(ytr), generator=g).to(device)
        for start in range(0, len(ytr), s.batch_size):
            batch = order[start : start + s.batch_size]
            if len(batch) < 2 and s.batchnorm:
                continue  # BatchNorm needs two samples
            loss = nn.functional.cross_entropy(model(Xtr[batch]), ytr[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()

    def profile(X: Tensor, y: Tensor) -> tuple[Tensor, float]:
        Z, D = X, [metrics.trace_ratio(X, y, 10)]
        for block in list(model)[:-1]:
            Z = block(Z)  # (N, width)
            D.append(metrics.trace_ratio(Z, y, 10))
        accuracy = float((model[-1](Z).argmax(1) == y).to(torch.float64).mean())
        return torch.stack(D), accuracy

    with torch.no_grad():
        D_tr, acc_tr = profile(Xtr, ytr)
        D_te, acc_te = profile(Xte, yte)
    return DigitsRun(s, D_tr, D_te, acc_tr, acc_te, model)
