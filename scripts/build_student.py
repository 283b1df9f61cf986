"""Build the student edition of the book: every exercise, no solution.

    python scripts/build_student.py            # -> _build/student/html/index.html
    python scripts/build_student.py --out DIR  # -> DIR/html/index.html
    python scripts/build_student.py --tag term-2027s  # badges open that release's student notebooks

It copies the book's sources (``_config.yml``, ``_toc.yml``, ``references.bib``, ``book/``) to a
temporary directory and there

* sets sphinx-exercise's ``hide_solutions: true``, so no ``{solution}`` block is rendered;
* cuts the ``{solution}`` blocks out of the markdown (the downloadable sources hold none);
* points the "Open in Colab" badges and launch buttons at the student notebooks of a release:
  with a release tag (``--tag term-2027s``, or ``$GITHUB_REF_NAME`` when it is one; the same rule as
  ``scripts/release.py``, which publishes those notebooks on the branch ``student/<tag>``) they
  open ``https://colab.research.google.com/github/<repo>/blob/student/<tag>/book/<nb>.ipynb``;
  without a tag there is nothing without solutions to open, so badges and launch buttons are
  removed (the repository's notebooks have the solutions);
* removes the code cells that belong to a solution: cells tagged ``solution``, and the code cells
  that directly follow a markdown cell ending in a ``{solution}`` block (the worked solution's
  code and its output, up to the next markdown cell);
* renders the stored outputs (``execute_notebooks: "off"``: the solutions' cells are gone, and nbval
  has already checked the outputs) with ``jupyter-book build``.

The repository itself is never modified.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["_config.yml", "_toc.yml", "references.bib", "book"]
SOLUTION_TAG = "solution"
# a markdown cell whose last directive is a solution block: ```{solution} ... ``` (any fence length)
SOLUTION_BLOCK = re.compile(r"(`{3,}|:{3,})\{solution\}[^\n]*\n.*?\n\1[ \t]*(?=\n|\Z)\n?", re.S)
ENDS_IN_SOLUTION = re.compile(r"(`{3,}|:{3,})\{solution\}[^\n]*\n(?:(?!\1\{).)*?\1\s*\Z", re.S)


def source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def strip_solutions(nb: dict) -> int:
    """Remove solution blocks and solution code cells from ``nb`` in place.

    Returns the number of code cells removed. The ``{solution}`` blocks are cut out of the markdown
    too, so that the notebooks the HTML offers for download (``_sources/``) hold no solution.
    """
    kept, removed, after_solution = [], 0, False
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = source(cell)
            after_solution = bool(ENDS_IN_SOLUTION.search(text.rstrip() + "\n"))
            if SOLUTION_BLOCK.search(text):
                cell["source"] = SOLUTION_BLOCK.sub("", text).rstrip("\n")
            kept.append(cell)
        elif cell["cell_type"] == "code" and (
            after_solution or SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])
        ):
            removed += 1
        else:
            kept.append(cell)
    nb["cells"] = kept
    return removed


def student_config(src: Path, tag: str | None = None) -> dict:
    """The student edition's ``_config.yml``; with a release ``tag`` the launch buttons open the
    student notebooks on the branch ``student/<tag>``, without one there are none."""
    config = yaml.safe_load(src.read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("config", {})["hide_solutions"] = True
    if tag is None:  # launch buttons would open the repository's notebooks, solutions included
        config.pop("launch_buttons", None)
    else:
        import release  # noqa: PLC0415 - release imports this module

        config.setdefault("repository", {})["branch"] = release.student_branch(tag)
    config["title"] = f"{config.get('title', '')} (student edition)".strip()
    return config


def student_badges(nb: dict, stem: str, tag: str | None) -> int:
    """Point the notebook's "Open in Colab" badge at the student copy of ``tag``, or remove it
    when there is no tag; returns the number of badges changed."""
    import release  # noqa: PLC0415 - release imports this module

    url = re.compile(release.BADGE_URL.format(stem=re.escape(stem)))
    badge = re.compile(r"\[!\[Open in Colab\]\([^)]*\)\]\(" + url.pattern + r"\)[ \t]*\n?\n?")
    new = release.colab_url(release.repository(), tag, f"book/{stem}.ipynb") if tag else ""
    changed = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        if tag is None:
            text, n = badge.subn("", source(cell))
        else:
            text, n = url.subn(lambda _: new, source(cell))
        if n:
            cell["source"], changed = text, changed + n
    return changed


def prepare(dest: Path, tag: str | None = None) -> int:
    """Copy the book's sources to ``dest``, strip the solutions there and point the Colab badges
    at the student notebooks of ``tag`` (or remove them); returns the code cells removed."""
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, dest / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        elif path.exists():
            shutil.copy2(path, dest / name)
    (dest / "_config.yml").write_text(yaml.safe_dump(student_config(ROOT / "_config.yml", tag)))
    removed = 0
    for path in sorted((dest / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        removed += strip_solutions(nb)
        student_badges(nb, path.stem, tag)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return removed


def build(out: Path, strict: bool = False, tag: str | None = None) -> Path:
    """Build the student edition into ``out/html``; returns the path of its ``index.html``.

    ``tag``: the release whose student notebooks the Colab badges open (none: no badges)."""
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which(
        "jupyter-book"
    )
    if not jb:
        raise SystemExit("jupyter-book is not installed (pip install -r requirements.txt)")
    with tempfile.TemporaryDirectory(prefix="student-book-") as tmp:
        src = Path(tmp) / "book-src"
        src.mkdir()
        removed = prepare(src, tag)
        print(f"removed {removed} solution code cell(s)")
        cmd = [jb, "build", str(src), "--path-output", str(Path(tmp) / "out")]
        if strict:
            cmd += ["-W", "-n", "--keep-going"]
        subprocess.run(cmd, check=True)
        html = out / "html"
        if html.exists():
            shutil.rmtree(html)
        shutil.copytree(Path(tmp) / "out" / "_build" / "html", html)
    return html / "index.html"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student")
    parser.add_argument("--strict", action="store_true", help="warnings are errors (-W -n)")
    parser.add_argument(
        "--tag", default=None, help="release whose student notebooks the badges open "
        "(default: $GITHUB_REF_NAME when it is a release tag; none: no badges)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    import release  # noqa: PLC0415 - release imports this module

    try:
        tag = release.resolve_tag(args.tag)
    except release.ReleaseError as err:
        raise SystemExit(f"build_student: {err}") from None
    print(f"Colab badges: {'student/' + tag if tag else 'none (no release tag)'}")
    print(f"student edition: {build(args.out.resolve(), args.strict, tag)}")


if __name__ == "__main__":
    main()
