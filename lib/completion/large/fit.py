r"""Training the compressed network on the observed entries, to a relative test error.

See :mod:`lib.completion.large`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from lib._checks import check_int, check_option
from lib.completion._engine import (
    _LAYOUTS,
    _Hyper,
    _make_runner,
    _resolve_step_mode,
    _StepConfig,
    _sync,
    _thin_net,
)
from lib.completion._steps import _inner_product
from lib.completion.large.network import _check_depth_scale, _check_rank_hat, _compress
from lib.completion.large.problem import LargeProblem, _check_large, _entries
from lib.completion.problem import _check_real

__all__ = ["LargeFitResult", "fit_large"]


def _default_lr(problem: LargeProblem, depth: int) -> float:
    """:func:`lib.completion.default_lr` from the factors: σ₁(s A Bᵀ) = s σ₁(R_A R_Bᵀ)."""
    if depth == 1:
        return float(problem.d**2)
    Ra = torch.linalg.qr(problem.left)[1]
    Rb = torch.linalg.qr(problem.right)[1]
    sigma1 = problem.scale * float(torch.linalg.svdvals(Ra @ Rb.T)[0])
    return problem.d**2 / (problem.observed_fraction * depth * sigma1 ** (2 - 2 / depth))


@dataclass(frozen=True)
class LargeFitResult:
    """What :func:`fit_large` returns.

    Attributes:
        test_error: relative test error on the held-out sample at each recorded step.
        train_loss: ``½/d² ‖Ω ⊙ (W − Φ)‖²`` at each recorded step.
        record_steps, record_seconds: the recorded steps and the training seconds there.
        steps: GD updates done; seconds: training seconds (device-synchronised, set-up excluded);
        setup_seconds: compression, buffers, warm-up.
        converged: whether the test error reached ``tol``.
        weights, weights0: final and initial weights (:mod:`lib.dln` convention).
        lr, n_params, step_mode, layout: as run.
    """

    test_error: list[float]
    train_loss: list[float]
    record_steps: list[int]
    record_seconds: list[float]
    steps: int
    seconds: float
    setup_seconds: float
    converged: bool
    weights: list[Tensor] = field(repr=False)
    weights0: list[Tensor] = field(repr=False)
    lr: float
    n_params: int
    step_mode: str
    layout: str


def _errors(problem: LargeProblem, net) -> tuple[float, float]:
    """(relative test error, train loss) of the thin network, at the entries only."""
    A = net.U @ _inner_product(net.inner, net.U)[0]  # (d, k)
    pt = _entries(A, net.V, problem.test_rows, problem.test_cols) - problem.test_values
    err = float(pt.norm() / problem.test_values.norm())
    r = _entries(A, net.V, problem.rows, problem.cols) - problem.values
    return err, float(0.5 * r.dot(r) / problem.d**2)


def fit_large(
    problem: LargeProblem,
    depth: int = 3,
    scale: float = 1e-3,
    lr: float | None = None,
    gamma: float = 0.01,
    rank_hat: int | None = None,
    max_steps: int = 20_000,
    tol: float = 1e-3,
    record_every: int = 50,
    *,
    step_mode: str = "auto",
    layout: str = "auto",
    time_limit: float | None = None,
    iterations: int = 20,
) -> LargeFitResult:
    r"""Train the compressed network on the observed entries until the relative test error ≤ tol.

    Full-batch GD on :math:`\frac{1}{2d^2}\|\Omega\odot(W - \Phi)\|_F^2` from
    :func:`compress_large` (inner factors at η, outer ones at γη) with :func:`lib.completion.fit`'s
    observed-entry step (Triton kernels and CUDA graphs on a GPU). Every ``record_every`` steps the
    relative test error :math:`\|(W - \Phi)_{\text{test}}\|/\|\Phi_{\text{test}}\|` on the
    held-out sample is recorded; training stops at the first record where it is ``<= tol``.

    Stability: near the solution each outer factor adds :math:`2\gamma\sigma_1^{2/3}/L` times the
    inner layers' curvature, so with ``lr = a · default_lr`` keep
    :math:`a\,(1 + 2\gamma\sigma_1^{2/3}/L) < 2` (:math:`\sigma_1 \approx 2\sqrt d`): γ = 0.1 diverges
    at ``d = 1000`` with ``a = 1``. A small ε keeps the unused directions at
    :math:`\varepsilon^L`, which decay only slowly (at ``d = 1000``, ε = 1 creeps below 1e-2).

    Args:
        problem: from :func:`make_large_problem` (float32 or float64).
        depth: ``L >= 1``.  scale: ε > 0.  gamma: γ >= 0.
        lr: η > 0 (default: :func:`lib.completion.default_lr`'s formula, from the factors).
        rank_hat: :math:`\hat r` (default ``problem.rank``).
        max_steps: most GD updates, ``>= 0``.  tol: relative test error to stop at, ``>= 0``.
        record_every: steps between records, ``>= 1``.
        step_mode: as :func:`lib.completion.fit` (``"auto"``, ``"eager"``, ``"graph"``,
            ``"compile"``, ``"compile+graph"``, ``"fused"``).
        layout: ``"auto"``, ``"padded"`` or ``"scatter"``, as :func:`lib.completion.fit`.
        time_limit: stop at the first record after this many training seconds (``None``: none).
        iterations: subspace-iteration rounds of :func:`compress_large`.

    Returns:
        A :class:`LargeFitResult`.

    Raises:
        ValueError: bad arguments, or divergence (the message names the learning rate).
    Example:
        >>> from lib.completion.large import make_large_problem
        >>> P = make_large_problem(60, 2, 0.4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> res = fit_large(P, scale=0.3, gamma=0.1, max_steps=3000, tol=1e-3)
        >>> res.converged, res.test_error[-1] <= 1e-3
        (True, True)
    """
    problem = _check_large(problem)
    depth, scale = _check_depth_scale(depth, scale)
    lr = _default_lr(problem, depth) if lr is None else _check_real("lr", lr, 0.0, low_open=True)
    gamma = _check_real("gamma", gamma, 0.0, low_open=False)
    r_hat = _check_rank_hat(problem, rank_hat)
    max_steps = check_int("max_steps", max_steps, 0)
    tol = _check_real("tol", tol, 0.0, low_open=False)
    record_every = check_int("record_every", record_every, 1)
    iterations = check_int("iterations", iterations, 1)
    if time_limit is not None:
        time_limit = _check_real("time_limit", time_limit, 0.0, low_open=True)
    mode = _resolve_step_mode(step_mode, problem.values.device)
    check_option("layout", layout, _LAYOUTS)
    device = problem.values.device
    _sync(device)
    t0 = time.perf_counter()
    W0 = _compress(problem, depth, scale, r_hat, iterations)
    flags = torch.tensor([0.0, 1.0], dtype=problem.values.dtype, device=device)
    hyper = _Hyper(c=1.0 / problem.d**2, lr=lr, threshold=0.0, flags=flags)  # never stops itself
    net = _thin_net(problem, W0, gamma * lr, None, _StepConfig("observed", layout, mode), hyper)
    runner, mode = _make_runner(net, mode, hyper, device, max_steps)
    _sync(device)
    setup = time.perf_counter() - t0
    hist: dict[str, list] = {"err": [], "loss": [], "steps": [], "seconds": []}
    done, seconds = 0, 0.0
    while True:
        err, loss = _errors(problem, net)
        for k, v in zip(hist, (err, loss, done, seconds)):
            hist[k].append(v)
        if not math.isfinite(err):
            raise ValueError(
                f"training diverged by step {done}: the test error is not finite; the learning "
                f"rate lr={lr:g} is too large (depth={depth}, scale={scale:g}, gamma={gamma:g}); "
                "lower lr"
            )
        converged = err <= tol
        if converged or done >= max_steps or (time_limit is not None and seconds >= time_limit):
            break
        n = min(record_every, max_steps - done)
        _sync(device)
        t = time.perf_counter()
        runner.run(n)
        _sync(device)
        seconds += time.perf_counter() - t
        done += n
    weights = net.weights()
    return LargeFitResult(
        test_error=hist["err"], train_loss=hist["loss"], record_steps=hist["steps"],
        record_seconds=hist["seconds"], steps=done, seconds=seconds, setup_seconds=setup,
        converged=converged, weights=weights, weights0=[W.clone() for W in W0], lr=lr,
        n_params=sum(W.numel() for W in weights), step_mode=runner.mode if runner else mode,
        layout=net.layout,
    )  # fmt: skip
