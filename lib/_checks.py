"""Argument checks shared by the ``lib`` modules (private): one wording for every error."""

from __future__ import annotations

import math
import numbers

__all__ = ["check_int", "check_num_classes", "check_option", "check_real"]


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
