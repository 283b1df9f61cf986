"""The release of a term (``scripts/release.py``): what students get, pinned to the tag.

Fast tests check the rewriting rules on the repository's notebooks (every install pinned, the
tests URL and the Colab badges on the tag, a missing pattern an error) and that each checker
below rejects a deliberately bad input. The slow tests build the whole release once, into a
temporary folder, and check it as a student's Colab would use it: the zip each assignment's first
cell downloads is in the upload set, holds the public tests only (no hidden test, rubric or
solution) in the layout ``extractall(".")`` expects; the student notebooks hold no solution; every
install is pinned to the tag; the autograder zip is not uploaded.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import build_student  # noqa: E402
import release  # noqa: E402
from test_assignments import MASTERS, cells, rubric_lines, source, split_master  # noqa: E402
from test_student_edition import blocks, prose  # noqa: E402

TAG = "term-2099t"
REPO = release.repository()
TESTS_ASSIGNMENT = re.compile(r"TESTS = \(?\s*\"([^\"]+)\"")


def first_code(nb: dict) -> str:
    return next(source(c) for c in nb["cells"] if c["cell_type"] == "code")


def notebook_text(nb: dict) -> str:
    return "\n".join(source(c) for c in nb["cells"])


def otter_cases(path_or_text) -> dict[str, list[tuple[str, bool]]]:
    """``{test name: [(case code, hidden), ...]}`` of an otter test file (``OK_FORMAT``)."""
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    scope: dict = {}
    exec(compile(text, "<otter test>", "exec"), scope)  # noqa: S102 - otter's own test files
    test = scope["test"]
    cases = [(c["code"], bool(c.get("hidden"))) for s in test["suites"] for c in s["cases"]]
    return {test["name"]: cases}


def zip_problems(path: Path, autograder_tests: Path, secret_lines: list[str]) -> list[str]:
    """What is wrong with a released tests zip, compared with the autograder's tests: every file
    must be ``tests/<name>.py`` of a question, hold exactly that question's public cases and no
    hidden case, and no line of a solution or rubric."""
    problems = []
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        files = {n: zf.read(n).decode() for n in names if not n.endswith("/")}
    expected = {f"tests/{p.name}" for p in autograder_tests.glob("*.py")}
    if set(files) != expected:
        problems.append(f"files {sorted(files)} are not {sorted(expected)}")
    for name, text in files.items():
        full = autograder_tests / Path(name).name
        if not full.exists():
            continue
        ((_, ours),) = otter_cases(text).items()
        ((_, theirs),) = otter_cases(full).items()
        if [code for code, hidden in theirs if not hidden] != [code for code, _ in ours]:
            problems.append(f"{name}: not exactly the public cases of the question")
        if any(hidden for _, hidden in ours) or "'hidden': True" in text:
            problems.append(f"{name}: holds a hidden test")
        leaked = [ln for ln in secret_lines if ln in text]
        if leaked:
            problems.append(f"{name}: holds solution or rubric lines {leaked[:2]}")
    return problems


def solution_problems(nb: dict, full: dict) -> list[str]:
    """Solution prose or code of the full chapter ``full`` that the student copy ``nb`` shows."""
    text = notebook_text(nb)
    problems = [
        f"solution text: {line!r}"
        for body in blocks(full, "solution")
        for line in prose(body)
        if line in text
    ]
    kept = {source(c) for c in nb["cells"] if c["cell_type"] == "code"}
    kept_lines = {ln.strip() for src in kept for ln in src.splitlines()}
    stripped = json.loads(json.dumps(full))
    build_student.strip_solutions(stripped)
    student = {source(c) for c in stripped["cells"]}
    for cell in full["cells"]:
        src = source(cell)
        if cell["cell_type"] == "code" and src not in student:
            for line in (ln.strip() for ln in src.splitlines()):
                if len(line) > 25 and not line.startswith("#") and line in kept_lines:
                    problems.append(f"solution code: {line!r}")
    return problems


# -- fast: the rules ------------------------------------------------------------------------------


def test_repository_and_tag_come_from_one_place(tmp_path, monkeypatch):
    assert REPO == "lowdim-course/lecture6-book"
    bad = tmp_path / "_config.yml"
    bad.write_text("repository:\n  url: https://gitlab.com/a/b\n")
    with pytest.raises(release.ReleaseError, match="repository.url"):
        release.repository(bad)
    assert release.resolve_tag("term-2027s") == "term-2027s"
    for wrong in ("main", "v1.0", "term-", "term-a b", "term-a..b"):
        with pytest.raises(release.ReleaseError, match="tag must look like"):
            release.resolve_tag(wrong)
    assert release.resolve_tag(None, {"GITHUB_REF_NAME": "term-2027s"}) == "term-2027s"
    assert release.resolve_tag(None, {"GITHUB_REF_NAME": "main"}) is None  # a branch build
    assert release.resolve_tag(None, {}) is None
    monkeypatch.delenv("GITHUB_REF_NAME", raising=False)
    with pytest.raises(release.ReleaseError, match="no tag"):
        release.build(None, tmp_path / "out")
    (tmp_path / "keep.txt").write_text("not a release")  # --out . must not wipe a work tree
    with pytest.raises(release.ReleaseError, match="not empty"):
        release.build(TAG, tmp_path)
    assert (tmp_path / "keep.txt").exists()


def test_repository_notebooks_install_the_development_version():
    """The repository's notebooks install from main; only the released copies are pinned."""
    unpinned = f"{release.PACKAGE} @ git+https://github.com/{REPO}"
    for path in [*MASTERS, *release.chapters()]:
        specs = release.INSTALL.findall(notebook_text(json.loads(path.read_text())))
        assert specs and set(specs) == {unpinned}, f"{path.name}: {specs}"


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_pin_assignment_pins_install_requirements_and_tests_url(master):
    nb = release.pin_assignment(json.loads(master.read_text()), master.stem, REPO, TAG)
    text = notebook_text(nb)
    assert not release.unpinned(text, REPO, TAG)
    assert text.count(release.install_spec(REPO, TAG)) == 2  # requirements + install cell
    (url,) = TESTS_ASSIGNMENT.findall(first_code(nb))
    assert url == f"https://github.com/{REPO}/releases/download/{TAG}/{master.stem}-tests.zip"


