r"""Figures of the deep-matrix-completion chapter: each function draws and returns the figure.

The numbers come from :mod:`lib.completion` (:class:`~lib.FitResult` objects); this
module only draws them, on the CPU. Every plotting function takes the data first and ``ax=None``
(an axis, or a sequence of axes for several panels) and returns the matplotlib figure. Every curve of the original network is drawn in one colour,
the compressed network in another and the narrow network in a third, in every figure.

* :func:`plot_factorization` — original vs compressed: losses and a 2-D projection of
  :math:`W_{L:1}(t)`;
* :func:`plot_spectra` — singular values of :math:`\Phi`, :math:`\Omega\odot\Phi` and the first
  gradient;
* :func:`plot_curves` — loss curves of several runs, against steps or seconds;
* :func:`plot_sweep` — steps to tolerance and final test loss across one hyperparameter;
* :func:`plot_depth_width` — recovery error and steps against the width, per depth;
* :func:`plot_sample_complexity` — relative recovery error against the observed fraction, per
  depth and method (:func:`lib.completion.sample_complexity`);
* :func:`explorer` / :func:`plot_explorer` — an ipywidgets explorer over (γ, r̂, L) and its
  static twin :func:`plot_explorer_grid`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch

from lib._checks import check_int, check_nonempty, check_real, check_type
from lib.completion.network import first_gradient
from lib.completion.problem import Problem, _check_problem, default_lr
from lib.completion.sweep import NUCLEAR, SampleComplexity
from lib.completion.train import FitResult, fit, project_trajectories
from lib.plotting import panels

__all__ = [
    "COLORS",
    "explorer",
    "plot_curves",
    "plot_depth_width",
    "plot_explorer",
    "plot_explorer_grid",
    "plot_factorization",
    "plot_sample_complexity",
    "plot_spectra",
    "plot_sweep",
]

#: Colours of the three networks.
COLORS = {"original": "C0", "compressed": "C1", "narrow": "C2"}


def _axes(ax, n: int = 1, figsize=None):
    return panels(ax, n, figsize, panel_width=4.4)


def _color(label: str) -> str | None:
    for name, color in COLORS.items():
        if label.startswith(name):
            return color
    return None


def _floor(values: Sequence[float], floor: float = 1e-16) -> list[float]:
    return [max(v, floor) for v in values]


_RUN_HINT = "the result of lib.completion.fit"


def _check_run(name: str, run: object) -> None:
    check_type(name, run, FitResult, _RUN_HINT)


def _check_runs(name: str, runs: object) -> None:
    """``runs`` a non-empty mapping label → :class:`FitResult`."""
    check_type(name, runs, Mapping, "a dict label -> result of lib.completion.fit")
    check_nonempty(name, runs, "run")
    for label, run in runs.items():
        _check_run(f"{name}[{label!r}]", run)


def _check_values(name: str, values: object, what: str) -> None:
    """``values`` a non-empty sized collection (a list, a tuple, an array), not a string."""
    if isinstance(values, (str, Mapping)) or not hasattr(values, "__len__"):
        raise TypeError(f"{name} must be a list of {what}s, got {type(values).__name__}")
    check_nonempty(name, values, what)


def _positive_numbers(values) -> bool:
    try:
        return all(math.isfinite(float(v)) and float(v) > 0 for v in values)
    except (TypeError, ValueError):
        return False


def _check_run_lists(name: str, runs: object, n: int, what: str) -> None:
    """``runs`` a non-empty mapping key → ``n`` :class:`FitResult` s (one per ``what``)."""
    check_type(name, runs, Mapping, f"a dict key -> one result of lib.completion.fit per {what}")
    check_nonempty(name, runs, "list of runs")
    for key, seq in runs.items():
        check_type(
            f"{name}[{key!r}]", seq, Sequence, f"one result of lib.completion.fit per {what}"
        )
        if len(seq) != n:
            raise ValueError(f"{name}[{key!r}]: {len(seq)} runs for {n} {what}s")
        for i, run in enumerate(seq):
            _check_run(f"{name}[{key!r}][{i}]", run)


def plot_factorization(original: FitResult, compressed: FitResult, problem: Problem, ax=None):
    r"""Deep matrix factorization: the compressed trajectory on top of the original one.

    Left: train loss against the step. Right: both end-to-end trajectories projected on the two
    principal directions of the original one (:func:`lib.completion.project_trajectories`),
    starting at the open circle.

    Args:
        original: ``fit(..., "original", keep_trajectory=True)``.
        compressed: ``fit(..., "compressed", keep_trajectory=True)``, same record steps.
        problem: the :class:`~lib.completion.Problem` both were fitted to.
        ax: two axes, or ``None`` for a new figure.

    Returns:
        The figure.
    """
    _check_run("original", original)
    _check_run("compressed", compressed)
    _check_problem(problem)
    if original.trajectory is None or compressed.trajectory is None:
        raise ValueError("both runs need keep_trajectory=True")
    fig, (a0, a1) = _axes(ax, 2, figsize=(9.5, 3.6))
    for res, style in ((original, dict(lw=4, alpha=0.45)), (compressed, dict(ls="--"))):
        label = f"{res.method} ({res.n_params:,} parameters)"
        a0.semilogy(
            res.record_steps, _floor(res.train_loss), color=COLORS[res.method], label=label, **style
        )
    a0.set(xlabel="step $t$", ylabel="train loss", title="Loss")
    a0.legend()
    z_o, z_c = project_trajectories(original.trajectory, compressed.trajectory)
    for z, res, style in ((z_o, original, dict(lw=4, alpha=0.45)), (z_c, compressed, dict(ls="--", marker=".", ms=4))):  # fmt: skip
        z = z.cpu()
        a1.plot(z[:, 0], z[:, 1], color=COLORS[res.method], label=res.method, **style)
        a1.plot(z[:1, 0], z[:1, 1], "o", mfc="none", color="k")
    a1.set(xlabel="principal direction 1", ylabel="principal direction 2")
    a1.set_title(r"$W_{L:1}(t)$, projected")
    a1.legend()
    fig.tight_layout()
    return fig


def plot_spectra(problem: Problem, weights0=None, ax=None):
    r"""Singular values of :math:`\Phi`, of the observed :math:`\Omega\odot\Phi`, and of the first gradient.

    Each spectrum is divided by its largest value. :math:`\Phi` has rank ``r``;
    :math:`\Omega\odot\Phi` — and with it the gradient of the completion loss — is full rank, so
    no fixed :math:`2r`-dimensional subspace holds the dynamics.

    Args:
        problem: a :class:`~lib.completion.Problem`.
        weights0: initial weights of the original network (for the first gradient), or ``None``.
        ax: an axis, or ``None``.

    Returns:
        The figure.
    """
    _check_problem(problem)
    fig, (a,) = _axes(ax, 1, figsize=(5.2, 3.6))
    mats = {r"$\Phi$": problem.target, r"$\Omega\odot\Phi$": problem.mask * problem.target}
    if weights0 is not None:
        mats[r"$\nabla_{W_1}\ell(0)$"] = first_gradient(problem, weights0)
    for (name, M), marker in zip(mats.items(), "os^"):
        S = torch.linalg.svdvals(M.double()).cpu()
        a.semilogy(range(1, len(S) + 1), (S / S[0]).clamp_min(1e-17), marker, ms=3, label=name)
    a.axvline(problem.rank + 0.5, color="0.5", lw=1, ls=":")
    a.axvline(2 * problem.rank + 0.5, color="0.5", lw=1, ls="--")
    a.set(
        xlabel="index $i$",
        ylabel=r"$\sigma_i / \sigma_1$",
        title="Spectra (dotted: $r$, dashed: $2r$)",
    )
    a.set_ylim(1e-17, 2)
    a.legend()
    fig.tight_layout()
    return fig


def plot_curves(
    results: Mapping[str, FitResult],
    key: str = "test_loss",
    x: str = "steps",
    ax=None,
    title: str | None = None,
):
    """Loss curves of several runs.

    Args:
        results: label → run; labels starting with ``"original"``, ``"compressed"`` or
            ``"narrow"`` get the networks' colours.
        key: ``"test_loss"`` or ``"train_loss"``.
        x: ``"steps"`` or ``"seconds"`` (training wall-clock).
        ax: an axis, or ``None``.
        title: axis title.

    Returns:
        The figure.
    """
    if key not in ("test_loss", "train_loss") or x not in ("steps", "seconds"):
        raise ValueError("key must be 'test_loss' or 'train_loss' and x 'steps' or 'seconds'")
    _check_runs("results", results)
    fig, (a,) = _axes(ax, 1, figsize=(5.6, 3.6))
    for i, (label, res) in enumerate(results.items()):
        xs = res.record_steps if x == "steps" else res.record_seconds
        ys = _floor(getattr(res, key))
        color = _color(label) if sum(_color(k) == _color(label) for k in results) == 1 else None
        a.semilogy(xs, ys, label=label, color=color, ls=["-", "--", "-.", ":"][i % 4])
    a.set(xlabel="step $t$" if x == "steps" else "training time [s]", ylabel=key.replace("_", " "))
    if title:
        a.set_title(title)
    a.legend()
    fig.tight_layout()
    return fig


def plot_sweep(
    values: Sequence,
    runs: Mapping[str, Sequence[FitResult]],
    name: str,
    reference: FitResult | None = None,
    logx: bool = False,
    ax=None,
):
    """Steps to tolerance (left) and final test loss (right) across one hyperparameter.

    Runs that stopped at ``max_steps`` without reaching the tolerance are drawn as crosses at
    ``max_steps``.

    Args:
        values: the hyperparameter values (x axis; strings are categories).
        runs: label → one run per value.
        name: the hyperparameter's name (x label).
        reference: a run drawn as a horizontal line (e.g. the original network), or ``None``.
        logx: log-scale x axis (positive numeric values only).
        ax: two axes, or ``None``.

    Returns:
        The figure.
    """
    _check_values("values", values, "hyperparameter value")
    _check_run_lists("runs", runs, len(values), "value")
    if reference is not None:
        _check_run("reference", reference)
    if logx and not _positive_numbers(values):
        raise ValueError(f"logx=True needs positive numeric values, got values={list(values)!r}")
    fig, (a0, a1) = _axes(ax, 2, figsize=(9.5, 3.4))
    pos = list(range(len(values)))
    xs = [float(v) for v in values] if logx else pos
    for i, (label, seq) in enumerate(runs.items()):
        color = _color(label) or f"C{i}"
        a0.plot(xs, [r.steps for r in seq], "o-", color=color, label=label)
        bad = [(x, r.steps) for x, r in zip(xs, seq) if not r.converged]
        if bad:
            a0.plot(*zip(*bad), "x", color="k", ms=9, mew=2)
        a1.semilogy(xs, _floor([r.test_loss[-1] for r in seq]), "o-", color=color, label=label)
    if reference is not None:
        for a, v in ((a0, reference.steps), (a1, reference.test_loss[-1])):
            a.axhline(v, color=COLORS["original"], ls=":", label="original")
    for a in (a0, a1):
        if logx:
            a.set_xscale("log")
        else:
            a.set_xticks(pos, [str(v) for v in values])
        a.set_xlabel(name)
    a0.set(ylabel="steps to tolerance (x: not reached)", title="Optimisation")
    a1.set(ylabel="final test loss", title="Recovery")
    a0.legend()
    fig.tight_layout()
    return fig


def plot_depth_width(widths: Sequence[int], by_depth: Mapping[int, Sequence[FitResult]], ax=None):
    """Recovery error (final test loss) and steps to tolerance against the width, one line per depth.

    Args:
        widths: network widths ``k`` (x axis).
        by_depth: depth ``L`` → one narrow run per width.
        ax: two axes, or ``None``.

    Returns:
        The figure.
    """
    _check_values("widths", widths, "width")
    _check_run_lists("by_depth", by_depth, len(widths), "width")
    fig, (a0, a1) = _axes(ax, 2, figsize=(9.5, 3.4))
    for i, (depth, seq) in enumerate(by_depth.items()):
        a0.semilogy(widths, _floor([r.test_loss[-1] for r in seq]), "o-", color=f"C{i + 3}", label=f"$L = {depth}$")  # fmt: skip
        a1.plot(widths, [r.steps for r in seq], "o-", color=f"C{i + 3}", label=f"$L = {depth}$")
        bad = [(w, r.steps) for w, r in zip(widths, seq) if not r.converged]
        if bad:
            a1.plot(*zip(*bad), "x", color="k", ms=9, mew=2)
    a0.set(xlabel="width $k$", ylabel="final test loss", title="Depth: recovery")
    a1.set(xlabel="width $k$", ylabel="steps to tolerance (x: not reached)", title="Width: speed")
    a0.legend()
    fig.tight_layout()
    return fig


def _sweep_style(label: str) -> dict:
    """Colour and line of one method of a sample-complexity sweep (depths as in
    :func:`plot_depth_width`: ``L = 2`` C3, ``L = 3`` C4; ``L = 1``, which recovers nothing, grey)."""
    if label == NUCLEAR:
        return dict(color="k", ls="--", marker="s")
    depth = int(label.rsplit("= ", 1)[1])
    if label.startswith("compressed"):
        return dict(color=COLORS["compressed"], ls=[":", "-.", "--"][depth % 3], marker="D")
    return dict(color="C7" if depth == 1 else f"C{(depth + 1) % 10}", ls="-", marker="o")


def plot_sample_complexity(result: SampleComplexity, ax=None):
    r"""Relative recovery error :math:`\|W-\Phi\|_F/\|\Phi\|_F` against the observed fraction.

    One line per method of ``result`` (original networks per depth, compressed networks, the
    minimum nuclear norm), at the mean over the seeds; the seeds' own errors as small dots; a
    black cross at a seed's error where its network did not reach the tolerance.

    Args:
        result: from :func:`lib.completion.sample_complexity`.
        ax: an axis, or ``None`` for a new figure.

    Returns:
        The figure.
    """
    check_type("result", result, SampleComplexity, "the result of lib.completion.sample_complexity")
    fig, (a,) = _axes(ax, 1, figsize=(6.4, 3.8))
    ps = list(result.observed_fractions)
    for label, errs, conv in zip(result.labels, result.errors, result.converged):
        style = _sweep_style(label)
        a.semilogy(ps, _floor(errs.mean(-1).tolist()), label=label, **style)
        for k in range(errs.shape[-1]):
            a.plot(ps, _floor(errs[:, k].tolist()), ".", color=style["color"], alpha=0.35, ms=4)
        bad = [(p, e) for p, row, ok in zip(ps, errs.tolist(), conv.tolist()) for e, c in zip(row, ok) if not c]  # fmt: skip
        if bad and label != NUCLEAR:  # the baseline has no train tolerance
            a.plot(*zip(*bad), "x", color="k", ms=6, mew=1.5)
    a.set(xlabel="observed fraction $p$", ylabel=r"$\|W-\Phi\|_F\,/\,\|\Phi\|_F$")
    a.set_title(f"Recovery of a rank-{result.rank} ${result.d}\\times{result.d}$ matrix")
    a.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_explorer(
    problem: Problem,
    original: FitResult,
    gamma: float,
    rank_hat: int,
    depth: int,
    lr_scale: float = 1.0,
    ax=None,
    **fit_kwargs,
):
    """One compressed run at (γ, r̂, L) against the original network's test loss.

    Args:
        problem: a :class:`~lib.completion.Problem`.
        original: the original network's run (drawn as the reference).
        gamma: γ.
        rank_hat: r̂.
        depth: L.
        lr_scale: η as a multiple of :func:`lib.completion.default_lr` at this depth.
        ax: an axis, or ``None``.
        **fit_kwargs: passed to :func:`lib.completion.fit` (scale, max_steps, tol, ...).

    Returns:
        The figure.
    """
    _check_run("original", original)
    lr_scale = check_real("lr_scale", lr_scale, 0.0, strict=True)
    lr = lr_scale * default_lr(problem, depth)
    res = fit(problem, "compressed", depth=depth, lr=lr, rank_hat=rank_hat, gamma=gamma, **fit_kwargs)  # fmt: skip
    label = f"compressed: γ={gamma:g}, r̂={rank_hat}, L={depth}"
    fig = plot_curves({"original": original, label: res}, ax=ax)
    (ax if ax is not None else fig.axes[0]).set_title(
        f"{res.steps} steps, test loss {res.test_loss[-1]:.2g}"
    )
    return fig


def explorer(
    problem: Problem,
    original: FitResult,
    gamma: float = 0.01,
    rank_hat: int | None = None,
    depth: int = 3,
    lr_scale: float = 1.0,
    **fit_kwargs,
):
    """An ipywidgets explorer of the compressed network: sliders for γ, r̂ and L.

    Every change re-trains one compressed network (:func:`plot_explorer`) and redraws its test
    loss against the original network's; sliders update on release.

    Args:
        problem: a :class:`~lib.completion.Problem`.
        original: the original network's run (the reference curve).
        gamma: initial γ (slider from 1e-4 to 1; its far left, 1e-4, means γ = 0).
        rank_hat: initial r̂ (default ``problem.rank``; slider 1 to ``d // 2``, at most 4r).
        depth: initial L (slider 1 to 5).
        lr_scale: η as a multiple of :func:`lib.completion.default_lr` at the slider's depth.
        **fit_kwargs: passed to :func:`lib.completion.fit` (scale, max_steps, tol, ...).

    Returns:
        An ``ipywidgets.interactive``; display it (last line of a cell).
    """
    import ipywidgets as widgets  # lazy: only the interactive explorer needs it

    _check_explorer(problem, original, gamma, rank_hat, depth, lr_scale)
    rank_hat = problem.rank if rank_hat is None else rank_hat

    def draw(gamma: float, rank_hat: int, depth: int) -> None:
        g = 0.0 if gamma <= 1e-4 else gamma  # the slider's far left is γ = 0
        plot_explorer(problem, original, g, rank_hat, depth, lr_scale, **fit_kwargs)
        plt.show()

    opts = dict(continuous_update=False, style={"description_width": "2em"})
    top = min(problem.d // 2, 4 * problem.rank)
    return widgets.interactive(
        draw,
        gamma=widgets.FloatLogSlider(
            max(gamma, 1e-4), base=10, min=-4, max=0, step=0.25, description="γ", **opts
        ),  # fmt: skip
        rank_hat=widgets.IntSlider(rank_hat, min=1, max=top, description="r̂", **opts),
        depth=widgets.IntSlider(depth, min=1, max=5, description="L", **opts),
    )


def _check_explorer(problem, original, gamma, rank_hat, depth, lr_scale) -> None:
    """:func:`explorer`'s arguments, at entry: the sliders clamp what lies outside their range."""
    _check_problem(problem)
    _check_run("original", original)
    check_real("gamma", gamma, 0.0, strict=False)
    top = min(problem.d // 2, 4 * problem.rank)
    if rank_hat is not None and not 1 <= check_int("rank_hat", rank_hat, 1) <= top:
        raise ValueError(
            f"rank_hat must be an integer in [1, {top}] (the slider's range: d // 2 = "
            f"{problem.d // 2}, at most 4r = {4 * problem.rank}), got {rank_hat!r}"
        )
    if not 1 <= check_int("depth", depth, 1) <= 5:
        raise ValueError(f"depth must be an integer in [1, 5] (the slider's range), got {depth!r}")
    check_real("lr_scale", lr_scale, 0.0, strict=True)


def plot_explorer_grid(
    original: FitResult,
    panels: Mapping[str, Mapping[str, FitResult]],
    ax=None,
):
    """The explorer's static twin: one panel per slider, test loss of a few settings against the original.

    Args:
        original: the original network's run.
        panels: panel title → (label → compressed run).
        ax: one axis per panel, or ``None`` for a new figure.

    Returns:
        The figure.
    """
    _check_run("original", original)
    check_type("panels", panels, Mapping, "a dict title -> {label: result of lib.completion.fit}")
    check_nonempty("panels", panels, "panel")
    for title, runs in panels.items():
        _check_runs(f"panels[{title!r}]", runs)
    fig, axes = _axes(ax, len(panels), figsize=(4.4 * len(panels), 3.4))
    for a, (title, runs) in zip(axes, panels.items()):
        a.semilogy(original.record_steps, _floor(original.test_loss), color=COLORS["original"], lw=4, alpha=0.4, label="original")  # fmt: skip
        for i, (label, res) in enumerate(runs.items()):
            a.semilogy(res.record_steps, _floor(res.test_loss), color=f"C{i + 1}", label=label)
        a.set(title=title, xlabel="step $t$")
        a.legend(fontsize=8)
    axes[0].set_ylabel("test loss")
    fig.tight_layout()
    return fig
