"""The student edition (``scripts/build_student.py``): every exercise, no solution visible.

The check is made on the rendered HTML: no sphinx-exercise solution node, no prose line of any
solution block, and no line of the solutions' code cells, while the exercises' own prose is there
(which also shows that the text search would find a solution line if one were rendered).
"""

from __future__ import annotations

import html as html_lib
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import build_student  # noqa: E402

BLOCK = re.compile(r"(`{3,}|:{3,})\{(exercise|solution)\}[^\n]*\n(.*?)\n\1(?!`|:)", re.S)
PLAIN = re.compile(r"^[A-Za-z][A-Za-z ,.;'()-]{29,}$")


def chapters() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [ch["file"] for part in toc.get("parts", []) for ch in part["chapters"]]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def blocks(nb: dict, kind: str) -> list[str]:
    text = "\n".join(build_student.source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    return [body for _, k, body in BLOCK.findall(text) if k == kind]


def prose(body: str) -> list[str]:
    """Lines of plain words (no markup or math), which the HTML shows verbatim."""
    lines = [ln.strip() for ln in body.splitlines() if not ln.strip().startswith(":")]
    return [ln for ln in lines if PLAIN.match(ln)]


def visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_strip_solutions_removes_tagged_and_following_code_cells():
    def md(s):
        return {"cell_type": "markdown", "metadata": {}, "source": s}

    def code(s, tags=()):
        return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": s, "outputs": []}

    nb = {
        "cells": [
            md("````{exercise} E\n:label: e\n\nDo it.\n````"),
            code("keep_exercise_setup()"),
            md("````{solution} e\n:class: dropdown\n\nDone.\n````"),
            code("drop_1()"),
            code("drop_2()"),
            md("Next section."),
            code("keep()"),
            code("drop_tagged()", tags=["solution"]),
        ]
    }
    assert build_student.strip_solutions(nb) == 3
    assert "Done." not in json.dumps(nb) and "Do it." in json.dumps(nb)
    kept = [build_student.source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    assert kept == ["keep_exercise_setup()", "keep()"]


def test_student_config_hides_solutions():
    config = build_student.student_config(ROOT / "_config.yml")
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert config["execute"]["execute_notebooks"] == "off"
    assert "launch_buttons" not in config


def test_student_badges_open_the_release_or_nothing():
    """Without a release tag the Colab badges (they open the repository's notebooks, solutions
    included) are removed; with one they open the student copies on the branch student/<tag>."""
    colab = "colab.research.google.com/github/"
    for path in chapters():
        nb = json.loads(path.read_text())
        assert colab in json.dumps(nb), f"{path.name}: no badge to check"
        assert build_student.student_badges(nb, path.stem, None) == 1
        assert colab not in json.dumps(nb) and "colab-badge.svg" not in json.dumps(nb)
        nb = json.loads(path.read_text())
        assert build_student.student_badges(nb, path.stem, "term-2027s") == 1
        links = re.findall(r"colab\.research\.google\.com/github/\S+?\.ipynb", json.dumps(nb))
        assert links == [
            f"{colab}lowdim-course/lecture6-book/blob/student/term-2027s/book/{path.name}"
        ]
    config = build_student.student_config(ROOT / "_config.yml", "term-2027s")
    assert config["repository"]["branch"] == "student/term-2027s" and "launch_buttons" in config
    assert config["sphinx"]["config"]["hide_solutions"] is True


@pytest.mark.slow
def test_student_edition_shows_exercises_but_no_solution(tmp_path):
    index = build_student.build(tmp_path)
    assert index.exists()
    checked_solutions = checked_exercises = 0
    for path in chapters():
        nb = json.loads(path.read_text())
        exercises, solutions = blocks(nb, "exercise"), blocks(nb, "solution")
        if not exercises:
            continue
        page = (tmp_path / "html" / path.relative_to(ROOT)).with_suffix(".html").read_text()
        text = visible_text(page)
        assert not re.search(r'class="[^"]*\bsolution\b', page), f"{path.name}: solution node"
        assert "colab.research.google.com/github" not in page, (
            f"{path.name}: a Colab link to solutions"
        )
        assert page.count('class="admonition') >= len(exercises) or "exercise" in page
        for body in exercises:
            for line in prose(body):
                assert line in text, f"{path.name}: exercise text missing: {line!r}"
                checked_exercises += 1
        for body in solutions:
            for line in prose(body):
                assert line not in text, f"{path.name}: solution text visible: {line!r}"
                checked_solutions += 1
        # the code of the worked solutions is gone too (compared without whitespace, since the
        # highlighted HTML splits code into tokens); a kept code line is found the same way
        dense = "".join(html_lib.unescape(re.sub(r"<[^>]+>", "", page)).split())
        stripped = json.loads(json.dumps(nb))
        build_student.strip_solutions(stripped)
        kept = [build_student.source(c) for c in stripped["cells"] if c["cell_type"] == "code"]
        kept_lines = {"".join(ln.split()) for src in kept for ln in src.splitlines()}
        control = [ln for ln in kept_lines if len(ln) > 25]
        assert control and any(ln in dense for ln in control), "code search found nothing"
        for cell in nb["cells"]:
            src = build_student.source(cell)
            if cell["cell_type"] != "code" or src in kept:
                continue
            for line in ("".join(ln.split()) for ln in src.splitlines()):
                if len(line) > 25 and line not in kept_lines and not line.startswith("#"):
                    assert line not in dense, f"{path.name}: solution code visible: {line!r}"
                    checked_solutions += 1
    # nor in anything downloadable (the notebooks and sources under _sources/)
    solution_lines = [
        ln
        for path in chapters()
        for b in blocks(json.loads(path.read_text()), "solution")
        for ln in prose(b)
    ]
    for f in (tmp_path / "html").rglob("*"):
        if f.is_file() and f.suffix in {".ipynb", ".md", ".txt", ".html", ".js"}:
            body = " ".join(f.read_text(errors="ignore").replace("\\n", " ").split())
            leaked = [ln for ln in solution_lines if ln in body]
            assert not leaked, f"{f.relative_to(tmp_path)} holds solution text: {leaked[:2]}"
    assert checked_exercises > 0 and checked_solutions > 0, "no exercise/solution text was checked"
