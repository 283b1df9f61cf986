"""Bad-input cases that say which public ``lib`` name they exercise (issue 15).

Every bad-input test carries ``@covers(target, ...)`` (on the test, or on one
``pytest.param`` through :func:`case`). Two checks keep the declarations honest:

* ``tests/conftest.py`` profiles each marked test and fails it unless every declared target was
  entered **directly from the test module's own code** (a call inside another ``lib`` function
  does not count);
* ``tests/test_bad_inputs_coverage.py`` walks every module's ``__all__`` and fails for a public
  name that no marked test declares, unless the name is a value (a constant, a type alias) or is
  listed in a test module's ``EXEMPT`` with the reason.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Iterator
from types import CodeType

import pytest


def covers(*targets: object) -> pytest.MarkDecorator:
    """``@covers(f, g)``: the test exercises the public names ``f`` and ``g``.

    (``pytest.mark.covers(f)`` with one callable would decorate ``f`` instead; ``with_args``
    does not.)
    """
    return pytest.mark.covers.with_args(*targets)


def case(case_id: str, target: object, *values: object) -> object:
    """One parametrised case: ``pytest.param(*values, id=case_id)`` that covers ``target``."""
    return pytest.param(*values, id=case_id, marks=covers(target))


def qualified_name(target: object) -> str:
    """``module.qualname`` of a public function or class: one name however it is re-exported."""
    target = inspect.unwrap(target)
    return f"{target.__module__}.{target.__qualname__}"


def code_objects(target: object) -> set[CodeType]:
    """The code objects whose entry counts as calling ``target``.

    A function: its own code (decorators unwrapped). A class: the code of every function defined
    in its body (``__init__``, ``__post_init__``, methods, properties), the generated ones of a
    dataclass included.
    """
    target = inspect.unwrap(target)
    if inspect.isclass(target):
        codes = set()
        for attr in vars(target).values():
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if isinstance(attr, property):
                attr = attr.fget
            attr = inspect.unwrap(attr) if callable(attr) else attr
            if inspect.isfunction(attr):
                codes.add(attr.__code__)
        return codes
    code = getattr(target, "__code__", None)
    return {code} if code is not None else set()


@contextlib.contextmanager
def direct_calls(targets: dict[str, set[CodeType]], caller_file: str) -> Iterator[set[str]]:
    """Yield a set that collects the names of the ``targets`` entered from code in
    ``caller_file`` (Python-level calls, profiled with :func:`sys.setprofile`)."""
    wanted = {code: name for name, codes in targets.items() for code in codes}
    entered: set[str] = set()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in wanted:
            caller = frame.f_back
            if caller is not None and caller.f_code.co_filename == caller_file:
                entered.add(wanted[frame.f_code])

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield entered
    finally:
        sys.setprofile(previous)
