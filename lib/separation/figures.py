r"""Figures of the progressive-separation chapter: one call per figure, each returns the figure.

The numbers come from :mod:`lib.separation`; this module only draws them, on the CPU (tensors
are moved there at the plotting boundary). The exception is the widget (:func:`explorer`, drawn by
:func:`plot_explorer`), which trains one network per redraw.

One call per figure of the chapter (data first, then ``ax=None``; they return the figure):

* :func:`plot_profile_row` — one panel per run: :math:`D_l` on a log axis with its fitted line;
* :func:`plot_activation_row` — linear and ReLU runs, one panel each, profiles overlaid;
* :func:`plot_bound_check` — per-layer ratios against the theorem's bound, and every linear run's
  fitted ratio against the idealised rate;
* :func:`plot_tradeoff_row` — training curves, and iterations to converge against the decay rate;
* :func:`plot_digits_row` — the digits MLPs' train and test :math:`D_l`, one panel each;
* :func:`explorer` / :func:`plot_explorer` — an ipywidgets explorer over (ε, L, activation).

The panels they are made of draw on the axes they are given and return ``None`` (their signatures
are those of notebooks already handed out): :func:`plot_profile`, :func:`plot_profiles`,
:func:`plot_by_activation`, :func:`plot_ratios`, :func:`plot_ratio_summary`,
:func:`plot_tradeoff`, :func:`plot_digits` and :func:`interactive_profile`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

from lib import separation as sep
from lib.plotting import panels
from lib.separation._draw import (
    _check_runs,
    _summary_runs,
    plot_by_activation,
    plot_digits,
    plot_profile,
    plot_profiles,
    plot_ratio_summary,
    plot_ratios,
    plot_tradeoff,
)
from lib.separation.widget import EXPLORER_SCALES, explorer, interactive_profile, plot_explorer

__all__ = [
    "EXPLORER_SCALES",
    "explorer",
    "interactive_profile",
    "plot_activation_row",
    "plot_bound_check",
    "plot_by_activation",
    "plot_digits",
    "plot_digits_row",
    "plot_explorer",
    "plot_profile",
    "plot_profile_row",
    "plot_profiles",
    "plot_ratio_summary",
    "plot_ratios",
    "plot_tradeoff",
    "plot_tradeoff_row",
]


def _axes(ax, n: int, figsize, sharey: bool = False):
    """``(figure, axes)``: the caller's ``n`` axes, or a new row of ``n`` panels (``sharey``)."""
    if ax is None and sharey:
        fig, axes = plt.subplots(1, n, figsize=figsize, sharey=True, squeeze=False)
        return fig, list(axes[0])
    return panels(ax, n, figsize, panel_width=4.0)


def plot_profile_row(
    runs: Sequence[sep.SeparationRun],
    names: Sequence[str] | None = None,
    ax=None,
    figsize: tuple[float, float] | None = None,
):
    r"""One panel per run: its :math:`D_l` and the line fitted through :math:`l = 0..L-1`.

    Each panel is :func:`plot_profile` (the output layer's :math:`D_L` hollow, not fitted; the
    title gives the setting, the fitted ratio :math:`e^b` and :math:`R^2`).

    Args:
        runs: ``n`` :class:`lib.separation.SeparationRun` s.
        names: a heading put above each panel's title, or ``None``.
        ax: ``n`` axes, or ``None`` for a new figure.
        figsize: size of a new figure (default ``(4 n, 3.4)``).

    Returns:
        The figure.

    Reference:
        Lecture 6, section 3, figures "Linear decay of feature separation".

    Example:
        >>> runs = sep.train_settings([sep.Setting(num_classes=2, per_class=4, depth=3, lr=2.0)])
        >>> len(plot_profile_row(runs).axes)
        1
    """
    _check_runs("runs", runs)
    if names is not None and len(names) != len(runs):
        raise ValueError(f"names must hold one name per run ({len(runs)}), got {len(names)}")
    fig, axes = _axes(ax, len(runs), figsize)
    for i, (a, run) in enumerate(zip(axes, runs)):
        plot_profile(a, run)
        if names is not None:
            a.set_title(f"{names[i]}\n" + a.get_title(), fontsize=9)
    fig.tight_layout()
    return fig


