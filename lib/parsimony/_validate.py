"""Argument checks of :mod:`lib.parsimony` (private): one wording per kind of argument.

Built on :mod:`lib._checks`; what is particular to the chapter lives here: a recorded run
(:class:`lib.dln.History`), the index of a layer or of a run in it, the rank ``r`` of the three
groups of singular values, and matrices whose SVD torch can take (float32/float64).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from lib._checks import check_int, check_nonempty, check_real, check_tensor, check_type
from lib.dln import History

_HISTORY_HINT = "the result of lib.dln.train, or the .history of lib.parsimony.simulate"
_SVD_DTYPES = (torch.float32, torch.float64)


def check_history(name: str, history: object, batched: bool | None = None) -> History:
    """Return ``history`` if it is a :class:`lib.dln.History` (batched or not, as asked)."""
    check_type(name, history, History, _HISTORY_HINT)
    if not history.weights or not history.weights[0]:
        raise ValueError(f"{name} holds no recorded weights")
    is_batched = history.weights[0][0].ndim == 3
    if batched is not None and is_batched != batched:
        raise ValueError(
            f"{name} must be one {'batched' if batched else 'unbatched'} run "
            f"(from lib.dln.{'train_batched' if batched else 'train'}), got "
            f"{'a batched' if is_batched else 'an unbatched'} History"
            + ("; pick a run b with lib.dln.unstack_runs" if is_batched else "")
        )
    return history


def check_layer(name: str, layer: object, history: History) -> int:
    """Return ``layer`` as an ``int`` if it indexes a layer of ``history`` (negative from the end)."""
    L = len(history.weights[0])
    if not isinstance(layer, numbers.Integral) or isinstance(layer, bool) or not -L <= layer < L:
        raise ValueError(
            f"{name} must be a layer index in [{-L}, {L - 1}] (0 is W_1; the network has L={L} "
            f"layers), got {layer!r}"
        )
    return int(layer)


def check_run(name: str, run: object, history: History) -> int | None:
    """Return ``run`` if it picks one run of a batched ``history`` (``None`` for one run)."""
    W = history.weights[0][0]
    if W.ndim != 3:
        if run is not None:
            raise ValueError(f"{name} is only for batched histories (from lib.dln.train_batched)")
        return None
    B = W.shape[0]
    if run is None:
        raise ValueError(f"the history is batched: pass {name}=b to pick one of its {B} runs")
    if not isinstance(run, numbers.Integral) or isinstance(run, bool) or not -B <= run < B:
        raise ValueError(f"{name} must be a run index in [{-B}, {B - 1}], got {run!r}")
    return int(run)


def check_group_rank(name: str, rank: object, k: int) -> int:
    """Return the rank ``r`` (an integer ``>= 1``) if the ``k`` singular values hold two groups of
    ``r`` (top and bottom), ``2r <= k``."""
    rank = check_int(name, rank, 1)
    if 2 * rank > k:
        raise ValueError(
            f"{name} must satisfy 2r <= k = {k} (top r and bottom r singular values), got {rank}"
        )
    return rank


def check_svd_input(name: str, t: object, ndim: tuple[int, ...] | None = None) -> Tensor:
    """Return ``t`` if torch can take its SVD: a finite float32/float64 tensor with data."""
    t = check_tensor(name, t, ndim, finite=False)
    if t.dtype not in _SVD_DTYPES:
        raise ValueError(
            f"{name} has dtype {t.dtype}, for which torch has no SVD; cast with .double() "
            "(float64: the law's checks need it) or .float()"
        )
    return check_tensor(name, t, ndim)


def check_tensor_arg(name: str, t: object, shape: tuple[int | None, ...]) -> Tensor:
    """Return ``t`` if it is a real tensor of ``shape`` (``None``: any size), with data."""
    check_type(name, t, Tensor)
    want = str(tuple("·" if n is None else n for n in shape)).replace("'", "")
    if t.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, t.shape)):
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    return check_tensor(name, t, floating=False, finite=False)


def check_labels(labels: object, B: int | None = None) -> None:
    """``labels``: a sequence of legend labels, ``B`` of them when ``B`` is given."""
    check_type("labels", labels, Sequence, "one legend label per run")
    if B is not None and len(labels) != B:
        raise ValueError(f"need {B} labels, got {len(labels)}")


def check_rows(rows: object) -> None:
    """``rows`` of :func:`lib.parsimony.figures.plot_small_multiples`: non-empty, each an
    ``(L, scales, history)`` triple whose batched history has one run per scale, and every row
    with the same number of scales."""
    check_type("rows", rows, Sequence, "a list of (L, scales, history) triples")
    check_nonempty("rows", rows, "(L, scales, history) triple")
    for j, row in enumerate(rows):
        check_type(f"rows[{j}]", row, (tuple, list), "an (L, scales, history) triple")
        if len(row) != 3:
            raise ValueError(
                f"rows[{j}] must be an (L, scales, history) triple, got {len(row)} items"
            )
        check_type(f"rows[{j}][1]", row[1], (Sequence, Tensor), "the scales ε of the row")
        check_history(f"rows[{j}][2]", row[2], batched=True)
    if any(len(scales) != len(rows[0][1]) for _, scales, _ in rows):
        raise ValueError("every row needs the same number of scales")
    for j, (_, scales, history) in enumerate(rows):
        if history.weights[0][0].shape[0] != len(scales):
            raise ValueError(
                f"rows[{j}]: its history has {history.weights[0][0].shape[0]} runs but "
                f"{len(scales)} scales"
            )


def check_rank_bias(
    scales: object, spectra_e2e: object, predicted_tail: object, rank: object, rtol: object
) -> None:
    """The arguments of :func:`lib.parsimony.figures.plot_rank_bias`: ``B >= 1`` scales, a
    ``(B, k)`` spectrum, a ``(B,)`` predicted tail, ``1 <= r < k`` and ``rtol > 0``."""
    check_type("scales", scales, (Sequence, Tensor), "one ε per run")
    check_nonempty("scales", scales, "ε")
    check_type("spectra_e2e", spectra_e2e, Tensor)
    if spectra_e2e.ndim != 2 or spectra_e2e.shape[0] != len(scales):
        raise ValueError("spectra_e2e must be (B, k) with one row per scale")
    check_tensor_arg("predicted_tail", predicted_tail, (len(scales),))
    k = spectra_e2e.shape[1]
    if check_int("rank", rank, 1) >= k:
        raise ValueError(f"rank must be < k = {k} (the tail starts at sigma_(r+1)), got {rank}")
    check_real("rtol", rtol, 0.0, strict=True)


def layer_trajectory(history: object, layer: object, run: object) -> Tensor:
    """Layer ``layer`` of ``history`` over the records, ``(T, m, n)`` (run ``run`` of a batch),
    after checking all three."""
    history = check_history("history", history)
    layer = check_layer("layer", layer, history)
    run = check_run("run", run, history)
    traj = history.trajectory(layer)  # (T, m, n) or (T, B, m, n)
    return traj if run is None else traj[:, run]
