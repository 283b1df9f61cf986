"""Package a term's release: the files students get, with `lib` pinned to the release tag.

    python scripts/release.py build --tag term-2027s               # -> dist/release/
    python scripts/release.py build --tag term-2027s --out DIR
    python scripts/release.py files DIR                             # the files to upload, one a line

This file is the one place that knows where a release lives:

* the repository is ``repository.url`` of ``_config.yml`` (a fork changes it there);
* the tag is ``--tag`` or, when not given, ``$GITHUB_REF_NAME`` (set by GitHub Actions on a tag
  push); a release tag is ``term-<something>`` (``term-2027s``);
* the released notebooks install ``lowdim-lecture6 @ git+https://github.com/<repo>@<tag>`` (the
  repository's own notebooks keep installing from ``main``, the development version), download
  their public tests from ``https://github.com/<repo>/releases/download/<tag>/<name>-tests.zip``,
  and their Colab badges open the student copies on the branch ``student/<tag>``
  (``https://colab.research.google.com/github/<repo>/blob/student/<tag>/book/<nb>.ipynb``).

``build`` runs ``otter assign`` on a pinned copy of every ``assignments/<name>/<name>.ipynb`` and
writes, under ``--out``:

* ``upload/``: the release assets — ``<name>-tests.zip`` (the public tests, as ``tests/*.py``, the
  layout the first cell's ``extractall(".")`` expects), the student assignment notebooks
  ``<name>.ipynb`` and the chapters' student-edition notebooks (solutions stripped as
  ``build_student.strip_solutions`` does, install pinned, badge on the student branch);
* ``branch/``: the tree of the branch ``student/<tag>`` (``book/*.ipynb``, ``assignments/*.ipynb``,
  a README), which Colab opens;
* ``instructor/<name>/``: otter's autograder version (solutions, hidden tests, rubrics) and its
  ``<name>-autograder_<date>.zip`` for Gradescope — never uploaded;
* ``manifest.json`` (tag, repository, the files to upload, the Colab links) and ``notes.md`` (the
  release notes).

A pattern that should be rewritten but is not found is an error: a renamed cell must not ship an
unpinned notebook.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import build_student
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "lowdim-lecture6"
TAG_PREFIX = "term-"
TAG_PATTERN = re.compile(rf"{TAG_PREFIX}[A-Za-z0-9][A-Za-z0-9._-]*")
TAG_ENV = "GITHUB_REF_NAME"
COLAB = "https://colab.research.google.com/github"
#: `lowdim-lecture6 @ git+https://github.com/<owner>/<repo>[.git][@<ref>]` up to its closing quote
INSTALL = re.compile(
    rf"{re.escape(PACKAGE)} @ git\+https://github\.com/[\w.-]+/[\w.-]+?(?:\.git)?(?:@[^\s\"']+)?(?=[\"'])"
)
BADGE_URL = COLAB + r"/[\w.-]+/[\w.-]+/blob/[^\s)]+?/book/{stem}\.ipynb"
TESTS_URL = r"https://github\.com/[\w.-]+/[\w.-]+/releases/download/[^/\s\"']+/{name}-tests\.zip"


class ReleaseError(RuntimeError):
    """A release cannot be made as asked (bad tag, a pattern to rewrite is missing, ...)."""


def repository(config: Path = ROOT / "_config.yml") -> str:
    """``owner/name`` of the book's GitHub repository, from ``repository.url`` of ``_config.yml``."""
    url = (yaml.safe_load(config.read_text()).get("repository") or {}).get("url", "")
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", url)
    if not match:
        raise ReleaseError(
            f"repository.url in {config.name} must be https://github.com/<owner>/<name>, got {url!r}"
        )
    return match.group(1)


