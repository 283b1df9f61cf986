r"""The panels of the progressive-separation figures: each draws on the axes it is given.

Their signatures (axes first, ``None`` returned) are those of notebooks already handed out; they
are public as :mod:`lib.separation.figures` ``.plot_profile`` etc., where the one-call figures
built from them live.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from lib._checks import check_nonempty, check_type
from lib.separation.digits import DigitsRun
from lib.separation.theory import ideal_ratio, ratio_bound
from lib.separation.train import SeparationRun

__all__ = [
    "plot_by_activation",
    "plot_digits",
    "plot_profile",
    "plot_profiles",
    "plot_ratio_summary",
    "plot_ratios",
    "plot_tradeoff",
]


_AX_HINT = "matplotlib axes, e.g. from plt.subplots()"
_RUN_HINT = "from lib.separation.train_settings"


def _check_ax(name: str, ax: object) -> None:
    check_type(name, ax, Axes, _AX_HINT)


def _check_runs(name: str, runs: object, cls: type = SeparationRun, hint: str = _RUN_HINT) -> None:
    """``runs`` a non-empty list of ``cls`` (a single run or a string is not a list)."""
    if isinstance(runs, (str, cls)) or not isinstance(runs, Sequence):
        raise TypeError(
            f"{name} must be a list of {cls.__name__} ({hint}), got {type(runs).__name__}"
        )
    check_nonempty(name, runs, "run")
    for i, run in enumerate(runs):
        check_type(f"{name}[{i}]", run, cls, hint)


def _label(run: SeparationRun) -> str:
    s = run.setting
    return f"{s.activation}, L={s.depth}, ε={s.scale:g}, {s.init}"


def plot_profile(ax, run: SeparationRun, title: str | None = None, color: str = "black") -> None:
    r"""One run's :math:`D_l` on a log axis, with the line fitted through :math:`l = 0..L-1`.

    The output layer's :math:`D_L` is drawn hollow: it is excluded from the fit (it measures the
    residual left at the loss tolerance).

    Args:
        ax: matplotlib axes.
        run: a :class:`lib.separation.Run`.
        title: axes title (default: the run's setting and its fitted ratio).
        color: marker colour.
    """
    _check_ax("ax", ax)
    check_type("run", run, SeparationRun, _RUN_HINT)
    D = run.separation.detach().cpu()
    L = D.shape[0] - 1
    layers = torch.arange(L, dtype=torch.float64)
    fit = run.fit
    ax.semilogy(layers, fit.line(layers).cpu(), "-", color="tab:blue", lw=3, alpha=0.6, zorder=1)
    ax.semilogy(layers, D[:-1], "o", color=color, ms=6, zorder=2)
    ax.semilogy([L], D[-1:], "o", mfc="none", color=color, ms=6, zorder=2)
    ax.set(xlabel="layer $l$", ylabel="$D_l$")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(
        title
        if title is not None
        else f"{_label(run)}\nratio {float(fit.ratio):.3f}, $R^2$ = {float(fit.r2):.4f}",
        fontsize=9,
    )
    if not run.converged:
        ax.text(0.02, 0.03, f"not converged ({run.steps} steps)", transform=ax.transAxes)


def plot_profiles(
    ax, runs: Sequence[SeparationRun], labels: Sequence[str], title: str = ""
) -> None:
    r"""Several runs' :math:`D_0..D_{L-1}` overlaid (markers) with their fitted lines.

    Args:
        ax: matplotlib axes.
        runs: :class:`lib.separation.Run` s.
        labels: one legend entry per run; the fitted ratio is appended.
        title: axes title.
    """
    _check_ax("ax", ax)
    _check_runs("runs", runs)
    if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) != len(runs):
        got = len(labels) if isinstance(labels, Sequence) else type(labels).__name__
        raise ValueError(f"labels must hold one label per run ({len(runs)}), got {got}")
    _draw_profiles(ax, runs, labels, title)


def _draw_profiles(ax, runs: Sequence[SeparationRun], labels: Sequence[str], title: str) -> None:
    """:func:`plot_profiles` without the checks (a panel of :func:`plot_by_activation` may be
    empty: no run of that activation)."""
    for run, label in zip(runs, labels):
        D = run.hidden.detach().cpu()
        layers = torch.arange(D.shape[0], dtype=torch.float64)
        (line,) = ax.semilogy(layers, run.fit.line(layers).cpu(), "-", alpha=0.6)
        ax.semilogy(
            layers, D, "o", color=line.get_color(), label=f"{label}: {float(run.fit.ratio):.3f}"
        )
    ax.set(xlabel="layer $l$", ylabel="$D_l$", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if runs:  # a panel of plot_by_activation without a run of its activation has no legend
        ax.legend(title="fitted ratio")


def plot_by_activation(axes, runs: Sequence[SeparationRun]) -> None:
    r"""One panel per activation (``"linear"``, ``"relu"``), each overlaying its runs' profiles.

    Args:
        axes: two matplotlib axes.
        runs: :class:`lib.separation.Run` s; each panel labels its runs by ε.
    """
    if not hasattr(axes, "__len__") or len(axes) != 2:
        got = len(axes) if hasattr(axes, "__len__") else type(axes).__name__
        raise ValueError(f"axes must be two matplotlib axes (linear, relu), got {got}")
    for i, ax in enumerate(axes):
        _check_ax(f"axes[{i}]", ax)
    _check_runs("runs", runs)
    for ax, act in zip(axes, ("linear", "relu")):
        mine = [r for r in runs if r.setting.activation == act]
        depths = sorted({r.setting.depth for r in mine})
        title = f"{act}, L = {', '.join(map(str, depths))}"
        _draw_profiles(ax, mine, [f"ε = {r.setting.scale:g}" for r in mine], title)


def plot_ratios(ax, runs: Sequence[SeparationRun]) -> None:
    r"""Measured :math:`D_{l+1}/D_l` per layer (markers), the theorem's bound (dashed) and the
    idealised rate :math:`\varepsilon^2 n^{-1/L}` (dotted), one colour per run.

    Args:
        ax: matplotlib axes.
        runs: linear :class:`lib.separation.Run` s.
    """
    _check_ax("ax", ax)
    _check_runs("runs", runs)
    for run in runs:
        s = run.setting
        r = run.ratios.detach().cpu()
        layers = torch.arange(r.shape[0])
        (line,) = ax.semilogy(layers, r, "o-", label=f"ε = {s.scale:g}: measured")
        c = line.get_color()
        ax.axhline(ratio_bound(s.num_classes, s.scale), color=c, ls="--", lw=1)
        ax.axhline(ideal_ratio(s.per_class, s.depth, s.scale), color=c, ls=":", lw=1)
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.plot([], [], "k--", lw=1, label=r"bound $2(\sqrt{K}+1)\varepsilon^2$")
    ax.plot([], [], "k:", lw=1, label=r"ideal $\varepsilon^2 n^{-1/L}$")
    ax.set(xlabel="layer $l$", ylabel=r"$D_{l+1}/D_l$", title="Per-layer ratio against the bound")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))


def plot_ratio_summary(ax, runs: Sequence[SeparationRun]) -> None:
    r"""Fitted ratio (circles) and the theorem's bound (crosses) against the idealised rate.

    Every linear, orthogonally initialised run is one column; points on the diagonal match the
    idealised rate, crosses above 1 are vacuous bounds.

    Args:
        ax: matplotlib axes.
        runs: :class:`lib.separation.Run` s (ReLU and non-orthogonal runs are skipped).
    """
    _check_ax("ax", ax)
    keep = _summary_runs("runs", runs)
    ideal = [ideal_ratio(r.setting.per_class, r.setting.depth, r.setting.scale) for r in keep]
    ax.loglog(ideal, [float(r.fit.ratio) for r in keep], "o", label="measured (fitted)")
    ax.loglog(
        ideal,
        [ratio_bound(r.setting.num_classes, r.setting.scale) for r in keep],
        "x",
        ms=8,
        label="theorem's bound",
    )
    lo, hi = min(ideal) / 1.5, 3.0
    ax.loglog([lo, hi], [lo, hi], "k-", lw=0.8, label="diagonal")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set(
        xlabel=r"idealised ratio $\varepsilon^2 n^{-1/L}$",
        ylabel=r"$D_{l+1}/D_l$",
        title="All linear runs of this chapter",
    )
    ax.legend()


def _summary_runs(name: str, runs: object) -> list[SeparationRun]:
    """The runs :func:`plot_ratio_summary` draws (linear, orthogonal init); at least one."""
    _check_runs(name, runs)
    keep = [r for r in runs if r.setting.activation == "linear" and r.setting.init == "orthogonal"]
    if not keep:
        raise ValueError(
            f"{name} holds no linear, orthogonally initialised run, so there is no point to "
            "draw; add one (Setting(activation='linear', init='orthogonal'))"
        )
    return keep


def plot_tradeoff(ax_loss, ax_speed, runs: Sequence[SeparationRun]) -> None:
    r"""The trade-off: training curves (left) and iterations to converge vs. decay rate (right).

    Args:
        ax_loss: axes for the loss curves.
        ax_speed: axes for iterations to converge against ε (a twin axis gets the fitted ratio).
        runs: :class:`lib.separation.Run` s differing in ε.
    """
    _check_ax("ax_loss", ax_loss)
    _check_ax("ax_speed", ax_speed)
    _check_runs("runs", runs)
    for run in runs:
        keep = torch.isfinite(run.curve)
        steps, loss = run.curve_steps[keep.cpu()], run.curve[keep].cpu()
        ax_loss.semilogy(steps, loss, label=f"ε = {run.setting.scale:g}")
    ax_loss.axhline(runs[0].setting.tol, color="gray", ls="--", lw=1, label="tolerance")
    ax_loss.set(xlabel="GD iteration", ylabel="training loss", title="Smaller ε trains slower")
    ax_loss.legend(fontsize=8)
    scales = [r.setting.scale for r in runs]
    ax_speed.loglog(scales, [r.steps for r in runs], "o-", color="tab:red")
    ax_speed.set(xlabel="ε", ylabel="iterations to converge", title="... but separates faster")
    ax_speed.yaxis.label.set_color("tab:red")
    twin = ax_speed.twinx()
    twin.loglog(scales, [float(r.fit.ratio) for r in runs], "s--", color="tab:blue")
    twin.set_ylabel(r"fitted $D_{l+1}/D_l$", color="tab:blue")
    twin.grid(False)
    ax_speed.set_xticks(scales, [f"{e:g}" for e in scales])
    ax_speed.xaxis.set_minor_formatter(NullFormatter())
    for axis in (ax_speed.yaxis, twin.yaxis):  # plain numbers at 1, 2, 5 x 10^k
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def plot_digits(ax, run: DigitsRun, title: str) -> None:
    r"""Train- and test-split :math:`D_l` of the digits MLP, with the line fitted to the train split.

    Args:
        ax: matplotlib axes.
        run: a :class:`lib.separation.DigitsRun`.
        title: axes title (the fitted ratio, :math:`R^2` and test accuracy are appended).
    """
    _check_ax("ax", ax)
    check_type("run", run, DigitsRun, "from lib.separation.train_digits_mlp")
    D_tr = run.train_separation.detach().cpu()
    D_te = run.test_separation.detach().cpu()
    layers = torch.arange(D_tr.shape[0], dtype=torch.float64)
    ax.semilogy(layers, run.fit.line(layers).cpu(), "-", color="tab:blue", lw=3, alpha=0.6)
    ax.semilogy(layers, D_tr, "o", color="black", label="train")
    ax.semilogy(layers, D_te, "^", color="tab:orange", label="test")
    fit = run.fit
    ax.set(xlabel="hidden layer $l$ (0: pixels)", ylabel="$D_l$")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(
        f"{title}\nratio {float(fit.ratio):.2f}, $R^2$ = {float(fit.r2):.3f}, "
        f"test acc. {run.test_accuracy:.3f}",
        fontsize=9,
    )
    ax.legend()
