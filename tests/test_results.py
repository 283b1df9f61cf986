"""Measured results with provenance (issue 17, items 1, 2 and 5): ``lib.results``.

* every committed record in ``lib/results/records/`` has every provenance field, and a record with
  one field removed fails the validator (so the check can fail);
* :func:`lib.results.write` + :func:`lib.results.load` round-trip, and a missing record is a clear
  error naming the benchmark, the machine and the command that writes it;
* the speed-up figure plots exactly the record's values (oracle: the raw JSON);
* a record loads from an installed wheel (slow: builds the wheel).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lib import results  # noqa: E402
from lib.results import figures  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "lib" / "results" / "records"
# The CPU-capable benchmarks: each must have a committed record from a CPU machine.
CPU_BENCHMARKS = (
    "completion",
    "completion_sizes",
    "completion_large",
    "cpu_modes",
    "dln",
    "metrics",
)


def _committed() -> list[Path]:
    return sorted(RECORDS.glob("*.json"))


def test_every_cpu_benchmark_has_a_committed_cpu_record():
    names = {json.loads(p.read_text())["benchmark"]: p for p in _committed()}
    for bench in CPU_BENCHMARKS:
        assert bench in names, f"no committed record of {bench}: run `{results.COMMANDS[bench]}`"
        assert (ROOT / "bench" / f"{bench}.py").exists()
        results.load(bench, machine="cpu")  # one from a CPU machine


@pytest.mark.parametrize("path", _committed(), ids=lambda p: p.name)
def test_committed_record_has_every_provenance_field(path):
    record = json.loads(path.read_text())
    results.validate(record, path.name)
    assert path.name == f"{record['benchmark']}-{record['machine']['slug']}.json"
    assert len(record["commit"]) == 40 and int(record["commit"], 16) >= 0  # a git SHA-1
    assert record["command"][0] == "python" and record["command"][1].startswith("bench/")
    assert record["date"].endswith("+00:00")  # UTC
    assert record["versions"]["torch"] and record["versions"]["python"]


def _record() -> dict:
    return json.loads(_committed()[0].read_text())


@pytest.mark.parametrize(
    "field",
    [f for f in results.PROVENANCE]
    + [f"{f}.{s}" for f, subs in results.PROVENANCE.items() for s in subs],
)
def test_a_record_missing_a_field_fails_the_validator(field):
    record = copy.deepcopy(_record())
    parts = field.split(".")
    del (record[parts[0]] if len(parts) == 2 else record)[parts[-1]]
    with pytest.raises(ValueError, match=f"lacks the provenance field .*{parts[-1]!r}"):
        results.validate(record, "x.json")


def test_write_then_load_round_trip(tmp_path):
    path = results.write("dln", {"ratio": 3.5}, "cpu", ["bench/dln.py", "--quick"], tmp_path)
    record = json.loads(path.read_text())
    assert path.name == f"dln-{record['machine']['slug']}.json"
    assert record["command"] == ["python", "bench/dln.py", "--quick"]
    assert results.load("dln", folder=tmp_path)["values"] == {"ratio": 3.5}
    assert results.load("dln", machine="cpu", folder=tmp_path) == record
    assert results.load("dln", machine=record["machine"]["slug"], folder=tmp_path) == record
    assert results.records(folder=tmp_path) == [record]
    assert "Python" in results.caption(record) and record["commit"][:10] in results.caption(record)


def test_table_prints_the_rows_and_the_caption(tmp_path):
    values = {"rows": [{"d": 10, "x": {"ms": 1.23456}}, {"d": 20, "x": {"ms": None}}]}
    rec = results.load("t", folder=results.write("t", values, "cpu", ["b.py"], tmp_path).parent)
    lines = results.table(rec, {"d": "d", "ms/step": "x.ms"}).splitlines()
    assert lines[:3] == [" d  ms/step", "10     1.23", "20        —"]
    assert lines[4] == results.caption(rec)
    flat = results.load(
        "t", folder=results.write("t", {"r": 2.0}, "cpu", ["b.py"], tmp_path).parent
    )
    assert results.table(flat, {"ratio": "r"}).splitlines()[1] == "    2"


def test_a_missing_record_names_what_is_absent_and_the_command(tmp_path):
    results.write("dln", {}, "cpu", ["bench/dln.py"], tmp_path)
    with pytest.raises(LookupError, match=r"'dln' on machine 'gpu'.*bench/dln\.py.*--device cuda"):
        results.load("dln", machine="gpu", folder=tmp_path)
    with pytest.raises(LookupError, match=r"'metrics'.*python bench/metrics\.py --quick"):
        results.load("metrics", folder=tmp_path)


def test_load_refuses_a_record_missing_a_provenance_field(tmp_path):
    record = _record()
    del record["commit"]
    (tmp_path / "bad.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"bad\.json lacks the provenance field 'commit'"):
        results.load(record["benchmark"], folder=tmp_path)


def test_a_copy_without_git_takes_the_commit_from_the_environment(monkeypatch):
    monkeypatch.setattr(results, "_git", lambda *args: None)
    monkeypatch.setenv("LIB_RESULTS_COMMIT", "a" * 40)
    p = results.provenance("cpu", ["bench/dln.py"])
    assert p["commit"] == "a" * 40 and p["dirty"] is None
    monkeypatch.delenv("LIB_RESULTS_COMMIT")
    assert results.provenance("cpu", ["x.py"])["commit"].startswith("unknown")


def test_machine_slug_names_the_gpu_else_the_cpu():
    assert results.machine_slug({"gpu": "NVIDIA H200", "cpu": "x", "cores": 9}) == "nvidia-h200"
    assert results.machine_slug({"gpu": None, "cpu": "AMD EPYC 7B13", "cores": 2}) == (
        "amd-epyc-7b13-2c"
    )


def test_speedup_figure_plots_the_record_values():
    raw = json.loads(next(RECORDS.glob("completion_sizes-*.json")).read_text())
    rec = results.load("completion_sizes", machine="cpu")
    fig = figures.plot_speedup(rec, None)
    ax_step, ax_tol, gpu_step, gpu_tol = fig.axes
    rows = [r for r in raw["values"]["rows"] if "compressed" in r]  # measured sizes
    for line, net in zip(ax_step.get_lines(), ("original", "compressed")):
        assert list(line.get_xdata()) == [r["d"] for r in rows]
        assert list(line.get_ydata()) == [r[net]["ms_per_step"] for r in rows]
    tol_lines = {ln.get_label(): ln for ln in ax_tol.get_lines()}
    for net, line in tol_lines.items():
        want = [(r["d"], r[net]["seconds_to_tol"]) for r in rows if r[net]["seconds_to_tol"]]
        assert list(zip(line.get_xdata(), line.get_ydata())) == want
    assert "compressed" in tol_lines
    assert "make gpu-check" in gpu_step.texts[0].get_text()
    assert not gpu_tol.get_lines()
    plt.close(fig)


def test_speedup_series_matches_the_record():
    rec = results.load("completion_sizes", machine="cpu")
    s = figures.speedup_series(rec)
    rows = [r for r in rec["values"]["rows"] if "compressed" in r]
    assert s["d"] == [r["d"] for r in rows]
    ratio = [c / o for c, o in zip(s["compressed_ms_per_step"], s["original_ms_per_step"])]
    assert s["step_ratio"] == pytest.approx(ratio, rel=1e-12)


@pytest.mark.slow
def test_a_record_loads_from_an_installed_wheel(tmp_path):
    # Built from a copy of what the wheel needs, so that setuptools' build/ stays out of the tree.
    src, wheels, target = tmp_path / "src", tmp_path / "wheels", tmp_path / "site"
    shutil.copytree(ROOT / "lib", src / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE", "LICENSE-TEXT.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q"]
    build = pip + ["wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run(build, check=True, cwd=tmp_path, capture_output=True)
    wheel = next(wheels.glob("lowdim_lecture6-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    code = (
        "import lib, lib.results as r; rec = r.load('dln', machine='cpu');"
        "print(lib.__file__); print(rec['benchmark'], len(r.records()))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.split("\n")  # fmt: skip
    assert Path(out[0]).is_relative_to(target)  # the installed copy, not the work tree
    assert out[1] == f"dln {len(_committed())}"
