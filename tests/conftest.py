"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matrices: one thread is fastest, and batched bmm does not stall on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _covered_targets_are_called(request):
    """A test marked ``covers(f, ...)`` must call each ``f`` from its own module's code.

    Profiles the test (Python-level calls only) and records which targets were entered with the
    caller's frame in the test's file; fails naming the targets that never were. See
    ``tests/_cases.py``.
    """
    marks = list(request.node.iter_markers("covers"))
    if not marks:
        yield
        return
    from _cases import code_objects, direct_calls, qualified_name

    targets = {qualified_name(t): code_objects(t) for m in marks for t in m.args}
    with direct_calls(targets, str(request.path)) as entered:
        yield
    missing = sorted(set(targets) - entered)
    if missing:
        pytest.fail(f"marked covers({', '.join(missing)}) but the test never calls it directly")