def resolve_tag(tag: str | None = None, env: dict | None = None) -> str | None:
    """The release tag: ``tag`` if given (it must be ``term-...``), else ``$GITHUB_REF_NAME`` when
    that is a release tag (on a branch build it is the branch name: then ``None``)."""
    if tag:
        if not TAG_PATTERN.fullmatch(tag) or ".." in tag or tag.endswith((".", ".lock")):
            raise ReleaseError(
                f"tag must look like {TAG_PREFIX}2027s ({TAG_PATTERN.pattern}), got {tag!r}"
            )
        return tag
    value = (os.environ if env is None else env).get(TAG_ENV, "")
    return resolve_tag(value) if TAG_PATTERN.fullmatch(value) else None


def student_branch(tag: str) -> str:
    return f"student/{tag}"


def install_spec(repo: str, tag: str) -> str:
    return f"{PACKAGE} @ git+https://github.com/{repo}@{tag}"


def tests_url(repo: str, tag: str, name: str) -> str:
    return f"https://github.com/{repo}/releases/download/{tag}/{name}-tests.zip"


def colab_url(repo: str, tag: str, path: str) -> str:
    """Colab link to ``path`` (``book/<nb>.ipynb``) on the student branch of ``tag``."""
    return f"{COLAB}/{repo}/blob/{student_branch(tag)}/{path}"


def source(cell: dict) -> str:
    return build_student.source(cell)


def _sub(cell: dict, pattern: str | re.Pattern, new: str) -> int:
    text, n = re.subn(pattern, lambda _: new, source(cell))
    if n:
        cell["source"] = text
    return n


def _rewrite(cells: list[dict], pattern, new: str, what: str, where: str) -> None:
    n = sum(_sub(cell, pattern, new) for cell in cells)
    if n != 1:
        raise ReleaseError(f"{where}: expected exactly one {what} to rewrite, found {n}")


def pin_assignment(nb: dict, name: str, repo: str, tag: str) -> dict:
    """Pin a master notebook in place: the config's ``requirements``, the install cell's package
    and the tests URL; every one must be found exactly once."""
    cells, where = nb["cells"], f"assignment {name}"
    config = cells[0] if source(cells[0]).startswith("# ASSIGNMENT CONFIG") else None
    install = next((c for c in cells if c["cell_type"] == "code"), None)
    if config is None or install is None:
        raise ReleaseError(f"{where}: no '# ASSIGNMENT CONFIG' cell or no install cell")
    _rewrite([config], INSTALL, install_spec(repo, tag), "requirement on the package", where)
    _rewrite([install], INSTALL, install_spec(repo, tag), "package install", where)
    pattern = TESTS_URL.format(name=re.escape(name))
    _rewrite([install], pattern, tests_url(repo, tag, name), "tests URL", where)
    return nb


def release_chapter(nb: dict, stem: str, repo: str, tag: str) -> dict:
    """The student copy of a chapter, in place: solutions stripped, package pinned, Colab badge on
    the student branch."""
    build_student.strip_solutions(nb)
    cells, where = nb["cells"], f"chapter {stem}"
    _rewrite(cells, INSTALL, install_spec(repo, tag), "package install", where)
    pattern = BADGE_URL.format(stem=re.escape(stem))
    _rewrite(cells, pattern, colab_url(repo, tag, f"book/{stem}.ipynb"), "Colab badge", where)
    return nb


def unpinned(text: str, repo: str, tag: str) -> list[str]:
    """Install specs in ``text`` that are not pinned to ``tag`` of ``repo``."""
    return [m for m in INSTALL.findall(text) if m != install_spec(repo, tag)]


# -- running otter assign ---------------------------------------------------------------------

#: Kernels started side by side can race for a TCP port (jupyter_client picks a free port, then
#: the kernel binds it): the kernel dies at start-up. And a process that talks to a kernel can
#: hang at exit after its work is done (seen once in CI: `otter run` printed its grading summary,
#: then never exited). Such a run is retried, alone.
KERNEL_FAILURE = (
    "Address already in use",
    "Kernel died before replying to kernel_info",
    "[killed: no exit within",
)


