"""The names outside code relies on keep resolving.

Students hold copies of the chapters and assignments, so every ``lib`` attribute their code uses
must keep resolving where it resolves today, with the keyword arguments they pass. These tests
read the notebooks' code (not a hand-kept list) and the package's files (not its own list of
submodules), so a later move that breaks a handed-out notebook fails here first.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

import lib

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
NOTEBOOKS = sorted(ROOT.glob("book/*.ipynb")) + sorted(ROOT.glob("assignments/*/*.ipynb"))


def _module_paths() -> list[str]:
    """Dotted names of every public module and package under ``lib/``, from its files."""
    names = []
    for path in sorted(LIB.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1 and not any(p.startswith("_") for p in parts):
            names.append(".".join(parts))
    return names


@pytest.mark.parametrize("dotted", _module_paths())
def test_every_module_is_an_attribute_after_a_bare_import(dotted):
    obj = importlib.import_module("lib")
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part)  # AttributeError names the missing module
    assert inspect.ismodule(obj) or callable(obj), dotted


def test_the_walk_finds_the_packages():
    found = set(_module_paths())
    assert {"lib.metrics", "lib.dln", "lib.runtime"} <= found
    assert set(dir(lib)) >= {p.split(".")[1] for p in found}


# --------------------------------------------------------------------------------------------
# Every lib name the chapters and assignments use
# --------------------------------------------------------------------------------------------


def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        for line in "".join(cell["source"]).splitlines():
            # IPython magics and shell escapes are not Python
            lines.append("" if re.match(r"\s*[%!]", line) else line)
        lines.append("")
    return "\n".join(lines)


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted ``lib`` path, from the imports in ``tree``."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "lib" or a.name.startswith("lib."):
                    names[a.asname or a.name.split(".")[0]] = a.name if a.asname else "lib"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lib":
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _chain(node: ast.AST) -> list[str] | None:
    """``a.b.c`` -> ``["a", "b", "c"]``; ``None`` if the chain does not start at a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _resolve(dotted: str):
    module, *attrs = dotted.split(".")
    obj = importlib.import_module(module)
    for attr in attrs:
        obj = getattr(obj, attr)
    return obj


def _uses(tree: ast.AST, aliases: dict[str, str]):
    """``(dotted lib path, keyword names or None)`` for every use of an imported ``lib`` name."""
    calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Attribute, ast.Name)):
            continue
        chain = _chain(node)
        if not chain or chain[0] not in aliases:
            continue
        dotted = ".".join([aliases[chain[0]], *chain[1:]])
        call = calls.get(id(node))
        keywords = [k.arg for k in call.keywords if k.arg] if call is not None else None
        yield dotted, keywords


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_lib_name_in_the_notebooks_resolves(notebook):
    tree = ast.parse(_code(notebook))
    aliases = _aliases(tree)
    assert aliases, f"{notebook.name} imports nothing from lib"
    problems, checked = [], 0
    for dotted, keywords in _uses(tree, aliases):
        try:
            obj = _resolve(dotted)
        except (AttributeError, ImportError) as err:
            problems.append(f"{dotted}: {err}")
            continue
        checked += 1
        if not keywords or not callable(obj):
            continue
        try:
            params = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):  # builtins without a signature
            continue
        if any(p.kind is p.VAR_KEYWORD for p in params):
            continue
        accepted = {p.name for p in params}
        problems += [
            f"{dotted}(..., {k}=...): no such argument" for k in keywords if k not in accepted
        ]
    assert not problems, "\n".join(problems)
    assert checked > 0


def test_the_walker_sees_attributes_calls_and_keywords():
    tree = ast.parse(
        "from lib import metrics as m\nimport lib\nm.nc1(H, y, num_classes=3)\nlib.dln.train\n"
    )
    uses = dict(_uses(tree, _aliases(tree)))
    assert uses["lib.metrics.nc1"] == ["num_classes"]
    assert "lib.dln.train" in uses
    assert "lib.dln" in uses  # every prefix of a chain is checked too


def test_a_missing_name_or_keyword_is_reported(tmp_path):
    nb = tmp_path / "x.ipynb"
    source = "from lib import metrics\nmetrics.no_such_metric\nmetrics.nc1(H, y, colour=1)\n"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source}]}))
    with pytest.raises(AssertionError, match=r"no_such_metric(.|\n)*colour=\.\.\.\): no such"):
        test_every_lib_name_in_the_notebooks_resolves(nb)
