"""Bad inputs of lib.completion (issue 15): the problem is checked at entry, errors name the
argument."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lib import completion

F64 = torch.float64
NAN, INF = float("nan"), float("inf")


def _problem(dtype=F64):
    return completion.make_problem(
        12, 2, 0.5, generator=torch.Generator().manual_seed(0), dtype=dtype
    )


# --------------------------------------------------------------------------------------------
# lib.completion: the problem is checked at entry (structure, device, dtype, then values)
# --------------------------------------------------------------------------------------------


def _nan_target(P):
    T = P.target.clone()
    T[0, 0] = NAN
    return dataclasses.replace(P, target=T)


def _inf_target_in_place(P):
    P.target[1, 1] = INF  # values is a copy: only the target changes
    return P


_BAD_PROBLEMS = {
    "nan target": (_nan_target, "problem.target"),
    "inf target in place": (_inf_target_in_place, "problem.target"),
    "float mask": (lambda P: dataclasses.replace(P, mask=P.mask.double()), "problem.mask"),
    "mask shape": (lambda P: dataclasses.replace(P, mask=P.mask[:5]), "problem.mask"),
    "non-square target": (lambda P: dataclasses.replace(P, target=P.target[:5]), "problem.target"),
    "integer target": (lambda P: dataclasses.replace(P, target=P.target.long()), "problem.target"),
    "meta target": (
        lambda P: dataclasses.replace(
            P,
            target=P.target.to("meta"),
            mask=P.mask.to("meta"),
            rows=P.rows.to("meta"),
            cols=P.cols.to("meta"),
            values=P.values.to("meta"),
        ),
        "problem.target",
    ),
    "mask on meta": (lambda P: dataclasses.replace(P, mask=P.mask.to("meta")), "problem.mask"),
    "values length": (lambda P: dataclasses.replace(P, values=P.values[:3]), "problem.values"),
}

_ENTRY_POINTS = {
    "fit": lambda P: completion.fit(P, "original", max_steps=2),
    "fit compressed": lambda P: completion.fit(P, "compressed", lr=1.0, max_steps=2),
    "default_lr": lambda P: completion.default_lr(P),
    "losses": lambda P: completion.losses(P, torch.zeros(12, 12, dtype=F64)),
    "init_original": lambda P: completion.init_original(P),
}


@pytest.mark.parametrize("entry", list(_ENTRY_POINTS))
@pytest.mark.parametrize("bad", list(_BAD_PROBLEMS))
def test_completion_checks_the_problem_at_entry(bad, entry):
    edit, name = _BAD_PROBLEMS[bad]
    P = edit(_problem())
    with pytest.raises(ValueError, match=name):
        _ENTRY_POINTS[entry](P)


def test_completion_nan_target_is_not_reported_as_a_learning_rate_problem():
    with pytest.raises(ValueError, match="problem.target") as err:
        completion.fit(_nan_target(_problem()), "original", lr=1.0, max_steps=2)
    assert "lower lr" not in str(err.value)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "entry",
    [
        lambda P: completion.fit(P, "original", max_steps=2),
        lambda P: completion.fit(P, "compressed", lr=1.0, max_steps=2),
        lambda P: completion.default_lr(P),
        lambda P: completion.compress(P, completion.init_original(P)),
    ],
    ids=["fit", "fit lr", "default_lr", "compress"],
)
def test_half_precision_problems_get_the_dtype_error_first(dtype, entry):
    with pytest.raises(ValueError, match=r"float32 or float64.*problem\.target"):
        entry(_problem(dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_problems_still_work_where_they_did(dtype):
    """Documented: init_original, init_narrow, first_gradient and losses need no QR/SVD."""
    P = _problem(dtype)
    Ws = completion.init_original(P, depth=2)
    assert Ws[0].dtype == dtype
    assert completion.init_narrow(P, 4)[0].dtype == dtype
    assert completion.first_gradient(P, Ws).shape == (12, 12)
    train, test = completion.losses(P, P.target)
    assert float(train) == 0.0 and float(test) == 0.0


def test_first_gradient_and_compress_refuse_non_finite_weights():
    P = _problem()
    Ws = completion.init_original(P, depth=2)
    Ws[1] = Ws[1].clone()
    Ws[1][0, 0] = NAN
    for call in (completion.first_gradient, completion.compress):
        with pytest.raises(ValueError, match="W_2"):
            call(P, Ws)


def test_completion_accepts_numpy_integers():
    P = completion.make_problem(
        np.int64(12), np.int64(2), np.float64(0.5), generator=torch.Generator().manual_seed(0),
        dtype=F64,
    )  # fmt: skip
    ref = completion.fit(_problem(), "compressed", lr=1.0, max_steps=3)
    got = completion.fit(P, "compressed", depth=np.int64(3), lr=1.0, max_steps=np.int64(3))
    assert got.train_loss == ref.train_loss
