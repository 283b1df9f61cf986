"""Every public name of ``lib`` has a bad-input case (issue 15, acceptance 1).

Walks the ``__all__`` of every public module and package of ``lib``; a function or class is
covered when a test in a ``tests/test_bad_inputs_*.py`` module is marked ``covers`` with it
(``tests/_cases.py``; ``tests/conftest.py`` checks that the marked test really calls it). Values
(constants, type aliases) have no calls to get wrong; a callable may be exempted only in a test
module's ``EXEMPT`` mapping, with the reason.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

from _cases import code_objects, direct_calls, qualified_name

import lib

_TESTS = Path(__file__).parent


def public_callables() -> dict[str, str]:
    """``{qualified name: a module whose __all__ lists it}`` for every public function/class."""
    found: dict[str, str] = {}
    for info in pkgutil.walk_packages(lib.__path__, "lib."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isfunction(inspect.unwrap(obj)) or inspect.isclass(obj):
                if getattr(obj, "__module__", "").startswith("lib"):
                    found.setdefault(qualified_name(obj), f"{info.name}.{name}")
    return found


def _marks(fn) -> list:
    marks = []
    for mark in getattr(fn, "pytestmark", []):
        if mark.name == "covers":
            marks.append(mark)
        elif mark.name == "parametrize":
            for value in mark.args[1]:
                marks += [m for m in getattr(value, "marks", ()) if m.name == "covers"]
    return marks


def declared_cases() -> tuple[dict[str, int], dict[str, str]]:
    """``({qualified name: number of cases}, {exempted name: reason})`` over the suite."""
    counts: dict[str, int] = {}
    exempt: dict[str, str] = {}
    for path in sorted(_TESTS.glob("test_bad_inputs_*.py")):
        if path.stem == "test_bad_inputs_coverage":
            continue
        module = importlib.import_module(path.stem)
        exempt.update(getattr(module, "EXEMPT", {}))
        for name, fn in vars(module).items():
            if name.startswith("test") and callable(fn):
                for mark in _marks(fn):
                    for target in mark.args:
                        key = qualified_name(target)
                        counts[key] = counts.get(key, 0) + 1
    return counts, exempt


def test_every_public_callable_has_a_bad_input_case():
    public = public_callables()
    counts, exempt = declared_cases()
    missing = sorted(public[q] for q in public if q not in counts and q not in exempt)
    assert not missing, (
        f"{len(missing)} public name(s) have no bad-input case (mark a test "
        f"@covers(...) or add the name to EXEMPT with a reason): {missing}"
    )


def test_exemptions_are_public_uncovered_and_give_a_reason():
    public = public_callables()
    counts, exempt = declared_cases()
    for name, reason in exempt.items():
        assert name in public, f"EXEMPT lists {name}, which is not a public lib name"
        assert name not in counts, f"{name} has cases; remove it from EXEMPT"
        assert len(reason.split()) >= 4, f"EXEMPT[{name!r}] needs a reason, got {reason!r}"


def test_the_walk_finds_the_contracts():
    """The walk itself can fail: the public contracts are found under one qualified name."""
    public = public_callables()
    for name in (
        "lib.metrics.variability.nc1",
        "lib.dln.training.train",
        "lib.completion.train.fit",
    ):
        assert name in public


def test_direct_calls_sees_only_calls_from_the_given_file():
    """The conftest check can fail: a call made inside lib does not count as the test's."""
    import torch

    from lib import metrics

    H, y = torch.randn(6, 2, dtype=torch.float64), torch.tensor([0, 0, 1, 1, 2, 2])
    targets = {
        qualified_name(f): code_objects(f)
        for f in (metrics.nc1, metrics.class_means, metrics.CollapseAccumulator)
    }
    with direct_calls(targets, __file__) as entered:
        metrics.nc1(H, y)  # nc1 calls into lib's own helpers, not class_means
    assert entered == {"lib.metrics.variability.nc1"}
    with direct_calls(targets, __file__) as entered:
        metrics.CollapseAccumulator(3)
    assert entered == {"lib.metrics.streaming.CollapseAccumulator"}
