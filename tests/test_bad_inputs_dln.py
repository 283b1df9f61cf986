"""Bad inputs of lib.dln and lib.parsimony.theory (issue 15): errors name the argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib import dln
from lib.parsimony import theory

F64 = torch.float64
NAN, INF = float("nan"), float("inf")


def _net():
    g = torch.Generator().manual_seed(0)
    Ws = dln.init_weights([4, 4, 3], 0.1, generator=g, dtype=F64)
    X = torch.eye(4, dtype=F64)
    Y = torch.randn(4, 3, generator=g, dtype=F64)
    return Ws, X, Y


# --------------------------------------------------------------------------------------------
# lib.dln.train / train_batched / helpers
# --------------------------------------------------------------------------------------------

_BAD_TRAIN = {
    "nan lr": (lambda Ws, X, Y: dln.train(Ws, X, Y, lr=NAN, steps=2), "lr"),
    "inf lr": (lambda Ws, X, Y: dln.train(Ws, X, Y, lr=INF, steps=2), "lr"),
    "nan weight_decay": (
        lambda Ws, X, Y: dln.train(Ws, X, Y, lr=0.1, steps=2, weight_decay=NAN),
        "weight_decay",
    ),
    "inf weight_decay": (
        lambda Ws, X, Y: dln.train(Ws, X, Y, lr=0.1, steps=2, weight_decay=INF),
        "weight_decay",
    ),
    "nan momentum": (
        lambda Ws, X, Y: dln.train(Ws, X, Y, lr=0.1, steps=2, momentum=NAN),
        "momentum",
    ),
    "batched nan momentum": (
        lambda Ws, X, Y: dln.train_batched(
            dln.stack_runs([Ws]), X, Y, lr=[0.1], steps=2, momentum=[NAN]
        ),
        "momentum",
    ),
    "batched inf lr": (
        lambda Ws, X, Y: dln.train_batched(dln.stack_runs([Ws, Ws]), X, Y, [0.1, INF], 2),
        "lr",
    ),
    "empty weights": (lambda Ws, X, Y: dln.train([], X, Y, lr=0.1, steps=2), "weights"),
    "chain mismatch": (
        lambda Ws, X, Y: dln.train([Ws[0], Ws[0][:3, :3]], X, Y, lr=0.1, steps=2),
        "W_2",
    ),
    "row mismatch": (lambda Ws, X, Y: dln.train(Ws, X, Y[:3], lr=0.1, steps=2), "Y"),
    "weight dtypes": (
        lambda Ws, X, Y: dln.train([Ws[0], Ws[1].float()], X, Y, lr=0.1, steps=2),
        "W_2",
    ),
    "X dtype": (lambda Ws, X, Y: dln.train(Ws, X.float(), Y, lr=0.1, steps=2), "X"),
    "meta weights": (
        lambda Ws, X, Y: dln.train([W.to("meta") for W in Ws], X, Y, lr=0.1, steps=2),
        "W_1",
    ),
    "meta X": (lambda Ws, X, Y: dln.train(Ws, X.to("meta"), Y, lr=0.1, steps=2), "X"),
    "nan X": (
        lambda Ws, X, Y: dln.train(Ws, X.masked_fill(X > 0.5, NAN), Y, lr=0.1, steps=2),
        "X",
    ),
    "negative steps": (lambda Ws, X, Y: dln.train(Ws, X, Y, lr=0.1, steps=-1), "steps"),
    "end_to_end empty": (lambda Ws, X, Y: dln.end_to_end([]), "weights"),
    "end_to_end chain": (lambda Ws, X, Y: dln.end_to_end([Ws[1], Ws[1]]), "W_2"),
    "unstack_runs empty": (lambda Ws, X, Y: dln.unstack_runs([]), "weights"),
    "unstack_runs 2-D": (lambda Ws, X, Y: dln.unstack_runs(Ws), "W_1"),
    "stack_runs empty": (lambda Ws, X, Y: dln.stack_runs([]), "runs"),
    "stack_runs not tensors": (lambda Ws, X, Y: dln.stack_runs([[1.0]]), r"runs\[0\]\[0\]"),
}


@pytest.mark.parametrize("case", list(_BAD_TRAIN), ids=list(_BAD_TRAIN))
def test_dln_refuses_bad_inputs_naming_the_argument(case):
    call, name = _BAD_TRAIN[case]
    Ws, X, Y = _net()
    with pytest.raises(ValueError, match=name):
        call(Ws, X, Y)


def test_dln_accepts_numpy_scalars_and_non_contiguous_tensors():
    Ws, X, Y = _net()
    ref = dln.train(Ws, X, Y, lr=0.1, steps=3)
    h = dln.train(
        [W.T.contiguous().T for W in Ws],
        X.T.contiguous().T,
        Y.T.contiguous().T,
        lr=np.float64(0.1),
        steps=np.int64(3),
        record_every=np.int64(1),
    )
    assert torch.equal(h.loss, ref.loss)
    assert torch.equal(dln.end_to_end(Ws), Ws[1] @ Ws[0])


# --------------------------------------------------------------------------------------------
# lib.parsimony.theory.rho_recursion (also lib.dln.rho_recursion)
# --------------------------------------------------------------------------------------------

_BAD_RHO = {
    "scale 0": (dict(scale=0.0), ValueError, "scale"),
    "scale nan": (dict(scale=NAN), ValueError, "scale"),
    "scale bool": (dict(scale=True), TypeError, "scale"),
    "scale str": (dict(scale="0.1"), TypeError, "scale"),
    "scale 2-D": (dict(scale=torch.full((2, 2), 0.1)), ValueError, "scale"),
    "lr 0": (dict(lr=0.0), ValueError, "lr"),
    "lr inf": (dict(lr=INF), ValueError, "lr"),
    "lr nan": (dict(lr=NAN), ValueError, "lr"),
    "steps -1": (dict(steps=-1), ValueError, "steps"),
    "steps float": (dict(steps=2.5), ValueError, "steps"),
    "depth 0": (dict(depth=0), ValueError, "depth"),
    "depth float": (dict(depth=3.0), ValueError, "depth"),
    "momentum 1": (dict(momentum=1.0), ValueError, "momentum"),
    "weight_decay inf": (dict(weight_decay=INF), ValueError, "weight_decay"),
    "per-run lengths": (dict(scale=[0.1, 0.2], lr=[0.1, 0.2, 0.3]), ValueError, "scale"),
}


@pytest.mark.parametrize("case", list(_BAD_RHO), ids=list(_BAD_RHO))
def test_rho_recursion_refuses_bad_arguments(case):
    kw = dict(scale=0.1, lr=0.5, steps=4, depth=3, reduction="sum")
    over, exc, name = _BAD_RHO[case]
    kw.update(over)
    with pytest.raises(exc, match=name):
        theory.rho_recursion(**kw)


@pytest.mark.parametrize("fn", [theory.rho_recursion, dln.rho_recursion], ids=["theory", "dln"])
@pytest.mark.parametrize("record_every", [1, 3])
def test_rho_recursion_divergence_raises_naming_the_step(fn, record_every):
    # rho: 5, -3.1e4, 3e23, -2e118, then inf at step 4 (and NaN after)
    with pytest.raises(ValueError, match=r"diverged.*step (4|6)\b.*lr=10"):
        fn(5.0, 10.0, 20, depth=3, reduction="sum", record_every=record_every)


def test_rho_recursion_divergence_names_the_runs_of_a_sweep():
    with pytest.raises(ValueError, match=r"runs? \[1\].*lr=10"):
        theory.rho_recursion(5.0, [1e-4, 10.0], 20, depth=3, reduction="sum")


def test_rho_recursion_accepts_numpy_numbers():
    ref = theory.rho_recursion(0.1, 0.5, 4, depth=3, reduction="sum")
    got = theory.rho_recursion(
        np.float64(0.1), np.float64(0.5), np.int64(4), depth=np.int64(3), reduction="sum"
    )
    assert torch.equal(got, ref)
    assert torch.equal(
        theory.rho_recursion(0.1, torch.tensor(0.5), 4, 3, reduction="sum")[:, 0], ref
    )
