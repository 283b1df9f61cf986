r"""Synthetic data for deep linear networks: whitened inputs and rank-``r`` or one-hot targets.

Data are rows: ``X`` is ``(N, d_0)``, ``Y`` is ``(N, d_L)`` (see :mod:`lib.dln`). The lecture's
whitening :math:`XX^\top = I` (columns) is :math:`X^\top X = I_{d_0}` here (rows).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lib._checks import check_int as _check_int
from lib._checks import check_not_meta, check_real, check_tensor
from lib.dln._common import _generator_device, _orthonormal, _resolve_device, _resolve_dtype

__all__ = ["low_rank_targets", "one_hot_targets", "whiten", "whitened_inputs"]


def whitened_inputs(
    n_samples: int,
    d: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Random whitened inputs: ``N`` rows in ``d`` dimensions with orthonormal columns.

    .. math::

        X^\top X = I_d \qquad (\text{the lecture's } XX^\top = I \text{ in column form}).

    With ``n_samples == d`` the result is a random orthogonal matrix (``X = I`` up to a rotation).

    Args:
        n_samples: ``N``, at least ``d``.
        d: input dimension ``d_0``.
        generator: random source; sampling happens on its device (CPU when ``None``) in float64.
        dtype: result dtype (default: torch's default dtype).
        device: result device (default: CPU).

    Returns:
        ``X`` of shape ``(N, d)``.

    Reference:
        Yaras et al., *The law of parsimony in gradient descent for learning deep linear
        networks*, 2023, assumption of Thm. 1 (whitened data).

    Example:
        >>> X = whitened_inputs(50, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> bool(torch.allclose(X.T @ X, torch.eye(10, dtype=torch.float64)))
        True
    """
    dtype, device = _resolve_dtype(dtype), _resolve_device(device)
    _generator_device(generator)
    n_samples = _check_int("n_samples", n_samples, 1)
    d = _check_int("d", d, 1)
    if n_samples < d:
        raise ValueError(
            f"whitened inputs need n_samples >= d (X^T X = I_d has rank d), got N={n_samples}, d={d}"
        )
    return _orthonormal(n_samples, d, generator, dtype, device)


def whiten(X: Tensor, eps: float = 0.0) -> Tensor:
    r"""Whiten the rows of ``X`` so that the columns become orthonormal.

    .. math::

        X_{\mathrm{w}} = X (X^\top X + \epsilon I)^{-1/2}, \qquad X_{\mathrm{w}}^\top X_{\mathrm{w}} = I
        \ \text{ when } \epsilon = 0.

    This is the pre-processing ("preconditioning") step the lecture mentions: any full-column-rank
    ``X`` with ``N >= d`` can be whitened. Computed through an SVD, so float64 gives
    :math:`\|X_w^\top X_w - I\| \approx 10^{-15}`.

    Args:
        X: ``(N, d)`` data, full column rank when ``eps == 0``; float32 or float64 (torch has no
            SVD in float16/bfloat16: those are refused).
        eps: ridge added to :math:`X^\top X` (``>= 0``).

    Returns:
        ``(N, d)`` whitened data on ``X``'s device and dtype.

    Reference:
        Lecture 6, section 2, footnote on whitened data.

    Example:
        >>> X = torch.randn(40, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> Xw = whiten(X)
        >>> bool(torch.allclose(Xw.T @ Xw, torch.eye(5, dtype=torch.float64)))
        True
    """
    X = check_tensor("X", X, (2,), nonempty=True)
    if X.dtype not in (torch.float32, torch.float64):
        raise ValueError(
            f"X has dtype {X.dtype}, for which torch has no SVD; whiten in float32 or float64 "
            "(X.float() or X.double()) and cast the result back"
        )
    eps = check_real("eps", eps, 0.0, strict=False)
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)  # S (d,), Vh (d, d)
    if eps == 0 and (
        S.numel() < X.shape[1] or S.min() <= S.max() * X.shape[1] * torch.finfo(X.dtype).eps
    ):
        raise ValueError("X is rank deficient; it cannot be whitened (use eps > 0 or more samples)")
    inv_sqrt = (S**2 + eps).rsqrt()
    return X @ (Vh.mT * inv_sqrt) @ Vh


