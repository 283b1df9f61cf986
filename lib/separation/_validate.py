"""Argument checks shared by the modules of :mod:`lib.separation` (each raises ``ValueError``).

Order at every entry: structure and shapes, then dtype and device, then values (a ``meta``
tensor holds no values; on the CPU it also stands in for "a tensor on another device").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lib._checks import check_not_meta, check_real

#: The networks' activations: ``"linear"`` (the identity) or ``"relu"``, after every hidden layer.
ACTIVATIONS = ("linear", "relu")
#: The initialisations of :func:`lib.dln.init_weights`.
INIT_KINDS = ("orthogonal", "normal", "uniform")


def _check_positive(name: str, value: object) -> float:
    return check_real(name, value, 0.0, strict=True)


def _check_finite(name: str, t: Tensor) -> None:
    """One host sync: refuse NaN or inf in ``t`` (checked after dtype and device)."""
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(
            f"{name} contains NaN or infinite entries; the features (and D_l) would be NaN"
        )


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
    W1 = weights[0]
    for i, W in enumerate(weights):
        if W.dtype != W1.dtype or W.device != W1.device:
            raise ValueError(
                f"W_{i + 1} has dtype {W.dtype} on {W.device} but W_1 has {W1.dtype} on "
                f"{W1.device}; every weight needs one dtype and device (cast with .to(W_1))"
            )
        check_not_meta(f"W_{i + 1}", W)
    for i, W in enumerate(weights):
        _check_finite(f"W_{i + 1}", W)
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
    if X.device != Ws[0].device:
        raise ValueError(
            f"X is on {X.device} but the weights are on {Ws[0].device}; move it with "
            ".to(weights[0].device)"
        )
    check_not_meta("X", X)
    _check_finite("X", X)
    return X


def _check_series(D: object) -> Tensor:
    if not isinstance(D, Tensor) or D.ndim < 1 or not D.is_floating_point():
        got = tuple(D.shape) if isinstance(D, Tensor) else type(D).__name__
        raise ValueError(f"D must be a floating-point tensor of shape (..., layers), got {got}")
    if D.shape[-1] < 2:
        raise ValueError(f"D needs at least 2 layers to measure a decay, got {D.shape[-1]}")
    check_not_meta("D", D)
    if not bool(torch.isfinite(D).all()) or bool((D <= 0).any()):
        raise ValueError(
            "D must hold finite values > 0 (log D_l is fitted); a layer with D_l = 0 or inf "
            "has collapsed or lost its class means — leave it out"
        )
    return D


# --------------------------------------------------------------------------------------------
# generator, dtype, device (private: lib/_checks.py has no such checks yet)
# --------------------------------------------------------------------------------------------
