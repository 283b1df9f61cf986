r"""Deep linear networks (DLNs): data, ε-orthogonal initialisation, full-batch GD, and the theory.

Lecture section 2, *Law of parsimony in gradient dynamics* (Yaras et al. '23). Data are rows:
``X`` is ``(N, d_0)``, ``Y`` is ``(N, d_L)``, and the network with weights
``Ws = [W_1, ..., W_L]``, ``W_l`` of shape ``(d_l, d_{l-1})``, computes

.. math::

    F(X) = X W_1^\top W_2^\top \cdots W_L^\top = (W_L \cdots W_1 X^\top)^\top = (W_{L:1} X^\top)^\top,

which is the lecture's :math:`W_{L:1} X` with the lecture's columns turned into rows. The lecture's
whitening :math:`XX^\top = I` (columns) is :math:`X^\top X = I_{d_0}` here (rows).

Functional core:

* data — :func:`whitened_inputs`, :func:`whiten`, :func:`low_rank_targets`, :func:`one_hot_targets`;
* weights — :func:`init_weights`, :func:`init_weights_batched`, :func:`stack_runs`,
  :func:`unstack_runs`, :func:`end_to_end`;
* training — :func:`train` (one run, the public contract) and :func:`train_batched` (``B``
  independent runs as one batched computation: closed-form gradients with ``torch.bmm`` /
  ``torch.baddbmm``, no Python loop over runs), both returning a :class:`History`;
* theory — :func:`rho_recursion` (the shared singular value :math:`\rho(t)` of the untouched
  directions) and :func:`invariant_subspaces` (those directions, from the data and the init).

SVD diagnostics (singular values over time, singular-vector and principal angles, coinciding
singular values, balancedness) live in :mod:`lib.spectra`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

import torch
from torch import Tensor

from lib._checks import check_int as _check_int
from lib._checks import check_option as _check_option

__all__ = [
    "History",
    "end_to_end",
    "init_weights",
    "init_weights_batched",
    "invariant_subspaces",
    "loss_coefficient",
    "low_rank_targets",
    "one_hot_targets",
    "rho_recursion",
    "stack_runs",
    "train",
    "train_batched",
    "unstack_runs",
    "whiten",
    "whitened_inputs",
]

InitKind = Literal["orthogonal", "normal", "uniform"]
Reduction = Literal["mean", "sum"]
Activation = Literal["relu"]
Group = Literal["coupled", "decoupled"]

_INIT_KINDS = ("orthogonal", "normal", "uniform")
_REDUCTIONS = ("mean", "sum")
_ACTIVATIONS = (None, "relu")
_GROUPS = ("coupled", "decoupled")

#: A per-run hyperparameter: one number for all runs, or a ``(B,)`` tensor / sequence.
PerRun = Union[float, Sequence, Tensor]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _check_finite_tensor(name: str, t: object, ndim: tuple[int, ...]) -> Tensor:
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim not in ndim:
        want = " or ".join(f"{n}-D" for n in ndim)
        raise ValueError(f"{name} must be {want}, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return t


def _resolve_dtype(dtype: torch.dtype | None) -> torch.dtype:
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
    return dtype


def _generator_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _orthonormal(
    m: int, n: int, generator: torch.Generator | None, dtype: torch.dtype, device
) -> Tensor:
    """Haar-distributed ``(m, n)`` matrix with orthonormal columns (m >= n) or rows (m < n)."""
    tall = m >= n
    rows, cols = (m, n) if tall else (n, m)
    gdev = _generator_device(generator)
    G = torch.randn(rows, cols, generator=generator, dtype=torch.float64, device=gdev)
    Q, R = torch.linalg.qr(G)  # (rows, cols), (cols, cols)
    d = torch.sign(torch.diagonal(R))
    Q = Q * torch.where(d == 0, torch.ones_like(d), d)  # Haar: fix the signs of QR
    Q = Q if tall else Q.T  # (m, n)
    return Q.to(dtype=dtype, device=device)


def whitened_inputs(
    n_samples: int,
    d: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Random whitened inputs: ``N`` rows in ``d`` dimensions with orthonormal columns.

    .. math::

        X^\top X = I_d \qquad (\text{the lecture's } XX^\top = I \text{ in column form}).

    With ``n_samples == d`` the result is a random orthogonal matrix (``X = I`` up to a rotation).

    Args:
        n_samples: ``N``, at least ``d``.
        d: input dimension ``d_0``.
        generator: random source; sampling happens on its device (CPU when ``None``) in float64.
        dtype: result dtype (default: torch's default dtype).
        device: result device (default: CPU).

    Returns:
        ``X`` of shape ``(N, d)``.

    Reference:
        Yaras et al., *The law of parsimony in gradient descent for learning deep linear
        networks*, 2023, assumption of Thm. 1 (whitened data).

    Example:
        >>> X = whitened_inputs(50, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> bool(torch.allclose(X.T @ X, torch.eye(10, dtype=torch.float64)))
        True
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    d = _check_int("d", d, 1)
    if n_samples < d:
        raise ValueError(
            f"whitened inputs need n_samples >= d (X^T X = I_d has rank d), got N={n_samples}, d={d}"
        )
    return _orthonormal(n_samples, d, generator, _resolve_dtype(dtype), device)


def whiten(X: Tensor, eps: float = 0.0) -> Tensor:
    r"""Whiten the rows of ``X`` so that the columns become orthonormal.

    .. math::

        X_{\mathrm{w}} = X (X^\top X + \epsilon I)^{-1/2}, \qquad X_{\mathrm{w}}^\top X_{\mathrm{w}} = I
        \ \text{ when } \epsilon = 0.

    This is the pre-processing ("preconditioning") step the lecture mentions: any full-column-rank
    ``X`` with ``N >= d`` can be whitened. Computed through an SVD, so float64 gives
    :math:`\|X_w^\top X_w - I\| \approx 10^{-15}`.

    Args:
        X: ``(N, d)`` data, full column rank when ``eps == 0``.
        eps: ridge added to :math:`X^\top X` (``>= 0``).

    Returns:
        ``(N, d)`` whitened data on ``X``'s device and dtype.

    Reference:
        Lecture 6, section 2, footnote on whitened data.

    Example:
        >>> X = torch.randn(40, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> Xw = whiten(X)
        >>> bool(torch.allclose(Xw.T @ Xw, torch.eye(5, dtype=torch.float64)))
        True
    """
    X = _check_finite_tensor("X", X, (2,))
    if not (isinstance(eps, numbers.Real) and eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)  # S (d,), Vh (d, d)
    if eps == 0 and (
        S.numel() < X.shape[1] or S.min() <= S.max() * X.shape[1] * torch.finfo(X.dtype).eps
    ):
        raise ValueError("X is rank deficient; it cannot be whitened (use eps > 0 or more samples)")
    inv_sqrt = (S**2 + eps).rsqrt()
    return X @ (Vh.mT * inv_sqrt) @ Vh


def low_rank_targets(
    n_samples: int,
    d_out: int,
    r: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Random rank-``r`` targets: a product of two Gaussian factors.

    .. math::

        Y = \frac{1}{\sqrt r} A B, \qquad A_{ij}, B_{ij} \sim \mathcal N(0, 1),\
        A \in \mathbb R^{N\times r},\ B \in \mathbb R^{r\times d_L},

    so every entry of ``Y`` has unit variance and :math:`\operatorname{rank} Y = r` almost surely.
    With whitened ``X`` the cross-correlation :math:`M = Y^\top X` (the lecture's :math:`YX^\top`)
    then has rank ``r`` too (for ``X = I`` exactly, :math:`M = Y^\top`).

    Args:
        n_samples: ``N``.
        d_out: ``d_L``.
        r: rank, ``1 <= r <= min(N, d_L)``.
        generator: random source; sampling happens on its device (CPU when ``None``) in float64.
        dtype: result dtype (default: torch's default dtype).
        device: result device (default: CPU).

    Returns:
        ``Y`` of shape ``(N, d_L)``.

    Reference:
        Yaras et al. 2023, section 4 (rank-``r`` targets); Lecture 6, "L = 3, d = 30, r = 3".

    Example:
        >>> Y = low_rank_targets(30, 30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> int(torch.linalg.matrix_rank(Y))
        3
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    d_out = _check_int("d_out", d_out, 1)
    r = _check_int("r", r, 1)
    if r > min(n_samples, d_out):
        raise ValueError(
            f"rank r must be <= min(n_samples, d_out) = {min(n_samples, d_out)}, got {r}"
        )
    gdev = _generator_device(generator)
    A = torch.randn(n_samples, r, generator=generator, dtype=torch.float64, device=gdev)
    B = torch.randn(r, d_out, generator=generator, dtype=torch.float64, device=gdev)
    Y = (A @ B) / math.sqrt(r)  # (N, d_L)
    return Y.to(dtype=_resolve_dtype(dtype), device=device)


def one_hot_targets(
    labels: Tensor, n_classes: int | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    r"""One-hot class targets.

    .. math::

        Y_{ik} = \mathbb 1[y_i = k], \qquad Y \in \{0, 1\}^{N \times K}.

    With balanced classes and whitened ``X``, :math:`M = Y^\top X` has rank ``K = d_L``: the
    lecture's Case 1 (:math:`d_y = r`).

    Args:
        labels: ``(N,)`` integer labels in ``[0, K)``.
        n_classes: ``K`` (default: ``labels.max() + 1``).
        dtype: result dtype (default: torch's default dtype).

    Returns:
        ``Y`` of shape ``(N, K)`` on ``labels``' device.

    Reference:
        Lecture 6, section 3 (DLNs trained on classification data).

    Example:
        >>> one_hot_targets(torch.arange(6) % 3, dtype=torch.float64).sum(0)
        tensor([2., 2., 2.], dtype=torch.float64)
    """
    if (
        not isinstance(labels, Tensor)
        or labels.ndim != 1
        or labels.is_floating_point()
        or labels.is_complex()
    ):
        raise ValueError("labels must be a 1-D integer tensor of shape (N,)")
    if labels.numel() == 0:
        raise ValueError("labels is empty")
    if int(labels.min()) < 0:
        raise ValueError("labels must be >= 0")
    k = int(labels.max()) + 1 if n_classes is None else _check_int("n_classes", n_classes, 1)
    if int(labels.max()) >= k:
        raise ValueError(f"labels must be < n_classes={k}, got a label {int(labels.max())}")
    return torch.nn.functional.one_hot(labels.long(), k).to(_resolve_dtype(dtype))


# --------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------


def init_weights(
    dims: Sequence[int],
    scale: float,
    kind: InitKind = "orthogonal",
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> list[Tensor]:
    r"""ε-scaled initial weights of an ``L``-layer network with widths ``dims = [d_0, ..., d_L]``.

    ``"orthogonal"`` (the lecture's initialisation):

    .. math::

        W_l^\top W_l = \varepsilon^2 I_{d_{l-1}} \ (d_l \ge d_{l-1}) \quad\text{or}\quad
        W_l W_l^\top = \varepsilon^2 I_{d_l} \ (d_l < d_{l-1}),

    Haar-random. ``"normal"`` (i.i.d. Gaussian entries) and ``"uniform"`` (i.i.d.
    :math:`\mathcal U(-1, 1)` entries) are rescaled so that each layer's Frobenius norm equals the
    orthogonal one *exactly*: :math:`\|W_l\|_F = \varepsilon\sqrt{\min(d_l, d_{l-1})}`.

    Sampling happens in float64 on the generator's device (CPU when ``None``), then the result is
    cast to ``dtype`` and moved to ``device`` — so one seed gives the same network on every
    device and in every precision.

    Args:
        dims: ``[d_0, d_1, ..., d_L]``, ``L >= 1``, all positive.
        scale: ε, finite and ``> 0``.
        kind: ``"orthogonal"``, ``"normal"`` or ``"uniform"``.
        generator: random source.
        dtype: weight dtype (default: torch's default dtype); use float64 for SVD dynamics.
        device: weight device (default: CPU).

    Returns:
        ``Ws``, a list of ``L`` tensors, ``Ws[l-1]`` = :math:`W_l` of shape ``(d_l, d_{l-1})``.

    Reference:
        Lecture 6, section 2, "Orthogonal initialization"; Yaras et al. 2023, Thm. 1.

    Example:
        >>> Ws = init_weights([4, 4, 2], 0.1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> [tuple(W.shape) for W in Ws]
        [(4, 4), (2, 4)]
        >>> bool(torch.allclose(Ws[1] @ Ws[1].T, 0.01 * torch.eye(2, dtype=torch.float64)))
        True
    """
    _check_option("kind", kind, _INIT_KINDS)
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or len(dims) < 2:
        raise ValueError(
            f"dims must be a sequence [d_0, ..., d_L] with L >= 1 layers, got {dims!r}"
        )
    dims = [_check_int("every entry of dims", d, 1) for d in dims]
    if not (isinstance(scale, numbers.Real) and not isinstance(scale, bool)) or not (
        math.isfinite(scale) and scale > 0
    ):
        raise ValueError(f"scale (ε) must be a finite number > 0, got {scale!r}")
    dtype = _resolve_dtype(dtype)
    gdev = _generator_device(generator)
    Ws = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        if kind == "orthogonal":
            W = _orthonormal(d_out, d_in, generator, torch.float64, gdev)
        else:
            if kind == "normal":
                W = torch.randn(d_out, d_in, generator=generator, dtype=torch.float64, device=gdev)
            else:
                W = torch.rand(d_out, d_in, generator=generator, dtype=torch.float64, device=gdev)
                W = 2 * W - 1
            W = W * (math.sqrt(min(d_in, d_out)) / torch.linalg.matrix_norm(W))
        Ws.append((scale * W).to(dtype=dtype, device=device))  # (d_l, d_{l-1})
    return Ws


def init_weights_batched(
    n_runs: int,
    dims: Sequence[int],
    scale: PerRun,
    kind: InitKind = "orthogonal",
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> list[Tensor]:
    r"""Initial weights for ``B`` independent runs, stacked along a leading run axis.

    Run ``b`` is exactly ``init_weights(dims, scale[b], kind, generator, ...)`` called for
    ``b = 0, 1, ...`` in turn with the same generator (a one-off set-up cost; training is what
    :func:`train_batched` batches).

    .. math::

        \mathtt{Ws}[l-1][b] = W_l^{(b)}(0) \in \mathbb R^{d_l \times d_{l-1}}.

    Args:
        n_runs: ``B``.
        dims: ``[d_0, ..., d_L]``.
        scale: ε, one number or ``B`` numbers (sequence or ``(B,)`` tensor).
        kind: ``"orthogonal"``, ``"normal"`` or ``"uniform"``.
        generator: random source, consumed run after run.
        dtype: weight dtype (default: torch's default dtype).
        device: weight device (default: CPU).

    Returns:
        A list of ``L`` tensors of shape ``(B, d_l, d_{l-1})``.

    Reference:
        As :func:`init_weights`.

    Example:
        >>> Ws = init_weights_batched(8, [5, 5, 5], [0.1] * 8, generator=torch.Generator().manual_seed(0))
        >>> tuple(Ws[0].shape)
        (8, 5, 5)
    """
    n_runs = _check_int("n_runs", n_runs, 1)
    scales = _per_run_list("scale", scale, n_runs)
    runs = [init_weights(dims, s, kind, generator, dtype, device) for s in scales]
    return stack_runs(runs)


def stack_runs(runs: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    """Stack ``B`` weight lists (each ``L`` tensors ``(d_l, d_{l-1})``) into ``L`` tensors ``(B, d_l, d_{l-1})``.

    Args:
        runs: ``B`` lists of ``L`` tensors with matching shapes.

    Returns:
        A list of ``L`` tensors of shape ``(B, d_l, d_{l-1})``.

    Example:
        >>> Ws = init_weights([3, 3], 1.0, generator=torch.Generator().manual_seed(0))
        >>> tuple(stack_runs([Ws, Ws])[0].shape)
        (2, 3, 3)
    """
    if len(runs) == 0:
        raise ValueError("stack_runs needs at least one run")
    depth = len(runs[0])
    if any(len(run) != depth for run in runs):
        raise ValueError("every run must have the same number of layers")
    for i in range(depth):
        if any(run[i].shape != runs[0][i].shape for run in runs):
            raise ValueError(f"layer {i + 1} has different shapes across runs")
    return [torch.stack([run[i] for run in runs]) for i in range(depth)]


def unstack_runs(weights: Sequence[Tensor]) -> list[list[Tensor]]:
    """Inverse of :func:`stack_runs`: ``L`` tensors ``(B, d_l, d_{l-1})`` → ``B`` lists of ``L`` tensors.

    Args:
        weights: ``L`` tensors with a common leading run axis ``B``.

    Returns:
        ``B`` lists of ``L`` tensors of shape ``(d_l, d_{l-1})`` (views).

    Example:
        >>> Ws = init_weights_batched(2, [3, 3], 1.0, generator=torch.Generator().manual_seed(0))
        >>> len(unstack_runs(Ws))
        2
    """
    n_runs = weights[0].shape[0]
    return [[W[b] for W in weights] for b in range(n_runs)]


def end_to_end(weights: Sequence[Tensor]) -> Tensor:
    r"""The end-to-end matrix :math:`W_{L:1} = W_L W_{L-1} \cdots W_1`.

    .. math::

        F(X) = X W_{L:1}^\top \quad (\text{linear network}).

    Args:
        weights: ``L`` tensors ``(..., d_l, d_{l-1})`` (any common leading batch shape).

    Returns:
        ``(..., d_L, d_0)`` on the weights' device.

    Reference:
        Lecture 6, section 2, the DLN :math:`f_\Theta(x) = W_{L:1}x`.

    Example:
        >>> Ws = init_weights([3, 3, 3], 0.5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        >>> torch.linalg.svdvals(end_to_end(Ws))
        tensor([0.2500, 0.2500, 0.2500], dtype=torch.float64)
    """
    P = weights[0]
    for W in weights[1:]:
        P = W @ P
    return P


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """What :func:`train` / :func:`train_batched` recorded.

    Attributes:
        weights: one entry per recorded step; each entry is a list of ``L`` tensors,
            :math:`W_l` of shape ``(d_l, d_{l-1})`` (``train``) or ``(B, d_l, d_{l-1})``
            (``train_batched``). ``weights[0]`` is the initialisation, ``weights[-1]`` the
            weights after the last update.
        loss: ``(T,)`` (``train``) or ``(T, B)`` (``train_batched``): the loss of the recorded
            weights, ``loss[k]`` belongs to ``weights[k]``.
        steps: ``(T,)`` int64 on the CPU: the GD step of every record (``0, k, 2k, ..., steps``).
    """

    weights: list
    loss: Tensor
    steps: Tensor

    def trajectory(self, i: int) -> Tensor:
        """Layer ``W_{i+1}`` over the records, stacked: ``(T, d, d')`` or ``(T, B, d, d')``.

        ``i`` is a Python index into ``Ws`` (``trajectory(0)`` is :math:`W_1(t)`; negative
        indices count from the last layer).
        """
        return torch.stack([Ws[i] for Ws in self.weights])


def loss_coefficient(reduction: Reduction, n_samples: int, d_out: int) -> float:
    r"""The constant ``c`` in the loss :math:`\ell = \tfrac c2 \|F(X) - Y\|_F^2`.

    .. math::

        c = \frac{1}{N d_L} \ (\texttt{"mean"}), \qquad c = 1 \ (\texttt{"sum"}).

    Args:
        reduction: ``"mean"`` or ``"sum"``.
        n_samples: ``N``.
        d_out: ``d_L``.

    Returns:
        ``c`` as a Python float.

    Example:
        >>> loss_coefficient("mean", 30, 30) == 1 / 900
        True
    """
    _check_option("reduction", reduction, _REDUCTIONS)
    return 1.0 / (n_samples * d_out) if reduction == "mean" else 1.0


def _per_run_list(name: str, value: PerRun, n_runs: int) -> list[float]:
    if isinstance(value, Tensor):
        if value.ndim == 0:
            value = [value.item()] * n_runs
        elif value.ndim == 1 and value.numel() == n_runs:
            value = value.tolist()
        else:
            raise ValueError(
                f"{name} must be a number or have shape ({n_runs},), got {tuple(value.shape)}"
            )
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = [float(value)] * n_runs
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) != n_runs:
            raise ValueError(f"{name} must be a number or have {n_runs} entries, got {len(value)}")
        value = list(value)
    else:
        raise ValueError(f"{name} must be a number or a (B,) tensor, got {value!r}")
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{name} must hold real numbers")
    return [float(v) for v in value]


def _hyper(
    name: str,
    value: PerRun,
    n_runs: int,
    low: float,
    high: float,
    low_open: bool,
    high_open: bool,
    like: Tensor,
) -> float | Tensor:
    """Validate a hyperparameter; return a float when it is the same for all runs, else (B, 1, 1)."""
    values = _per_run_list(name, value, n_runs)
    for v in values:
        bad = (
            not math.isfinite(v)
            or (v <= low if low_open else v < low)
            or (v >= high if high_open else v > high)
        )
        if bad:
            lo = f"{name} {'>' if low_open else '>='} {low:g}"
            hi = "" if math.isinf(high) else f" and {'<' if high_open else '<='} {high:g}"
            raise ValueError(f"{name} must be finite with {lo}{hi}, got {v!r}")
    if all(v == values[0] for v in values):
        return values[0]
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(n_runs, 1, 1)


def _validate_weights(weights: Sequence[Tensor], batched: bool) -> list[Tensor]:
    name = "weights"
    if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or len(weights) == 0:
        raise ValueError(f"{name} must be a non-empty list of L tensors [W_1, ..., W_L]")
    ndim = 3 if batched else 2
    shape_doc = "(B, d_l, d_{l-1})" if batched else "(d_l, d_{l-1})"
    for i, W in enumerate(weights):
        if not isinstance(W, Tensor) or W.ndim != ndim:
            got = tuple(W.shape) if isinstance(W, Tensor) else type(W).__name__
            raise ValueError(f"W_{i + 1} must be a tensor of shape {shape_doc}, got {got}")
        _check_finite_tensor(f"W_{i + 1}", W, (ndim,))
        if W.dtype != weights[0].dtype or W.device != weights[0].device:
            raise ValueError("all weights must share one dtype and one device")
        if batched and W.shape[0] != weights[0].shape[0]:
            raise ValueError(
                f"all weights must share the run axis B: W_1 has B={weights[0].shape[0]}, "
                f"W_{i + 1} has B={W.shape[0]}"
            )
        if i > 0 and W.shape[-1] != weights[i - 1].shape[-2]:
            raise ValueError(
                f"shape mismatch: W_{i + 1} has {W.shape[-1]} input columns but W_{i} has "
                f"{weights[i - 1].shape[-2]} output rows (W_l must be (d_l, d_{{l-1}}))"
            )
    return [W.detach() for W in weights]


def _validate_data(
    name: str, t: Tensor, n_runs: int | None, dim: int, dim_name: str, like: Tensor
) -> Tensor:
    ndims = (2, 3) if n_runs is not None else (2,)
    t = _check_finite_tensor(name, t, ndims)
    if t.ndim == 3 and t.shape[0] != n_runs:
        raise ValueError(
            f"{name} has {t.shape[0]} runs on its leading axis but the weights have B={n_runs}"
        )
    if t.shape[-1] != dim:
        raise ValueError(
            f"shape mismatch: {name} has {t.shape[-1]} columns but {dim_name} = {dim} "
            f"(data are rows: X is (N, d_0), Y is (N, d_L))"
        )
    if t.dtype != like.dtype:
        raise ValueError(
            f"{name} has dtype {t.dtype} but the weights have {like.dtype}; cast with .to()"
        )
    if t.device != like.device:
        raise ValueError(
            f"{name} is on {t.device} but the weights are on {like.device}; move it with .to()"
        )
    return t.detach()


def _record_steps(steps: int, record_every: int) -> list[int]:
    out = list(range(0, steps + 1, record_every))
    if out[-1] != steps:
        out.append(steps)
    return out


def _run(
    Ws: list[Tensor],
    X: Tensor,
    Y: Tensor,
    lr: float | Tensor,
    steps: int,
    weight_decay: float | Tensor,
    momentum: float | Tensor,
    c: float,
    relu: bool,
    record_every: int,
) -> tuple[list[list[Tensor]], Tensor, Tensor]:
    """Batched full-batch GD on ``B`` runs: Ws[l] (B, d_l, d_{l-1}), X (B, N, d_0), Y (B, N, d_L)."""
    L = len(Ws)
    record = set(_record_steps(steps, record_every))
    scalar = all(isinstance(h, float) for h in (lr, weight_decay, momentum))
    use_momentum = not (isinstance(momentum, float) and momentum == 0.0)
    bufs: list[Tensor | None] = [None] * L
    rec_w: list[list[Tensor]] = []
    rec_loss: list[Tensor] = []
    rec_steps: list[int] = []

    def forward(Ws: list[Tensor]) -> tuple[list[Tensor], list[Tensor], Tensor]:
        Hs, Zs = [X], []
        H = X
        for i, W in enumerate(Ws):
            Z = torch.bmm(H, W.mT)  # (B, N, d_l)
            Zs.append(Z)
            H = torch.relu(Z) if (relu and i < L - 1) else Z
            Hs.append(H)
        return Hs, Zs, H - Y  # residual R (B, N, d_L)

    def check(t: int, loss: Tensor) -> None:
        bad = ~torch.isfinite(loss)
        if bool(bad.any()):
            runs = bad.nonzero().flatten().tolist()
            lrs = lr.flatten()[runs].tolist() if isinstance(lr, Tensor) else [lr]
            shown = ", ".join(f"{v:g}" for v in lrs[:5]) + (", ..." if len(lrs) > 5 else "")
            raise ValueError(
                f"training diverged: the loss became non-finite by step {t} "
                f"(run{'s' if len(runs) > 1 else ''} {runs[:10]}{'...' if len(runs) > 10 else ''}); "
                f"the learning rate lr={shown} is too large for this initialisation scale and data "
                f"(or the weights overflowed {Ws[0].dtype}); lower lr"
            )

    def keep(t: int, Ws: list[Tensor], R: Tensor) -> None:
        loss = 0.5 * c * R.square().sum(dim=(1, 2))  # (B,)
        check(t, loss)
        # step 0 holds the caller's tensors: copy them; later iterates are fresh tensors already
        rec_w.append([W.clone() for W in Ws] if t == 0 else list(Ws))
        rec_loss.append(loss)
        rec_steps.append(t)

    for t in range(steps):
        Hs, Zs, R = forward(Ws)
        if t in record:
            keep(t, Ws, R)
        # Backward, closed form: dℓ/dW_l = D_lᵀ H_{l-1} with D_L = c R, D_{l-1} = (D_l W_l) ⊙ σ'(Z_{l-1}).
        # c (and η, when it is per-run and there is no momentum) are folded into D or into alpha.
        D = R if (scalar or use_momentum) else R * (c * lr)  # (B, N, d_L)
        new = [None] * L
        for i in range(L - 1, -1, -1):
            W, H = Ws[i], Hs[i]  # W (B, d_l, d_{l-1}), H (B, N, d_{l-1})
            Dt = D.mT  # (B, d_l, N)
            if i > 0:
                D = torch.bmm(D, W)  # (B, N, d_{l-1}) — uses the old W_l
                if relu:
                    D = D * (Zs[i - 1] > 0)
            if not use_momentum:
                # W ← (1 − ηλ) W − η ∇ in one kernel when η, λ are shared by all runs.
                if scalar:
                    new[i] = torch.baddbmm(W, Dt, H, beta=1.0 - lr * weight_decay, alpha=-lr * c)
                else:
                    new[i] = torch.baddbmm(W * (1.0 - lr * weight_decay), Dt, H, alpha=-1.0)
            else:
                # heavy ball (PyTorch SGD convention): g = ∇ + λW, b ← μ b + g, W ← W − η b.
                if isinstance(weight_decay, float):
                    g = torch.baddbmm(W, Dt, H, beta=weight_decay, alpha=c)
                else:
                    g = torch.baddbmm(W * weight_decay, Dt, H, alpha=c)
                b = g if bufs[i] is None else g + momentum * bufs[i]
                bufs[i] = b
                new[i] = W - lr * b
        Ws = new
    _, _, R = forward(Ws)
    keep(steps, Ws, R)
    return rec_w, torch.stack(rec_loss), torch.tensor(rec_steps, dtype=torch.int64)


def train_batched(
    weights: Sequence[Tensor],
    X: Tensor,
    Y: Tensor,
    lr: PerRun,
    steps: int,
    weight_decay: PerRun = 0.0,
    momentum: PerRun = 0.0,
    reduction: Reduction = "mean",
    activation: Activation | None = None,
    record_every: int = 1,
) -> History:
    r"""Train ``B`` independent networks of the same shapes by full-batch GD, as one batched computation.

    For every run ``b`` (own weights, own data or shared data, own :math:`\eta, \lambda, \mu`):

    .. math::

        \ell = \frac c2 \big\|\sigma(\cdots\sigma(X W_1^\top)\cdots) W_L^\top - Y\big\|_F^2,\quad
        c = \tfrac1{N d_L}\ (\texttt{"mean"}),\ 1\ (\texttt{"sum"}),

    .. math::

        g_l = \nabla_{W_l}\ell + \lambda W_l,\quad b_l \leftarrow \mu b_l + g_l,\quad
        W_l \leftarrow W_l - \eta b_l \qquad (\mu = 0:\ W_l \leftarrow (1-\eta\lambda)W_l - \eta\nabla_{W_l}\ell),

    with :math:`\sigma` = identity, or ReLU after every layer but the last (``activation="relu"``);
    heavy-ball momentum follows ``torch.optim.SGD`` (dampening 0, buffer starts at the first
    gradient). The gradients are closed-form back-propagation
    (:math:`\nabla_{W_l}\ell = D_l^\top H_{l-1}`, :math:`D_L = c(F - Y)`,
    :math:`D_{l-1} = (D_l W_l)\odot\sigma'(Z_{l-1})`) with ``torch.bmm`` / ``torch.baddbmm`` over
    the run axis: no Python loop over runs and no autograd. The device and dtype follow the
    weights; use float64 for SVD dynamics (the law-of-parsimony checks need it).

    Args:
        weights: ``L`` tensors ``(B, d_l, d_{l-1})`` (e.g. from :func:`init_weights_batched`).
            Not modified.
        X: ``(N, d_0)`` shared by all runs, or ``(B, N, d_0)``.
        Y: ``(N, d_L)`` shared, or ``(B, N, d_L)``.
        lr: η > 0: one number or ``B`` numbers (sequence or ``(B,)`` tensor).
        steps: number of GD updates, ``>= 0``.
        weight_decay: λ >= 0, one number or ``B`` numbers.
        momentum: μ in ``[0, 1)``, one number or ``B`` numbers.
        reduction: ``"mean"`` (½·mean over all ``N·d_L`` entries) or ``"sum"`` (½·sum).
        activation: ``None`` (linear network) or ``"relu"``.
        record_every: record weights and loss every this many steps (step 0 and the last step are
            always recorded).

    Returns:
        A :class:`History`: ``weights[k]`` is a list of ``L`` tensors ``(B, d_l, d_{l-1})``,
        ``loss`` is ``(T, B)``, ``steps`` is ``(T,)``; on the weights' device.

    Raises:
        ValueError: on bad shapes, dtypes, devices, options or hyperparameters, on non-finite
            data, and when the loss becomes non-finite (divergence: the message names the run
            indices and their learning rate). Divergence is checked at every recorded step.

    Reference:
        Lecture 6, section 2, "Learning dynamics of GD"; Yaras et al. 2023, eq. (3).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> Ws = init_weights_batched(4, [6, 6, 6], [1e-2, 1e-1, 0.2, 0.3], generator=g, dtype=torch.float64)
        >>> X = torch.eye(6, dtype=torch.float64)
        >>> Y = low_rank_targets(6, 6, 2, generator=g, dtype=torch.float64)
        >>> h = train_batched(Ws, X, Y, lr=0.05, steps=100, reduction="sum", record_every=50)
        >>> tuple(h.loss.shape), h.steps.tolist()
        ((3, 4), [0, 50, 100])
    """
    Ws = _validate_weights(weights, batched=True)
    B = Ws[0].shape[0]
    X = _validate_data("X", X, B, Ws[0].shape[-1], "d_0 (columns of W_1)", Ws[0])
    Y = _validate_data("Y", Y, B, Ws[-1].shape[-2], "d_L (rows of W_L)", Ws[0])
    if X.shape[-2] != Y.shape[-2]:
        raise ValueError(
            f"shape mismatch: X has N={X.shape[-2]} rows but Y has N={Y.shape[-2]} rows"
        )
    steps = _check_int("steps", steps, 0)
    record_every = _check_int("record_every", record_every, 1)
    _check_option("reduction", reduction, _REDUCTIONS)
    _check_option("activation", activation, _ACTIVATIONS)
    lr = _hyper("lr", lr, B, 0.0, math.inf, True, False, Ws[0])
    weight_decay = _hyper("weight_decay", weight_decay, B, 0.0, math.inf, False, False, Ws[0])
    momentum = _hyper("momentum", momentum, B, 0.0, 1.0, False, True, Ws[0])
    X = X.expand(B, *X.shape[-2:]) if X.ndim == 2 else X  # (B, N, d_0)
    Y = Y.expand(B, *Y.shape[-2:]) if Y.ndim == 2 else Y  # (B, N, d_L)
    c = loss_coefficient(reduction, X.shape[-2], Y.shape[-1])
    with torch.no_grad():
        rec_w, loss, rec_steps = _run(
            Ws, X, Y, lr, steps, weight_decay, momentum, c, activation == "relu", record_every
        )
    return History(weights=rec_w, loss=loss, steps=rec_steps)


def train(
    weights: Sequence[Tensor],
    X: Tensor,
    Y: Tensor,
    lr: float,
    steps: int,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    reduction: Reduction = "mean",
    activation: Activation | None = None,
    record_every: int = 1,
) -> History:
    r"""Train one deep (linear) network by full-batch gradient descent.

    The network computes :math:`F(X) = \sigma(\cdots\sigma(X W_1^\top)\cdots)W_L^\top` (the
    lecture's :math:`W_{L:1}X` in column form when :math:`\sigma` is the identity) and GD minimises

    .. math::

        \ell(\Theta) = \frac c2 \|F(X) - Y\|_F^2,\qquad
        W_l \leftarrow (1-\eta\lambda) W_l - \eta \nabla_{W_l}\ell \quad \forall l,

    with :math:`c = 1/(N d_L)` for ``"mean"`` and ``1`` for ``"sum"`` (the lecture's loss);
    ``momentum > 0`` makes it heavy ball as in ``torch.optim.SGD`` (see :func:`train_batched`).
    Same computation as :func:`train_batched` with ``B = 1``.

    Args:
        weights: ``L`` tensors, :math:`W_l` of shape ``(d_l, d_{l-1})``. Not modified.
        X: ``(N, d_0)`` inputs as rows.
        Y: ``(N, d_L)`` targets as rows.
        lr: η > 0.
        steps: number of GD updates, ``>= 0``.
        weight_decay: λ >= 0.
        momentum: μ in ``[0, 1)``.
        reduction: ``"mean"`` or ``"sum"``.
        activation: ``None`` (linear) or ``"relu"`` (after every layer but the last).
        record_every: record every this many steps; step 0 (the initialisation) and step
            ``steps`` are always recorded.

    Returns:
        A :class:`History`: ``weights`` (``T`` lists of ``L`` tensors ``(d_l, d_{l-1})``),
        ``loss`` ``(T,)``, ``steps`` ``(T,)``; on the weights' device.

    Raises:
        ValueError: bad shapes, options, hyperparameters, non-finite data, or divergence (the
            message names the learning rate).

    Reference:
        Lecture 6, section 2, "Learning dynamics of GD"; Yaras et al. 2023, eq. (3).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> Ws = init_weights([30, 30, 30, 30], 0.1, generator=g, dtype=torch.float64)
        >>> X = torch.eye(30, dtype=torch.float64)
        >>> Y = low_rank_targets(30, 30, 3, generator=g, dtype=torch.float64)
        >>> h = train(Ws, X, Y, lr=0.01, steps=1000, reduction="sum", record_every=100)
        >>> bool(h.loss[-1] < 1e-6 * h.loss[0])
        True
    """
    Ws = _validate_weights(weights, batched=False)
    X = _validate_data("X", X, None, Ws[0].shape[-1], "d_0 (columns of W_1)", Ws[0])
    Y = _validate_data("Y", Y, None, Ws[-1].shape[-2], "d_L (rows of W_L)", Ws[0])
    for name, v in (("lr", lr), ("weight_decay", weight_decay), ("momentum", momentum)):
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            raise ValueError(
                f"{name} must be a number for train (use train_batched for per-run values), got {v!r}"
            )
    h = train_batched(
        [W.unsqueeze(0) for W in Ws],
        X,
        Y,
        lr,
        steps,
        weight_decay,
        momentum,
        reduction,
        activation,
        record_every,
    )
    return History(
        weights=[[W[0] for W in Ws_t] for Ws_t in h.weights], loss=h.loss[:, 0], steps=h.steps
    )


# --------------------------------------------------------------------------------------------
# theory
# --------------------------------------------------------------------------------------------


def rho_recursion(
    scale: PerRun,
    lr: PerRun,
    steps: int,
    depth: int,
    n_samples: int | None = None,
    d_out: int | None = None,
    weight_decay: PerRun = 0.0,
    momentum: PerRun = 0.0,
    reduction: Reduction = "mean",
    group: Group = "coupled",
    record_every: int = 1,
) -> Tensor:
    r"""The shared singular value :math:`\rho(t)` of the untouched directions, by its scalar recursion.

    Setting (Yaras et al. '23, Thm. 1, in this module's row convention): linear network,
    whitened inputs :math:`X^\top X = I_{d_0}` (``X = I`` included), hidden layers square
    :math:`d_0 = d_1 = \dots = d_{L-1} = d`, ε-orthogonal initialisation
    (:func:`init_weights` with ``kind="orthogonal"``), full-batch GD with weight decay λ and,
    optionally, heavy-ball momentum μ as in :func:`train`, targets with
    :math:`M = Y^\top X` of rank ``r``.

    Derivation. With :math:`X^\top X = I` the loss gradient through the end-to-end matrix is
    :math:`\nabla_{W_{L:1}}\ell = c\,(W_{L:1} - M)` and
    :math:`\nabla_{W_l}\ell = W_{L:l+1}^\top\, c(W_{L:1} - M)\, W_{l-1:1}^\top`. Take a unit
    :math:`v` in the input space and follow its chain :math:`v_1 = v`,
    :math:`v_{l+1} = W_l(0)v_l/\varepsilon`. If every layer acts on its chain vector as
    :math:`\rho` times the isometry :math:`v_l \mapsto v_{l+1}` (true at :math:`t=0` with
    :math:`\rho = \varepsilon`), then :math:`W_{l-1:1}^\top v_l = \rho^{l-1} v`,
    :math:`W_{L:1} v = \rho^{L} v_{L+1}` and :math:`W_{L:l+1}^\top v_{L+1} = \rho^{L-l} v_{l+1}`.

    * ``group="coupled"``: :math:`v` with :math:`Mv = 0` and :math:`M^\top v_{L+1} = 0` (the
      target has no component on either side of the chain — the end-to-end map's target
      component there is zero) and :math:`v \perp \ker W_{L:1}(0)`. Then
      :math:`\nabla_{W_l}\ell\, v_l = c\,\rho^{(l-1) + L + (L-l)}\, v_{l+1} = c\,\rho^{2L-1} v_{l+1}`,
      the same for every layer, and the same from the left side; so the structure is kept and

      .. math::

          \rho(t+1) = (1-\eta\lambda)\,\rho(t) - \eta\, c\, \rho(t)^{2L-1}, \qquad \rho(0) = \varepsilon,

      :math:`c = 1/(N d_L)` (``"mean"``) or :math:`1` (``"sum"``). It applies to **all L layers**.
      Square network (:math:`d_L = d`): exactly :math:`d - 2r` singular values of every layer
      equal :math:`\rho(t)` (generic data and init) — the lecture's Case 2. Non-square last layer
      (:math:`d_L < d`): :math:`d_L - 2r` of them, when positive (none in Case 1,
      :math:`d_L = r`).
    * ``group="decoupled"`` (only when :math:`d_L < d`): :math:`v` with :math:`Mv = 0` whose chain
      the last layer annihilates, :math:`W_L(0) v_L = 0`. Then :math:`W_{L:1}v = 0`, every
      gradient vanishes on the chain and

      .. math::

          \rho(t+1) = (1-\eta\lambda)\,\rho(t), \qquad \rho(0) = \varepsilon,

      i.e. :math:`c` is replaced by 0. It applies to **layers 1..L−1 only** (:math:`W_L` is 0
      there), with :math:`d - d_L - r` directions; in Case 1 (:math:`d_L = r`) that is the
      lecture's :math:`m = d - 2d_y`.

    With momentum the same argument holds step by step (the buffers keep the block structure), so
    :math:`b(t+1) = \mu b(t) + \lambda\rho(t) + c\rho(t)^{2L-1}` and
    :math:`\rho(t+1) = \rho(t) - \eta b(t+1)` (``c = 0`` for ``"decoupled"``).
    The directions themselves are :func:`invariant_subspaces`; they never move.

    Computed in float64; every argument but ``steps``, ``depth``, ``n_samples``, ``d_out``,
    ``reduction``, ``group`` and ``record_every`` may be a number or a ``(B,)`` tensor/sequence
    (runs of a sweep).

    Args:
        scale: ε, the initial scale.
        lr: η > 0.
        steps: number of GD updates.
        depth: ``L >= 1``.
        n_samples: ``N`` (needed for ``reduction="mean"``).
        d_out: ``d_L`` (needed for ``reduction="mean"``).
        weight_decay: λ >= 0.
        momentum: μ in ``[0, 1)``.
        reduction: ``"mean"`` or ``"sum"``, as passed to :func:`train`.
        group: ``"coupled"`` or ``"decoupled"`` (see above).
        record_every: as in :func:`train`, so that ``rho[k]`` belongs to ``history.weights[k]``.

    Returns:
        ``(T,)`` float64 on the CPU, or ``(T, B)`` when any argument is per-run.

    Reference:
        Yaras et al., *The law of parsimony in gradient descent for learning deep linear
        networks*, 2023, Thm. 1 and its proof; Lecture 6, section 2 (:math:`\rho(t) I_m` block).

    Example:
        >>> rho = rho_recursion(1e-1, 0.5, 4, depth=3, reduction="sum")
        >>> [round(v, 8) for v in rho.tolist()]
        [0.1, 0.099995, 0.09999, 0.099985, 0.09998001]
    """
    steps = _check_int("steps", steps, 0)
    depth = _check_int("depth", depth, 1)
    record_every = _check_int("record_every", record_every, 1)
    _check_option("reduction", reduction, _REDUCTIONS)
    _check_option("group", group, _GROUPS)
    if group == "coupled":
        if reduction == "mean":
            if n_samples is None or d_out is None:
                raise ValueError(
                    'reduction="mean" needs n_samples (N) and d_out (d_L): c = 1/(N d_L)'
                )
            c = loss_coefficient(
                reduction, _check_int("n_samples", n_samples, 1), _check_int("d_out", d_out, 1)
            )
        else:
            c = 1.0
    else:
        c = 0.0

    def as_tensor(name: str, v: PerRun, low_open: bool, high: float = math.inf) -> Tensor:
        t = (
            torch.as_tensor(v, dtype=torch.float64).flatten()
            if not isinstance(v, numbers.Real)
            else None
        )
        if t is None:
            t = torch.tensor([float(v)], dtype=torch.float64)
        ok = torch.isfinite(t) & ((t > 0) if low_open else (t >= 0)) & (t < high)
        if not bool(ok.all()):
            raise ValueError(
                f"{name} must be finite and {'> 0' if low_open else '>= 0'}"
                f"{'' if math.isinf(high) else f' and < {high:g}'}, got {v!r}"
            )
        return t

    per_run = any(not isinstance(v, numbers.Real) for v in (scale, lr, weight_decay, momentum))
    eps_, eta, lam, mu = torch.broadcast_tensors(
        as_tensor("scale", scale, True),
        as_tensor("lr", lr, True),
        as_tensor("weight_decay", weight_decay, False),
        as_tensor("momentum", momentum, False, 1.0),
    )
    record = set(_record_steps(steps, record_every))
    rho, buf = eps_.clone(), torch.zeros_like(eps_)
    out = []
    for t in range(steps + 1):
        if t in record:
            out.append(rho.clone())
        if t == steps:
            break
        g = lam * rho + c * rho ** (2 * depth - 1)
        buf = mu * buf + g
        rho = rho - eta * buf
    res = torch.stack(out)  # (T, B)
    return res if per_run else res[:, 0]


def _orth_complement_null(C: Tensor, n: int, rtol: float) -> Tensor:
    """Orthonormal basis (n, k) of {v : C v = 0} for C (m, n) with O(1)-scaled rows."""
    if C.shape[0] == 0:
        return torch.eye(n, dtype=C.dtype, device=C.device)
    _, S, Vh = torch.linalg.svd(C, full_matrices=True)  # Vh (n, n)
    rank = int((S > rtol * max(1.0, float(S.max()))).sum())
    return Vh[rank:].mT  # (n, n - rank)


def invariant_subspaces(
    weights0: Sequence[Tensor],
    X: Tensor,
    Y: Tensor,
    group: Group = "coupled",
    rtol: float = 1e-9,
) -> list[tuple[Tensor, Tensor]]:
    r"""Bases of the untouched singular subspaces :math:`(U_{l,2}, V_{l,2})`, from the data and the init.

    In the setting of :func:`rho_recursion` (whitened inputs, square hidden layers,
    ε-orthogonal init) every layer keeps the block form of the lecture's theorem,

    .. math::

        W_l(t) = \begin{bmatrix} U_{l,1} & U_{l,2}\end{bmatrix}
        \begin{bmatrix}\widetilde W_l(t) & 0\\ 0 & \rho(t) I_m\end{bmatrix}
        \begin{bmatrix} V_{l,1} & V_{l,2}\end{bmatrix}^\top, \qquad V_{l+1,2} = U_{l,2},

    with :math:`U_{l,2}, V_{l,2}` fixed for all :math:`t`. This function computes them at
    :math:`t = 0` from :math:`M = Y^\top X` (``(d_L, d_0)``) and :math:`P_0 = W_{L:1}(0)`:

    * ``"coupled"``: :math:`V_{1,2}` spans
      :math:`\{v \in (\ker P_0)^\perp : M v = 0,\ M^\top P_0 v = 0\}`; all ``L`` layers.
    * ``"decoupled"``: :math:`V_{1,2}` spans :math:`\{v : M v = 0,\ P_0 v = 0\}`; layers
      ``1..L-1`` (non-square last layer only).

    then :math:`U_{l,2} = V_{l+1,2} = W_l(0) V_{l,2} / \varepsilon` (so the pairing of the columns
    is kept: :math:`U_{l,2}^\top W_l(t) V_{l,2} = \rho(t) I_m` exactly, not just up to a rotation).
    Rank decisions use ``rtol`` on row-normalised constraints; use float64.

    Args:
        weights0: the initial ``L`` weights, :math:`W_l(0)` of shape ``(d_l, d_{l-1})``,
            ε-orthogonal.
        X: ``(N, d_0)`` whitened inputs (:math:`X^\top X = I`).
        Y: ``(N, d_L)`` targets.
        group: ``"coupled"`` or ``"decoupled"``.
        rtol: relative tolerance for the rank decisions.

    Returns:
        One ``(U_l2, V_l2)`` pair per layer it applies to (``L`` for ``"coupled"``, ``L − 1``
        for ``"decoupled"``): ``U_l2`` ``(d_l, m)`` and ``V_l2`` ``(d_{l-1}, m)`` with
        orthonormal columns, on the weights' device. ``m`` may be 0.

    Reference:
        Yaras et al. 2023, Thm. 1 (proof: construction of :math:`U_l, V_l`); Lecture 6,
        section 2, "Invariance of subspaces in the weights".

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> Ws = init_weights([10, 10, 10], 0.1, generator=g, dtype=torch.float64)
        >>> Y = low_rank_targets(10, 10, 2, generator=g, dtype=torch.float64)
        >>> U2, V2 = invariant_subspaces(Ws, torch.eye(10, dtype=torch.float64), Y)[0]
        >>> tuple(V2.shape)  # d - 2r = 6 directions
        (10, 6)
    """
    _check_option("group", group, _GROUPS)
    Ws = _validate_weights(weights0, batched=False)
    X = _validate_data("X", X, None, Ws[0].shape[-1], "d_0 (columns of W_1)", Ws[0])
    Y = _validate_data("Y", Y, None, Ws[-1].shape[-2], "d_L (rows of W_L)", Ws[0])
    L, d0 = len(Ws), Ws[0].shape[1]
    M = Y.T @ X  # (d_L, d_0), the lecture's Y Xᵀ
    P0 = end_to_end(Ws)  # (d_L, d_0)

    def row_basis(A: Tensor) -> tuple[Tensor, Tensor]:
        U, S, Vh = torch.linalg.svd(A, full_matrices=True)
        k = (
            int((S > rtol * max(float(S.max()), torch.finfo(A.dtype).tiny)).sum())
            if S.numel()
            else 0
        )
        return U[:, :k], Vh  # left basis of range(A), full Vh (rows k.. span ker A)

    Um, Vh_m = row_basis(M)
    r = Um.shape[1]
    Vm = Vh_m[:r].mT  # (d_0, r): row space of M
    Up, Vh_p = row_basis(P0)
    k = Up.shape[1]
    null_P0 = Vh_p[k:].mT  # (d_0, d_0 - k)
    Pn = P0 / torch.linalg.matrix_norm(P0, ord=2)  # O(1) scale
    if group == "coupled":
        C = torch.cat([Vm.mT, Um.mT @ Pn, null_P0.mT])  # (·, d_0)
        n_layers = L
    else:
        C = torch.cat([Vm.mT, Vh_p[:k]])
        n_layers = L - 1
    V2 = _orth_complement_null(C, d0, rtol)  # (d_0, m)
    out = []
    for i in range(n_layers):
        U2 = Ws[i] @ V2  # (d_l, m) = ε × orthonormal columns for an ε-orthogonal W_l(0)
        U2 = U2 / torch.linalg.vector_norm(U2, dim=0, keepdim=True).clamp_min(
            torch.finfo(U2.dtype).tiny
        )
        out.append((U2, V2))
        V2 = U2
    return out
