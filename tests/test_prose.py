"""What the chapters say is what they show, and it reads right on Colab (issue 13).

* every number in a chapter's markdown is one its outputs print, or is allow-listed with its
  reason in ``tests/prose_numbers/<notebook>.yaml`` (the lecture's and papers' values, parameter values,
  equation constants);
* every LaTeX command in the chapters' math is one a stock MathJax/KaTeX knows (Colab renders
  the notebooks without the book's ``_config.yml``);
* no MyST role or backtick-fenced directive is left for Colab to show as raw text, and every
  citation reads author–year with a link that matches ``references.bib``;
* every chapter backs its result sentences with claim checks (``lib.claims``), hidden in the
  rendered book by the ``remove-cell`` tag.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prose import bibliography, latex_commands, printed_numbers, prose_numbers

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if not p.name.startswith("00_")]  # the chapters and the appendix
ALLOWED_NUMBERS = ROOT / "tests" / "prose_numbers"  # one <notebook stem>.yaml per notebook

#: LaTeX commands that stock MathJax 3 and KaTeX both render (Colab's renderer included).
STOCK_LATEX = frozenset(
    """
    alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi
    pi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Phi
    Psi Omega
    mathbb mathcal mathbf mathrm mathit boldsymbol operatorname text textbf textit rm bf
    frac dfrac tfrac sqrt sum prod int lim log exp max min sup inf arg det ker dim
    cdot cdots dots ldots vdots ddots times div pm mp ast star circ bullet odot otimes oplus
    le leq ge geq lt gt ll gg ne neq approx sim simeq cong equiv propto lesssim gtrsim
    in notin subset subseteq supset supseteq cup cap setminus emptyset forall exists
    to rightarrow leftarrow Rightarrow Leftarrow leftrightarrow iff implies mapsto
    infty partial nabla perp top dagger prime ell
    hat widehat tilde widetilde bar overline underline dot ddot vec
    left right big Big bigg Bigg langle rangle lvert rvert lVert rVert vert Vert
    quad qquad boxed
    begin end
    """.split()
)


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _allowed() -> dict[str, dict[str, str]]:
    """``{notebook: {number: reason}}`` from each file's YAML groups ``[{reason, numbers}]``."""
    allowed: dict[str, dict[str, str]] = {}
    for path in sorted(ALLOWED_NUMBERS.glob("*.yaml")):
        name = f"{path.stem}.ipynb"
        allowed[name] = {}
        for group in yaml.safe_load(path.read_text()) or []:
            for number in group["numbers"]:
                allowed.setdefault(name, {})[str(number)] = group["reason"]
    return allowed


def unprinted_numbers(nb: dict, allowed: dict[str, str]) -> list[tuple[int, str]]:
    printed = printed_numbers(nb)
    return [(i, n) for i, n in prose_numbers(nb) if n not in printed and n not in allowed]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_numbers_in_prose_are_printed_or_allow_listed(path):
    missing = unprinted_numbers(_load(path), _allowed().get(path.name, {}))
    assert not missing, (
        f"{path.name}: numbers in the prose that no output prints, as (cell, number): {missing}. "
        "Copy the printed value, print the value, or allow-list it with its reason in "
        "tests/prose_numbers/<notebook>.yaml"
    )


def test_allow_list_entries_have_reasons_and_are_used():
    allowed = _allowed()
    for name, numbers in allowed.items():
        path = ROOT / "book" / name
        assert path.exists(), f"tests/prose_numbers/ has a file for a missing notebook {name}"
        used = {n for _, n in prose_numbers(_load(path))}
        for number, reason in numbers.items():
            assert len(str(reason).split()) >= 3, f"{name}: {number} needs a reason"
            assert number in used, f"{name}: allow-listed {number} no longer appears in the prose"


def test_the_numbers_test_can_fail():
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "NC1 falls to 3.54 after 10,000 steps (ResNet18)."},
            {
                "cell_type": "code",
                "metadata": {},
                "source": "print(...)",
                "outputs": [{"output_type": "stream", "text": "NC1=3.55 steps=10000 lr=2.5e-07"}],
            },
            {"cell_type": "markdown", "source": "The rate is $2.5\\times10^{-7}$; 2.50 is not."},
        ]
    }
    assert unprinted_numbers(nb, {}) == [(0, "3.54"), (2, "2.50")]
    assert unprinted_numbers(nb, {"3.54": "the lecture's value", "2.50": "a constant"}) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_math_uses_only_stock_latex(path):
    unknown = {c: i for c, i in latex_commands(_load(path)).items() if c not in STOCK_LATEX}
    assert not unknown, (
        f"{path.name}: LaTeX commands that Colab's renderer may not know, as {{command: cell}}: "
        f"{unknown}. Write them out (\\mathcal{{NC}}, \\operatorname{{tr}}, \\mathbb{{R}}) or, if "
        "stock MathJax and KaTeX both have it, add it to STOCK_LATEX"
    )


def test_the_latex_test_can_fail():
    nb = {
        "cells": [{"cell_type": "markdown", "source": "$\\NC_1 = \\tr(\\Sigma_W)$ and $$\\R^d$$"}]
    }
    assert set(latex_commands(nb)) - STOCK_LATEX == {"NC", "tr", "R"}


_RAW_ON_COLAB = {
    "MyST role": re.compile(r"\{[\w:-]+\}`"),
    "backtick-fenced directive": re.compile(r"^`{3,}\{", re.M),
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_myst_syntax_that_colab_shows_raw(path):
    for cell in _load(path)["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        for what, pattern in _RAW_ON_COLAB.items():
            m = pattern.search(text)
            assert not m, (
                f"{path.name}: a {what} ({text[m.start() : m.start() + 40]!r}) shows as raw text "
                "on Colab; run scripts/colab_markdown.py"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_citations_read_author_year_and_link_the_bibliography(path):
    by_url = {entry["url"]: entry for entry in bibliography().values()}
    text = "\n".join("".join(c["source"]) for c in _load(path)["cells"])
    for label, url in re.findall(r"\[([^\]]+)\]\((https?://[^)]+)\)", text):
        if url in by_url:
            entry = by_url[url]
            assert label in (
                f"{entry['names']} ({entry['year']})",
                f"{entry['names']}, {entry['year']}",
            ), (
                f"{path.name}: citation [{label}]({url}) should read {entry['names']} {entry['year']}"
            )
    for doi in re.findall(r"arxiv\.org/abs/([\d.]+)", text):
        assert f"https://arxiv.org/abs/{doi}" in by_url, (
            f"{path.name}: arXiv {doi} is not in references.bib"
        )


def _claim_cells(nb: dict) -> list[dict]:
    return [
        c
        for c in nb["cells"]
        if c["cell_type"] == "code" and "claims.claim(" in "".join(c["source"])
    ]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_back_their_claims_with_hidden_checks(path):
    cells = _claim_cells(_load(path))
    assert cells, f"{path.name} has no claim check (lib.claims.claim after a result)"
    for cell in cells:
        assert "remove-cell" in cell.get("metadata", {}).get("tags", []), (
            f"{path.name}: a claim cell lacks the 'remove-cell' tag (the book hides checks)"
        )
        assert not cell.get("outputs"), f"{path.name}: a claim check printed something"
