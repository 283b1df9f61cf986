"""Re-execute book notebooks in place at their default parameters, then clean volatile metadata.

Run after any change to ``lib`` that a chapter uses (``make execute`` runs it on every notebook)::

    python scripts/execute_notebooks.py                     # every book/*.ipynb
    python scripts/execute_notebooks.py book/00_getting_started.ipynb

The stored outputs are what nbval compares against and what the rendered book shows, so they
must come from the defaults, on the CPU, offline. Cleaning removes papermill's timing metadata
and stderr streams (warnings, progress bars), which change from run to run.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

ROOT = Path(__file__).resolve().parents[1]


def clean(path: Path) -> None:
    """Drop run-to-run metadata and stderr outputs; renumber ids deterministically."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # widget state is per-kernel and never compared
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [
                o
                for o in cell.outputs
                if not (o.output_type == "stream" and o.get("name") == "stderr")
            ]
    nbformat.write(nb, path)


def execute(path: Path) -> None:
    """Execute into a scratch copy; only a run that succeeds replaces the notebook (a failed one
    leaves it as it was; the scratch copy, with papermill's error cells, stays in a temporary
    folder whose path is printed)."""
    print(f"executing {path.relative_to(ROOT)}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="execute-")) / path.name
    try:
        papermill.execute_notebook(
            str(path), str(scratch), kernel_name="python3", cwd=str(path.parent), progress_bar=False
        )
    except Exception:
        print(f"failed: {path.name} is unchanged; the failed run is in {scratch}", flush=True)
        raise
    clean(scratch)
    shutil.move(scratch, path)


def main(argv: list[str]) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # stored outputs always come from the CPU
    os.environ["LIB_STRICT_CLAIMS"] = "1"  # a false claim stops the run (lib.claims)
    paths = [Path(a).resolve() for a in argv] or sorted((ROOT / "book").glob("*.ipynb"))
    for path in paths:
        execute(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
