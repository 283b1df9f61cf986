"""Claims: a sentence of the book backed by the result it describes.

A chapter states things about its outputs ("the compressed network reaches the tolerance first",
"the ratio stays under the bound"). Each such sentence is followed, in the notebook, by a short
check cell (tagged ``remove-cell``, so the rendered book hides it)::

    claims.claim(nc1_probe > nc1_full, "full fine-tuning leaves the classes most collapsed")

What happens when the condition is false depends on who runs the notebook:

* under the test command (``python -m pytest``, which sets ``LIB_STRICT_CLAIMS=1`` before any
  kernel starts) and under ``scripts/execute_notebooks.py``, a false claim raises
  :class:`ClaimError` naming the sentence, so stored outputs can never contradict the prose;
* anywhere else (an instructor editing the ``parameters`` cell on Colab, a paper-scale papermill
  run) it only warns (:class:`ClaimWarning`): other parameters may legitimately tell another story.

A condition is a ``bool`` or anything with one truth value (a NumPy bool, a one-element tensor);
a NaN anywhere in a tensor or float condition counts as false, never as support.
"""

from __future__ import annotations

import math
import os
import warnings

import torch

__all__ = ["STRICT_ENV", "ClaimError", "ClaimWarning", "claim", "strict"]

#: The environment variable that makes a false claim an error (set by the test command).
STRICT_ENV = "LIB_STRICT_CLAIMS"


class ClaimError(AssertionError):
    """A sentence of the book is no longer supported by the output it describes."""


class ClaimWarning(UserWarning):
    """A sentence of the book does not hold for these (non-default) parameters."""


def strict() -> bool:
    """Whether false claims raise: ``LIB_STRICT_CLAIMS`` is set to anything but ``""``/``"0"``."""
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def _truth(condition: object) -> bool:
    if isinstance(condition, torch.Tensor):
        if condition.numel() != 1:
            raise ValueError(
                f"condition must have one truth value, got a tensor of shape "
                f"{tuple(condition.shape)}; reduce it first, e.g. with .all() or .any()"
            )
        if condition.is_floating_point() and math.isnan(float(condition)):
            return False
        return bool(condition)
    if isinstance(condition, float) and math.isnan(condition):
        return False
    if not hasattr(condition, "__bool__"):
        raise TypeError(
            f"condition must be a bool (e.g. a comparison of two results), got "
            f"{type(condition).__name__}"
        )
    try:
        return bool(condition)
    except (ValueError, RuntimeError) as err:  # a NumPy array of several elements
        raise ValueError(
            f"condition must have one truth value, got {type(condition).__name__}; reduce it "
            "first, e.g. with .all() or .any()"
        ) from err


def claim(condition: object, sentence: str) -> None:
    """Check that ``condition`` holds; it backs ``sentence``, a claim the book's prose makes.

    Args:
        condition: the result the sentence depends on, as one truth value (``bool``, NumPy bool,
            one-element tensor). NaN is false.
        sentence: the sentence (or the part of it) that the condition backs, as the prose says it.

    Returns nothing (so that a check cell prints nothing); outside the test command a false
    claim emits a :class:`ClaimWarning` instead of raising.

    Raises:
        ClaimError: the claim is false and ``LIB_STRICT_CLAIMS`` is set (the test command).
        TypeError, ValueError: ``sentence`` is not a non-empty string, or ``condition`` has no
            single truth value.
    """
    if not isinstance(sentence, str) or not sentence.strip():
        raise TypeError(
            f"sentence must be the (non-empty) sentence of the book that the check backs, "
            f"got {sentence!r}"
        )
    if _truth(condition):
        return
    message = f"the output no longer supports the sentence: {sentence.strip()!r}"
    if strict():
        raise ClaimError(message + f" ({STRICT_ENV} is set: the stored outputs must support it)")
    warnings.warn(
        message + " (fine for non-default parameters; the prose describes the defaults)",
        ClaimWarning,
        stacklevel=2,
    )
