"""The book's one plot style and small plotting helpers shared by the chapters.

Figures are rendered as retina PNG (never SVG: SVG text is compared by nbval and churns).
"""

from __future__ import annotations

__all__ = ["STYLE", "panels", "use_style"]

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
