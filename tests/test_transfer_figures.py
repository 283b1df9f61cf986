"""lib.transfer.figures: every figure draws the numbers it is given, transformed as its labels say
(accuracies and fractions in percent), with the documented labels, scales and one colour per
method; the values are recomputed here from the inputs, not by a lib helper."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from lib.layerwise import LayerCollapse  # noqa: E402
from lib.transfer import TransferResult, figures  # noqa: E402

# The colours and legend labels the chapter's text refers to, written out.
COLORS = {"pretrained": "0.45", "linear_probe": "C0", "layer_ft": "C1", "scl_ft": "C3"}
COLORS["full_ft"] = "C2"
LABELS = {
    "pretrained": "pretrained (before FT)",
    "linear_probe": "linear probe",
    "layer_ft": "Layer FT",
    "scl_ft": "SCL FT",
    "full_ft": "full FT",
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def rows():
    return [
        {"label": "η=0.01, 2 ep", "nc1": 3.5, "accuracy": 0.61},
        {"label": "η=0.1, 8 ep", "nc1": 0.42, "accuracy": 0.93},
        {"label": "η=0.03, 8 ep", "nc1": 1.1, "accuracy": 0.8},
    ]


@pytest.fixture
def results():
    values = {  # method: (accuracy, nc1, fraction)
        "linear_probe": (0.71, 2.5, 0.0005),
        "layer_ft": (0.84, 0.9, 0.027),
        "scl_ft": (0.86, 0.6, 0.027),
        "full_ft": (0.8, 0.3, 1.0),
    }
    return [TransferResult(m, a, n, f, model=None) for m, (a, n, f) in values.items()]


def test_plot_collapse_vs_transfer_places_each_model_at_its_nc1_and_accuracy(rows):
    fig = figures.plot_collapse_vs_transfer(rows)
    ax = fig.axes[0]
    (points,) = ax.collections
    expected = np.array([[r["nc1"], r["accuracy"] * 100.0] for r in rows])
    np.testing.assert_allclose(points.get_offsets(), expected, rtol=1e-12)
    assert [t.get_text() for t in ax.texts] == [r["label"] for r in rows]
    assert [t.xy for t in ax.texts] == [tuple(xy) for xy in expected.tolist()]
    assert ax.get_xscale() == "log"
    assert ax.get_title() == "More collapse, better transfer"
    assert "NC" in ax.get_xlabel() and ax.get_ylabel() == "linear-probe test accuracy (%)"


def test_plot_collapse_vs_transfer_uses_given_axes_and_title(rows):
    fig, ax = plt.subplots()
    assert figures.plot_collapse_vs_transfer(rows, ax=ax, title="ViT-B/32") is fig
    assert ax.get_title() == "ViT-B/32" and len(ax.collections) == 1


def test_plot_methods_bars_are_accuracy_nc1_and_percent_trained(results):
    fig = figures.plot_methods(results)
    axes = fig.axes
    assert len(axes) == 3
    expected = (
        [100.0 * r.accuracy for r in results],
        [r.nc1 for r in results],
        [100.0 * r.fraction for r in results],
    )
    for ax, values in zip(axes, expected):
        bars = ax.patches
        np.testing.assert_allclose([b.get_height() for b in bars], values, rtol=1e-12)
        assert [to_rgba(b.get_facecolor()) for b in bars] == [
            to_rgba(COLORS[r.method]) for r in results
        ]
        assert [t.get_text() for t in ax.get_xticklabels()] == [LABELS[r.method] for r in results]
    assert [ax.get_ylabel() for ax in axes][::2] == ["test accuracy (%)", "% parameters trained"]
    assert [ax.get_yscale() for ax in axes] == ["linear", "log", "log"]
    lowest = min(100.0 * r.accuracy for r in results)
    assert axes[0].get_ylim() == pytest.approx((max(0.0, lowest - 10.0), 100.0))


def test_plot_methods_accepts_axes_as_ax_or_under_the_old_name(results):
    for kwargs in ("ax", "axes"):
        fig, axs = plt.subplots(1, 3)
        assert figures.plot_methods(results, **{kwargs: list(axs)}) is fig
        assert all(len(ax.patches) == len(results) for ax in axs)
    fig, axs = plt.subplots(1, 3)
    assert figures.plot_methods(results, list(axs)) is fig  # positional, as before
    with pytest.raises(ValueError, match="not both"):
        figures.plot_methods(results, ax=list(axs), axes=list(axs))
    with pytest.raises(ValueError, match="expected 3 axes"):
        figures.plot_methods(results, ax=list(axs)[:2])


def test_plot_data_sizes_draws_percent_accuracy_against_samples_per_class():
    sizes = [5, 10, 20, 50]
    table = {
        "linear_probe": torch.tensor([0.5, 0.6, 0.7, 0.72]),
        "scl_ft": torch.tensor([0.55, 0.7, 0.8, 0.9]),
    }
    fig = figures.plot_data_sizes(sizes, table)
    ax = fig.axes[0]
    assert len(ax.lines) == len(table)
    for line, (method, acc) in zip(ax.lines, table.items()):
        np.testing.assert_array_equal(line.get_xdata(), sizes)
        np.testing.assert_allclose(line.get_ydata(), [100.0 * float(a) for a in acc], rtol=1e-6)
        assert to_rgba(line.get_color()) == to_rgba(COLORS[method])
        assert line.get_label() == LABELS[method]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["linear probe", "SCL FT"]
    assert ax.get_xscale() == "log"
    assert list(ax.get_xticks()) == sizes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "10", "20", "50"]
    assert ax.get_xlabel() == "downstream training samples per class"
    fig2, ax2 = plt.subplots()
    assert figures.plot_data_sizes(sizes, table, ax=ax2) is fig2


def _collapse(nc1: list[float]) -> LayerCollapse:
    layers = ("encoder.layer1.0", "encoder.layer2.1", "encoder.layer4.1", "penultimate")
    t = torch.tensor(nc1, dtype=torch.float64)
    return LayerCollapse(layers, t, t / 2, (16, 32, 128, 128), 40)


def test_plot_layer_nc1_draws_each_curve_over_the_layers_and_marks_the_key_layer():
    curves = {
        "pretrained": _collapse([9.0, 5.0, 2.0, 1.5]),
        "scl_ft": _collapse([9.0, 3.0, 1.0, 0.4]),
    }
    fig = figures.plot_layer_nc1(curves, key_layer="encoder.layer2.1")
    ax = fig.axes[0]
    data_lines = [ln for ln in ax.lines if len(ln.get_xdata()) == 4]
    assert len(data_lines) == 2
    for line, (method, out) in zip(data_lines, curves.items()):
        np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2, 3])
        np.testing.assert_allclose(line.get_ydata(), out.nc1.numpy(), rtol=1e-12)
        assert to_rgba(line.get_color()) == to_rgba(COLORS[method])
    (marker,) = [ln for ln in ax.lines if ln.get_label() == "fine-tuned layer"]
    assert list(marker.get_xdata()) == [1, 1]  # index of encoder.layer2.1
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == ["layer1.0", "layer2.1", "layer4.1", "penultimate"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["pretrained (before FT)", "SCL FT", "fine-tuned layer"]
    assert ax.get_yscale() == "log" and ax.get_title() == "Layer-wise collapse"


def test_plot_layer_nc1_without_a_known_key_layer_draws_no_marker():
    fig, ax = plt.subplots()
    curves = {"full_ft": _collapse([4.0, 2.0, 1.0, 0.5])}
    assert figures.plot_layer_nc1(curves, key_layer="encoder.blocks.5", ax=ax) is fig
    assert len(ax.lines) == 1
    assert figures.plot_layer_nc1(curves, None, ax) is fig  # positional, as before
