"""Bad inputs of lib.separation (issue 15): settings that would not train are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib import dln, separation

F64 = torch.float64
NAN, INF = float("nan"), float("inf")


def _net():
    g = torch.Generator().manual_seed(0)
    Ws = dln.init_weights([4, 4, 3], 0.1, generator=g, dtype=F64)
    X = torch.eye(4, dtype=F64)
    Y = torch.randn(4, 3, generator=g, dtype=F64)
    return Ws, X, Y


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