def plot_activation_row(runs: Sequence[sep.SeparationRun], ax=None):
    r"""Linear runs (left) and ReLU runs (right), each panel overlaying its runs' :math:`D_l`.

    Each panel is :func:`plot_profiles` of the runs with that activation, labelled by ε, with
    their fitted ratios in the legend; the panels share their y axis.

    Args:
        runs: :class:`lib.separation.SeparationRun` s of both activations.
        ax: two axes, or ``None`` for a new figure.

    Returns:
        The figure.

    Reference:
        Lecture 6, section 3, "Linear decay of feature separation" (linear against ReLU).
    """
    _check_runs("runs", runs)
    fig, axes = _axes(ax, 2, (10, 3.6), sharey=True)
    plot_by_activation(axes, runs)
    fig.tight_layout()
    return fig


def plot_bound_check(
    runs: Sequence[sep.SeparationRun], all_runs: Sequence[sep.SeparationRun], ax=None
):
    r"""The theorem against the measurements, in two panels.

    Left (:func:`plot_ratios`): the measured :math:`D_{l+1}/D_l` of ``runs`` per layer, with the
    bound :math:`2(\sqrt K+1)\varepsilon^2` (dashed) and the idealised rate
    :math:`\varepsilon^2 n^{-1/L}` (dotted). Right (:func:`plot_ratio_summary`): the fitted ratio
    of every linear, orthogonally initialised run in ``all_runs`` (circles) and its bound
    (crosses) against the idealised rate.

    Args:
        runs: linear :class:`lib.separation.SeparationRun` s for the left panel.
        all_runs: runs for the right panel (ReLU and non-orthogonal ones are skipped).
        ax: two axes, or ``None`` for a new figure.

    Returns:
        The figure.

    Reference:
        Wang et al. 2023, Thm. 1; Lecture 6, section 3, Thm. (Wang et al. '23).
    """
    _check_runs("runs", runs)
    _summary_runs("all_runs", all_runs)
    fig, (a0, a1) = _axes(ax, 2, (11, 3.8))
    plot_ratios(a0, runs)
    plot_ratio_summary(a1, all_runs)
    fig.tight_layout()
    return fig


def plot_tradeoff_row(runs: Sequence[sep.SeparationRun], ax=None):
    r"""The trade-off between decay rate and training speed (:func:`plot_tradeoff`).

    Left: the training loss of each run against the GD iteration, with the tolerance. Right:
    iterations to converge against ε, and on a twin axis the fitted :math:`D_{l+1}/D_l`.

    Args:
        runs: :class:`lib.separation.SeparationRun` s differing in ε.
        ax: two axes, or ``None`` for a new figure (the twin axis is added to the second).

    Returns:
        The figure.

    Reference:
        Lecture 6, section 3, "Trade-off between decay rate and training speed".
    """
    _check_runs("runs", runs)
    fig, (a0, a1) = _axes(ax, 2, (11, 3.6))
    plot_tradeoff(a0, a1, runs)
    fig.tight_layout()
    return fig


def plot_digits_row(runs: Sequence[sep.DigitsRun], names: Sequence[str], ax=None):
    r"""One panel per digits MLP: train- and test-split :math:`D_l`, line fitted to the train split.

    Each panel is :func:`plot_digits`; the panels share their y axis.

    Args:
        runs: :class:`lib.separation.DigitsRun` s.
        names: one title per run (its fitted ratio, :math:`R^2` and test accuracy are appended).
        ax: ``len(runs)`` axes, or ``None`` for a new figure.

    Returns:
        The figure.

    Reference:
        He & Su, *A law of data separation in deep learning*, PNAS 2023.
    """
    _check_runs("runs", runs, sep.DigitsRun, "from lib.separation.train_digits_mlp")
    if isinstance(names, str) or len(names) != len(runs):
        raise ValueError(f"names must hold one name per run ({len(runs)}), got {names!r}")
    fig, axes = _axes(ax, len(runs), (5 * len(runs), 3.6), sharey=True)
    for a, run, name in zip(axes, runs, names):
        plot_digits(a, run, name)
    fig.tight_layout()
    return fig
