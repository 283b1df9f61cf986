r"""The lecture's data and the features of every layer: :math:`Z_l` and their separation :math:`D_l`.

.. math::

    Z_0 = X,\qquad Z_l = \sigma(Z_{l-1} W_l^\top)\ (l < L),\qquad Z_L = Z_{L-1} W_L^\top,\qquad
    D_l = \operatorname{tr}\Sigma_W^l / \operatorname{tr}\Sigma_B^l,

data as rows (``X`` is ``(N, d_0)``, ``W_l`` is ``(d_l, d_{l-1})``); :math:`\sigma` is the
identity (``"linear"``) or ReLU (``"relu"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from lib import dln, metrics
from lib._checks import check_device, check_dtype, check_generator
from lib._checks import check_int as _check_int
from lib._checks import check_option as _check_option
from lib.separation._validate import (
    ACTIVATIONS,
    _check_inputs,
    _check_weights,
)

__all__ = ["ActivationName", "layer_features", "layer_separation", "orthogonal_classes"]

#: The activation of a network of this chapter, by name: ``"linear"`` is the identity. (Not
#: :data:`lib.dln.Activation`, where the identity is ``None``.)
ActivationName = Literal["linear", "relu"]


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
    check_generator(generator)
    check_dtype(dtype)
    check_device(device)
    X = dln.whitened_inputs(N, d, generator=generator, dtype=dtype, device=device)
    y = torch.arange(K, device=device).repeat_interleave(n)  # (N,)
    Y = dln.one_hot_targets(y, K, dtype=X.dtype)  # (N, K)
    return X, y, Y


def layer_features(
    weights: Sequence[Tensor], X: Tensor, activation: ActivationName = "linear"
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
    _check_option("activation", activation, ACTIVATIONS)
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
    activation: ActivationName = "linear",
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