def test_a_missing_pattern_is_an_error():
    master = MASTERS[0]
    for old, what in [
        (f"{release.PACKAGE} @", "package install"),  # the install cell renamed its package
        (f"{master.stem}-tests.zip", "tests URL"),  # the zip renamed
    ]:
        nb = json.loads(master.read_text())
        install = next(c for c in nb["cells"] if c["cell_type"] == "code")
        install["source"] = source(install).replace(old, "something-else")
        with pytest.raises(release.ReleaseError, match=what):
            release.pin_assignment(nb, master.stem, REPO, TAG)
    chapter = release.chapters()[0]
    nb = json.loads(chapter.read_text())
    for cell in nb["cells"]:
        cell["source"] = source(cell).replace("colab.research.google.com/github", "example.org")
    with pytest.raises(release.ReleaseError, match="Colab badge"):
        release.release_chapter(nb, chapter.stem, REPO, TAG)


@pytest.mark.parametrize("chapter", release.chapters(), ids=lambda p: p.stem)
def test_released_chapter_is_pinned_has_no_solution_and_opens_the_student_copy(chapter):
    full = json.loads(chapter.read_text())
    nb = release.release_chapter(json.loads(chapter.read_text()), chapter.stem, REPO, TAG)
    text = notebook_text(nb)
    assert not release.unpinned(text, REPO, TAG) and release.install_spec(REPO, TAG) in text
    colab = (
        f"https://colab.research.google.com/github/{REPO}/blob/student/{TAG}/book/{chapter.name}"
    )
    assert colab in text and "/blob/main/" not in text
    assert not solution_problems(nb, full)


