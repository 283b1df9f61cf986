"""Shared by the modules of :mod:`lib.dln`: type aliases, argument checks and Haar sampling."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Literal, Union

import torch
from torch import Tensor

from lib._checks import check_tensor, check_type

InitKind = Literal["orthogonal", "normal", "uniform"]
Reduction = Literal["mean", "sum"]
Activation = Literal["relu"]

_INIT_KINDS = ("orthogonal", "normal", "uniform")
_REDUCTIONS = ("mean", "sum")
_ACTIVATIONS = (None, "relu")

#: A per-run hyperparameter: one number for all runs, or a ``(B,)`` tensor / sequence.
PerRun = Union[float, Sequence, Tensor]


def _resolve_dtype(dtype: torch.dtype | None) -> torch.dtype:
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"dtype must be a floating-point torch.dtype such as torch.float64, got {dtype!r}"
        )
    return dtype


def _resolve_device(device: torch.device | str | None) -> torch.device | None:
    """``device`` as given (``None``: the CPU), refused with its name when torch cannot parse it."""
    if device is None or isinstance(device, torch.device):
        return device
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device must be a torch.device or a name such as 'cpu' or 'cuda', got {device!r}"
        ) from None


def _generator_device(generator: torch.Generator | None) -> torch.device:
    if generator is None:
        return torch.device("cpu")
    check_type("generator", generator, torch.Generator, "e.g. torch.Generator().manual_seed(0)")
    return generator.device


def _orthonormal(
    m: int, n: int, generator: torch.Generator | None, dtype: torch.dtype, device
) -> Tensor:
    """Haar-distributed ``(m, n)`` matrix with orthonormal columns (m >= n) or rows (m < n)."""
    tall = m >= n
    rows, cols = (m, n) if tall else (n, m)
    gdev = _generator_device(generator)
    G = torch.randn(rows, cols, generator=generator, dtype=torch.float64, device=gdev)
    Q, R = torch.linalg.qr(G)  # (rows, cols), (cols, cols)
    d = torch.sign(torch.diagonal(R))
    Q = Q * torch.where(d == 0, torch.ones_like(d), d)  # Haar: fix the signs of QR
    Q = Q if tall else Q.T  # (m, n)
    return Q.to(dtype=dtype, device=device)


def _per_run_list(name: str, value: PerRun, n_runs: int) -> list[float]:
    if isinstance(value, Tensor):
        if value.ndim == 0:
            value = [value.item()] * n_runs
        elif value.ndim == 1 and value.numel() == n_runs:
            value = value.tolist()
        else:
            raise ValueError(
                f"{name} must be a number or have shape ({n_runs},), got {tuple(value.shape)}"
            )
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = [float(value)] * n_runs
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) != n_runs:
            raise ValueError(f"{name} must be a number or have {n_runs} entries, got {len(value)}")
        value = list(value)
    else:
        raise ValueError(f"{name} must be a number or a (B,) tensor, got {value!r}")
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{name} must hold real numbers")
    return [float(v) for v in value]


def _hyper(
    name: str,
    value: PerRun,
    n_runs: int,
    low: float,
    high: float,
    low_open: bool,
    high_open: bool,
    like: Tensor,
) -> float | Tensor:
    """Validate a hyperparameter; return a float when it is the same for all runs, else (B, 1, 1)."""
    values = _per_run_list(name, value, n_runs)
    for v in values:
        bad = (
            not math.isfinite(v)
            or (v <= low if low_open else v < low)
            or (v >= high if high_open else v > high)
        )
        if bad:
            lo = f"{name} {'>' if low_open else '>='} {low:g}"
            hi = "" if math.isinf(high) else f" and {'<' if high_open else '<='} {high:g}"
            raise ValueError(f"{name} must be finite with {lo}{hi}, got {v!r}")
    if all(v == values[0] for v in values):
        return values[0]
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(n_runs, 1, 1)


def _validate_weights(weights: Sequence[Tensor], batched: bool) -> list[Tensor]:
    name = "weights"
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError(f"{name} must be a non-empty list of L tensors [W_1, ..., W_L]")
    ndim = 3 if batched else 2
    shape_doc = "(B, d_l, d_{l-1})" if batched else "(d_l, d_{l-1})"
    for i, W in enumerate(weights):
        if not isinstance(W, Tensor) or W.ndim != ndim:
            got = tuple(W.shape) if isinstance(W, Tensor) else type(W).__name__
            raise ValueError(f"W_{i + 1} must be a tensor of shape {shape_doc}, got {got}")
        check_tensor(f"W_{i + 1}", W, (ndim,), nonempty=True)
        if W.dtype != weights[0].dtype or W.device != weights[0].device:
            raise ValueError(
                f"all weights must share one dtype and one device: W_1 is {weights[0].dtype} on "
                f"{weights[0].device}, W_{i + 1} is {W.dtype} on {W.device}; cast with .to()"
            )
        if batched and W.shape[0] != weights[0].shape[0]:
            raise ValueError(
                f"all weights must share the run axis B: W_1 has B={weights[0].shape[0]}, "
                f"W_{i + 1} has B={W.shape[0]}"
            )
        if i > 0 and W.shape[-1] != weights[i - 1].shape[-2]:
            raise ValueError(
                f"shape mismatch: W_{i + 1} has {W.shape[-1]} input columns but W_{i} has "
                f"{weights[i - 1].shape[-2]} output rows (W_l must be (d_l, d_{{l-1}}))"
            )
    return [W.detach() for W in weights]


def _validate_data(
    name: str, t: Tensor, n_runs: int | None, dim: int, dim_name: str, like: Tensor
) -> Tensor:
    ndims = (2, 3) if n_runs is not None else (2,)
    t = check_tensor(name, t, ndims, nonempty=True)
    if t.ndim == 3 and t.shape[0] != n_runs:
        raise ValueError(
            f"{name} has {t.shape[0]} runs on its leading axis but the weights have B={n_runs}"
        )
    if t.shape[-1] != dim:
        raise ValueError(
            f"shape mismatch: {name} has {t.shape[-1]} columns but {dim_name} = {dim} "
            f"(data are rows: X is (N, d_0), Y is (N, d_L))"
        )
    if t.dtype != like.dtype:
        raise ValueError(
            f"{name} has dtype {t.dtype} but the weights have {like.dtype}; cast with .to()"
        )
    if t.device != like.device:
        raise ValueError(
            f"{name} is on {t.device} but the weights are on {like.device}; move it with .to()"
        )
    return t.detach()
