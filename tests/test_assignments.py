"""The graded assignments (``assignments/<name>/<name>.ipynb``, otter-grader master notebooks).

For every master notebook: ``otter assign`` generates the student and autograder versions and runs
every public and hidden test against the reference solutions (it fails unless they all pass); the
student version holds no solution code and no hidden test; and a deliberately wrong answer,
graded locally with ``otter run`` (no Docker, no network), fails the hidden test it should while
every other question keeps full marks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import release  # noqa: E402

MASTERS = sorted((ROOT / "assignments").glob("*/*.ipynb"))
SOLUTION_BLOCK = re.compile(r"# BEGIN SOLUTION\n(.*?)# END SOLUTION", re.S)

# One wrong answer per assignment: (line of the reference solution, wrong line, question it breaks).
# Each wrong line still passes that question's public tests, so only the hidden tests catch it.
WRONG = {
    "nc1": (
        "return torch.trace(Sigma_W @ torch.linalg.pinv(Sigma_B, hermitian=True))",
        "return torch.trace(Sigma_W) / torch.trace(Sigma_B)",  # the trace ratio D, not NC1
        "q3",
    ),
    "parsimony": (
        "rho.append((1 - lr * weight_decay) * rho[-1] - lr * c * rho[-1] ** (2 * depth - 1))",
        "rho.append((1 - lr * weight_decay) * rho[-1] - lr * c * rho[-1] ** (2 * depth))",
        "q1",
    ),
    "separation": (
        "between = (means - Z.mean(dim=0)).square().sum() / K",
        "between = (means - means.mean(dim=0)).square().sum() / K",  # same for balanced classes
        "q2",
    ),
    "completion": (
        "torch.cat([Vg, Ws[0].T @ Ug / eps], dim=1)",
        "torch.cat([Vg, Ug], dim=1)",  # the wrong second half of the subspace
        "q2",
    ),
}


def otter_cli() -> str:
    exe = shutil.which("otter", path=str(Path(sys.executable).parent)) or shutil.which("otter")
    if not exe:
        pytest.skip("otter-grader is not installed (pip install otter-grader)")
    return exe


def offline_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PIP_NO_INDEX="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def split_master(master: Path) -> tuple[list[str], str]:
    """Distinctive lines of the reference solutions (marked code lines and written answers), and
    the text the master shows outside its solutions (prompts, tests)."""
    lines, shown, inside = [], [], False
    for cell in cells(master):
        text = source(cell)
        if cell["cell_type"] == "raw":
            first = text.strip().splitlines()[0] if text.strip() else ""
            inside = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(first, inside)
            continue
        if cell["cell_type"] == "code":
            for block in SOLUTION_BLOCK.findall(text):
                lines += block.splitlines()
            shown.append(SOLUTION_BLOCK.sub("", text))
        elif inside:  # a written (markdown) solution
            lines += text.splitlines()
        else:
            shown.append(text)
    lines = [ln.strip() for ln in lines]
    return [ln for ln in lines if len(ln) > 15 and not ln.startswith("#")], "\n".join(shown)


RUBRIC_POINTS = re.compile(r"^- \*\*(\d+(?:\.\d+)?) points?:\*\*", re.M)


def questions(master: Path) -> list[dict]:
    """Every question of a master: its config (name, points, manual) and its cells, each with
    whether it sits inside a ``# BEGIN SOLUTION`` / ``# END SOLUTION`` block."""
    out, inside = [], False
    for cell in cells(master):
        text = source(cell)
        first = text.strip().splitlines()[0] if text.strip() else ""
        if cell["cell_type"] == "raw" and first == "# BEGIN QUESTION":
            out.append({**yaml.safe_load(text.split("\n", 1)[1]), "cells": []})
        elif cell["cell_type"] == "raw":
            inside = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(first, inside)
        elif out:
            out[-1]["cells"].append((cell, inside))
    return out


def rubric(question: dict) -> str | None:
    """The question's rubric: a markdown cell starting with "**Rubric" inside its solution."""
    found = [
        source(cell) for cell, inside in question["cells"]
        if cell["cell_type"] == "markdown" and source(cell).startswith("**Rubric") and inside
    ]  # fmt: skip
    assert len(found) <= 1, f"{question['name']} has {len(found)} rubrics"
    return found[0] if found else None


