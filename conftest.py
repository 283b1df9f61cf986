"""Repository-wide pytest configuration.

nbval compares every output of a re-executed notebook with the stored one, stderr included.
stderr carries warnings and progress bars whose text depends on library versions and timing,
so the book's notebooks are compared on everything *but* stderr (the maintenance script also
strips stderr from the stored outputs, see ``scripts/execute_notebooks.py``).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download: fail fast instead of retrying
# The notebooks' claim checks (lib.claims) raise, naming the sentence, instead of warning: the
# kernels nbval starts inherit this, so a stored output can never contradict the prose.
os.environ["LIB_STRICT_CLAIMS"] = "1"

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # nbval not installed: unit tests still run
    IPyNbCell = None


def _without_stderr(outputs):
    return [
        o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
    ]


if IPyNbCell is not None and not getattr(IPyNbCell, "_lecture6_stderr_patch", False):
    _compare_outputs = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        return _compare_outputs(self, _without_stderr(test), _without_stderr(ref), skip_compare)

    IPyNbCell.compare_outputs = compare_outputs
    IPyNbCell._lecture6_stderr_patch = True