def test_solution_check_finds_a_solution_left_in():
    """The chapter check fails on a copy that kept its solutions (nothing stripped)."""
    found = [
        p for chapter in release.chapters() if blocks(full := json.loads(chapter.read_text()), "solution")
        for p in solution_problems(full, full)
    ]  # fmt: skip
    assert any(p.startswith("solution text") for p in found)
    assert any(p.startswith("solution code") for p in found)


def test_zip_check_rejects_bad_zips(tmp_path):
    tests = tmp_path / "autograder" / "tests"
    tests.mkdir(parents=True)
    public = "{'code': '>>> assert f(1) == 2\\n', 'hidden': False, 'locked': False}"
    hidden = "{'code': '>>> assert f(3) == 4\\n', 'hidden': True, 'locked': False}"

    def test_file(*cases):
        return (
            "OK_FORMAT = True\ntest = {'name': 'q1', 'points': 1, 'suites': [{'cases': ["
            + ", ".join(cases)
            + "], 'scored': True, 'setup': '', 'teardown': '', 'type': 'doctest'}]}\n"
        )

    (tests / "q1.py").write_text(test_file(public, hidden))

    def make_zip(name, files):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as zf:
            for arc, text in files.items():
                zf.writestr(arc, text)
        return path

    good = make_zip("good.zip", {"tests/q1.py": test_file(public)})
    assert zip_problems(good, tests, ["return the secret answer here"]) == []
    bad = {
        "hidden.zip": {"tests/q1.py": test_file(public, hidden)},
        "layout.zip": {"q1.py": test_file(public)},  # extractall(".") would give no tests/
        "missing.zip": {"tests/q1.py": test_file()},
        "secret.zip": {"tests/q1.py": test_file(public) + "# return the secret answer here\n"},
    }
    for name, files in bad.items():
        assert zip_problems(make_zip(name, files), tests, ["return the secret answer here"]), name


# -- slow: one whole release, built once ----------------------------------------------------------


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> tuple[Path, dict]:
    pytest.importorskip("otter")
    out = tmp_path_factory.mktemp("release") / "release"
    manifest = release.build(TAG, out)
    return out, manifest


@pytest.mark.slow
def test_manifest_uploads_the_student_files_only(released):
    out, manifest = released
    assert json.loads((out / "manifest.json").read_text()) == manifest
    upload = sorted(p.name for p in (out / "upload").iterdir())
    assert manifest["upload"] == upload
    names = {m.stem for m in MASTERS}
    expected = {f"{n}.ipynb" for n in names} | {f"{n}-tests.zip" for n in names}
    expected |= {p.name for p in release.chapters()}
    assert set(upload) == expected
    assert not [n for n in upload if "autograder" in n]
    autograder = list((out / "instructor").rglob("*-autograder_*.zip"))
    assert len(autograder) == len(MASTERS), "the instructor's autograder zips are kept aside"
    assert [
        p.relative_to(out / "branch").as_posix() for p in sorted((out / "branch").rglob("*.ipynb"))
    ] == sorted(
        [f"assignments/{n}.ipynb" for n in names] + [f"book/{p.name}" for p in release.chapters()]
    )
    notes = (out / "notes.md").read_text()
    assert all(
        e["colab"] in notes for kind in ("chapters", "assignments") for e in manifest[kind].values()
    )