def otter_env() -> dict[str, str]:
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_all(
    commands: dict[str, tuple[list[str], Path]], timeout: float = 180.0, env: dict | None = None
) -> dict[str, tuple[int, str]]:
    """Run the commands side by side (each mostly waits on a kernel); returns rc and log each.

    A command that failed for a kernel's reason (:data:`KERNEL_FAILURE`) runs again, alone
    (twice at most); any other failure is returned as it is.
    """
    env = otter_env() if env is None else env
    out = _run_side_by_side(commands, timeout, env)
    for _ in range(2):
        failed = [
            name for name, (rc, log) in out.items()
            if rc != 0 and any(sign in log for sign in KERNEL_FAILURE)
        ]  # fmt: skip
        for name in failed:
            out.update(_run_side_by_side({name: commands[name]}, timeout, env))
    return out


def _run_side_by_side(
    commands: dict[str, tuple[list[str], Path]], timeout: float, env: dict
) -> dict[str, tuple[int, str]]:
    procs = {}
    for name, (cmd, cwd) in commands.items():
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed below
        procs[name] = (
            subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
            ),
            log,
        )
    out = {}
    start = time.monotonic()
    for name, (proc, log) in procs.items():
        killed = ""
        try:
            proc.wait(timeout=max(1.0, timeout - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            killed = f"\n[killed: no exit within {timeout:g} s]\n"
        log.seek(0)
        out[name] = (proc.returncode, log.read() + killed)
        log.close()
    return out


def otter_cli() -> str:
    exe = shutil.which("otter", path=str(Path(sys.executable).parent)) or shutil.which("otter")
    if not exe:
        raise ReleaseError("otter-grader is not installed (pip install -r requirements.txt)")
    return exe


# -- building the release ---------------------------------------------------------------------


def masters(root: Path = ROOT) -> list[Path]:
    return sorted((root / "assignments").glob("*/*.ipynb"))


def chapters(root: Path = ROOT) -> list[Path]:
    """The book's notebooks, in ``_toc.yml`` order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [ch["file"] for part in toc.get("parts", []) for ch in part["chapters"]]
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").exists()]


def write_nb(nb: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path


def zip_tests(tests: Path, dest: Path) -> Path:
    """``dest`` holding ``tests/<file>`` for every file of the folder ``tests`` (fixed dates, so
    the same tests give the same zip)."""
    files = sorted(p for p in tests.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    if not files:
        raise ReleaseError(f"no public tests in {tests}")
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(
                f"tests/{path.relative_to(tests).as_posix()}", (2020, 1, 1, 0, 0, 0)
            )
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return dest


def assign(tag: str, repo: str, out: Path, timeout: float = 300.0) -> dict[str, Path]:
    """``otter assign`` of a pinned copy of every master; returns the output folder of each."""
    src, dests = out / "_assign" / "src", {}
    commands = {}
    for master in masters():
        nb = pin_assignment(json.loads(master.read_text()), master.stem, repo, tag)
        copy = write_nb(nb, src / master.stem / master.name)
        dests[master.stem] = out / "_assign" / master.stem
        commands[master.stem] = (
            [otter_cli(), "assign", "--no-pdfs", str(copy), str(dests[master.stem])],
            copy.parent,
        )
    for name, (rc, log) in run_all(commands, timeout).items():
        if rc != 0 or "Some autograder tests failed" in log:
            raise ReleaseError(f"otter assign {name} failed:\n{log[-6000:]}")
    return dests


def build(tag: str, out: Path, repo: str | None = None) -> dict:
    """Build the release of ``tag`` into ``out`` (emptied first); returns the manifest."""
    repo = repo or repository()
    tag = resolve_tag(tag)
    if tag is None:
        raise ReleaseError(f"no tag: pass --tag {TAG_PREFIX}<term> (or set ${TAG_ENV})")
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").exists():
        raise ReleaseError(f"{out} is not empty and holds no earlier release: choose another --out")
    if out.exists():
        shutil.rmtree(out)
    upload, branch, instructor = out / "upload", out / "branch", out / "instructor"
    for folder in (upload, branch, instructor):
        folder.mkdir(parents=True)
    manifest = {"tag": tag, "repository": repo, "branch": student_branch(tag)}
    manifest["release"] = f"https://github.com/{repo}/releases/tag/{tag}"
    manifest["assignments"], manifest["chapters"] = {}, {}
    for name, dest in assign(tag, repo, out).items():
        nb = json.loads((dest / "student" / f"{name}.ipynb").read_text())
        write_nb(nb, upload / f"{name}.ipynb")
        write_nb(nb, branch / "assignments" / f"{name}.ipynb")
        zip_tests(dest / "student" / "tests", upload / f"{name}-tests.zip")
        shutil.copytree(dest / "autograder", instructor / name)
        manifest["assignments"][name] = {
            "notebook": f"{name}.ipynb",
            "tests": f"{name}-tests.zip",
            "colab": colab_url(repo, tag, f"assignments/{name}.ipynb"),
        }
    shutil.rmtree(out / "_assign")
    for path in chapters():
        nb = release_chapter(json.loads(path.read_text()), path.stem, repo, tag)
        write_nb(nb, upload / path.name)
        write_nb(nb, branch / "book" / path.name)
        manifest["chapters"][path.stem] = {
            "notebook": path.name,
            "colab": colab_url(repo, tag, f"book/{path.name}"),
        }
    (branch / "README.md").write_text(notes(manifest))
    manifest["upload"] = sorted(p.name for p in upload.iterdir())
    check_release(out, manifest)
    (out / "notes.md").write_text(notes(manifest))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def check_release(out: Path, manifest: dict) -> None:
    """Refuse a release whose uploads hold an autograder zip, a hidden test or an unpinned
    install."""
    for name in manifest["upload"]:
        if "autograder" in name:
            raise ReleaseError(f"{name}: the autograder zip must never be uploaded")
        if name.endswith(".zip"):
            with zipfile.ZipFile(out / "upload" / name) as zf:
                if any("'hidden': True" in zf.read(f).decode() for f in zf.namelist()):
                    raise ReleaseError(f"{name}: holds a hidden test")
    for path in [*(out / "upload").glob("*.ipynb"), *(out / "branch").rglob("*.ipynb")]:
        text = "\n".join(source(c) for c in json.loads(path.read_text())["cells"])
        bad = unpinned(text, manifest["repository"], manifest["tag"])
        if bad:
            raise ReleaseError(f"{path.name}: unpinned install {bad[0]!r}")


def notes(manifest: dict) -> str:
    """The release notes: what the release holds and the Colab links to hand out."""
    tag, repo = manifest["tag"], manifest["repository"]
    lines = [
        f"# Student notebooks, {tag}",
        "",
        f"The notebooks install the book's package `lib` at this tag (`{install_spec(repo, tag)}`),",
        "so a change on `main` during the term does not reach them. The chapters are the student",
        "edition (exercises without their solutions); each assignment downloads its public tests",
        f"(`<name>-tests.zip`) from this release. Open on Colab (branch `{manifest['branch']}`):",
        "",
        "| Notebook | Open |",
        "|---|---|",
    ]
    for kind in ("chapters", "assignments"):
        for name, entry in manifest[kind].items():
            badge = f"[Open in Colab]({entry['colab']})"
            lines.append(f"| {'assignment ' if kind == 'assignments' else ''}{name} | {badge} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the release into --out")
    b.add_argument("--tag", default=None, help=f"release tag (default: ${TAG_ENV})")
    b.add_argument("--out", type=Path, default=ROOT / "dist" / "release")
    f = sub.add_parser("files", help="print the paths of the files to upload, one a line")
    f.add_argument("out", type=Path, nargs="?", default=ROOT / "dist" / "release")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            manifest = build(args.tag, args.out.resolve())
            print(
                f"release {manifest['tag']}: {len(manifest['upload'])} files in {args.out}/upload"
            )
        else:
            if not (args.out / "manifest.json").exists():
                raise ReleaseError(f"no manifest.json in {args.out}: run `release.py build` first")
            manifest = json.loads((args.out / "manifest.json").read_text())
            for name in manifest["upload"]:
                print(args.out / "upload" / name)
    except ReleaseError as err:
        raise SystemExit(f"release: {err}") from None


if __name__ == "__main__":
    main()
