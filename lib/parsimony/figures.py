r"""Figures of the law-of-parsimony chapter (formerly ``lib.figures``); they only draw numbers.

Contract: data first, then ``ax=None`` (an Axes, or a sequence for several panels; default: a new
figure); returns the ``Figure``. The older ``axes=`` still works where a function had it. The three
groups of singular values have one colour each in every figure: top :math:`r` (they grow), middle
:math:`d - 2r` (they stay at :math:`\rho(t)`), bottom :math:`r` (they shrink).

* :func:`plot_singular_values` — :math:`\sigma_{li}(t)` of one layer;
* :func:`plot_svd_evolution` — the lecture's three panels: values, right and left angles;
* :func:`plot_rho` — :math:`\rho(t)` measured against its recursion;
* :func:`plot_rank_bias` — end-to-end spectra across ε (implicit low-rank bias);
* :func:`plot_deviation` — how far the structure is from exact when the assumptions fail;
* :func:`plot_small_multiples` — a grid of :math:`\sigma_{1i}(t)` over depth and ε;
* :func:`plot_run`, :func:`plot_explorer`, :func:`explorer` — one run, and the explorer that
  re-trains it: from :mod:`lib.parsimony.interactive`, importable here too.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.lines import Line2D
from torch import Tensor

from lib import dln, spectra
from lib._checks import check_nonempty, check_type
from lib.parsimony import _validate as _v
from lib.parsimony.checks import svd_evolution
from lib.plotting import panels as _axes

__all__ = [
    "GROUP_COLORS",
    "explorer",  # noqa: F822 (resolved by __getattr__ below)
    "plot_deviation",
    "plot_explorer",  # noqa: F822 (resolved by __getattr__ below)
    "plot_rank_bias",
    "plot_rho",
    "plot_run",  # noqa: F822 (resolved by __getattr__ below)
    "plot_singular_values",
    "plot_small_multiples",
    "plot_svd_evolution",
]

#: Colours of the three groups of singular values (top r, middle d - 2r, bottom r).
GROUP_COLORS = {"top": "C0", "middle": "0.55", "bottom": "C3"}


def _group(i: int, k: int, rank: int | None) -> str:
    if rank is None or rank <= i < k - rank:
        return "middle"
    return "top" if i < rank else "bottom"


def _group_legend(ax, rank: int, k: int) -> None:
    handles = [
        Line2D([], [], color=GROUP_COLORS["top"], label=f"top $r = {rank}$"),
        Line2D([], [], color=GROUP_COLORS["middle"], label=f"middle $d-2r = {k - 2 * rank}$"),
        Line2D([], [], color=GROUP_COLORS["bottom"], label=f"bottom $r = {rank}$"),
    ]
    ax.legend(handles=handles, loc="best")


def _either(ax, axes):
    """The axes to draw on: ``ax`` (the contract) or ``axes`` (the older keyword), not both."""
    if ax is not None and axes is not None:
        raise ValueError("pass the axes as ax= (axes= is its older name), not both")
    return axes if ax is None else ax


def plot_singular_values(
    history: dln.History,
    layer: int = 0,
    rank: int | None = None,
    run: int | None = None,
    ax=None,
    legend: bool = True,
):
    r"""Singular values :math:`\sigma_{li}(t)` of one layer over training, one line per ``i``.

    .. math::

        t \mapsto \sigma_i\big(W_l(t)\big), \qquad i = 1, \dots, k = \min(d_l, d_{l-1}),

    on a log scale, coloured by group when ``rank`` is given (top ``r``, middle, bottom ``r``).

    Args:
        history: from :func:`lib.dln.train` or :func:`lib.dln.train_batched`.
        layer: Python index of the layer (``0`` is :math:`W_1`).
        rank: ``r`` for the group colours (``None``: all grey).
        run: which run of a batched history.
        ax: matplotlib axes to draw on (default: a new figure).
        legend: draw the group legend.

    Returns:
        The matplotlib figure; ``ax.lines[i]`` is :math:`\sigma_{i+1}`.

    Reference:
        Lecture 6, section 2, figure "Evolution of SVD of the weight matrix", left panel.

    Example:
        >>> from lib import parsimony
        >>> h = parsimony.simulate(0.1, width=8, rank=2, n_samples=8, steps=50).history
        >>> fig = plot_singular_values(h, rank=2)
        >>> len(fig.axes[0].lines)
        8
    """
    traj = _v.layer_trajectory(history, layer, run)
    if rank is not None:
        _v.check_group_rank("rank", rank, min(traj.shape[-2:]))
    fig, (ax,) = _axes(ax)
    S = spectra.singular_values(traj).cpu()  # (T, k)
    steps, k = history.steps.numpy(), S.shape[1]
    for i in range(k):
        ax.plot(steps, S[:, i].numpy(), color=GROUP_COLORS[_group(i, k, rank)], lw=1.2)
    ax.set(yscale="log", xlabel="GD step $t$", ylabel=rf"$\sigma_{{{layer + 1}i}}(t)$")
    if legend and rank is not None:
        _group_legend(ax, rank, k)
    return fig


def plot_svd_evolution(
    history: dln.History,
    layer: int,
    rank: int,
    ref: int = 1,
    run: int | None = None,
    ax=None,
    axes=None,
):
    r"""The lecture's three panels for one layer: singular values and singular-vector angles.

    .. math::

        \sigma_{li}(t), \qquad \angle\big(v_{li}(t), v_{li}(t_{\mathrm{ref}})\big), \qquad
        \angle\big(u_{li}(t), u_{li}(t_{\mathrm{ref}})\big),

    from :func:`lib.parsimony.svd_evolution`. The angle panels have one line per top and bottom
    index and one line for the whole middle block (the largest principal angle of its span, as
    its vectors are not individually defined); they start at the first record after
    :math:`t = 0`, where the singular vectors are not defined either.

    Args:
        history: from :func:`lib.dln.train` or :func:`lib.dln.train_batched`.
        layer: Python index of the layer.
        rank: ``r``.
        ref: index of the reference record (``1``: the first record after the initialisation).
        run: which run of a batched history.
        ax: three matplotlib axes (default: a new figure).
        axes: older name of ``ax``.

    Returns:
        The figure. ``axes[0].lines`` are the ``k`` singular values; ``axes[1].lines`` and
        ``axes[2].lines`` are ``2r + 1`` angle curves in the column order of
        :class:`lib.parsimony.SvdEvolution` (top ``r``, middle block, bottom ``r``).

    Reference:
        Lecture 6, section 2, figure "Evolution of SVD of the weight matrix".

    Example:
        >>> from lib import parsimony
        >>> h = parsimony.simulate(0.1, width=8, rank=2, n_samples=8, steps=50).history
        >>> fig = plot_svd_evolution(h, 0, rank=2)
        >>> [len(ax.lines) for ax in fig.axes]
        [8, 5, 5]
    """
    traj = _v.layer_trajectory(history, layer, run)
    ev = svd_evolution(traj, rank, ref)
    fig, axes = _axes(_either(ax, axes), 3, figsize=(13, 3.6))
    steps = history.steps.numpy()
    plot_singular_values(history, layer, rank, run, ax=axes[0])
    axes[0].set_title("singular values")
    groups = ["top"] * rank + ["middle"] + ["bottom"] * rank
    t_ref = int(history.steps[ref])
    for panel, angles, vec in ((axes[1], ev.right, "v"), (axes[2], ev.left, "u")):
        for j, group in enumerate(groups):
            panel.plot(steps[1:], angles[1:, j].cpu().numpy(), color=GROUP_COLORS[group], lw=1.4)
        sub = f"{layer + 1}i"
        panel.set(
            xlabel="GD step $t$",
            ylabel=rf"$\angle({vec}_{{{sub}}}(t), {vec}_{{{sub}}}({t_ref}))$ [rad]",
            ylim=(-0.05, 1.65),
        )
    axes[1].set_title("right singular vectors")
    axes[2].set_title("left singular vectors")
    return fig


def plot_rho(
    steps: Tensor,
    measured: Tensor,
    predicted: Tensor,
    labels: Sequence[str],
    ax=None,
    axes=None,
):
    r""":math:`\rho(t)` measured in the weights against the scalar recursion.

    .. math::

        \rho(t+1) = (1-\eta\lambda)\rho(t) - \eta c\,\rho(t)^{2L-1} \quad
        (\text{heavy ball: } b \leftarrow \mu b + \lambda\rho + c\rho^{2L-1},\ \rho \leftarrow \rho - \eta b).

    Left: measured values (markers) and the recursion (lines), relative to ε. Right: the absolute
    difference, log scale.

    Args:
        steps: ``(T,)`` GD steps of the records.
        measured: ``(T, B)`` the repeated singular value in the weights, one column per run.
        predicted: ``(T, B)`` :func:`lib.parsimony.rho_recursion` for the same runs.
        labels: ``B`` legend labels.
        ax: two matplotlib axes (default: a new figure).
        axes: older name of ``ax``.

    Returns:
        The figure. ``axes[0].lines`` alternate recursion line and measured markers per run
        (``2B`` lines); ``axes[1].lines`` are the ``B`` differences.

    Reference:
        Yaras et al. 2023, Thm. 1 (the :math:`\rho(t)` recursion in its proof).

    Example:
        >>> t = torch.arange(3)
        >>> fig = plot_rho(t, torch.ones(3, 2), torch.ones(3, 2), ["a", "b"])
        >>> [len(ax.lines) for ax in fig.axes]
        [4, 2]
    """
    for name, t in (("measured", measured), ("predicted", predicted)):
        check_type(name, t, Tensor)
    if measured.shape != predicted.shape or measured.ndim != 2:
        raise ValueError("measured and predicted must both be (T, B)")
    _v.check_labels(labels, measured.shape[1])
    check_nonempty("measured", measured, "record")
    _v.check_tensor_arg("steps", steps, (measured.shape[0],))
    fig, (ax0, ax1) = _axes(_either(ax, axes), 2, figsize=(10, 3.6))
    steps = steps.cpu().numpy()
    measured, predicted = measured.cpu(), predicted.cpu()
    every = max(1, len(steps) // 15)
    for b, label in enumerate(labels):
        color = f"C{b}"
        scale = float(predicted[0, b])
        ax0.plot(steps, (predicted[:, b] / scale).numpy(), color=color, label=label)
        ax0.plot(
            steps[::every],
            (measured[::every, b] / scale).numpy(),
            "o",
            color=color,
            ms=4,
            mfc="none",
        )
        err = (measured[:, b] - predicted[:, b]).abs().clamp_min(1e-18)
        ax1.plot(steps, err.numpy(), color=color, lw=1.0)
    ax0.set(
        xlabel="GD step $t$", ylabel=r"$\rho(t)/\varepsilon$", title="recursion (—) vs weights (o)"
    )
    ax0.legend()
    ax1.set(
        xlabel="GD step $t$",
        ylabel=r"$|\rho_{\rm weights}(t) - \rho_{\rm recursion}(t)|$",
        yscale="log",
        ylim=(1e-18, 1e-6),
        title="difference",
    )
    return fig


def plot_rank_bias(
    scales: Sequence[float],
    spectra_e2e: Tensor,
    predicted_tail: Tensor,
    rank: int,
    rtol: float,
    ax=None,
    axes=None,
):
    r"""Implicit low-rank bias: the end-to-end spectrum after training, across initial scales ε.

    .. math::

        \frac{\sigma_i(W_{L:1})}{\sigma_1(W_{L:1})}, \qquad
        \frac{\sigma_{r+1}(W_{L:1})}{\sigma_1(W_{L:1})} = \frac{\rho(T)^L}{\sigma_1}\ \xrightarrow{\ \varepsilon\to0\ }\ 0 .

    Left: the normalised spectra, one line per ε. Right: the tail level
    :math:`\sigma_{r+1}/\sigma_1` (markers) against :math:`\rho(T)^L/\sigma_1` from the recursion
    (line), with the rank threshold ``rtol`` dashed.

    Args:
        scales: ``B`` values of ε.
        spectra_e2e: ``(B, k)`` singular values of :math:`W_{L:1}` at the end of training.
        predicted_tail: ``(B,)`` :math:`\rho(T)^L` from :func:`lib.parsimony.rho_recursion`.
        rank: ``r``.
        rtol: the relative threshold of :func:`lib.spectra.numerical_rank` to mark.
        ax: two matplotlib axes (default: a new figure).
        axes: older name of ``ax``.

    Returns:
        The figure; ``axes[0].lines`` holds one normalised spectrum per ε, ``axes[1].lines`` the
        measured tail, the predicted tail and the threshold.

    Reference:
        Lecture 6, section 2, "Implicit low-rank bias"; Huh et al., *The low-rank simplicity
        bias in deep networks*, TMLR 2023.

    Example:
        >>> S = torch.tensor([[1.0, 0.5, 1e-3, 1e-3], [1.0, 0.5, 1e-6, 1e-6]])
        >>> fig = plot_rank_bias([0.1, 0.01], S, torch.tensor([1e-3, 1e-6]), 2, 1e-4)
        >>> [len(ax.lines) for ax in fig.axes]
        [2, 3]
    """
    _v.check_rank_bias(scales, spectra_e2e, predicted_tail, rank, rtol)
    spectra_e2e, predicted_tail = spectra_e2e.cpu(), predicted_tail.cpu()

    fig, (ax0, ax1) = _axes(_either(ax, axes), 2, figsize=(10, 3.6))
    norm = spectra_e2e / spectra_e2e[:, :1]  # (B, k)
    colors = plt.cm.viridis(torch.linspace(0, 0.9, len(scales)).numpy())
    idx = torch.arange(1, norm.shape[1] + 1).numpy()
    every = -(-len(scales) // 8)  # at most 8 legend entries
    for b, eps in enumerate(scales):
        label = f"ε = {eps:.2g}" if b % every == 0 or b == len(scales) - 1 else None
        ax0.plot(idx, norm[b].numpy(), "o-", ms=3, lw=1, color=colors[b], label=label)
    ax0.set(
        yscale="log",
        xlabel="index $i$",
        ylabel=r"$\sigma_i(W_{L:1}) / \sigma_1(W_{L:1})$",
        title="end-to-end spectrum after training",
    )
    ax0.legend(fontsize=7, ncol=2)
    eps = torch.as_tensor(list(scales), dtype=torch.float64).numpy()
    ax1.loglog(
        eps, norm[:, rank].numpy(), "o", color="C0", label=r"measured $\sigma_{r+1}/\sigma_1$"
    )
    ax1.loglog(
        eps,
        (predicted_tail / spectra_e2e[:, 0]).numpy(),
        "-",
        color="C1",
        label=r"recursion $\rho(T)^L/\sigma_1$",
    )
    ax1.axhline(rtol, color="k", ls="--", lw=0.8, label=f"rank threshold {rtol:g}")
    ax1.set(xlabel=r"initial scale $\varepsilon$", ylabel="tail level", title="tail vs ε")
    ax1.legend(fontsize=8)
    return fig


def plot_deviation(
    steps: Tensor,
    spread: Tensor,
    drift: Tensor,
    labels: Sequence[str],
    colors: Sequence[str] | None = None,
    linestyles: Sequence[str] | None = None,
    ax=None,
    axes=None,
):
    r"""How far the middle block is from the theorem's exact structure, over training.

    .. math::

        \delta(t) = \frac{\sigma_{r+1} - \sigma_{d-r}}{\operatorname{mean}\sigma_{r+1..d-r}}, \qquad
        \theta(t) = \theta_{\max}\big(V_{\rm mid}(t), V_{\rm mid}(t_{\rm ref})\big),

    from :func:`lib.parsimony.block_spread` and :func:`lib.parsimony.block_drift`; both are zero
    (rounding level) under the theorem's assumptions. Values are drawn on a log scale, clipped
    below at :math:`10^{-17}`.

    Args:
        steps: ``(T,)`` GD steps.
        spread: ``(T, B)`` relative spread of the middle singular values, one column per run.
        drift: ``(T, B)`` largest principal angle of a middle singular subspace.
        labels: ``B`` legend labels.
        colors: ``B`` matplotlib colours (default: ``C0, C1, ...``).
        linestyles: ``B`` line styles (default: solid).
        ax: two matplotlib axes (default: a new figure).
        axes: older name of ``ax``.

    Returns:
        The figure; each panel holds ``B`` lines, run ``b`` is ``lines[b]``.

    Reference:
        Lecture 6, section 2, "The evolution of singular spaces in more generic settings".

    Example:
        >>> fig = plot_deviation(torch.arange(3), torch.ones(3, 2), torch.ones(3, 2), ["a", "b"])
        >>> [len(ax.lines) for ax in fig.axes]
        [2, 2]
    """
    _v.check_labels(labels)
    for name, t in (("spread", spread), ("drift", drift)):
        check_type(name, t, Tensor)
    B = len(labels)
    if spread.shape != drift.shape or spread.ndim != 2 or spread.shape[1] != B:
        raise ValueError("spread and drift must be (T, B) with B labels")
    _v.check_tensor_arg("steps", steps, (spread.shape[0],))
    colors = list(colors) if colors is not None else [f"C{b}" for b in range(B)]
    linestyles = list(linestyles) if linestyles is not None else ["-"] * B
    if len(colors) != B or len(linestyles) != B:
        raise ValueError(f"need {B} colors and {B} linestyles")
    fig, (ax0, ax1) = _axes(_either(ax, axes), 2, figsize=(10, 3.6))
    steps = steps.cpu().numpy()
    for b, label in enumerate(labels):
        style = dict(color=colors[b], ls=linestyles[b], label=label)
        ax0.plot(steps, spread[:, b].cpu().clamp_min(1e-17).numpy(), **style)
        ax1.plot(steps, drift[:, b].cpu().clamp_min(1e-17).numpy(), **style)
    ax0.set(
        yscale="log",
        xlabel="GD step $t$",
        ylabel=r"relative spread $\delta(t)$",
        title="middle singular values",
        ylim=(1e-17, 1),
    )
    ax1.set(
        yscale="log",
        xlabel="GD step $t$",
        ylabel=r"$\theta_{\max}$ [rad]",
        title="middle singular subspace",
        ylim=(1e-17, 3),
    )
    ax1.legend(fontsize=7, ncol=2)
    return fig


def plot_small_multiples(
    rows: Sequence[tuple[int, Sequence[float], dln.History]],
    rank: int,
    ax=None,
    axes=None,
):
    r"""A grid of :math:`\sigma_{1i}(t)` panels: one row per depth, one column per initial scale.

    Each row is one batched run of :func:`lib.parsimony.simulate` over the scales, so the grid
    shows how depth ``L`` and ε change the picture: the top ``r`` grow (later for smaller ε and
    larger ``L``), the middle ``d - 2r`` stay flat, the bottom ``r`` shrink.

    Args:
        rows: ``(L, scales, history)`` per row; ``history`` batched over ``len(scales)`` runs.
        rank: ``r``.
        ax: a ``(rows, columns)`` array of matplotlib axes (default: a new figure).
        axes: older name of ``ax``.

    Returns:
        The figure; panel ``(j, b)`` holds the ``k`` singular values of run ``b`` of row ``j``.

    Reference:
        Lecture 6, section 2; Yaras et al. 2023, Fig. 2.

    Example:
        >>> from lib import parsimony
        >>> h = parsimony.simulate([0.1, 0.3], width=8, rank=2, n_samples=8, steps=20).history
        >>> fig = plot_small_multiples([(3, [0.1, 0.3], h)], rank=2)
        >>> len(fig.axes)
        2
    """
    _v.check_rows(rows)
    n_cols = len(rows[0][1])
    _v.check_group_rank("rank", rank, min(rows[0][2].weights[0][0].shape[-2:]))
    axes = _either(ax, axes)
    if axes is None:
        fig, axes = plt.subplots(
            len(rows),
            n_cols,
            figsize=(3.3 * n_cols, 2.6 * len(rows)),
            squeeze=False,
            sharex=True,
            sharey=True,
        )
    fig = axes[0][0].figure
    for j, (depth, scales, history) in enumerate(rows):
        for b, eps in enumerate(scales):
            panel = axes[j][b]
            plot_singular_values(history, 0, rank, run=b, ax=panel, legend=False)
            panel.set_title(f"$L = {depth}$, $\\varepsilon = {eps:g}$")
            if j < len(rows) - 1:
                panel.set_xlabel("")
            if b > 0:
                panel.set_ylabel("")
    _group_legend(axes[0][0], rank, spectra.singular_values(rows[0][2].weights[0][0]).shape[-1])
    fig.tight_layout()
    return fig


# plot_run, plot_explorer, explorer: lib.parsimony.interactive draws with plot_singular_values from
# here, so importing them at the top would be a cycle; they resolve on first use (PEP 562).
_INTERACTIVE = {"explorer", "plot_explorer", "plot_run"}


def __getattr__(name: str):
    if name in _INTERACTIVE:
        value = getattr(importlib.import_module("lib.parsimony.interactive"), name)
        globals()[name] = value  # later look-ups are plain attribute reads
        return value
    raise AttributeError(f"module 'lib.parsimony.figures' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _INTERACTIVE)
