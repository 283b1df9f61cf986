"""The book's one plot style and small plotting helpers shared by the chapters.

Figures are rendered as retina PNG (never SVG: SVG text is compared by nbval and churns).
"""

from __future__ import annotations

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
        ax: ``None`` (make a figure), one ``Axes`` (when ``n == 1``) or a sequence of ``n`` axes.
        n: number of panels the plotting function draws.
        figsize: size of a new figure; default ``(panel_width * n, 3.4)``.
        panel_width: width in inches of each panel of a new figure.

    Returns:
        ``(figure, [axes, ...])``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(1, n, figsize=figsize or (panel_width * n, 3.4), squeeze=False)
        return fig, list(axes[0])
    axes = list(ax) if isinstance(ax, (list, tuple)) or hasattr(ax, "__len__") else [ax]
    if len(axes) != n:
        raise ValueError(f"ax: this figure draws {n} panel(s); expected {n} axes, got {len(axes)}")
    return axes[0].figure, axes


def plot_collapse_sweep(separations, sweep, nc1s, trace_ratios, ax=None):
    r"""The getting-started figure: features of the least and most separated classes, and
    :math:`\mathcal{NC}_1` and :math:`D` against the separation :math:`s` (log-log).

    Args:
        separations: the ``S`` values of :math:`s`.
        sweep: ``S`` pairs ``(H, y)``, features ``(N, p)`` and labels ``(N,)``, one per value.
        nc1s: ``S`` values of :func:`lib.metrics.nc1`, one per pair.
        trace_ratios: ``S`` values of :func:`lib.metrics.trace_ratio`, one per pair.
        ax: ``None`` (a new figure) or two axes.

    Returns:
        The ``Figure``.

    Example:
        >>> fig = plot_collapse_sweep([1, 2], [(torch.randn(6, 2), torch.arange(6) % 2)] * 2,
        ...                           [1.0, 0.25], [0.5, 0.1])  # doctest: +SKIP
    """
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