@pytest.mark.slow
@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_released_assignment_downloads_its_public_tests_only(released, master):
    out, manifest = released
    name = master.stem
    nb = json.loads((out / "upload" / f"{name}.ipynb").read_text())
    (url,) = TESTS_ASSIGNMENT.findall(first_code(nb))
    prefix = f"https://github.com/{REPO}/releases/download/{TAG}/"
    assert url.startswith(prefix), url
    asset = url.removeprefix(prefix)
    assert asset in manifest["upload"] and manifest["assignments"][name]["tests"] == asset
    lines, shown = split_master(master)
    secrets = [ln for ln in lines if ln not in shown] + rubric_lines(master)
    autograder = out / "instructor" / name
    assert zip_problems(out / "upload" / asset, autograder / "tests", secrets) == []
    # the student notebook: no solution, no rubric; the instructor's copy keeps both
    text = notebook_text(nb)
    assert "BEGIN SOLUTION" not in text and "Rubric" not in text
    assert not [ln for ln in secrets if ln in text]
    assert json.loads((out / "branch" / "assignments" / f"{name}.ipynb").read_text()) == nb
    ag_text = "\n".join(source(c) for c in cells(autograder / f"{name}.ipynb"))
    assert all(ln in ag_text for ln in secrets)


@pytest.mark.slow
def test_every_released_install_is_pinned_to_the_tag(released):
    out, _ = released
    notebooks = [*(out / "upload").glob("*.ipynb"), *(out / "branch").rglob("*.ipynb")]
    assert len(notebooks) == 2 * (len(MASTERS) + len(release.chapters()))
    for path in notebooks:
        text = notebook_text(json.loads(path.read_text()))
        assert release.install_spec(REPO, TAG) in text, path.name
        assert not release.unpinned(text, REPO, TAG), path.name
        assert "releases/download/assignments/" not in text, path.name
    # otter's autograder installs the same pinned package
    for zip_path in (out / "instructor").rglob("*-autograder_*.zip"):
        with zipfile.ZipFile(zip_path) as zf:
            env = zf.read("environment.yml").decode()
        assert release.install_spec(REPO, TAG) in env and not release.unpinned(env, REPO, TAG)


@pytest.mark.slow
def test_released_chapters_hold_no_solution(released):
    out, _ = released
    for chapter in release.chapters():
        full = json.loads(chapter.read_text())
        for folder in (out / "upload", out / "branch" / "book"):
            nb = json.loads((folder / chapter.name).read_text())
            assert not solution_problems(nb, full), chapter.name
            exercises = [ln for b in blocks(full, "exercise") for ln in prose(b)]
            assert all(ln in notebook_text(nb) for ln in exercises), "an exercise went missing"


def test_build_refuses_autograder_zips_hidden_tests_and_unpinned_installs(tmp_path):
    """``release.check_release``, the build's own last check, on deliberately bad uploads."""
    (tmp_path / "upload").mkdir()
    (tmp_path / "branch").mkdir()
    manifest = {"repository": REPO, "tag": TAG, "upload": []}
    release.check_release(tmp_path, manifest)  # nothing to upload: nothing wrong
    bad_zip = tmp_path / "upload" / "nc1-autograder_2027.zip"
    with zipfile.ZipFile(bad_zip, "w") as zf:
        zf.writestr("tests/q1.py", "test = {'hidden': False}")
    with pytest.raises(release.ReleaseError, match="never be uploaded"):
        release.check_release(tmp_path, {**manifest, "upload": [bad_zip.name]})
    hidden = tmp_path / "upload" / "nc1-tests.zip"
    with zipfile.ZipFile(hidden, "w") as zf:
        zf.writestr("tests/q1.py", "test = {'cases': [{'hidden': True}]}")
    with pytest.raises(release.ReleaseError, match="hidden test"):
        release.check_release(tmp_path, {**manifest, "upload": [hidden.name]})
    install = f'BOOK = "{release.PACKAGE} @ git+https://github.com/{REPO}"'
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": install, "outputs": []}]}
    release.write_nb(nb, tmp_path / "branch" / "book" / "x.ipynb")
    with pytest.raises(release.ReleaseError, match="unpinned install"):
        release.check_release(tmp_path, manifest)
