r"""The chapter's interactive explorer: train the lecture's network at (ε, L, η, r) and draw it.

* :func:`plot_run` — one run in two panels: :math:`\sigma_{1i}(t)` and the end-to-end spectrum;
* :func:`plot_explorer` — train one run (:func:`lib.parsimony.simulate`) and draw
  :func:`plot_run`; says so on the panels when GD diverges;
* :func:`explorer` — ipywidgets sliders over (ε, L, η, r) that call :func:`plot_explorer`.

All three are importable from :mod:`lib.parsimony.figures` too (the notebook's
``figures.explorer``). They follow its contract: data (or, for the explorer, the
hyperparameters it trains with) first, then ``ax=None``, and return the matplotlib ``Figure``
(:func:`explorer` returns the widget).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from lib import dln, spectra
from lib._checks import check_int, check_real
from lib.parsimony._validate import check_group_rank, check_history, check_run
from lib.parsimony.figures import _axes, _either, plot_singular_values
from lib.parsimony.simulation import RunConfig, simulate

__all__ = ["explorer", "plot_explorer", "plot_run"]


def plot_run(history: dln.History, rank: int, run: int | None = None, ax=None):
    r"""One training run in two panels: :math:`\sigma_{1i}(t)` and the end-to-end spectrum at the end.

    .. math::

        t\mapsto\sigma_i\big(W_1(t)\big), \qquad
        \sigma_i\big(W_{L:1}(T)\big)/\sigma_1\big(W_{L:1}(T)\big).

    Args:
        history: from :func:`lib.dln.train` or :func:`lib.dln.train_batched`.
        rank: ``r`` for the group colours of the left panel.
        run: which run of a batched history.
        ax: two matplotlib axes (default: a new figure).

    Returns:
        The figure: ``axes[0]`` as :func:`plot_singular_values` of :math:`W_1`, ``axes[1]`` one
        line, the normalised end-to-end spectrum after the last recorded step.

    Reference:
        Lecture 6, section 2, "Implicit low-rank bias".

    Example:
        >>> from lib import parsimony
        >>> h = parsimony.simulate(0.1, width=8, rank=2, n_samples=8, steps=50).history
        >>> fig = plot_run(h, rank=2)
        >>> [len(ax.lines) for ax in fig.axes]
        [8, 1]
    """
    check_history("history", history)
    check_group_rank("rank", rank, min(history.weights[0][0].shape[-2:]))
    check_run("run", run, history)
    fig, (ax0, ax1) = _axes(ax, 2, figsize=(10, 3.6))
    plot_singular_values(history, 0, rank, run, ax=ax0)
    weights = history.weights[-1] if run is None else [W[run] for W in history.weights[-1]]
    S = spectra.singular_values(dln.end_to_end(weights)).cpu()
    ax1.plot(range(1, len(S) + 1), (S / S[0]).numpy(), "o-", ms=3, color="C0")
    ax1.set(
        yscale="log",
        xlabel="index $i$",
        ylabel=r"$\sigma_i(W_{L:1}) / \sigma_1$",
        title=f"end-to-end after {int(history.steps[-1])} steps",
    )
    return fig


def plot_explorer(
    eps: float = 1e-2,
    depth: int = 3,
    lr: float = 5.0,
    rank: int = 3,
    width: int = 30,
    n_samples: int = 60,
    steps: int = 3000,
    seed: int = 0,
    device: torch.device | str | None = None,
    ax=None,
    axes=None,
):
    r"""Train the lecture's network at (ε, L, η, r) and draw it with :func:`plot_run`.

    The hyperparameters come first here (not data): this is one frame of :func:`explorer`, which
    re-trains on every slider move; for a run at hand use :func:`plot_run`.

    .. math::

        t\mapsto\sigma_i\big(W_1(t)\big), \qquad \sigma_i\big(W_{L:1}(T)\big)/\sigma_1\big(W_{L:1}(T)\big),

    one run of :func:`lib.parsimony.simulate` (float64). When GD diverges (η too large for the
    depth and data) the panels say so instead of raising; every other bad argument raises, before
    anything is drawn.

    Args:
        eps: ε.
        depth: ``L``.
        lr: η.
        rank: ``r`` (``width - 2r >= 1``).
        width: ``d``.
        n_samples: ``N``.
        steps: GD steps.
        seed: data and init seed.
        device: where to train.
        ax: two matplotlib axes (default: a new figure).
        axes: older name of ``ax``.

    Returns:
        The figure: ``axes[0]`` as :func:`plot_singular_values`, ``axes[1]`` one line, the
        normalised end-to-end spectrum.

    Reference:
        Lecture 6, section 2.

    Example:
        >>> fig = plot_explorer(0.1, 3, 5.0, 2, width=8, n_samples=8, steps=50)
        >>> [len(ax.lines) for ax in fig.axes]
        [8, 1]
    """
    _check_setting(eps, depth, lr, rank, width, n_samples, steps, seed, device)
    fig, (ax0, ax1) = _axes(_either(ax, axes), 2, figsize=(10, 3.6))
    try:
        run = simulate(
            eps,
            depth,
            width,
            rank,
            n_samples,
            lr,
            steps,
            seed=seed,
            device=device,
            record_every=max(1, steps // 300),
        )
    except ValueError as err:
        if "diverged" not in str(err):  # only divergence is drawn; the arguments were checked
            raise
        for panel in (ax0, ax1):
            panel.text(
                0.5,
                0.5,
                "GD diverged:\nlower the learning rate",
                ha="center",
                va="center",
                transform=panel.transAxes,
                color="C3",
            )
        ax0.set_title(str(err).split(":")[0])
        return fig
    plot_run(run.history, rank, ax=(ax0, ax1))
    ax0.set_title(f"$W_1$: L = {depth}, ε = {eps:.2g}, η = {lr:.2g}, r = {rank}")
    return fig


def explorer(
    eps: float = 1e-2,
    depth: int = 3,
    lr: float = 5.0,
    rank: int = 3,
    width: int = 30,
    n_samples: int = 60,
    steps: int = 3000,
    seed: int = 0,
    device: torch.device | str | None = None,
):
    r"""An ipywidgets explorer of the law of parsimony: sliders for ε, ``L``, η and ``r``.

    Every change re-trains one network (:func:`plot_explorer`, a fraction of a second at the
    lecture's size on a CPU) and redraws; sliders update on release. The other arguments are
    fixed.

    Args:
        eps: initial ε (slider from :math:`10^{-4}` to 1).
        depth: initial ``L`` (slider 1 to 6).
        lr: initial η (slider from 0.1 to 50).
        rank: initial ``r`` (slider 1 to ``(width - 1) // 2``).
        width: ``d``.
        n_samples: ``N``.
        steps: GD steps.
        seed: data and init seed.
        device: where to train.

    Returns:
        An ``ipywidgets.interactive``; display it (last line of a cell). Its ``children`` are the
        four sliders and the output area.

    Reference:
        Lecture 6, section 2.

    Example:
        >>> w = explorer(width=8, n_samples=8, rank=2, steps=20)  # doctest: +SKIP
        >>> [c.description for c in w.children[:4]]  # doctest: +SKIP
        ['ε', 'L', 'η', 'r']
    """
    _check_setting(eps, depth, lr, rank, width, n_samples, steps, seed, device)
    for name, value, low, high in (
        ("eps", eps, 1e-4, 1.0),
        ("depth", depth, 1, 6),
        ("lr", lr, 0.1, 10**1.7),
        ("rank", rank, 1, (width - 1) // 2),
    ):
        if not low <= value <= high:
            raise ValueError(
                f"{name} must be within its slider's range [{low:g}, {high:g}], got {value!r}"
                + (" (rank needs width - 2r >= 1)" if name == "rank" else "")
            )
    import ipywidgets as widgets  # lazy: only the interactive explorer needs it

    def draw(eps: float, depth: int, lr: float, rank: int) -> None:
        plot_explorer(eps, depth, lr, rank, width, n_samples, steps, seed, device)
        plt.show()

    opts = dict(continuous_update=False, style={"description_width": "2em"})
    return widgets.interactive(
        draw,
        eps=widgets.FloatLogSlider(eps, base=10, min=-4, max=0, step=0.25, description="ε", **opts),
        depth=widgets.IntSlider(depth, min=1, max=6, description="L", **opts),
        lr=widgets.FloatLogSlider(lr, base=10, min=-1, max=1.7, step=0.1, description="η", **opts),
        rank=widgets.IntSlider(rank, min=1, max=(width - 1) // 2, description="r", **opts),
    )


def _check_setting(eps, depth, lr, rank, width, n_samples, steps, seed, device) -> None:
    """Refuse bad explorer arguments by their names (one run: ε and η are single numbers);
    :class:`RunConfig` checks the rest of the setting."""
    check_real("eps", eps, 0.0, strict=True)
    check_real("lr", lr, 0.0, strict=True)
    check_int("seed", seed, 0)
    RunConfig(
        scale=eps,
        depth=depth,
        lr=lr,
        rank=rank,
        width=width,
        n_samples=n_samples,
        steps=steps,
        device=device,
    )
