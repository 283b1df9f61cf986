r"""The large completion problem: the target as factors, the entries as sorted int64 lists.

See :mod:`lib.completion.large`. Nothing here allocates ``d × d`` except :func:`to_dense`
(checks at small ``d``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lib import dln
from lib._checks import check_device, check_dtype, check_generator, check_int
from lib.completion.problem import Problem, _check_real

__all__ = ["LargeProblem", "make_large_problem", "to_dense"]

#: Observed entries per chunk of a gather / ``index_add`` pass (bounds the temporaries).
CHUNK = 1 << 22

#: Largest ``d`` :func:`to_dense` builds (it allocates ``d × d``: for checks at small ``d``).
DENSE_MAX_D = 4096

#: Default size of the held-out sample of unobserved entries.
N_TEST = 100_000


@dataclass(frozen=True)
class LargeProblem:
    r"""A completion problem held as factors and index lists: :math:`\Phi = s\,A B^\top`.

    Attributes:
        left: :math:`A`, ``(d, r)`` float64.
        right: :math:`B`, ``(d, r)`` float64.
        scale: ``s`` (``2/√d``).
        rows, cols: ``(|Ω|,)`` int64, the observed entries, unique, sorted by row then column.
        values: ``(|Ω|,)`` :math:`\Phi` there, in the problem's dtype.
        test_rows, test_cols: ``(n_test,)`` int64, held-out unobserved entries, unique, sorted.
        test_values: ``(n_test,)`` :math:`\Phi` there.
        seed: seed of the subspace iteration's random start.
    """

    left: Tensor
    right: Tensor
    scale: float
    rows: Tensor
    cols: Tensor
    values: Tensor
    test_rows: Tensor
    test_cols: Tensor
    test_values: Tensor
    seed: int

    @property
    def d(self) -> int:
        """``d``, the side of the square target."""
        return self.left.shape[0]

    @property
    def rank(self) -> int:
        """``r``."""
        return self.left.shape[1]

    @property
    def n_observed(self) -> int:
        r""":math:`|\Omega|`."""
        return self.rows.numel()

    @property
    def observed_fraction(self) -> float:
        r""":math:`|\Omega| / d^2`."""
        return self.n_observed / self.d**2


def _entries(A: Tensor, B: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    r""":math:`(A B^\top)_{ij}` at ``(rows, cols)``, chunk by chunk: ``(n,)``."""
    out = A.new_empty(rows.numel())
    for s in range(0, rows.numel(), CHUNK):
        e = s + CHUNK
        out[s:e] = (A[rows[s:e]] * B[cols[s:e]]).sum(1)
    return out


def _isin_sorted(x: Tensor, ref: Tensor) -> Tensor:
    """``x ∈ ref`` elementwise for a sorted ``ref`` (binary search: no ``len(x) × len(ref)``)."""
    if ref.numel() == 0:
        return torch.zeros_like(x, dtype=torch.bool)
    i = torch.searchsorted(ref, x).clamp_(max=ref.numel() - 1)
    return ref[i] == x


def _sample_keys(total: int, n: int, gen, device, exclude: Tensor | None) -> Tensor:
    """``n`` distinct keys uniform in ``[0, total)`` minus ``exclude`` (sorted), sorted.

    Independent uniform draws are pooled (``torch.unique``) until ``n`` are distinct, then a
    uniformly random ``n`` of them are kept: the result is a uniform ``n``-subset (the pool's law
    is invariant under permutations of the keys). No draw has ``total`` elements.
    """
    n_excl = 0 if exclude is None else exclude.numel()
    keys = torch.empty(0, dtype=torch.int64, device=device)
    while keys.numel() < n:
        missing, free = n - keys.numel(), total - n_excl - keys.numel()
        draw = min(int(missing * (total / free) * 1.05) + 64, max(1, total // 2))
        new = torch.randint(0, total, (draw,), generator=gen, device=device)
        if exclude is not None:
            new = new[~_isin_sorted(new, exclude)]
        keys = torch.unique(torch.cat([keys, new]))  # sorted
    if keys.numel() > n:
        keep = torch.randperm(keys.numel(), generator=gen, device=device)[:n]
        keys = keys[keep].sort().values
    return keys


def make_large_problem(
    d: int,
    rank: int,
    observed_fraction: float,
    n_test: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> LargeProblem:
    r"""A random rank-``r`` target as factors, observed entries and a held-out sample, no ``d × d``.

    .. math::

        \Phi = \frac{2}{\sqrt d}\, A B^\top,\quad A_{ij}, B_{ij} \sim \mathcal N(0, 1), \qquad
        |\Omega| = \operatorname{round}(p\,d^2) \text{ entries, uniformly without replacement,}

    as :func:`lib.completion.make_problem` (``A``, ``B`` drawn first alike: one seed, one
    :math:`\Phi`). Entries are int64 keys ``i·d + j`` (10⁸ entries and more) from uniform draws
    made unique; the held-out sample is uniform among the unobserved entries. Sampling runs on the
    generator's device (a CUDA generator for large ``d`` on a GPU), then values are cast and moved.

    Args:
        d: side of the square matrix, ``>= 2``.
        rank: ``r``, ``1 <= r < d``.
        observed_fraction: ``p`` in ``(0, 1)``.
        n_test: size of the held-out sample (default ``min(100,000, d² − |Ω|)``).
        generator: random source (factors, entries, held-out sample, seed).
        dtype: dtype of the values (default: torch's default dtype).
        device: device of the index and value tensors (default: CPU).

    Returns:
        A :class:`LargeProblem`.

    Example:
        >>> P = make_large_problem(1000, 5, 0.01, n_test=500, generator=torch.Generator().manual_seed(0))
        >>> P.n_observed, P.test_rows.numel(), P.rows.dtype
        (10000, 500, torch.int64)
    """
    d = check_int("d", d, 2)
    if d * d >= 2**62:
        raise ValueError(f"d must be < 2**31 (entries are int64 keys i*d + j), got {d}")
    rank = check_int("rank", rank, 1)
    if rank >= d:
        raise ValueError(f"rank must be < d (a rank-{rank} target needs d > {rank}), got d={d}")
    p = _check_real("observed_fraction", observed_fraction, 0.0, low_open=True)
    n_obs = round(p * d * d)
    if not 1 <= n_obs < d * d:
        raise ValueError(
            f"observed_fraction must observe at least one of the {d * d} entries and leave one "
            f"for the held-out test error (0 < p < 1), got {observed_fraction!r}"
        )
    free = d * d - n_obs
    n_test = min(N_TEST, free) if n_test is None else check_int("n_test", n_test, 1)
    if n_test > free:
        raise ValueError(f"n_test must be <= the {free} unobserved entries, got {n_test}")
    check_generator(generator)
    check_dtype(dtype)
    check_device(device)
    dtype = dln._resolve_dtype(dtype)
    gdev = torch.device("cpu") if generator is None else generator.device
    A = torch.randn(d, rank, generator=generator, dtype=torch.float64, device=gdev)
    B = torch.randn(d, rank, generator=generator, dtype=torch.float64, device=gdev)
    keys = _sample_keys(d * d, n_obs, generator, gdev, None)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=gdev).item())
    test = _sample_keys(d * d, n_test, generator, gdev, keys)
    s = 2.0 / math.sqrt(d)
    A, B, keys, test = (t.to(device) for t in (A, B, keys, test))
    rows, cols, trows, tcols = keys // d, keys % d, test // d, test % d
    del keys, test
    vals = (s * _entries(A, B, rows, cols)).to(dtype)
    tvals = (s * _entries(A, B, trows, tcols)).to(dtype)
    return LargeProblem(A, B, s, rows, cols, vals, trows, tcols, tvals, seed)


def _check_large(problem: object) -> LargeProblem:
    """Structure, dtypes and devices of a :class:`LargeProblem`; then sorted, unique, in range."""
    if not isinstance(problem, LargeProblem):
        raise ValueError(
            "problem must be a lib.completion.large.LargeProblem (from make_large_problem), got "
            f"{type(problem).__name__}"
        )
    A, B = problem.left, problem.right
    if not (isinstance(A, Tensor) and isinstance(B, Tensor) and A.ndim == 2 and A.shape == B.shape):
        raise ValueError("problem.left and problem.right must be (d, r) tensors of one shape")
    d, dev = A.shape[0], A.device
    for a, b, v in (("rows", "cols", "values"), ("test_rows", "test_cols", "test_values")):
        i, j, x = getattr(problem, a), getattr(problem, b), getattr(problem, v)
        if not all(isinstance(t, Tensor) and t.device == dev and t.ndim == 1 for t in (i, j, x)):
            raise ValueError(f"problem.{a}, {b}, {v} must be 1-D tensors on problem.left's device")
        if i.dtype != torch.int64 or j.dtype != torch.int64:
            raise ValueError(f"problem.{a} and problem.{b} must be int64 (10⁸ entries, d² keys)")
        if not (i.shape == j.shape == x.shape) or i.numel() == 0:
            raise ValueError(f"problem.{a}, {b}, {v} must be non-empty and of one length")
        if x.dtype not in (torch.float32, torch.float64) or x.dtype != problem.values.dtype:
            raise ValueError(f"problem.{v} must be float32 or float64 like problem.values")
        keys = i * d + j
        ok = bool((i >= 0).all() & (i < d).all() & (j >= 0).all() & (j < d).all())
        if not ok or not bool((keys[1:] > keys[:-1]).all()):
            raise ValueError(
                f"problem.{a}, problem.{b} must be unique entries in [0, {d}), sorted by row then "
                "column; build the problem with make_large_problem"
            )
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"problem.{v} contains NaN or infinite entries")
    return problem


def to_dense(problem: LargeProblem) -> Problem:
    r"""The :class:`lib.completion.Problem` of a small :class:`LargeProblem` (for checks).

    Target :math:`s\,AB^\top` as :func:`lib.completion.make_problem` computes it, mask ``True``
    at ``(rows, cols)``. Allocates ``d × d``: only for ``d <= DENSE_MAX_D``.

    Args:
        problem: from :func:`make_large_problem`.

    Returns:
        A :class:`lib.completion.Problem` (problem's device and dtype, its ``seed``).

    Example:
        >>> P = make_large_problem(20, 2, 0.5, generator=torch.Generator().manual_seed(0))
        >>> to_dense(P).n_observed == P.n_observed
        True
    """
    problem = _check_large(problem)
    d = problem.d
    if d > DENSE_MAX_D:
        raise ValueError(
            f"to_dense builds the {d}x{d} target; it is for checks at d <= {DENSE_MAX_D}, got d={d}"
        )
    target = ((problem.left @ problem.right.T) * problem.scale).to(problem.values.dtype)
    mask = torch.zeros(d, d, dtype=torch.bool, device=target.device)
    mask[problem.rows, problem.cols] = True
    vals = target[problem.rows, problem.cols]
    return Problem(target, mask, problem.rank, problem.rows, problem.cols, vals, problem.seed)
