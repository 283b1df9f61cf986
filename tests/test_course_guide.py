"""The course guide (book/course_guide.md) is held to the chapters it describes.

Every chapter in ``_toc.yml`` has an entry; each notebook's title cell carries the guide's two
lines ("You will learn", "You should know") verbatim; the run time the guide quotes is the title
cell's; the exercises it lists are the chapter's; every assignment goes with exactly one chapter.
Each check is also run on a deliberately broken copy, so that it can fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "book" / "course_guide.md"
# pages of the book that are not chapters: the guide describes the chapters, not these
NOT_CHAPTERS = {"book/intro", "book/notation", "book/references", "book/course_guide"}
LINES = ("You will learn", "You should know")


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ch["file"] for part in toc["parts"] for ch in part["chapters"]]


def chapter_files() -> list[Path]:
    out = []
    for f in toc_files():
        if f in NOT_CHAPTERS:
            continue
        matches = [p for p in (ROOT / f"{f}.ipynb", ROOT / f"{f}.md") if p.exists()]
        assert len(matches) == 1, f"_toc.yml names {f!r}, which is neither a notebook nor a page"
        out.append(matches[0])
    return out


def sections(guide: str) -> dict[str, str]:
    """The guide's ``## `` sections keyed by the book file that opens them.

    A chapter's section starts, under its heading, with a line that begins with a link to the
    chapter (``[Chapter 2](02_law_of_parsimony.ipynb) · ...``); other sections are skipped.
    """
    out = {}
    for block in re.split(r"^## ", guide, flags=re.M)[1:]:
        link = re.match(r"[^\n]*\n\s*\[[^\]]*\]\(([\w.-]+\.(?:ipynb|md))\)", block)
        if link:
            assert link.group(1) not in out, f"two sections of the guide open with {link.group(1)}"
            out[link.group(1)] = block
    return out


def title_cell(path: Path) -> str:
    cell = json.loads(path.read_text())["cells"][0]
    return "".join(cell["source"])


def one_line(text: str, label: str) -> str | None:
    m = re.search(rf"^\*\*{label}:\*\*[^\n]*$", text, re.M)
    return m.group(0) if m else None


def run_time(text: str) -> str | None:
    """The ``**Expected run time:**`` paragraph, whitespace normalised."""
    m = re.search(r"^\*\*Expected run time:\*\*.*?(?=\n\s*\n|\Z)", text, re.S | re.M)
    return " ".join(m.group(0).split()) if m else None


def exercises_of(nb_text: str) -> set[str]:
    return set(re.findall(r":{3,}\{exercise\}[^\n]*\n:label: ([\w-]+)", nb_text))


def listed_exercises(section: str) -> set[str] | None:
    m = re.search(r"^Exercises: (.*?)(?:\.|$)", section, re.M)
    if m is None:
        return None
    return set(re.findall(r"`(ex-[\w-]+)`", m.group(1)))


def problems(guide: str) -> list[str]:
    """Everything that does not hold between the guide and the book; empty when all is well."""
    found = []
    secs = sections(guide)
    for path in chapter_files():
        sec = secs.get(path.name)
        if sec is None:
            found.append(f"{path.name}: no section of the guide links to it")
            continue
        if path.suffix != ".ipynb":
            continue
        title = title_cell(path)
        for label in LINES:
            mine, theirs = one_line(sec, label), one_line(title, label)
            if mine is None or mine != theirs:
                found.append(
                    f"{path.name}: '{label}' differs: guide {mine!r}, title cell {theirs!r}"
                )
        if run_time(sec) is None or run_time(sec) != run_time(title):
            found.append(f"{path.name}: run time differs from the title cell's")
        nb_text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        listed = listed_exercises(sec)
        if listed is None or listed != exercises_of(nb_text):
            found.append(
                f"{path.name}: exercises listed {listed}, chapter has {exercises_of(nb_text)}"
            )
    assignments = sorted(p.parent.name for p in ROOT.glob("assignments/*/*.ipynb"))
    for name in assignments:
        n = len(re.findall(rf"^Assignment: `{name}`", guide, re.M))
        if n != 1:
            found.append(f"assignment {name!r} goes with {n} chapters in the guide (expected 1)")
    return found


def test_the_guide_is_in_the_table_of_contents():
    assert "book/course_guide" in toc_files()


def test_the_guide_agrees_with_every_chapter():
    assert problems(GUIDE.read_text()) == []


@pytest.mark.parametrize(
    "old, new",
    [
        ("[Chapter 2](02_law_of_parsimony.ipynb) ·", "[Chapter 2](missing.ipynb) ·"),
        ("**You should know:** the SVD", "**You should know:** nothing about the SVD"),
        ("about 40 seconds on a laptop CPU", "about 4 seconds on a laptop CPU"),
        ("`ex-sep-loose`, ", ""),
        ("Assignment: `nc1`", "Assignment: none, not `nc1`"),
    ],
    ids=["entry", "title-line", "run-time", "exercise", "assignment"],
)
def test_each_check_can_fail(old, new):
    guide = GUIDE.read_text()
    assert old in guide
    assert problems(guide.replace(old, new, 1)) != []
