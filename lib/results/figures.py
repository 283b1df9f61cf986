"""Figures drawn from the measured records of :mod:`lib.results` (the appendix's speed-up figure).

* :func:`speedup_series` — the columns of a ``completion_sizes`` record: d, and time per step and
  time to tolerance of the original and the compressed network;
* :func:`plot_speedup` — those columns against d, CPU and GPU records side by side (a machine
  without a record gets a panel that says which command writes it).
"""

from __future__ import annotations

from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from lib._checks import check_type
from lib.plotting import panels
from lib.results import validate

__all__ = ["plot_speedup", "speedup_series"]

#: Colours of the two networks, as in :mod:`lib.completion.figures`.
COLORS = {"original": "C0", "compressed": "C1"}


def speedup_series(record: dict) -> dict[str, list]:
    """Columns of a ``completion_sizes`` record, one entry per measured d (skipped d left out).

    Args:
        record: from ``lib.results.load("completion_sizes", ...)``.

    Returns:
        ``{"d", "original_ms_per_step", "compressed_ms_per_step", "original_s_to_tol",
        "compressed_s_to_tol", "step_ratio"}``; a time to tolerance that was not measured (time
        limit, or skipped for the original at large d) is ``None``.
    """
    record = validate(record)
    if record["benchmark"] != "completion_sizes":
        raise ValueError(
            f"record must be a 'completion_sizes' record, got {record['benchmark']!r}; "
            'load it with lib.results.load("completion_sizes", machine=...)'
        )
    rows = [r for r in record["values"]["rows"] if "compressed" in r]
    out: dict[str, list] = {"d": [r["d"] for r in rows]}
    for net in ("original", "compressed"):
        out[f"{net}_ms_per_step"] = [r[net]["ms_per_step"] for r in rows]
        out[f"{net}_s_to_tol"] = [r[net]["seconds_to_tol"] for r in rows]
    out["step_ratio"] = [r["step_ratio"] for r in rows]
    return out


def _absent(ax, title: str, machine: str) -> None:
    ax.set_title(title)
    ax.text(
        0.5, 0.5, f"no {machine} record yet:\nrun `make gpu-check`" if machine == "GPU"
        else f"no {machine} record yet:\nrun `python bench/completion_sizes.py`",
        ha="center", va="center", transform=ax.transAxes,
    )  # fmt: skip
    ax.set_axis_off()


def plot_speedup(cpu: dict | None, gpu: dict | None = None, ax=None):
    """Time per step and time to tolerance of the original and compressed networks against d.

    Four panels: CPU time per step, CPU time to tolerance, GPU time per step, GPU time to
    tolerance (log-log). A machine whose record is ``None`` gets panels that say so and name the
    command that writes the record.

    Args:
        cpu: a ``completion_sizes`` record measured on a CPU, or ``None``.
        gpu: one measured on a GPU, or ``None``.
        ax: ``None`` (a new figure) or four axes.

    Returns:
        The ``Figure``.
    """
    for name, record in (("cpu", cpu), ("gpu", gpu)):
        if record is not None:
            check_type(name, record, dict, 'lib.results.load("completion_sizes", ...) or None')
            speedup_series(record)  # validates it
    fig, axes = panels(ax, 4, figsize=(13, 3.4))
    for i, (machine, record) in enumerate((("CPU", cpu), ("GPU", gpu))):
        ax_step, ax_tol = axes[2 * i], axes[2 * i + 1]
        if record is None:
            _absent(ax_step, f"{machine}: time per step", machine)
            _absent(ax_tol, f"{machine}: time to tolerance", machine)
            continue
        s = speedup_series(record)
        for net, color in COLORS.items():
            ax_step.loglog(s["d"], s[f"{net}_ms_per_step"], "o-", color=color, label=net)
            pts = [(d, t) for d, t in zip(s["d"], s[f"{net}_s_to_tol"]) if t is not None]
            if pts:
                ax_tol.loglog(*zip(*pts), "o-", color=color, label=net)
        where = record["machine"]["gpu"] or record["machine"]["cpu"]
        ax_step.set(title=f"{machine}: time per step", xlabel="$d$", ylabel="ms per step")
        ax_tol.set(title=f"{machine}: time to tolerance", xlabel="$d$", ylabel="seconds")
        ax_step.legend(title=where[:32], title_fontsize=7)
        ax_tol.legend()
        for a in (ax_step, ax_tol):  # the measured d as plain tick labels, no minor labels
            a.set_xlim(min(s["d"]) / 1.25, max(s["d"]) * 1.25)
            a.set_xticks(s["d"], [f"{d:,}" for d in s["d"]])
            a.xaxis.set_minor_formatter(NullFormatter())
            a.yaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))
            a.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            a.yaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    return fig
