"""Bad inputs of lib.results and lib.results.figures (issue 17): every error names the argument
(benchmark, machine, record, values, device, cpu, gpu, ax) and what to pass instead."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402
from _cases import case  # noqa: E402

from lib import results  # noqa: E402
from lib.results import figures  # noqa: E402

W, LD, RC, VA, CA, MS, PV = (
    results.write,
    results.load,
    results.records,
    results.validate,
    results.caption,
    results.machine_slug,
    results.provenance,
)
PS, SS, TB = figures.plot_speedup, figures.speedup_series, results.table


def _dln() -> dict:
    return results.load("dln", machine="cpu")


DATA = [
    case("write-benchmark-int", W, lambda: W(3, {}), r"^benchmark must be a str"),
    case("write-benchmark-empty", W, lambda: W("", {}), r"^benchmark is empty"),
    case("write-values-list", W, lambda: W("dln", [1.0]), r"^values must be a dict"),
    case("load-benchmark-none", LD, lambda: LD(None), r"^benchmark must be a str"),
    case("load-benchmark-empty", LD, lambda: LD(""), r"^benchmark is empty"),
    case("load-machine-int", LD, lambda: LD("dln", machine=1), r"^machine must be a str"),
    case("load-absent", LD, lambda: LD("nonesuch"), r"no record of benchmark 'nonesuch'"),
    case("records-benchmark-int", RC, lambda: RC(7), r"^benchmark must be a str"),
    case("records-machine-int", RC, lambda: RC("dln", 2), r"^machine must be a str"),
    case("table-record-str", TB, lambda: TB("dln", {"d": "d"}), r"^record must be a dict"),
    case("table-columns-list", TB, lambda: TB(_dln(), ["d"]), r"^columns must be a dict"),
    case("table-columns-empty", TB, lambda: TB(_dln(), {}), r"^columns is empty"),
    case("validate-list", VA, lambda: VA([1]), r"^record must be a dict"),
    case("validate-empty", VA, lambda: VA({}), r"lacks the provenance field 'benchmark'"),
    case("caption-str", CA, lambda: CA("dln"), r"^record must be a dict"),
    case("slug-str", MS, lambda: MS("cpu"), r"^machine must be a dict"),
    case("provenance-device-int", PV, lambda: PV(0), r"^device must be a str or device"),
    case("speedup-series-wrong-bench", SS, lambda: SS(_dln()), r"'completion_sizes' record"),
    case("speedup-series-str", SS, lambda: SS("cpu"), r"^record must be a dict"),
    case("plot-cpu-str", PS, lambda: PS("cpu"), r"^cpu must be a dict"),
    case("plot-gpu-wrong-bench", PS, lambda: PS(None, _dln()), r"'completion_sizes' record"),
    case("plot-ax-count", PS, lambda: PS(None, None, ax=[]), r"^ax: this figure draws 4 panel"),
]


@pytest.mark.parametrize(("call", "pattern"), DATA)
def test_bad_input_is_refused_with_the_argument_named(call, pattern):
    with pytest.raises((TypeError, ValueError, LookupError), match=pattern):
        call()
