"""The book's one plot style and small plotting helpers shared by the chapters.

Figures are rendered as retina PNG (never SVG: SVG text is compared by nbval and churns).
"""

from __future__ import annotations

import math
import numbers

import torch

from lib._checks import check_int, check_real, check_type

__all__ = ["STYLE", "panels", "plot_collapse_sweep", "use_style"]

#: rcParams applied by :func:`use_style`.
STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
    "svg.hashsalt": "lecture6",  # deterministic ids should an SVG ever be written
}


def use_style() -> None:
    """Apply the book's matplotlib style and, inside IPython, retina PNG inline figures."""
    import matplotlib as mpl  # lazy here and below: ``import lib`` does not load matplotlib

    mpl.rcParams.update(STYLE)
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython ships with Jupyter
        shell = None
    if shell is not None:
        try:
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            set_matplotlib_formats("retina")
        except ImportError:  # pragma: no cover
            pass


def panels(ax=None, n: int = 1, figsize=None, panel_width: float = 4.2):
    """``n`` axes for a plotting function: the caller's (checked), or a new row of ``n`` panels.

    Args:
        ax: ``None`` (make a figure), one ``Axes`` (when ``n == 1``) or a sequence of ``n`` axes
            (a NumPy array of axes from ``plt.subplots`` is flattened).
        n: number of panels the plotting function draws, an integer ``>= 1``.
        figsize: size ``(width, height)`` in inches of a new figure, both finite and ``> 0``;
            default ``(panel_width * n, 3.4)``.
        panel_width: width in inches (``> 0``) of each panel of a new figure.

    Returns:
        ``(figure, [axes, ...])``.
    """
    import matplotlib.pyplot as plt  # lazy: ``import lib`` does not load matplotlib
    from matplotlib.axes import Axes

    n = check_int("n", n, 1)
    check_real("panel_width", panel_width, 0.0, strict=True)
    if figsize is not None:
        _check_figsize(figsize)
    if ax is None:
        fig, axes = plt.subplots(1, n, figsize=figsize or (panel_width * n, 3.4), squeeze=False)
        return fig, list(axes[0])
    if hasattr(ax, "ravel") and not isinstance(ax, Axes):  # a NumPy array of axes
        ax = list(ax.ravel())
    axes = list(ax) if isinstance(ax, (list, tuple)) or hasattr(ax, "__len__") else [ax]
    for a in axes:
        check_type("ax", a, Axes, "None, one matplotlib Axes or a sequence of them")
    if len(axes) != n:
        raise ValueError(f"ax: this figure draws {n} panel(s); expected {n} axes, got {len(axes)}")
    return axes[0].figure, axes


def _check_figsize(figsize: object) -> None:
    ok = isinstance(figsize, (tuple, list)) and len(figsize) == 2
    ok = ok and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        for v in figsize
    )
    if not ok:
        raise ValueError(f"figsize must be (width, height) in inches, both > 0, got {figsize!r}")


def plot_collapse_sweep(separations, sweep, nc1s, trace_ratios, ax=None):
    r"""The getting-started figure: features of the least and most separated classes, and
    :math:`\mathcal{NC}_1` and :math:`D` against the separation :math:`s` (log-log).

    Args:
        separations: the ``S >= 2`` values of :math:`s`, finite and ``> 0`` (log axis).
        sweep: ``S`` pairs ``(H, y)``, features ``(N, p)`` with ``p >= 2`` (the first two
            coordinates are drawn) and labels ``(N,)``, one per value.
        nc1s: ``S`` values of :func:`lib.metrics.nc1`, one per pair (numbers or 0-dim
            tensors). NaN is refused (a diverged measurement); 0 and ``inf``, the documented
            values at zero between-class spread, are valid but fall off the log axes.
        trace_ratios: ``S`` values of :func:`lib.metrics.trace_ratio`, one per pair, likewise.
        ax: ``None`` (a new figure) or two axes.

    Returns:
        The ``Figure``.

    Example:
        >>> fig = plot_collapse_sweep([1, 2], [(torch.randn(6, 2), torch.arange(6) % 2)] * 2,
        ...                           [1.0, 0.25], [0.5, 0.1])  # doctest: +SKIP
    """
    _check_sweep(separations, sweep, nc1s, trace_ratios)
    if not len(separations) == len(sweep) == len(nc1s) == len(trace_ratios) >= 2:
        raise ValueError(
            "separations, sweep, nc1s and trace_ratios need one entry per separation, at least "
            f"two; got {len(separations)}, {len(sweep)}, {len(nc1s)}, {len(trace_ratios)}"
        )
    fig, (ax0, ax1) = panels(ax, 2, figsize=(9, 3.6))
    for (H, y), s, style in ((sweep[0], separations[0], dict(alpha=0.5, marker="o")),
                             (sweep[-1], separations[-1], dict(marker="^"))):  # fmt: skip
        ax0.scatter(*H[:, :2].cpu().T, c=y.cpu(), s=8, label=f"s = {s:g}", **style)
    ax0.set(title="First two coordinates of the features", xlabel="$h_1$", ylabel="$h_2$")
    ax0.legend()
    ax1.loglog(separations, nc1s, "o-", label=r"$\mathcal{NC}_1$")
    ax1.loglog(separations, trace_ratios, "s-", label="$D$")
    ax1.set(title="Collapse as classes separate", xlabel="separation $s$", ylabel="value")
    ax1.legend()
    return fig


def _scalar(name: str, value: object) -> float:
    """``value`` (a real number or a one-element real tensor) as a float, or a ``TypeError``."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        if value.is_meta:
            raise TypeError(f"{name} is a 'meta' tensor (a shape without data)")
        return float(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{name} must be a real number, got {type(value).__name__}")


def _check_sweep(separations: object, sweep: object, nc1s: object, trace_ratios: object) -> None:
    """Arguments of :func:`plot_collapse_sweep`: sequences of numbers and of ``(H, y)`` pairs."""
    named = {"separations": separations, "sweep": sweep, "nc1s": nc1s, "trace_ratios": trace_ratios}
    for name, values in named.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise TypeError(f"{name} must be a sequence (one entry per separation), got "
                            f"{type(values).__name__}")  # fmt: skip
    for i, s in enumerate(separations):
        if not 0 < _scalar(f"separations[{i}]", s) < math.inf:
            raise ValueError(f"separations[{i}] must be finite and > 0 (log axis), got {s!r}")
    for name in ("nc1s", "trace_ratios"):
        for i, v in enumerate(named[name]):
            if math.isnan(_scalar(f"{name}[{i}]", v)):
                raise ValueError(f"{name}[{i}] is NaN: that measurement failed; recompute it")
    for i, pair in enumerate(sweep):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"sweep[{i}] must be a pair (H, y), got {type(pair).__name__}")
        H, y = pair
        if not isinstance(H, torch.Tensor) or H.ndim != 2 or H.shape[1] < 2:
            got = tuple(H.shape) if isinstance(H, torch.Tensor) else type(H).__name__
            raise ValueError(f"sweep[{i}]: H must be a tensor (N, p) with p >= 2, got {got}")
        if not isinstance(y, torch.Tensor) or y.shape != H.shape[:1]:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"sweep[{i}]: y must be a tensor of shape ({H.shape[0]},), got {got}")
