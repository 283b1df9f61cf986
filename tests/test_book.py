"""The HTML book builds with Jupyter Book 1 and no warnings (``-W -n --keep-going``).

The build here renders the stored outputs (``execute_notebooks: "off"``): nbval has already
re-executed every notebook and checked those outputs against the code. README command (1)
builds with execution on.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [ch["file"] for ch in part["chapters"]]
    return files


def test_toc_lists_existing_pages_and_every_notebook():
    files = toc_files()
    for f in files:
        assert any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb")), (
            f"_toc.yml lists missing {f}"
        )
    for nb in (ROOT / "book").glob("*.ipynb"):
        assert f"book/{nb.stem}" in files, f"{nb.name} is not in _toc.yml"


@pytest.mark.slow
def test_book_builds_without_warnings(tmp_path):
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which(
        "jupyter-book"
    )
    assert jb, "jupyter-book is not installed (pip install -r requirements.txt)"
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    cfg = tmp_path / "_config.yml"
    cfg.write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [
            jb,
            "build",
            str(ROOT),
            "-W",
            "-n",
            "--keep-going",
            "--config",
            str(cfg),
            "--path-output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    html = tmp_path / "_build" / "html"
    for f in toc_files():
        assert (html / f).with_suffix(".html").exists(), f"{f}.html was not rendered"
