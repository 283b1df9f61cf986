"""Licences and citation: ``LICENSE`` (MIT, code), ``LICENSE-TEXT.md`` (CC BY 4.0, text and
figures) and ``CITATION.cff`` (Citation File Format 1.2.0, GitHub's "Cite this repository").

The CFF check is written here, from the CFF 1.2.0 schema's structure, instead of calling
``cffconvert``: cffconvert pins ``jsonschema<4``, which the Jupyter stack cannot share. It checks
the required keys, that every top-level key is one CFF 1.2.0 defines, the shape of authors and
references, the SPDX licence id and ISO dates — not every pattern of the JSON schema.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

LECTURE_AUTHORS = {
    "Buchanan": "Sam",
    "Ma": "Yi",
    "Qu": "Qing",
    "Wang": "Atlas",
    "Wright": "John",
    "Zhang": "Yuqian",
    "Zhu": "Zhihui",
}

# Top-level keys of CFF 1.2.0 (https://github.com/citation-file-format/citation-file-format,
# schema.json, "properties").
CFF_KEYS = {
    "abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi",
    "identifiers", "keywords", "license", "license-url", "message", "preferred-citation",
    "references", "repository", "repository-artifact", "repository-code", "title", "type",
    "url", "version",
}  # fmt: skip
CFF_REQUIRED = ("cff-version", "message", "title", "authors")
CFF_TYPES = {"software", "dataset"}
# Reference types of CFF 1.2.0 (definitions.reference.type.enum).
CFF_REFERENCE_TYPES = {
    "art", "article", "audiovisual", "bill", "blog", "book", "catalogue", "conference",
    "conference-paper", "data", "database", "dictionary", "edited-work", "encyclopedia",
    "film-broadcast", "generic", "government-document", "grant", "hearing", "historical-work",
    "legal-case", "legal-rule", "magazine-article", "manual", "map", "multimedia", "music",
    "newspaper-article", "pamphlet", "patent", "personal-communication", "proceedings",
    "report", "serial", "slides", "software", "software-code", "software-container",
    "software-executable", "software-virtual-machine", "sound-recording", "standard",
    "statute", "thesis", "unpublished", "video", "website",
}  # fmt: skip
PERSON_KEYS = {
    "family-names", "given-names", "name-particle", "name-suffix", "affiliation", "address",
    "alias", "city", "country", "email", "fax", "orcid", "post-code", "region", "tel", "website",
}  # fmt: skip
ENTITY_KEYS = {
    "name", "address", "alias", "city", "country", "date-end", "date-start", "email", "fax",
    "location", "orcid", "post-code", "region", "tel", "website",
}  # fmt: skip
# An SPDX licence id (or a WITH/AND/OR-free id with the "-only"/"-or-later"/"+" forms).
SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
URL = re.compile(r"^(https|http|ftp|sftp)://\S+$")


def _iso_date(value) -> bool:
    if isinstance(value, dt.date):  # an unquoted YAML date
        return True
    if not (isinstance(value, str) and ISO_DATE.match(value)):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_authors(authors, where: str) -> list[str]:
    if not isinstance(authors, list) or not authors:
        return [f"{where}: authors must be a non-empty list"]
    errors = []
    for i, a in enumerate(authors):
        if not isinstance(a, dict):
            errors.append(f"{where}: author {i} is not a mapping")
            continue
        if "name" in a:
            unknown = set(a) - ENTITY_KEYS
        elif "family-names" in a or "given-names" in a:
            unknown = set(a) - PERSON_KEYS
        else:
            errors.append(f"{where}: author {i} has neither 'name' nor 'family-names'")
            continue
        if unknown:
            errors.append(f"{where}: author {i} has unknown keys {sorted(unknown)}")
        if not all(isinstance(v, (str, int, float, dt.date)) for v in a.values()):
            errors.append(f"{where}: author {i} has a non-scalar field")
    return errors


def _check_license(value, where: str) -> list[str]:
    ids = value if isinstance(value, list) else [value]
    if not ids or not all(isinstance(v, str) and SPDX_ID.match(v) for v in ids):
        return [f"{where}: license must be an SPDX id string (or a list of them), got {value!r}"]
    return []


def cff_errors(cff) -> list[str]:
    """What makes ``cff`` (a parsed CITATION.cff) not a valid CFF 1.2.0 file; [] if nothing."""
    if not isinstance(cff, dict):
        return ["the file is not a YAML mapping"]
    errors = [f"missing required key {k!r}" for k in CFF_REQUIRED if k not in cff]
    errors += [f"unknown top-level key {k!r}" for k in sorted(set(cff) - CFF_KEYS)]
    if str(cff.get("cff-version")) != "1.2.0":
        errors.append(f"cff-version must be '1.2.0', got {cff.get('cff-version')!r}")
    for key in ("message", "title", "abstract"):
        if key in cff and not (isinstance(cff[key], str) and cff[key].strip()):
            errors.append(f"{key} must be a non-empty string")
    if "authors" in cff:
        errors += _check_authors(cff["authors"], "authors")
    if "type" in cff and cff["type"] not in CFF_TYPES:
        errors.append(f"type must be one of {sorted(CFF_TYPES)}, got {cff['type']!r}")
    if "license" in cff:
        errors += _check_license(cff["license"], "top level")
    if "date-released" in cff and not _iso_date(cff["date-released"]):
        errors.append(f"date-released is not an ISO date: {cff['date-released']!r}")
    if "version" in cff and not isinstance(cff["version"], (str, int, float)):
        errors.append("version must be a string or a number")
    for key in ("repository-code", "repository", "repository-artifact", "url", "license-url"):
        if key in cff and not (isinstance(cff[key], str) and URL.match(cff[key])):
            errors.append(f"{key} is not a URL: {cff[key]!r}")
    if "keywords" in cff and not (
        isinstance(cff["keywords"], list) and all(isinstance(k, str) for k in cff["keywords"])
    ):
        errors.append("keywords must be a list of strings")
    refs = cff.get("references", [])
    if not isinstance(refs, list):
        errors.append("references must be a list")
        refs = []
    if "preferred-citation" in cff:
        refs = [*refs, cff["preferred-citation"]]
    for i, ref in enumerate(refs):
        where = f"reference {i}"
        if not isinstance(ref, dict):
            errors.append(f"{where} is not a mapping")
            continue
        for key in ("type", "title", "authors"):
            if key not in ref:
                errors.append(f"{where}: missing required key {key!r}")
        if "type" in ref and ref["type"] not in CFF_REFERENCE_TYPES:
            errors.append(f"{where}: unknown type {ref['type']!r}")
        if "authors" in ref:
            errors += _check_authors(ref["authors"], where)
        if "license" in ref:
            errors += _check_license(ref["license"], where)
        for key in ("date-released", "date-published", "date-accessed"):
            if key in ref and not _iso_date(ref[key]):
                errors.append(f"{where}: {key} is not an ISO date: {ref[key]!r}")
        if "year" in ref and not isinstance(ref["year"], int):
            errors.append(f"{where}: year must be an integer")
        if "url" in ref and not (isinstance(ref["url"], str) and URL.match(ref["url"])):
            errors.append(f"{where}: url is not a URL: {ref['url']!r}")
    return errors


@pytest.fixture(scope="module")
def cff():
    return yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))


def test_code_licence_is_mit_and_matches_the_package_metadata():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    assert "2023–2026 the contributors of the course book" in text
    if sys.version_info >= (3, 11):
        import tomllib

        meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        assert meta["project"]["license"] == "MIT"


def test_text_licence_is_cc_by_4_and_credits_the_lecture():
    text = (ROOT / "LICENSE-TEXT.md").read_text(encoding="utf-8")
    assert "Creative Commons Attribution 4.0 International" in text
    assert "CC BY 4.0" in text
    assert "https://creativecommons.org/licenses/by/4.0/" in text
    assert "https://creativecommons.org/licenses/by/4.0/legalcode" in text
    assert "(LICENSE)" in text  # points to the code's licence
    for family, given in LECTURE_AUTHORS.items():
        assert f"{given} {family}" in text, f"the lecture credit misses {given} {family}"
    assert "https://highdimdata-lowdimmodels-tutorial.github.io" in text


def test_citation_cff_is_valid_cff_1_2(cff):
    assert cff_errors(cff) == []


def test_citation_cff_matches_the_project(cff):
    assert cff["type"] in {"software", "dataset"}
    assert cff["license"] == "MIT"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(rf'^version = "{re.escape(str(cff["version"]))}"$', pyproject, re.M)
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert cff["repository-code"] == config["repository"]["url"]


def test_citation_cff_credits_the_lecture_authors(cff):
    lecture = [r for r in cff["references"] if "ICASSP 2023" in yaml.safe_dump(r)]
    assert lecture, "no reference names the ICASSP 2023 short course"
    people = {a.get("family-names"): a.get("given-names") for a in lecture[0]["authors"]}
    assert people == LECTURE_AUTHORS


@pytest.mark.parametrize(
    "breakage",
    [
        lambda c: c.pop("message"),
        lambda c: c.update({"cff-version": "1.1.0"}),
        lambda c: c.update({"authors": []}),
        lambda c: c.update({"authors": [{"affiliation": "nobody's name"}]}),
        lambda c: c.update({"licence": "MIT"}),  # misspelt key: not CFF
        lambda c: c.update({"license": "MIT licence"}),  # not an SPDX id
        lambda c: c.update({"date-released": "2 December 2026"}),
        lambda c: c["references"][0].pop("title"),
        lambda c: c["references"][0].update({"type": "lecture"}),
    ],
    ids=[
        "no-message",
        "old-version",
        "no-authors",
        "nameless-author",
        "unknown-key",
        "non-spdx-licence",
        "non-iso-date",
        "reference-without-title",
        "unknown-reference-type",
    ],
)
def test_the_cff_check_rejects_a_broken_file(cff, breakage):
    """Test of the test: each single breakage of the real file is caught."""
    broken = yaml.safe_load(yaml.safe_dump(cff))
    breakage(broken)
    assert cff_errors(broken), "the CFF check accepted a broken file"


def test_readme_and_book_footer_link_the_licences():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("LICENSE", "LICENSE-TEXT.md", "CITATION.cff"):
        assert f"]({target})" in readme, f"README does not link {target}"
    footer = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["html"][
        "extra_footer"
    ]
    assert "MIT" in footer and "CC BY 4.0" in footer
    assert "LICENSE-TEXT.md" in footer and "creativecommons.org/licenses/by/4.0" in footer
