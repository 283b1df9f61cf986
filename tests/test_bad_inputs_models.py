"""Bad and degenerate inputs of the model code (issue 15): lib.dln, lib.parsimony.theory,
lib.completion (problem, network, train) and lib.separation fail loudly, naming the argument."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lib import completion, dln, separation
from lib.parsimony import theory

F64 = torch.float64
NAN, INF = float("nan"), float("inf")


def _net():
    g = torch.Generator().manual_seed(0)
    Ws = dln.init_weights([4, 4, 3], 0.1, generator=g, dtype=F64)
    X = torch.eye(4, dtype=F64)
    Y = torch.randn(4, 3, generator=g, dtype=F64)
    return Ws, X, Y


def _problem(dtype=F64):
    return completion.make_problem(
        12, 2, 0.5, generator=torch.Generator().manual_seed(0), dtype=dtype
    )


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


# --------------------------------------------------------------------------------------------
# lib.separation
# --------------------------------------------------------------------------------------------

_TINY = dict(depth=1, width=8, epochs=1)

_BAD_DIGITS = {
    "batch_size 1 with BatchNorm": (dict(batch_size=1), "batch_size"),
    "batch_size 0": (dict(batch_size=0), "batch_size"),
    "epochs 0": (dict(epochs=0), "epochs"),
    "lr nan": (dict(lr=NAN), "lr"),
    "lr inf": (dict(lr=INF), "lr"),
    "momentum nan": (dict(momentum=NAN), "momentum"),
    "momentum str": (dict(momentum="0.9"), "momentum"),
    "weight_decay inf": (dict(weight_decay=INF), "weight_decay"),
    "weight_decay nan": (dict(weight_decay=NAN), "weight_decay"),
    "batchnorm str": (dict(batchnorm="no"), "batchnorm"),
}


@pytest.mark.parametrize("case", list(_BAD_DIGITS), ids=list(_BAD_DIGITS))
def test_train_digits_mlp_refuses_settings_that_would_not_train(case):
    over, name = _BAD_DIGITS[case]
    with pytest.raises(ValueError, match=name):
        separation.train_digits_mlp(separation.DigitsSetting(**{**_TINY, **over}))


_BAD_SETTINGS = {
    "empty list": (lambda: separation.train_settings([]), "settings"),
    "lr nan": (lambda: separation.train_settings([separation.Setting(lr=NAN)]), "lr"),
    "tol nan": (lambda: separation.train_settings([separation.Setting(tol=NAN)]), "tol"),
    "max_steps 0": (
        lambda: separation.train_settings([separation.Setting(max_steps=0)]),
        "max_steps",
    ),
    "train_to_tolerance lr inf": (
        lambda: separation.train_to_tolerance(dln.stack_runs([_net()[0]]), *_net()[1:], lr=INF),
        "lr",
    ),
}


@pytest.mark.parametrize("case", list(_BAD_SETTINGS), ids=list(_BAD_SETTINGS))
def test_separation_training_refuses_what_would_not_train(case):
    call, name = _BAD_SETTINGS[case]
    with pytest.raises(ValueError, match=name):
        call()


def test_separation_accepts_numpy_integers():
    kw = dict(num_classes=2, per_class=4, depth=3, lr=2.0, width=8, max_steps=200, check_every=10)
    ref = separation.train_settings([separation.Setting(**kw)])[0]
    npkw = {k: (np.int64(v) if isinstance(v, int) else v) for k, v in kw.items()}
    got = separation.train_settings([separation.Setting(**npkw)])[0]
    assert torch.equal(got.separation, ref.separation)
    X, y, _ = separation.orthogonal_classes(np.int64(3), np.int64(2), dtype=F64)
    D = separation.layer_separation([torch.eye(6, dtype=F64)], X, y, num_classes=np.int64(3))
    assert torch.equal(D, separation.layer_separation([torch.eye(6, dtype=F64)], X, y))
    assert separation.ratio_bound(np.int64(3), 0.5) == separation.ratio_bound(3, 0.5)


def test_train_digits_mlp_accepts_numpy_integers():
    """NumPy integers become the same ints, so the run is the one of the int setting."""
    from lib.separation.digits import _check_digits_setting

    s = separation.DigitsSetting(
        depth=np.int64(1), width=np.int64(8), epochs=np.int64(1), batch_size=np.int64(256),
        seed=np.int64(0),
    )  # fmt: skip
    got = _check_digits_setting(s)
    assert got == separation.DigitsSetting(**{**_TINY, "batch_size": 256, "seed": 0})
    assert all(type(getattr(got, k)) is int for k in ("depth", "width", "epochs", "batch_size"))
    plain = separation.DigitsSetting(**_TINY)
    assert _check_digits_setting(plain) == plain