def rubric_problems(question: dict) -> list[str]:
    """What is wrong with a written question's rubric (empty: nothing)."""
    text = rubric(question)
    if text is None:
        return [
            f"{question['name']}: no rubric cell (markdown '**Rubric (N points).**' inside the solution)"
        ]
    points, problems = question["points"], []
    if not text.startswith(f"**Rubric ({points:g} points).**"):
        problems.append(
            f"{question['name']}: the rubric must start '**Rubric ({points:g} points).**'"
        )
    parts = [float(p) for p in RUBRIC_POINTS.findall(text)]
    if len(parts) < 2 or abs(sum(parts) - points) > 1e-9:
        problems.append(f"{question['name']}: rubric parts {parts} do not add up to {points}")
    if "**Common wrong answers.**" not in text:
        problems.append(f"{question['name']}: the rubric lists no common wrong answers")
    return problems


def rubric_lines(master: Path) -> list[str]:
    """Distinctive lines of the master's rubrics (for the checks that they do not leak)."""
    lines = []
    for q in questions(master):
        text = rubric(q) or ""
        lines += [ln.strip() for ln in text.splitlines() if len(ln.strip()) > 25]
    return lines


def run_all(
    commands: dict[str, tuple[list[str], Path]], timeout: float = 180.0
) -> dict[str, tuple[int, str]]:
    """``release.run_all`` (side by side, kernel failures retried alone) in the offline env."""
    return release.run_all(commands, timeout, env=offline_env())


@pytest.fixture(scope="module")
def assigned(tmp_path_factory) -> dict[str, Path]:
    """``otter assign`` of every master into a temporary directory (once per test session)."""
    exe, base = otter_cli(), tmp_path_factory.mktemp("assign")
    dests = {m.stem: base / m.stem for m in MASTERS}
    results = run_all(
        {m.stem: ([exe, "assign", "--no-pdfs", str(m), str(dests[m.stem])], base) for m in MASTERS}
    )
    for name, (rc, log) in results.items():
        assert rc == 0, f"otter assign {name} failed:\n{log[-6000:]}"
        assert "Some autograder tests failed" not in log, log[-6000:]
    return dests


@pytest.fixture(scope="module")
def graded_wrong(assigned, tmp_path_factory) -> dict[str, list[dict]]:
    """``otter run`` of every autograder notebook with its deliberately wrong answer."""
    commands, outs = {}, {}
    for master in MASTERS:
        dest, out = assigned[master.stem], tmp_path_factory.mktemp(f"wrong-{master.stem}")
        bad, wrong, _ = WRONG[master.stem]
        nb = json.loads((dest / "autograder" / master.name).read_text())
        hits = 0
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and bad in source(cell):
                cell["source"] = source(cell).replace(bad, wrong)
                hits += 1
        assert hits == 1, f"{bad!r} is not in the autograder notebook of {master.name}"
        (out / master.name).write_text(json.dumps(nb))
        (zip_path,) = (dest / "autograder").glob("*-autograder_*.zip")
        cmd = [otter_cli(), "run", "-a", str(zip_path), "-o", str(out), str(out / master.name)]
        commands[master.stem], outs[master.stem] = (cmd, out), out
    results = {}
    for name, (rc, log) in run_all(commands).items():
        assert rc == 0, log[-6000:]
        results[name] = json.loads((outs[name] / "results.json").read_text())["tests"]
    return results


def test_every_assignment_is_listed():
    assert {m.stem for m in MASTERS} >= {"nc1", "parsimony", "separation", "completion"}
    for master in MASTERS:
        assert master.parent.name == master.stem, (
            f"{master} must be assignments/<name>/<name>.ipynb"
        )
        assert master.stem in WRONG, f"add a deliberately wrong answer for {master.stem} to WRONG"


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_master_follows_the_colab_conventions(master):
    config = source(cells(master)[0])
    assert config.startswith("# ASSIGNMENT CONFIG")
    assert "runs_on: colab" in config and "files: true" in config
    install = next(c for c in cells(master) if c["cell_type"] == "code")
    text = source(install)
    assert '"google.colab" in sys.modules' in text and "lowdim-lecture6 @ git+" in text
    questions = sum(source(c).startswith("# BEGIN QUESTION") for c in cells(master))
    assert 3 <= questions <= 5
    bad, good, question = WRONG[master.stem]
    assert sum(bad in source(c) for c in cells(master)) == 1, f"{bad!r} is not in {master.name}"


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_every_written_question_has_a_rubric(master):
    written = [q for q in questions(master) if q.get("manual")]
    assert written, f"{master.name} has no written (manual: true) question"
    problems = [p for q in written for p in rubric_problems(q)]
    assert not problems, problems
    assert len(rubric_lines(master)) >= 5


