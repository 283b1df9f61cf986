r"""Streaming :func:`~lib.metrics.nc1` and :func:`~lib.metrics.trace_ratio` for data that does
not fit in memory: the same two passes as the in-memory functions, fed batch by batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lib._checks import check_num_classes
from lib._checks import check_option as _check_option
from lib.metrics._core import (
    _VARIANTS,
    Variant,
    _add_class_sums,
    _centred_means,
    _check_features,
    _check_labels,
    _check_nonempty,
    _check_range,
    _compute_dtype,
    _means_coincide,
    _pinv_factor,
    _result_dtype,
    _within_sums,
)


class CollapseAccumulator:
    r"""Two-pass streaming :func:`nc1` and :func:`trace_ratio` for data that does not fit in memory.

    Pass 1 (:meth:`update_means`) accumulates class sums and counts, ``(K, p)`` and ``(K,)``, in
    float64. Pass 2 (:meth:`update_within`) accumulates, with the final class means and the
    pseudo-inverse factor :math:`\boldsymbol P` of :func:`nc1` fixed,

    .. math::
        \sum_i\|\boldsymbol h_i-\bar{\boldsymbol h}_{y_i}\|^2 \quad\text{and}\quad
        \sum_i\|\boldsymbol P^\top(\boldsymbol h_i-\bar{\boldsymbol h}_{y_i})\|^2,

    exactly the sums the in-memory functions form, so the results agree with them up to the order
    of floating-point additions. Memory is :math:`O(pK)`. Both passes must see the same samples
    (any order and batching; no random augmentation): pass 2's class counts are checked against
    pass 1's. State lives on the device of the first batch; later batches are moved there.
    Degenerate data gets the in-memory functions' answers: when all class means coincide,
    :meth:`nc1` is 0 and :meth:`trace_ratio` is ``inf`` (see :func:`trace_ratio`). Features may
    have any floating dtype, float16 and bfloat16 included (accumulated in float64).

    Args:
        num_classes: ``K >= 2``.
        variant: as in :func:`nc1`.

    Reference:
        Lecture 6; the exact low-rank evaluation of :func:`nc1`.

    Example:
        >>> from lib.metrics import nc1
        >>> H = torch.randn(12, 5, dtype=torch.float64)
        >>> y = torch.arange(12) % 3
        >>> batches = [(H[:5], y[:5]), (H[5:], y[5:])]
        >>> acc = CollapseAccumulator(num_classes=3)
        >>> for Hb, yb in batches:
        ...     acc.update_means(Hb, yb)
        >>> for Hb, yb in batches:
        ...     acc.update_within(Hb, yb)
        >>> bool(torch.allclose(acc.nc1(), nc1(H, y), rtol=1e-12))
        True
    """

    def __init__(self, num_classes: int, *, variant: Variant = "lecture") -> None:
        self.num_classes = check_num_classes(num_classes)
        _check_option("variant", variant, _VARIANTS)
        self.variant = variant
        self._sums: Tensor | None = None  # (K, p)
        self._counts: Tensor | None = None  # (K,)
        self._result_dtype: torch.dtype | None = None
        self._means: Tensor | None = None  # (K, p), set when pass 2 starts
        self._proj: Tensor | None = None  # (p, r)
        self._counts2: Tensor | None = None  # (K,)
        self._total: Tensor | None = None  # Σ‖h - h̄‖²
        self._projected: Tensor | None = None  # Σ‖Pᵀ(h - h̄)‖²

    def _batch(self, features: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        H = _check_features(features)
        if self._sums is not None:
            if H.shape[1] != self._sums.shape[1]:
                raise ValueError(
                    f"feature dimension changed between batches: expected p={self._sums.shape[1]}, "
                    f"got {H.shape[1]}"
                )
            H = H.to(self._sums.device)
        y = _check_labels(labels, H.shape[0], H.device)
        _check_range(y, self.num_classes)
        return H, y

    @property
    def num_samples(self) -> int:
        """Samples seen in pass 1."""
        return 0 if self._counts is None else int(self._counts.sum())

    def update_means(self, features: Tensor, labels: Tensor) -> None:
        """Pass 1: add a batch ``features`` ``(B, p)``, ``labels`` ``(B,)`` to the class sums."""
        if self._means is not None:
            raise ValueError(
                "update_means called after update_within: pass 1 (class means) must see all the "
                "data before pass 2 starts; create a new CollapseAccumulator to start over"
            )
        H, y = self._batch(features, labels)
        if self._sums is None:
            dtype = _compute_dtype(H.device)
            self._sums = torch.zeros(self.num_classes, H.shape[1], dtype=dtype, device=H.device)
            self._counts = torch.zeros(self.num_classes, dtype=torch.long, device=H.device)
            self._result_dtype = _result_dtype(H)
        _add_class_sums(H, y, self._sums, self._counts)

    def _start_within(self) -> None:
        if self._sums is None:
            raise ValueError(
                "pass 1 is empty: call update_means on every batch before update_within"
            )
        _check_nonempty(self._counts)
        self._means = self._sums / self._counts[:, None].to(self._sums.dtype)
        self._proj = _pinv_factor(self._means, self._counts, self.variant)
        self._counts2 = torch.zeros_like(self._counts)
        self._total = self._means.new_zeros(())
        self._projected = self._means.new_zeros(())

    def update_within(self, features: Tensor, labels: Tensor) -> None:
        """Pass 2: add a batch ``features`` ``(B, p)``, ``labels`` ``(B,)`` to the within-class sums."""
        H, y = self._batch(features, labels)
        if self._means is None:
            self._start_within()
        total, projected = _within_sums(H, y, self._means, self._proj)
        self._total += total
        self._projected += projected
        self._counts2 += torch.bincount(y, minlength=self.num_classes)

    def _finished(self) -> None:
        if self._means is None:
            raise ValueError(
                "run both passes (update_means, then update_within) before reading results"
            )
        if not torch.equal(self._counts, self._counts2):
            raise ValueError(
                f"the two passes saw different data: pass 1 had {int(self._counts.sum())} samples "
                f"and pass 2 {int(self._counts2.sum())} (or different class counts); feed the same "
                "samples to both passes"
            )

    def class_means(self) -> Tensor:
        """Class means after pass 1; shape ``(K, p)``, in the first batch's dtype."""
        if self._sums is None:
            raise ValueError("no data yet: call update_means first")
        _check_nonempty(self._counts)
        return (self._sums / self._counts[:, None].to(self._sums.dtype)).to(self._result_dtype)

    def _values(self) -> tuple[Tensor, Tensor]:
        """``(nc1, trace_ratio)`` in the accumulation dtype (float64 except on MPS)."""
        self._finished()
        N = int(self._counts.sum())
        value = self._projected / N
        if self.variant == "papyan":
            value = value / self.num_classes
        between = _centred_means(self._means, self._counts).square().sum() / self.num_classes
        ratio = torch.where(
            _means_coincide(self._means, self._counts), torch.inf, self._total / N / between
        )
        return value, ratio

    def nc1(self) -> Tensor:
        """:func:`nc1` of all the data; 0-dim tensor in the first batch's dtype."""
        return self._values()[0].to(self._result_dtype)

    def trace_ratio(self) -> Tensor:
        """:func:`trace_ratio` of all the data; 0-dim tensor in the first batch's dtype."""
        return self._values()[1].to(self._result_dtype)
