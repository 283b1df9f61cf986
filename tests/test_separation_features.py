"""lib.separation.features: the lecture's data, the features of every layer and their D_l."""

from __future__ import annotations

import pytest
import torch

from lib import dln, metrics
from lib import separation as sep

F64 = torch.float64

# Tiny matrices: one thread is fastest, and it does not stall when the CPU is busy.
pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("K", "n"), [(5, 10), (3, 4), (2, 2), (10, 3)])
def test_d0_closed_form_for_orthonormal_inputs(K, n):
    X, y, Y = sep.orthogonal_classes(K, n, generator=gen(K + n), dtype=F64)
    N = K * n
    assert X.shape == (N, N) and torch.allclose(X.T @ X, torch.eye(N, dtype=F64), atol=1e-12)
    assert torch.equal(Y.argmax(1), y) and torch.equal(torch.bincount(y), torch.full((K,), n))
    expected = (1 - 1 / n) / (1 / n - 1 / N)
    assert float(metrics.trace_ratio(X, y)) == pytest.approx(expected, rel=1e-12)
    # an orthogonal first layer keeps D_0; layer_separation reports it for l = 0 and l = 1
    Ws = [dln.init_weights([N, N], 0.7, generator=gen(1), dtype=F64)[0]]
    D = sep.layer_separation(Ws, X, y)
    assert D.tolist() == pytest.approx([expected, expected], rel=1e-12)


def test_layer_features_match_a_naive_loop():
    g = gen(2)
    Ws = dln.init_weights([6, 5, 4, 3], 1.0, kind="normal", generator=g, dtype=F64)
    X = torch.randn(7, 6, generator=g, dtype=F64)
    lin = sep.layer_features(Ws, X)
    relu = sep.layer_features(Ws, X, "relu")
    for i in range(7):  # one sample at a time, columns as in the lecture
        z_lin = z_relu = X[i]
        for layer, W in enumerate(Ws, start=1):
            z_lin = W @ z_lin
            z_relu = W @ z_relu if layer == len(Ws) else torch.clamp(W @ z_relu, min=0)
            assert torch.allclose(lin[layer][i], z_lin) and torch.allclose(relu[layer][i], z_relu)
    # the linear features are the products W_{l:1} x
    assert torch.allclose(lin[3], X @ dln.end_to_end(Ws).T)


def test_layer_separation_batches_like_a_loop():
    X, y, _ = sep.orthogonal_classes(3, 3, generator=gen(3), dtype=F64)
    Ws = dln.init_weights_batched(4, [9, 9, 9, 3], 0.8, kind="normal", generator=gen(4), dtype=F64)
    D = sep.layer_separation(Ws, X, y, "relu")
    assert D.shape == (4, 4)
    for b in range(4):
        Zs = sep.layer_features([W[b] for W in Ws], X, "relu")
        loop = torch.stack([metrics.trace_ratio(Z, y) for Z in Zs])
        assert torch.allclose(D[b], loop, rtol=1e-12)


_W = [torch.eye(4, dtype=F64), torch.ones(2, 4, dtype=F64)]
_X = torch.eye(4, dtype=F64)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sep.orthogonal_classes(1, 4), "num_classes must be an integer >= 2"),
        (lambda: sep.orthogonal_classes(3, 1), "per_class must be an integer >= 2"),
        (lambda: sep.orthogonal_classes(2, 3, width=7), "width d must be <= N"),
        (lambda: sep.layer_features(_W, _X, "tanh"), "unknown activation 'tanh'"),
        (lambda: sep.layer_features(_W, _X, None), "allowed values: 'linear', 'relu'"),
        (lambda: sep.layer_features([], _X), "non-empty list of L tensors"),
        (lambda: sep.layer_features([_W[1], _W[0]], _X), "shape mismatch: W_2 has 4 input"),
        (lambda: sep.layer_features(_W, torch.eye(3, dtype=F64)), "X has 3 columns but W_1"),
        (lambda: sep.layer_features(_W, _X.float()), "X has dtype torch.float32"),
        (lambda: sep.layer_features([torch.arange(4)], _X), "W_1 must be a floating-point"),
        (lambda: sep.layer_separation(_W, _X, torch.zeros(3)), r"labels must have shape \(N,\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
