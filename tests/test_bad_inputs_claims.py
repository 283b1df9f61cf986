"""lib.claims: a false claim raises under the test command, warns elsewhere; NaN never supports
a sentence; bad conditions and sentences are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _cases import case, covers

from lib import claims

NAN = float("nan")

EXEMPT = {
    "lib.claims.ClaimError": "an exception class that lib raises, never called with input",
    "lib.claims.ClaimWarning": "a warning category that lib emits, never called with input",
    "lib.claims.strict": "takes no arguments; it reads one environment variable, tested below",
}


@covers(claims.claim)
@pytest.mark.parametrize(
    "condition", [True, np.bool_(True), torch.tensor(True), torch.tensor([1.0]), 2 > 1]
)
def test_true_claims_pass_silently(condition, monkeypatch, recwarn):
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    assert claims.claim(condition, "a true sentence") is None
    assert not recwarn.list


@covers(claims.claim)
@pytest.mark.parametrize(
    "condition", [False, NAN, torch.tensor(NAN), torch.tensor(0), np.bool_(False)]
)
def test_false_or_nan_claims_raise_under_the_test_command(condition, monkeypatch):
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    with pytest.raises(claims.ClaimError, match="the sentence: 'A beats B'"):
        claims.claim(condition, "A beats B")


@covers(claims.claim)
@pytest.mark.parametrize("value", ["", "0"])
def test_false_claims_only_warn_outside_the_test_command(value, monkeypatch):
    monkeypatch.setenv(claims.STRICT_ENV, value)
    with pytest.warns(claims.ClaimWarning, match="A beats B"):
        assert claims.claim(False, "A beats B") is None


def test_the_test_command_is_strict():
    """The repository's conftest sets the variable, so nbval's kernels inherit it."""
    assert claims.strict()


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        case("tensor-of-many", claims.claim, (torch.ones(3) > 0, "s"), ValueError, "condition"),
        case("array-of-many", claims.claim, (np.ones(2) > 0, "s"), ValueError, "condition"),
        case("empty-sentence", claims.claim, (True, "  "), TypeError, "sentence"),
        case("no-sentence", claims.claim, (True, None), TypeError, "sentence"),
    ],
)
def test_bad_claims_are_named(args, error, name):
    with pytest.raises(error, match=f"^{name} must"):
        claims.claim(*args)
