"""Measured results with provenance: the book's ``results`` records, written and read here.

Every benchmark in ``bench/`` that runs on a CPU (and the GPU check, ``scripts/gpu_check.sh``)
writes one small JSON record per benchmark and machine next to its printed table, through
:func:`write`. The records are **committed inside the package**, in ``lib/results/records/``
(``<benchmark>-<machine slug>.json``; they ship in the wheel as package data, so a notebook on
Colab reads them from an installed ``lib``). This folder is the issue's "committed ``results/``
folder": it lives under ``lib/`` only so that it ships with the package.

A record holds the measured values and where they came from (:data:`PROVENANCE`): the machine
(CPU model, cores, memory; GPU name and memory when CUDA ran), the Python, torch, Triton and CUDA
versions, the commit (``git rev-parse HEAD``) and whether the work tree was dirty, the date (UTC,
ISO 8601), the exact command, and the load average of the machine when it was written. The book
never hand-types a performance number: it reads it with :func:`load`.

    from lib import results
    rec = results.load("completion_sizes", machine="cpu")   # newest CPU record; clear error if absent
    results.caption(rec)                                     # machine, versions and date, one line
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import platform
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from types import ModuleType

from lib._checks import check_nonempty, check_type

__all__ = [
    "COMMANDS",
    "PROVENANCE",
    "caption",
    "load",
    "machine_slug",
    "provenance",
    "records",
    "table",
    "validate",
    "write",
]

#: Provenance fields every record must hold: ``{field: its required sub-fields}``.
PROVENANCE: dict[str, tuple[str, ...]] = {
    "benchmark": (),
    "machine": ("slug", "cpu", "cores", "memory_gb", "gpu", "gpu_memory_gb", "threads"),
    "versions": ("python", "torch", "triton", "cuda"),
    "commit": (),
    "dirty": (),
    "date": (),
    "command": (),
    "load_average": (),
    "values": (),
}

#: The command that writes each benchmark's record (named in the error when a record is absent).
COMMANDS: dict[str, str] = {
    "completion": "python bench/completion.py --quick",
    "completion_sizes": "python bench/completion_sizes.py",
    "completion_large": "python bench/completion_large.py",
    "cpu_modes": "python bench/cpu_modes.py",
    "dln": "python bench/dln.py --quick",
    "metrics": "python bench/metrics.py --quick",
    "fused_tiles": "python bench/fused_tiles.py  (needs a CUDA GPU; or: make gpu-check)",
}

_RECORDS = "records"


def __getattr__(name: str) -> ModuleType:
    # The figures are imported on first use (``lib.results.figures``): they need matplotlib.
    if name == "figures":
        return importlib.import_module("lib.results.figures")
    raise AttributeError(f"module 'lib.results' has no attribute {name!r}")


_REPO = Path(__file__).resolve().parents[2]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _git(*args: str) -> str | None:
    if not (_REPO / ".git").exists():  # an installed copy: not the repository's checkout
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine_slug(machine: dict) -> str:
    """The file-name part of a machine: its GPU's name, else its CPU model and core count.

    Args:
        machine: the ``"machine"`` entry of a record (keys ``gpu``, ``cpu``, ``cores``).
    """
    check_type("machine", machine, dict, "the 'machine' entry of a record")
    if machine.get("gpu"):
        return _slug(str(machine["gpu"]))
    return f"{_slug(str(machine.get('cpu', 'unknown')))}-{machine.get('cores', 0)}c"


def provenance(device: str = "cpu", argv: list[str] | None = None) -> dict:
    """Where a measurement comes from: machine, versions, commit, date, command and load.

    Args:
        device: the device the benchmark ran on (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...); the
            GPU's name and memory are recorded when it is a CUDA device.
        argv: the command as run (default ``sys.argv``, with ``python`` in front).

    Returns:
        A dict with every field of :data:`PROVENANCE` but ``benchmark`` and ``values``.
    """
    import torch  # lazy: importing lib.results does not load torch

    check_type("device", device, (str, torch.device), 'e.g. "cpu" or "cuda"')
    dev = torch.device(device)
    gpu = gpu_mem = None
    if dev.type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(dev)
        gpu, gpu_mem = props.name, round(props.total_memory / 2**30, 1)
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    machine = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "gpu": gpu,
        "gpu_memory_gb": gpu_mem,
        "threads": torch.get_num_threads(),
    }
    machine = {"slug": machine_slug(machine), **machine}
    status = _git("status", "--porcelain", "--untracked-files=no")
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(".py"):  # a script: as run from the repository root
        script = Path(argv[0]).resolve()
        rel = script.relative_to(_REPO) if _REPO in script.parents else script
        argv = ["python", rel.as_posix(), *argv[1:]]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "machine": machine,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "triton": triton_version,
            "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        },
        # a copy without .git (a device machine) names its commit in LIB_RESULTS_COMMIT
        "commit": _git("rev-parse", "HEAD")
        or os.environ.get("LIB_RESULTS_COMMIT")
        or "unknown (not a git checkout)",
        "dirty": None if status is None else bool(status),
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "command": argv,
        "load_average": None if load is None else [round(x, 2) for x in load],
    }


def validate(record: object, source: str = "record") -> dict:
    """Check that ``record`` has every provenance field of :data:`PROVENANCE`; return it.

    Args:
        record: a parsed record (a dict).
        source: where it came from, named in the error (a file name).

    Raises:
        ValueError: naming the first missing field and the command that rewrites the record.
    """
    check_type("record", record, dict, "a parsed JSON record of lib.results")
    for field, subfields in PROVENANCE.items():
        if field not in record:
            raise ValueError(f"{source} lacks the provenance field {field!r}; {_rerun(record)}")
        for sub in subfields:
            if not isinstance(record[field], dict) or sub not in record[field]:
                raise ValueError(
                    f"{source} lacks the provenance field {field}.{sub!r}; {_rerun(record)}"
                )
    for field in ("commit", "date", "command"):
        if not record[field]:
            raise ValueError(f"{source} has an empty provenance field {field!r}; {_rerun(record)}")
    return record


def _rerun(record: dict) -> str:
    command = COMMANDS.get(record.get("benchmark", ""), "the benchmark in bench/")
    return f"rewrite it by running `{command}`"


def _folder(folder: str | Path | None):
    if folder is not None:
        return Path(folder)
    if os.environ.get("LIB_RESULTS_DIR"):
        return Path(os.environ["LIB_RESULTS_DIR"])
    return resources.files(__name__) / _RECORDS


def write(
    benchmark: str,
    values: dict,
    device: str = "cpu",
    argv: list[str] | None = None,
    folder: str | Path | None = None,
) -> Path:
    """Write ``values`` with their :func:`provenance` as ``<benchmark>-<machine slug>.json``.

    Args:
        benchmark: the benchmark's name (the stem of its ``bench/`` script), non-empty.
        values: the measured values (JSON-serialisable).
        device: the device it ran on (see :func:`provenance`).
        argv: the command (default ``sys.argv``).
        folder: where to write (default ``$LIB_RESULTS_DIR`` if set, else the package's
            ``records/`` folder).

    Returns:
        The path written (an earlier record of the same benchmark and machine is replaced).
    """
    check_type("benchmark", benchmark, str, 'the bench script\'s stem, e.g. "dln"')
    check_nonempty("benchmark", benchmark, "character")
    check_type("values", values, dict, "the measured values of the benchmark")
    record = {"benchmark": benchmark, **provenance(device, argv), "values": values}
    validate(record)
    path = Path(str(_folder(folder))).resolve() / f"{benchmark}-{record['machine']['slug']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=False, allow_nan=True) + "\n")
    print(f"record: {path}")
    return path


def records(
    benchmark: str | None = None, machine: str | None = None, folder: str | Path | None = None
) -> list[dict]:
    """Every record (of one ``benchmark`` and ``machine`` if given), validated, oldest first.

    Args:
        benchmark: keep only this benchmark's records (``None``: all).
        machine: ``"cpu"`` (records without a GPU), ``"gpu"`` (with one), a machine slug, or
            ``None`` (any).
        folder: where to read (default: the package's ``records/`` folder).

    Returns:
        A list, empty when nothing matches (:func:`load` raises instead).
    """
    if benchmark is not None:
        check_type("benchmark", benchmark, str, 'e.g. "completion_sizes"')
    if machine is not None:
        check_type("machine", machine, str, '"cpu", "gpu" or a machine slug')
    root = _folder(folder)
    found = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name) if root.is_dir() else []:
        if entry.name.endswith(".json"):
            record = validate(json.loads(entry.read_text()), entry.name)
            if benchmark is None or record["benchmark"] == benchmark:
                found.append(record)
    if machine == "cpu":
        found = [r for r in found if not r["machine"]["gpu"]]
    elif machine == "gpu":
        found = [r for r in found if r["machine"]["gpu"]]
    elif machine is not None:
        found = [r for r in found if r["machine"]["slug"] == machine]
    return sorted(found, key=lambda r: r["date"])


def load(benchmark: str, machine: str | None = None, folder: str | Path | None = None) -> dict:
    """The newest record of ``benchmark`` on ``machine``.

    Args:
        benchmark: e.g. ``"completion_sizes"`` (:data:`COMMANDS` lists them).
        machine: ``"cpu"`` (a record without a GPU), ``"gpu"`` (with one), a machine slug, or
            ``None`` (any).
        folder: where to read (default: the package's ``records/`` folder).

    Raises:
        LookupError: no such record; the message names what is absent and the command that
            writes it.
    """
    check_type("benchmark", benchmark, str, 'e.g. "completion_sizes"')
    check_nonempty("benchmark", benchmark, "character")
    found = records(benchmark, machine, folder)
    if not found:
        on = "" if machine is None else f" on machine {machine!r}"
        command = COMMANDS.get(benchmark, f"python bench/{benchmark}.py")
        gpu = " --device cuda (or: make gpu-check)" if machine == "gpu" else ""
        raise LookupError(
            f"no record of benchmark {benchmark!r}{on} in lib/results/records; "
            f"write it by running `{command}{gpu}` and commit the JSON file"
        )
    return found[-1]


def caption(record: dict) -> str:
    """One line naming a record's machine, versions, commit and date (for under its table).

    Args:
        record: a record from :func:`load`.
    """
    record = validate(record)
    m, v = record["machine"], record["versions"]
    where = f"{m['gpu']} ({m['gpu_memory_gb']} GiB)" if m["gpu"] else m["cpu"]
    mem = f"{m['memory_gb']:g} GiB" if m["memory_gb"] is not None else "memory unknown"
    extra = "".join(f", {k} {v[k]}" for k in ("triton", "cuda") if v[k])
    dirty = " + uncommitted changes" if record["dirty"] else ""
    return (
        f"{record['benchmark']}: {where}; {m['cores']} cores, {m['threads']} torch threads, "
        f"{mem}; Python {v['python']}, torch {v['torch']}{extra}; commit "
        f"{record['commit'][:10]}{dirty}; {record['date'][:10]}; `{' '.join(record['command'])}`"
    )


def _get(row: object, path: str):
    for key in path.split("."):
        if isinstance(row, list) and key.isdigit() and int(key) < len(row):
            row = row[int(key)]
        else:
            row = row.get(key) if isinstance(row, dict) else None
    return row


def _cell(value: object, digits: int) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table(record: dict, columns: dict[str, str], digits: int = 3) -> str:
    """A record's rows as an aligned text table, its :func:`caption` underneath.

    Args:
        record: a record from :func:`load`.
        columns: ``{header: key}``, the key a dotted path into each row of
            ``record["values"]["rows"]`` (``"compressed.ms_per_step"``, ``"load_average.0"``:
            an integer indexes a list); a record without rows
            is one row, its ``values``.
        digits: significant digits of the floats (a value that is absent prints as ``—``).

    Returns:
        The table and the caption, as one string to print.
    """
    record = validate(record)
    check_type("columns", columns, dict, '{header: dotted key}, e.g. {"d": "d"}')
    check_nonempty("columns", columns, "column")
    rows = record["values"].get("rows", [record["values"]])
    cells = [list(columns)] + [[_cell(_get(r, k), digits) for k in columns.values()] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells]
    return "\n".join([*lines, "", caption(record)])
