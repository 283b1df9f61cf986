"""Argument checks shared by the ``lib`` modules (private): one wording for every error."""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

__all__ = [
    "check_device",
    "check_dtype",
    "check_generator",
    "check_int",
    "check_nonempty",
    "check_not_meta",
    "check_num_classes",
    "check_option",
    "check_real",
    "check_tensor",
    "check_type",
]


def check_option(name: str, value: object, allowed: tuple) -> None:
    """Raise ``ValueError`` naming ``name`` and the allowed values unless ``value`` is one of them.

    Options are strings (or ``None`` where ``None`` is allowed); anything else is rejected
    without comparing it, so a tensor passed by mistake gets the same clear message.
    """
    if not (value is None or isinstance(value, str)) or value not in tuple(allowed):
        raise ValueError(
            f"unknown {name} {value!r}; allowed values: {', '.join(map(repr, allowed))}"
        )


def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum`` (``bool`` is not).

    Python and NumPy integers are both accepted (``np.int64(3)`` is an integer).
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_num_classes(num_classes: object) -> int:
    """Return the number of classes ``K`` as an ``int``; collapse needs ``K >= 2`` classes."""
    if (
        not isinstance(num_classes, numbers.Integral)
        or isinstance(num_classes, bool)
        or num_classes < 2
    ):
        raise ValueError(
            "num_classes must be an integer >= 2 (collapse needs at least two classes), "
            f"got {num_classes!r}"
        )
    return int(num_classes)


def check_real(name: str, value: object, minimum: float, *, strict: bool) -> float:
    """Return ``value`` as a ``float`` if it is a finite real number ``> minimum`` (``strict``)
    or ``>= minimum``; ``bool``, NaN and infinities are not."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > minimum if strict else v >= minimum)
    if not ok:
        raise ValueError(
            f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, got {value!r}"
        )
    return float(value)


def check_nonempty(name: str, values: object, what: str = "value") -> None:
    """Raise ``ValueError`` naming ``name`` if the sequence ``values`` has no element."""
    if len(values) == 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} is empty; pass at least one {what}")


def check_not_meta(name: str, tensor: Tensor) -> None:
    """Refuse a ``meta`` tensor (a shape without data): nothing can be computed from it.

    Checked before any value is read; on the CPU a meta tensor also stands in for "a tensor on
    another device" in the tests.
    """
    if tensor.is_meta:
        raise ValueError(
            f"{name} is a 'meta' tensor (a shape without data), so nothing can be computed from "
            "it; pass the tensor with its values, e.g. create it on the CPU or move it with "
            ".to('cpu')"
        )


def check_tensor(
    name: str,
    value: object,
    ndim: tuple[int, ...] | None = None,
    *,
    floating: bool = True,
    finite: bool = True,
    nonempty: bool = False,
) -> Tensor:
    """Return ``value`` if it is a usable tensor; otherwise raise ``ValueError`` naming ``name``.

    Checked in this order, so that no value is read before type, shape, dtype and device are
    known to be right: a ``torch.Tensor``; ``ndim`` (one of the allowed numbers of dimensions);
    a real floating dtype (``floating``); not ``meta``; at least one element (``nonempty``);
    finite values (``finite``, one host sync).
    """
    if not isinstance(value, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.ndim not in ndim:
        want = " or ".join(f"{n}-D" for n in ndim)
        raise ValueError(f"{name} must be {want}, got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    check_not_meta(name, value)
    if nonempty and value.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(value.shape)}); pass at least one entry")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return value


def check_type(name: str, value: object, expected: type | tuple[type, ...], hint: str = "") -> None:
    """Raise ``TypeError`` naming ``name``, the expected type(s) and what came in.

    ``hint`` says where a right value comes from, e.g. ``"the result of lib.completion.fit"``.
    """
    if not isinstance(value, expected):
        types = expected if isinstance(expected, tuple) else (expected,)
        want = " or ".join(t.__name__ for t in types)
        where = f" ({hint})" if hint else ""
        raise TypeError(f"{name} must be a {want}{where}, got {type(value).__name__}")


def check_generator(generator: object) -> None:
    """Refuse anything but ``None`` or a ``torch.Generator`` (before torch reads it)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}; "
            "create one with torch.Generator().manual_seed(seed)"
        )


def check_dtype(dtype: object) -> None:
    """Refuse a ``dtype`` that is not ``None`` or a real floating ``torch.dtype``."""
    if dtype is not None and not (
        isinstance(dtype, torch.dtype) and dtype.is_floating_point and not dtype.is_complex
    ):
        raise ValueError(
            f"dtype must be a floating-point torch.dtype such as torch.float64, got {dtype!r}"
        )


def check_device(device: object) -> None:
    """Refuse a ``device`` torch cannot parse, ``meta`` (no values) or CUDA where there is none."""
    if device is None:
        return
    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device must be a torch.device or a name such as 'cpu' or 'cuda', got {device!r}"
        ) from None
    if dev.type == "meta":
        raise ValueError(
            "device 'meta' holds no values, so nothing can be computed on it; pass 'cpu' or 'cuda'"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} is a CUDA device, but CUDA is not available; pass 'cpu'"
        )
