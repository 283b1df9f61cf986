"""Reading the chapters' prose (helpers for ``tests/test_prose.py``).

* :func:`prose_numbers` — the numbers a chapter's markdown states, as written;
* :func:`printed_numbers` — the numbers its stored outputs print (and its ``parameters`` cell);
* :func:`latex_commands` — the LaTeX commands its math uses.

A number is compared *as printed*: ``10,000`` and ``10000`` are the same number, ``2.5e-07`` and
``2.5e-7`` too, but ``0.39`` and ``0.390`` are not (prose copies the printed digits).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from colab_markdown import bibliography  # noqa: E402

# A number in prose: not part of a word (ResNet18), a path or a name (ViT-B/32, x_1, 10^4's 4
# is read as its own number), with thousands separators and an optional exponent.
_PROSE = re.compile(r"(?<![\w.\\/^-])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:[eE]([-+−]?\d+))?")
_PRINTED = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:[eE]([-+−]?\d+))?")
#: Integers up to this count things (layers, classes, sections, exponents); not checked.
SMALL_INTEGER = 10


def canonical(integer: str, fraction: str | None, exponent: str | None) -> str:
    text = integer.replace(",", "") + (fraction or "")
    if exponent:
        text += f"e{int(exponent.replace('−', '-'))}"
    return text


def _text(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _strip_non_prose(md: str) -> str:
    """Drop what is not a statement about results: links' targets, citations, comments, labels."""
    urls = {entry["url"] for entry in bibliography().values()}
    md = re.sub(r"\[[^\]]*\]\(([^)]*)\)", lambda m: "" if m.group(1) in urls else "[]", md)
    md = re.sub(r"https?://\S+", "", md)
    md = re.sub(r"<!--.*?-->", "", md, flags=re.S)
    return re.sub(r"^:(label|class):.*$", "", md, flags=re.M)


def prose_numbers(nb: dict) -> list[tuple[int, str]]:
    """``[(cell index, number)]`` for every checked number in the markdown cells."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for m in _PROSE.finditer(_strip_non_prose(_text(cell))):
            integer, fraction, exponent = m.groups()
            if not fraction and not exponent and int(integer.replace(",", "")) <= SMALL_INTEGER:
                continue
            found.append((index, canonical(integer, fraction, exponent)))
    return found


def printed_numbers(nb: dict) -> set[str]:
    """Every number in the stored text outputs and in the ``parameters`` cell.

    A printed ``2.5e-07`` also yields ``2.5`` and ``7``, so that prose may write
    :math:`2.5\\times10^{-7}`.
    """
    texts = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            texts.append(_text(cell))
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                texts.append(_text({"source": out["text"]}))
            for kind in ("text/plain", "text/markdown", "text/html"):
                if kind in out.get("data", {}):
                    texts.append(_text({"source": out["data"][kind]}))
    numbers = set()
    for text in texts:
        for m in _PRINTED.finditer(text):
            integer, fraction, exponent = m.groups()
            numbers.add(canonical(integer, fraction, exponent))
            if exponent:
                numbers.add(canonical(integer, fraction, None))
                numbers.add(str(abs(int(exponent.replace("−", "-")))))
    return numbers


def _math(md: str) -> str:
    """The math of a markdown text: ``$$…$$``, ``$…$`` and ``\\begin…\\end`` environments."""
    parts = re.findall(r"\$\$(.+?)\$\$", md, flags=re.S)
    md = re.sub(r"\$\$(.+?)\$\$", "", md, flags=re.S)
    parts += re.findall(r"(?<!\\)\$(.+?)(?<!\\)\$", md, flags=re.S)
    parts += re.findall(r"\\begin\{(\w+\*?)\}(.+?)\\end\{\1\}", md, flags=re.S) and [
        m.group(0) for m in re.finditer(r"\\begin\{(\w+\*?)\}.+?\\end\{\1\}", md, flags=re.S)
    ]
    return "\n".join(parts)


def latex_commands(nb: dict) -> dict[str, int]:
    """``{command: first markdown cell index}`` for every ``\\command`` in the notebook's math."""
    found: dict[str, int] = {}
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            for name in re.findall(r"\\([A-Za-z]+)", _math(_text(cell))):
                found.setdefault(name, index)
    return found
