"""Write the chapters' markdown so that it reads right in a plain Jupyter/Colab renderer.

Colab renders each markdown cell with its own renderer and knows nothing of Jupyter Book: MyST
roles (``{cite:t}`key```, ``{ref}`label```) show as raw text and a backtick-fenced directive
(a theorem, an exercise) shows as a code block of LaTeX source. This script rewrites

* citations as author–year links built from ``references.bib`` (``[Yaras et al. (2023)](url)``
  for ``{cite:t}``, ``([Yaras et al., 2023](url))`` for ``{cite:p}``);
* ``{ref}`label``` as a link ``[label](#label)``;
* backtick-fenced ``exercise``, ``solution`` and ``prf:*`` directives as colon fences, whose body
  is ordinary markdown (Jupyter Book renders both forms the same way).

    python scripts/colab_markdown.py book/*.ipynb   # rewrites in place; outputs are untouched

``tests/test_book.py`` holds the notebooks to this form and the links to the bibliography.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ROLE = re.compile(r"\{cite:([tp])\}`([^`]+)`")
REF = re.compile(r"\{ref\}`([^`<]+)`")
FENCED = re.compile(r"^(`{3,})\{(exercise|solution|prf:\w+)\}(.*?)^\1[ \t]*$", re.S | re.M)


def bibliography(path: Path = ROOT / "references.bib") -> dict[str, dict[str, str]]:
    """``{key: {"names": "Yaras et al.", "year": "2023", "url": ...}}`` from ``references.bib``."""
    entries = {}
    for block in re.split(r"\n(?=@)", path.read_text()):
        key = re.match(r"\s*@\w+\{([^,]+),", block).group(1)
        field = {
            m.group(1): m.group(2)
            for m in re.finditer(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", block, re.M)
        }
        surnames = [a.split(",")[0].strip() for a in field["author"].split(" and ")]
        if len(surnames) == 1:
            names = surnames[0]
        elif len(surnames) == 2:
            names = f"{surnames[0]} and {surnames[1]}"
        else:
            names = f"{surnames[0]} et al."
        entries[key] = {"names": names, "year": field["year"], "url": field["url"]}
    return entries


def cite(kind: str, keys: str, bib: dict[str, dict[str, str]]) -> str:
    """The markdown that replaces one ``{cite:t}`` / ``{cite:p}`` role."""
    refs = [bib[k.strip()] for k in keys.split(",")]
    if kind == "t":
        return "; ".join(f"[{r['names']} ({r['year']})]({r['url']})" for r in refs)
    return "(" + "; ".join(f"[{r['names']}, {r['year']}]({r['url']})" for r in refs) + ")"


def rewrite(text: str, bib: dict[str, dict[str, str]]) -> str:
    text = ROLE.sub(lambda m: cite(m.group(1), m.group(2), bib), text)
    text = REF.sub(lambda m: f"[{m.group(1)}](#{m.group(1)})", text)
    return FENCED.sub(lambda m: f":::{{{m.group(2)}}}{m.group(3)}:::", text)


def main(paths: list[str]) -> int:
    bib = bibliography()
    for name in paths:
        path = Path(name)
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = rewrite(cell.source, bib)
        nbformat.write(nb, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
