r"""Figures of the transfer-learning chapter: data first, ``ax=None``, returns the figure.

The numbers come from :mod:`lib.transfer`; this module only draws them. Methods keep one colour
in every figure (:data:`METHOD_COLORS`).

* :func:`plot_collapse_vs_transfer` — downstream :math:`\mathcal{NC}_1` of pretrained models
  against their linear-probe accuracy;
* :func:`plot_methods` — accuracy, :math:`\mathcal{NC}_1` and % of parameters per method;
* :func:`plot_data_sizes` — accuracy against downstream samples per class;
* :func:`plot_layer_nc1` — layer-wise :math:`\mathcal{NC}_1^l` per method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib import ticker

from lib._checks import check_nonempty, check_option, check_type
from lib.layerwise import LayerCollapse
from lib.plotting import panels
from lib.transfer.train import TransferResult

__all__ = [
    "METHOD_COLORS",
    "METHOD_LABELS",
    "plot_collapse_vs_transfer",
    "plot_data_sizes",
    "plot_layer_nc1",
    "plot_methods",
]

#: One colour per fine-tuning method.
METHOD_COLORS = {
    "pretrained": "0.45",
    "linear_probe": "C0",
    "zero_shot": "C0",
    "layer_ft": "C1",
    "scl_ft": "C3",
    "full_ft": "C2",
}
#: Labels used in legends.
METHOD_LABELS = {
    "pretrained": "pretrained (before FT)",
    "linear_probe": "linear probe",
    "zero_shot": "zero shot",
    "layer_ft": "Layer FT",
    "scl_ft": "SCL FT",
    "full_ft": "full FT",
}


def _plain_log_ticks(axis) -> None:
    """Log-scale ticks labelled as plain numbers (1, 2, 5, 10, ...), no minor labels."""
    axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def plot_collapse_vs_transfer(rows: Sequence[Mapping[str, Any]], ax=None, title: str = ""):
    r"""Scatter of downstream :math:`\mathcal{NC}_1` (log scale) against transfer accuracy.

    Args:
        rows: from :func:`lib.transfer.collapse_vs_transfer` (``label``, ``nc1``, ``accuracy``).
        ax: axes to draw on (default: a new figure).
        title: axes title.

    Returns:
        The figure.
    """
    _check_records("rows", rows, "collapse_vs_transfer(...)")
    for i, row in enumerate(rows):
        check_type(f"rows[{i}]", row, Mapping, "a row of collapse_vs_transfer(...)")
        missing = [key for key in ("label", "nc1", "accuracy") if key not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks the key(s) {missing} of collapse_vs_transfer rows")
    fig, (ax,) = panels(ax)
    nc1 = [r["nc1"] for r in rows]
    acc = [100 * r["accuracy"] for r in rows]
    ax.scatter(nc1, acc, c=range(len(rows)), cmap="viridis", s=40, zorder=2)
    for r, x, y in zip(rows, nc1, acc):
        ax.annotate(r["label"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set(
        xlabel=r"$\mathcal{NC}_1$ of pretrained features (downstream train)",
        ylabel="linear-probe test accuracy (%)",
        title=title or "More collapse, better transfer",
    )
    return fig


def plot_methods(results: Sequence[Any], ax=None, *, axes=None):
    r"""Three panels per method: test accuracy, penultimate :math:`\mathcal{NC}_1`, % parameters.

    Args:
        results: :class:`lib.transfer.TransferResult` objects (``method``, ``accuracy``, ``nc1``,
            ``fraction``).
        ax: three axes (default: a new figure).
        axes: the old name of ``ax`` (kept for existing calls).

    Returns:
        The figure.
    """
    _check_records("results", results, "compare_methods(...)")
    for i, result in enumerate(results):
        check_type(f"results[{i}]", result, TransferResult, "from fine_tune or compare_methods")
        check_option(f"results[{i}].method", result.method, tuple(METHOD_LABELS))
    if ax is not None and axes is not None:
        raise ValueError("pass the three axes as ax (or axes), not both")
    fig, axes = panels(ax if ax is not None else axes, 3, figsize=(11, 3.2))
    names = [METHOD_LABELS[r.method] for r in results]
    colors = [METHOD_COLORS[r.method] for r in results]
    values = (
        [100 * r.accuracy for r in results],
        [r.nc1 for r in results],
        [100 * r.fraction for r in results],
    )
    labels = (
        "test accuracy (%)",
        r"$\mathcal{NC}_1$ of $\mathbf{h}$ (train)",
        "% parameters trained",
    )
    for ax, vals, label in zip(axes, values, labels):
        ax.bar(names, vals, color=colors)
        ax.set(ylabel=label)
        ax.tick_params(axis="x", labelrotation=30)
    for ax in axes[1:]:
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
    lo = min(values[0])
    axes[0].set_ylim(max(0.0, lo - 10), 100)
    fig.tight_layout()
    return fig


def plot_data_sizes(sizes: Sequence[int], table: Mapping[str, torch.Tensor], ax=None):
    """Test accuracy of each method against downstream training samples per class.

    Args:
        sizes: samples per class.
        table: from :func:`lib.transfer.data_size_sweep` (method → accuracies ``(len(sizes),)``).
        ax: axes to draw on (default: a new figure).

    Returns:
        The figure.
    """
    _check_records("sizes", sizes, "[5, 10, 20], samples per class")
    check_type("table", table, Mapping, "the result of data_size_sweep(...)")
    check_nonempty("table", table, "method's accuracies (data_size_sweep(...))")
    for method, acc in table.items():
        check_option("method (a key of table)", method, tuple(METHOD_LABELS))
        check_type(f"table[{method!r}]", acc, torch.Tensor, "accuracies (len(sizes),)")
        if tuple(acc.shape) != (len(sizes),):
            raise ValueError(
                f"table[{method!r}] must hold one accuracy per size, shape ({len(sizes)},), got "
                f"shape {tuple(acc.shape)}"
            )
    fig, (ax,) = panels(ax)
    for method, acc in table.items():
        ax.plot(
            list(sizes),
            (100 * acc).tolist(),
            "o-",
            color=METHOD_COLORS[method],
            label=METHOD_LABELS[method],
        )
    ax.set_xscale("log")
    ax.set_xticks(list(sizes), [str(s) for s in sizes])
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set(
        xlabel="downstream training samples per class",
        ylabel="test accuracy (%)",
        title="Scarce downstream data",
    )
    ax.legend()
    return fig


def plot_layer_nc1(curves: Mapping[str, Any], key_layer: str | None = None, ax=None):
    r"""Layer-wise :math:`\mathcal{NC}_1^l` (log scale) of several models over the same layers.

    Args:
        curves: method → :class:`lib.layerwise.LayerCollapse` (same ``layers`` for all).
        key_layer: name of the fine-tuned layer (``"encoder.<name>"``), marked by a line.
        ax: axes to draw on (default: a new, wide figure).

    Returns:
        The figure.
    """
    _check_curves(curves)
    if key_layer is not None:
        check_type("key_layer", key_layer, str, "a name such as 'encoder.layer2.1'")
    fig, (ax,) = panels(ax, figsize=(7.5, 3.6))
    layers = None
    for method, out in curves.items():
        layers = list(out.layers)
        ax.plot(
            range(len(layers)),
            out.nc1.cpu().tolist(),
            "o-",
            color=METHOD_COLORS[method],
            label=METHOD_LABELS[method],
        )
    short = [name.removeprefix("encoder.") for name in layers or []]
    ax.set_xticks(range(len(short)), short, rotation=45, ha="right")
    if key_layer is not None and key_layer in (layers or []):
        ax.axvline(layers.index(key_layer), color="0.6", ls="--", lw=1, label="fine-tuned layer")
    ax.set_yscale("log")
    ax.set(ylabel=r"$\mathcal{NC}_1^l$ (downstream train)", title="Layer-wise collapse")
    ax.legend(fontsize=8)
    return fig


def _check_records(name: str, values: object, where: str) -> None:
    """``values``: a non-empty list or tuple (the records a figure draws)."""
    check_type(name, values, (list, tuple), f"e.g. {where}")
    check_nonempty(name, values, f"entry ({where})")


def _check_curves(curves: object) -> None:
    """``curves``: method → :class:`~lib.layerwise.LayerCollapse`, all over the same layers."""
    check_type("curves", curves, Mapping, "method -> layer_nc1(...)")
    check_nonempty("curves", curves, "method's layer_nc1(...)")
    layers = None
    for method, out in curves.items():
        check_option("method (a key of curves)", method, tuple(METHOD_LABELS))
        check_type(f"curves[{method!r}]", out, LayerCollapse, "the result of layer_nc1(...)")
        if layers is not None and tuple(out.layers) != layers:
            raise ValueError(
                f"curves[{method!r}] is over other layers than the curves before it; pass "
                "layer_nc1(...) results over the same layers"
            )
        layers = tuple(out.layers)
