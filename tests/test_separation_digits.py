"""lib.separation.digits: the split of scikit-learn's digits and the MLP trained on them."""

from __future__ import annotations

import pytest
import torch

from lib import metrics
from lib import separation as sep

F64 = torch.float64

# Tiny matrices: one thread is fastest, and it does not stall when the CPU is busy.
pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_digits_split_and_mlp():
    pytest.importorskip("sklearn")
    Xtr, ytr, Xte, yte = sep.load_digits(0.3, gen(0), F64)
    assert Xtr.shape[1] == 64 and len(ytr) + len(yte) == 1797
    assert torch.bincount(ytr).min() >= 120 and torch.bincount(yte).min() >= 50  # stratified
    assert Xtr.mean(0).abs().max() < 1e-10
    s = sep.DigitsSetting(depth=2, width=16, epochs=2)
    run, again = sep.train_digits_mlp(s), sep.train_digits_mlp(s)
    assert run.train_separation.shape == (3,) and torch.equal(
        run.train_separation, again.train_separation
    )
    assert float(run.train_separation[0]) == pytest.approx(float(metrics.trace_ratio(Xtr, ytr)))
    assert 0.5 < run.train_accuracy <= 1 and 0.5 < run.test_accuracy <= 1
    assert "fitted ratio D_(l+1)/D_l" in run.summary()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sep.load_digits(1.5), r"test_fraction must lie in \(0, 1\)"),
        (lambda: sep.train_digits_mlp({"depth": 2}), "setting must be a DigitsSetting"),
        (
            lambda: sep.train_digits_mlp(sep.DigitsSetting(momentum=1.0)),
            r"momentum must lie in \[0, 1\)",
        ),
        (lambda: sep.train_digits_mlp(sep.DigitsSetting(depth=0)), "depth must be an integer"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_digits_split_and_standardisation_from_scikit_learn_directly():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    raw = sklearn_datasets.load_digits()
    X = torch.as_tensor(raw.data, dtype=F64)
    y = torch.as_tensor(raw.target)
    g = gen(4)
    train, test = [], []
    for k in range(10):  # per class: a random permutation, its first 30 % held out
        members = torch.nonzero(y == k).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        n_test = max(1, round(0.3 * len(members)))
        test += members[:n_test].tolist()
        train += members[n_test:].tolist()
    tr, te = sorted(train), sorted(test)
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd[sd == 0] = 1.0
    Xtr, ytr, Xte, yte = sep.load_digits(0.3, gen(4), F64)
    assert torch.equal(ytr, y[tr]) and torch.equal(yte, y[te])
    assert torch.equal(Xtr, (X[tr] - mu) / sd) and torch.equal(Xte, (X[te] - mu) / sd)