def low_rank_targets(
    n_samples: int,
    d_out: int,
    r: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Random rank-``r`` targets: a product of two Gaussian factors.

    .. math::

        Y = \frac{1}{\sqrt r} A B, \qquad A_{ij}, B_{ij} \sim \mathcal N(0, 1),\
        A \in \mathbb R^{N\times r},\ B \in \mathbb R^{r\times d_L},

    so every entry of ``Y`` has unit variance and :math:`\operatorname{rank} Y = r` almost surely.
    With whitened ``X`` the cross-correlation :math:`M = Y^\top X` (the lecture's :math:`YX^\top`)
    then has rank ``r`` too (for ``X = I`` exactly, :math:`M = Y^\top`).

    Args:
        n_samples: ``N``.
        d_out: ``d_L``.
        r: rank, ``1 <= r <= min(N, d_L)``.
        generator: random source; sampling happens on its device (CPU when ``None``) in float64.
        dtype: result dtype (default: torch's default dtype).
        device: result device (default: CPU).

    Returns:
        ``Y`` of shape ``(N, d_L)``.

    Reference:
        Yaras et al. 2023, section 4 (rank-``r`` targets); Lecture 6, "L = 3, d = 30, r = 3".

    Example:
        >>> Y = low_rank_targets(30, 30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> int(torch.linalg.matrix_rank(Y))
        3
    """
    dtype, device = _resolve_dtype(dtype), _resolve_device(device)
    gdev = _generator_device(generator)
    n_samples = _check_int("n_samples", n_samples, 1)
    d_out = _check_int("d_out", d_out, 1)
    r = _check_int("r", r, 1)
    if r > min(n_samples, d_out):
        raise ValueError(
            f"rank r must be <= min(n_samples, d_out) = {min(n_samples, d_out)}, got {r}"
        )
    A = torch.randn(n_samples, r, generator=generator, dtype=torch.float64, device=gdev)
    B = torch.randn(r, d_out, generator=generator, dtype=torch.float64, device=gdev)
    Y = (A @ B) / math.sqrt(r)  # (N, d_L)
    return Y.to(dtype=dtype, device=device)


def one_hot_targets(
    labels: Tensor, n_classes: int | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    r"""One-hot class targets.

    .. math::

        Y_{ik} = \mathbb 1[y_i = k], \qquad Y \in \{0, 1\}^{N \times K}.

    With balanced classes and whitened ``X``, :math:`M = Y^\top X` has rank ``K = d_L``: the
    lecture's Case 1 (:math:`d_y = r`).

    Args:
        labels: ``(N,)`` integer labels in ``[0, K)``.
        n_classes: ``K`` (default: ``labels.max() + 1``).
        dtype: result dtype (default: torch's default dtype).

    Returns:
        ``Y`` of shape ``(N, K)`` on ``labels``' device.

    Reference:
        Lecture 6, section 3 (DLNs trained on classification data).

    Example:
        >>> one_hot_targets(torch.arange(6) % 3, dtype=torch.float64).sum(0)
        tensor([2., 2., 2.], dtype=torch.float64)
    """
    if (
        not isinstance(labels, Tensor)
        or labels.ndim != 1
        or labels.is_floating_point()
        or labels.is_complex()
    ):
        raise ValueError("labels must be a 1-D integer tensor of shape (N,)")
    dtype = _resolve_dtype(dtype)
    check_not_meta("labels", labels)
    if labels.numel() == 0:
        raise ValueError("labels is empty")
    if int(labels.min()) < 0:
        raise ValueError("labels must be >= 0")
    k = int(labels.max()) + 1 if n_classes is None else _check_int("n_classes", n_classes, 1)
    if int(labels.max()) >= k:
        raise ValueError(f"labels must be < n_classes={k}, got a label {int(labels.max())}")
    return torch.nn.functional.one_hot(labels.long(), k).to(dtype)
