"""lib.separation.train: training to a tolerance against plain GD, sweeps, and their errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from lib import dln
from lib import separation as sep

F64 = torch.float64

# The theorem's regime at test size: K = 3, n = 4, N = d = 12 > 2K, L = 4, bound 2(√3+1)ε².
SMALL = sep.Setting(
    num_classes=3, per_class=4, depth=4, scale=0.3, lr=3.0, tol=1e-10, check_every=20
)

# Tiny matrices: one thread is fastest, and it does not stall when the CPU is busy.
pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_train_to_tolerance_matches_plain_gd_at_its_stopping_step():
    X, y, Y = sep.orthogonal_classes(2, 4, generator=gen(7), dtype=F64)
    Ws = dln.init_weights_batched(3, [8, 8, 8, 2], [0.5, 0.7, 1.0], generator=gen(8), dtype=F64)
    c = sep.train_to_tolerance(Ws, X, Y, lr=[2.0, 1.0, 2.0], tol=1e-8, check_every=10)
    assert c.converged.all() and (c.loss < 1e-8).all() and (c.steps % 10 == 0).all()
    assert c.curve.shape == (len(c.curve_steps), 3) and c.curve_steps[0] == 0
    for b, lr in enumerate([2.0, 1.0, 2.0]):
        h = dln.train([W[b] for W in Ws], X, Y, lr, int(c.steps[b]))
        for W_ours, W_ref in zip(c.weights, h.weights[-1]):
            assert torch.allclose(W_ours[b], W_ref, rtol=0, atol=1e-12)
        k = int(c.steps[b]) // 10
        assert float(c.curve[k, b]) == pytest.approx(float(h.loss[-1]), rel=1e-10)
        assert torch.isnan(c.curve[k + 1 :, b]).all()  # stopped
        assert bool((c.curve[1:k, b] >= 1e-8).all())  # and not earlier


def test_train_to_tolerance_gives_up_at_max_steps():
    X, y, Y = sep.orthogonal_classes(2, 4, generator=gen(9), dtype=F64)
    Ws = dln.init_weights_batched(1, [8, 8, 8, 8, 2], 0.1, generator=gen(10), dtype=F64)
    c = sep.train_to_tolerance(Ws, X, Y, lr=0.5, tol=1e-8, max_steps=25, check_every=10)
    assert not bool(c.converged[0]) and int(c.steps[0]) == 25
    assert c.curve_steps.tolist() == [0, 10, 20, 25]


def test_train_settings_runs_do_not_depend_on_their_batch():
    settings = [
        dataclasses.replace(SMALL, scale=0.5, tol=1e-6),
        dataclasses.replace(SMALL, scale=0.5, tol=1e-6, init="normal", seed=3),
        dataclasses.replace(SMALL, scale=0.4, tol=1e-6, activation="relu", lr=1.0),
    ]
    together = sep.train_settings(settings)
    assert [r.setting for r in together] == settings  # order kept across groups
    for s, run in zip(settings, together):
        (alone,) = sep.train_settings([s])
        assert run.steps == alone.steps and run.converged
        assert torch.allclose(run.separation, alone.separation, rtol=1e-9)
    # the seed fixes the data: seed 3's inputs differ from seed 0's
    assert not torch.allclose(together[0].X, together[1].X)
    assert set(together[0].summary()) >= {
        "run",
        "iterations to converge",
        "fitted ratio D_(l+1)/D_l",
    }


_W = [torch.eye(4, dtype=F64), torch.ones(2, 4, dtype=F64)]
_X = torch.eye(4, dtype=F64)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sep.train_to_tolerance(_W, _X, _X[:, :2], 1.0), "common run axis B"),
        (lambda: sep.train_settings([]), "non-empty list of Setting"),
        (lambda: sep.train_settings([{"depth": 3}]), "must hold Setting objects"),
        (lambda: sep.train_settings([sep.Setting(init="zeros")]), "unknown init 'zeros'"),
        (lambda: sep.train_settings([sep.Setting(activation="gelu")]), "unknown activation"),
        (lambda: sep.train_settings([sep.Setting(scale=-1.0)]), "scale must be"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": [1.0, 2.0, 3.0]}, "lr must be one or 2 finite numbers > 0"),
        ({"lr": -1.0}, "lr must be one or 2 finite numbers > 0"),
        ({"tol": 0.0}, "tol must be a finite number > 0"),
        ({"max_steps": 0}, "max_steps must be an integer >= 1"),
        ({"check_every": 2.5}, "check_every must be an integer >= 1"),
        ({"activation": "sigmoid"}, "unknown activation 'sigmoid'"),
    ],
)
def test_train_to_tolerance_rejects_bad_arguments(kwargs, message):
    X, _, Y = sep.orthogonal_classes(2, 3, generator=gen(11), dtype=F64)
    Ws = dln.init_weights_batched(2, [6, 6, 2], 0.5, generator=gen(12), dtype=F64)
    args = {"lr": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        sep.train_to_tolerance(Ws, X, Y, **args)


def test_train_to_tolerance_data_shape_errors_and_divergence_names_the_run():
    X, _, Y = sep.orthogonal_classes(2, 3, generator=gen(13), dtype=F64)
    Ws = dln.init_weights_batched(2, [6, 6, 6, 2], 0.5, generator=gen(14), dtype=F64)
    with pytest.raises(ValueError, match=r"Y must have shape \(N, d_L\) with d_L = 2"):
        sep.train_to_tolerance(Ws, X, X, 1.0)
    with pytest.raises(ValueError, match="X has 3 runs on its leading axis but B = 2"):
        sep.train_to_tolerance(Ws, X.expand(3, 6, 6), Y, 1.0)
    with pytest.raises(ValueError, match=r"diverged.*runs \[0, 1\] of this call"):
        sep.train_to_tolerance(Ws, X, Y, lr=[1.0, 1e4], check_every=50)
