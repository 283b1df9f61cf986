r"""The chapter's widget: train one network of the lecture's setting and draw its :math:`D_l`.

:func:`explorer` (ipywidgets: ε, ``L`` and the activation) redraws :func:`plot_explorer` on every
change; both are public as ``lib.separation.figures.explorer`` and ``.plot_explorer``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from lib._checks import check_device
from lib.plotting import panels
from lib.separation._draw import plot_profile
from lib.separation.theory import ideal_ratio
from lib.separation.train import Setting, _check_setting, train_settings

__all__ = ["EXPLORER_SCALES", "explorer", "interactive_profile", "plot_explorer"]

#: The widget's choices of ε.
EXPLORER_SCALES = (0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.8, 1.0)


def _checked_setting(
    scale: float,
    depth: int,
    activation: str,
    lr: float,
    max_steps: int,
    num_classes: int,
    per_class: int,
) -> Setting:
    """The widget's :class:`Setting`, every field checked (``ValueError`` naming a bad one)."""
    setting = Setting(
        num_classes=num_classes,
        per_class=per_class,
        depth=depth,
        scale=scale,
        activation=activation,
        lr=lr,
        max_steps=max_steps,
    )
    _check_setting(setting)
    return setting


def plot_explorer(
    scale: float,
    depth: int,
    activation: str,
    lr: float = 3.0,
    max_steps: int = 20_000,
    num_classes: int = 5,
    per_class: int = 10,
    device: torch.device | str | None = None,
    ax=None,
):
    r"""Train one network of the lecture's setting and draw its :math:`D_l` (the widget's panel).

    The panel is :func:`plot_profile`; for a linear network the idealised ratio
    :math:`\varepsilon^2 n^{-1/L}` is written in its corner. If training diverges (too large an
    η) the panel says so instead of raising; a bad argument (an unknown activation, ε <= 0, ...)
    raises ``ValueError`` naming it.

    Args:
        scale: ε.
        depth: ``L``.
        activation: ``"linear"`` or ``"relu"``.
        lr: η for the mean loss.
        max_steps: give up after this many steps (the panel says so).
        num_classes: ``K``.
        per_class: ``n``.
        device: where to train (default CPU).
        ax: an axis, or ``None`` for a new figure.

    Returns:
        The figure.

    Reference:
        Lecture 6, section 3.

    Example:
        >>> fig = plot_explorer(0.5, 3, "linear", lr=2.0, num_classes=2, per_class=4)
        >>> len(fig.axes[0].lines)  # fitted line, hidden layers, output layer
        3
    """
    # bad arguments raise; only training failures go into the panel
    setting = _checked_setting(scale, depth, activation, lr, max_steps, num_classes, per_class)
    check_device(device)
    fig, (a,) = panels(ax, 1, (5.5, 3.6))
    try:
        (run,) = train_settings([setting], device=device)
    except ValueError as err:  # divergence at a too large lr
        a.text(0.02, 0.5, f"training failed:\n{str(err)[:120]}...", transform=a.transAxes)
    else:
        plot_profile(a, run)
        if activation == "linear":
            ideal = ideal_ratio(per_class, depth, scale)
            a.text(0.98, 0.95, f"ideal ratio {ideal:.3f}", transform=a.transAxes, ha="right")
    return fig


def explorer(
    scale: float = 0.5,
    depth: int = 6,
    activation: str = "linear",
    lr: float = 3.0,
    max_steps: int = 20_000,
    num_classes: int = 5,
    per_class: int = 10,
    device: torch.device | str | None = None,
):
    r"""An ipywidgets explorer of progressive separation: sliders for ε and ``L``, the activation.

    Every change trains one network (:func:`plot_explorer`, about a second at the lecture's
    size on a CPU) and redraws; sliders update on release. The other arguments are fixed.

    Args:
        scale: initial ε (slider over :data:`EXPLORER_SCALES`, ``scale`` added if missing).
        depth: initial ``L`` (slider 3 to 10).
        activation: initial activation, ``"linear"`` or ``"relu"``.
        lr: η.
        max_steps: give up after this many steps.
        num_classes: ``K``.
        per_class: ``n``.
        device: where to train.

    Returns:
        An ``ipywidgets.interactive``; display it (last line of a cell). Its ``children`` are the
        three controls and the output area.

    Reference:
        Lecture 6, section 3.

    Example:
        >>> w = explorer(depth=3, num_classes=2, per_class=4)  # doctest: +SKIP
        >>> [c.description for c in w.children[:3]]  # doctest: +SKIP
        ['ε', 'L', 'σ']
    """
    _checked_setting(scale, depth, activation, lr, max_steps, num_classes, per_class)
    if not 3 <= depth <= 10:
        raise ValueError(f"depth must be an integer in [3, 10] (the slider's range), got {depth!r}")
    check_device(device)
    import ipywidgets as widgets  # lazy: only the interactive explorer needs it

    def draw(scale: float, depth: int, activation: str) -> None:
        plot_explorer(scale, depth, activation, lr, max_steps, num_classes, per_class, device)
        plt.show()

    opts = dict(continuous_update=False, style={"description_width": "2em"})
    scales = sorted(set(EXPLORER_SCALES) | {scale})
    return widgets.interactive(
        draw,
        scale=widgets.SelectionSlider(options=scales, value=scale, description="ε", **opts),
        depth=widgets.IntSlider(depth, min=3, max=10, description="L", **opts),
        activation=widgets.ToggleButtons(
            options=["linear", "relu"], value=activation, description="σ"
        ),
    )


def interactive_profile(
    scale: float,
    depth: int,
    activation: str,
    lr: float = 3.0,
    max_steps: int = 20_000,
    num_classes: int = 5,
    per_class: int = 10,
) -> None:
    r""":func:`plot_explorer`, then show it (the callback of ``widgets.interact`` before :func:`explorer`).

    Args:
        scale: ε.
        depth: ``L``.
        activation: ``"linear"`` or ``"relu"``.
        lr: η for the mean loss.
        max_steps: give up after this many steps (the plot says so).
        num_classes: ``K``.
        per_class: ``n``.
    """

    plot_explorer(scale, depth, activation, lr, max_steps, num_classes, per_class)
    plt.show()