def test_rubric_check_catches_a_bad_rubric():
    md = {"cell_type": "markdown", "metadata": {}}
    good = "**Rubric (2 points).** Graders.\n\n- **1 point:** a\n- **1 point:** b\n\n**Common wrong answers.**\n- c"
    question = {"name": "q5", "points": 2, "cells": [({**md, "source": good}, True)]}
    assert rubric_problems(question) == []
    short = {**question, "cells": [({**md, "source": good.replace("- **1 point:** b", "")}, True)]}
    assert "do not add up" in " ".join(rubric_problems(short))
    outside = {**question, "cells": [({**md, "source": good}, False)]}  # shown to students
    assert "no rubric" in " ".join(rubric_problems(outside))


@pytest.mark.slow
@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_assign_passes_and_student_version_has_no_solutions(master, assigned):
    dest = assigned[master.stem]
    student = dest / "student" / master.name
    autograder = dest / "autograder" / master.name
    assert student.exists() and autograder.exists()
    assert list((dest / "autograder").glob("*-autograder_*.zip")), "no autograder zip"
    text = "\n".join(source(c) for c in cells(student))
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "BEGIN TESTS" not in text and "HIDDEN" not in text
    lines, shown = split_master(master)
    assert len(lines) >= 5, "found too few solution lines to check"
    leaked = [ln for ln in lines if ln in text and ln not in shown]
    assert not leaked, f"solution lines in the student notebook: {leaked}"
    ag_text = "\n".join(source(c) for c in cells(autograder))
    assert all(ln in ag_text for ln in lines), "the autograder notebook lost its solutions"
    # the rubrics are the instructor's: in the autograder version, never in the student version
    rubric_text = rubric_lines(master)
    assert "Rubric" not in text and not [ln for ln in rubric_text if ln in text]
    assert all(ln in ag_text for ln in rubric_text), "the autograder notebook lost its rubric"
    # public tests ship with the student version; hidden ones only with the autograder
    student_tests = sorted((dest / "student" / "tests").glob("*.py"))
    assert student_tests
    for test in student_tests:
        code = test.read_text()
        assert "'hidden': True" not in code, f"{test.name} ships a hidden test to students"
        full = (dest / "autograder" / "tests" / test.name).read_text()
        assert "'hidden': True" in full, f"{test.name} has no hidden test"


@pytest.mark.slow
@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_wrong_answer_fails_its_hidden_test(master, graded_wrong):
    _, _, question = WRONG[master.stem]
    results = graded_wrong[master.stem]
    public = next(t for t in results if t["name"] == "Public Tests")
    assert public["status"] == "passed", "the wrong answer should pass the public tests"
    scores = {t["name"]: (t["score"], t["max_score"]) for t in results if "score" in t}
    assert question in scores, scores
    for name, (score, max_score) in scores.items():
        if name == question:
            assert score < max_score, f"the wrong answer got full marks on {name}"
        else:
            assert score == max_score, f"{name} lost points to a wrong answer in {question}"
    failed = next(t for t in results if t["name"] == question)["output"]
    assert "Test case failed" in failed


def test_run_all_retries_only_kernel_failures(tmp_path):
    """The first run of 'raced' dies like a kernel that lost its port; 'broken' fails otherwise;
    'hung' loses the race, then hangs until killed, then succeeds."""
    script = (
        "import pathlib, sys\n"
        "mark = pathlib.Path(sys.argv[1]); runs = int(mark.read_text()) if mark.exists() else 0\n"
        "mark.write_text(str(runs + 1))\n"
        "if runs == 0 or sys.argv[2] == 'broken':\n"
        "    print('zmq.error.ZMQError: Address already in use' if sys.argv[2] != 'broken' else 'boom')\n"
        "    sys.exit(1)\n"
    )
    script += "if sys.argv[2] == 'hung' and runs == 1:\n    import time; time.sleep(60)\n"
    cmds = {
        name: ([sys.executable, "-c", script, str(tmp_path / name), name], tmp_path)
        for name in ("raced", "broken", "hung")
    }
    out = run_all(cmds, timeout=5.0)
    assert out["raced"][0] == 0 and (tmp_path / "raced").read_text() == "2"
    assert out["broken"] == (1, "boom\n") and (tmp_path / "broken").read_text() == "1"
    # 'hung': raced on run 1, hung on run 2 (killed), exited on run 3
    assert out["hung"][0] == 0 and (tmp_path / "hung").read_text() == "3"
