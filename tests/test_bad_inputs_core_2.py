"""Bad inputs of lib.layerwise (issue 15), continued from test_bad_inputs_core.py: every error
names the argument (model, data, layers, x and y of a batch, X, W_l, ...) before any forward
pass; a dead layer gets the documented nc1 = 0, trace_ratio = inf; valid edge inputs pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _cases import case, covers
from torch import nn

from lib import layerwise

EXEMPT = {
    "lib.layerwise.LayerCollapse": (
        "result record that layer_collapse and linear_layer_collapse build; callers only read it"
    ),
}

NAN, INF = float("nan"), float("inf")
K = 3


def _net(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, K)).to(dtype)


def _batches(dtype=torch.float32):
    X = torch.randn(12, 6, generator=torch.Generator().manual_seed(1)).to(dtype)
    y = torch.arange(12) % K
    return [(X[:6], y[:6]), (X[6:], y[6:])]


X6, Y = _batches()[0]
po, dl, lc, llc = (
    layerwise.pool_output,
    layerwise.default_layers,
    layerwise.layer_collapse,
    layerwise.linear_layer_collapse,
)
MAPS = torch.randn(4, 3, 5, 5)


def _lc(**kwargs):
    args = {"model": _net(), "data": _batches(), "layers": ["0", "2"], "num_classes": K}
    return lc(**args | kwargs)


def _with_batch(x, y):
    return _lc(data=[(x, y)])


W1 = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
W2 = torch.randn(3, 4, generator=torch.Generator().manual_seed(3))
X12, Y12 = torch.cat([b[0] for b in _batches()]), torch.arange(12) % K


def _poison(T, value):
    T = T.clone()
    T[0, 0] = value
    return T


LAYERWISE_ERRORS = [
    # pool_output
    case("po-batch-str", po, lambda: po(MAPS, "4"), ValueError, r"^batch_size must be an integer >= 1"),
    case("po-batch-float", po, lambda: po(MAPS, 4.0), ValueError, r"^batch_size must be an integer"),
    case("po-batch-0", po, lambda: po(MAPS, 0), ValueError, r"^batch_size must be an integer >= 1"),
    case("po-batch-bool", po, lambda: po(MAPS, True), ValueError, r"^batch_size must be an integer"),
    case("po-batch-mismatch", po, lambda: po(MAPS, 3), ValueError, r"batch dimension.*\(4, 3, 5, 5\).*3 samples"),
    case("po-spatial", po, lambda: po(MAPS, 4, spatial="max"), ValueError, r"^unknown spatial 'max'"),
    case("po-tokens", po, lambda: po(MAPS, 4, tokens="mean"), ValueError, r"^unknown tokens 'mean'"),
    case("po-seq-first", po, lambda: po(torch.ones(4, 3, 2), 4, seq_first="yes"), TypeError, r"^seq_first must be a bool or NoneType"),
    case("po-none", po, lambda: po(None, 4), ValueError, r"^layer output must be a tensor"),
    case("po-empty-tuple", po, lambda: po((), 4), ValueError, r"^layer output must be a tensor"),
    case("po-numpy", po, lambda: po(np.ones((4, 3)), 4), ValueError, r"^layer output must be a tensor"),
    case("po-int", po, lambda: po(torch.ones(4, 3, dtype=torch.long), 4), ValueError, r"^layer output must be a floating-point tensor"),
    case("po-bool-maps", po, lambda: po(MAPS > 0, 4), ValueError, r"^layer output must be a floating-point"),
    case("po-complex", po, lambda: po(MAPS.to(torch.complex64), 4), ValueError, r"^layer output must be a floating-point"),
    case("po-meta", po, lambda: po(MAPS.to("meta"), 4), ValueError, r"^layer output is a 'meta' tensor"),
    case("po-1-D", po, lambda: po(torch.ones(4), 4), ValueError, r"batch dimension: layer output has shape \(4,\)"),
    # default_layers
    case("dl-none", dl, lambda: dl(None), TypeError, r"^model must be a Module"),
    case("dl-name", dl, lambda: dl("resnet18"), TypeError, r"^model must be a Module.*got str"),
    case("dl-linear", dl, lambda: dl(nn.Linear(2, 2)), ValueError, r"^no default layers for Linear; pass layer names"),
    case("dl-empty", dl, lambda: dl(nn.Sequential()), ValueError, r"^no default layers for Sequential"),
    # layer_collapse: arguments
    case("lc-model-none", lc, lambda: _lc(model=None), TypeError, r"^model must be a Module"),
    case("lc-model-function", lc, lambda: _lc(model=lambda x: x), TypeError, r"^model must be a Module.*got function"),
    case("lc-model-meta", lc, lambda: _lc(model=nn.Sequential(nn.Linear(6, 3, device="meta"))), ValueError, r"^model has 'meta' parameters"),
    case("lc-K-1", lc, lambda: _lc(num_classes=1), ValueError, r"^num_classes must be an integer >= 2"),
    case("lc-K-float", lc, lambda: _lc(num_classes=3.0), ValueError, r"^num_classes must be an integer"),
    case("lc-K-none", lc, lambda: _lc(num_classes=None), ValueError, r"^num_classes must be an integer"),
    case("lc-K-too-many", lc, lambda: _lc(num_classes=4), ValueError, r"class 3\).*num_classes"),
    case("lc-variant", lc, lambda: _lc(variant="paypan"), ValueError, r"^unknown variant 'paypan'"),
    case("lc-spatial", lc, lambda: _lc(spatial="max"), ValueError, r"^unknown spatial 'max'"),
    case("lc-tokens", lc, lambda: _lc(tokens=None), ValueError, r"^unknown tokens None"),
    case("lc-layers-str", lc, lambda: _lc(layers="0"), ValueError, r"^layers must be a non-empty list"),
    case("lc-layers-empty", lc, lambda: _lc(layers=[]), ValueError, r"^layers must be a non-empty list"),
    case("lc-layers-none", lc, lambda: _lc(layers=None), ValueError, r"^layers must be a non-empty list"),
    case("lc-layers-int", lc, lambda: _lc(layers=[0]), ValueError, r"^unknown layer name\(s\) \[0\]"),
    case("lc-layers-typo", lc, lambda: _lc(layers=["fc"]), ValueError, r"^unknown layer name\(s\) \['fc'\]"),
    case("lc-layers-twice", lc, lambda: _lc(layers=["0", "0"]), ValueError, r"^layer names must be distinct"),
    case("lc-forward", lc, lambda: _lc(forward=3), TypeError, r"^forward must be callable"),
    case("lc-data-none", lc, lambda: _lc(data=None), TypeError, r"^data must be a re-iterable"),
    case("lc-data-int", lc, lambda: _lc(data=3), TypeError, r"^data must be a re-iterable.*got int"),
    case("lc-data-generator", lc, lambda: _lc(data=(b for b in _batches())), ValueError, r"^data must be re-iterable"),
    case("lc-data-empty", lc, lambda: _lc(data=[]), ValueError, r"^data yielded no batches"),
    case("lc-data-tensor", lc, lambda: _lc(data=X6), ValueError, r"^data must yield \(x, y\) batches"),
    case("lc-data-single", lc, lambda: _lc(data=[(X6,)]), ValueError, r"^data must yield \(x, y\) batches"),
    # layer_collapse: one batch
    case("lc-y-list", lc, lambda: _with_batch(X6, Y.tolist()), ValueError, r"^labels y must be a 1-D tensor"),
    case("lc-y-2-D", lc, lambda: _with_batch(X6, Y[:, None]), ValueError, r"^labels y must be a 1-D tensor"),
    case("lc-y-float", lc, lambda: _with_batch(X6, Y.float()), ValueError, r"^labels must be integers"),
    case("lc-y-range", lc, lambda: _with_batch(X6, Y + 1), ValueError, r"^labels must lie in \[0, K\) = \[0, 3\)"),
    case("lc-y-short", lc, lambda: _with_batch(X6, Y[:5]), ValueError, r"^x and y of batch 0 disagree: x has 6 rows"),
    case("lc-x-float64", lc, lambda: _with_batch(X6.double(), Y), ValueError, r"^x of batch 0 has dtype torch\.float64 but the model's"),
    case("lc-x-half", lc, lambda: _with_batch(X6.half(), Y), ValueError, r"^x of batch 0 has dtype torch\.float16"),
    # linear_layer_collapse
    case("llc-weights-empty", llc, lambda: llc([], X12, Y12), ValueError, r"^weights must be a non-empty list"),
    case("llc-weights-none", llc, lambda: llc(None, X12, Y12), ValueError, r"^weights must be a non-empty list.*got None"),
    case("llc-weights-tensor", llc, lambda: llc(torch.stack([torch.eye(6)] * 2), X12, Y12), ValueError, r"^weights must be a non-empty list.*tensor of shape \(2, 6, 6\)"),
    case("llc-X-numpy", llc, lambda: llc([W1], X12.numpy(), Y12), ValueError, r"^X must be a 2-D tensor"),
    case("llc-X-1-D", llc, lambda: llc([W1], X12[0], Y12), ValueError, r"^X must be a 2-D tensor"),
    case("llc-X-int", llc, lambda: llc([W1], X12.long(), Y12), ValueError, r"^X must be a floating-point tensor"),
    case("llc-X-meta", llc, lambda: llc([W1], X12.to("meta"), Y12), ValueError, r"^X is a 'meta' tensor"),
    case("llc-X-nan", llc, lambda: llc([W1], _poison(X12, NAN), Y12), ValueError, r"^X contains NaN or Inf"),
    case("llc-W-inf", llc, lambda: llc([W1, _poison(W2, -INF)], X12, Y12), ValueError, r"^W_2 contains NaN or Inf"),
    case("llc-W-shape", llc, lambda: llc([W2], X12, Y12), ValueError, r"^W_1 must have shape \(d_1, 6\)"),
    case("llc-W-chain", llc, lambda: llc([W1, W1], X12, Y12), ValueError, r"^W_2 must have shape \(d_2, 4\)"),
    case("llc-W-list", llc, lambda: llc([W1.tolist()], X12, Y12), ValueError, r"^W_1 must have shape.*got list"),
    case("llc-W-int", llc, lambda: llc([W1.long()], X12, Y12), ValueError, r"^W_1 has dtype torch\.int64 but X has torch\.float32"),
    case("llc-W-float64", llc, lambda: llc([W1.double()], X12, Y12), ValueError, r"^W_1 has dtype torch\.float64"),
    case("llc-W-meta", llc, lambda: llc([W1.to("meta")], X12, Y12), ValueError, r"^W_1 is a 'meta' tensor"),
    case("llc-variant", llc, lambda: llc([W1], X12, Y12, variant="x"), ValueError, r"^unknown variant 'x'"),
    case("llc-K-1", llc, lambda: llc([W1], X12, Y12, 1), ValueError, r"^num_classes must be an integer >= 2"),
    case("llc-labels-short", llc, lambda: llc([W1], X12, Y12[:3]), ValueError, r"labels have shape \(3,\)"),
    case("llc-labels-float", llc, lambda: llc([W1], X12, Y12.float()), ValueError, r"^labels must be integers"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), LAYERWISE_ERRORS)
def test_bad_layerwise_input_is_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


@covers(layerwise.layer_collapse)
def test_refused_layer_collapse_leaves_the_model_as_it_was():
    net = _net()
    net.train()
    with pytest.raises(ValueError, match=r"^x and y of batch 1 disagree"):
        layerwise.layer_collapse(net, [_batches()[0], (X6, Y[:4])], ["0"], K)
    assert net.training and not net[0]._forward_hooks


# ------------------------------------------------------------------------------------------
# Degenerate layers: the documented values
# ------------------------------------------------------------------------------------------


@covers(layerwise.layer_collapse, layerwise.linear_layer_collapse)
def test_dead_layer_has_zero_nc1_and_infinite_trace_ratio():
    net = _net()
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.zero_()
    out = layerwise.layer_collapse(net, _batches(), ["0", "1"], K)
    assert out.nc1.tolist() == [0.0, 0.0] and out.trace_ratio.tolist() == [INF, INF]
    out = layerwise.linear_layer_collapse([torch.zeros(4, 6)], X12, Y12)
    assert out.layers == ("input", "1") and float(out.nc1[1]) == 0.0
    assert float(out.trace_ratio[1]) == INF and math.isfinite(float(out.trace_ratio[0]))


# ------------------------------------------------------------------------------------------
# Valid edge inputs stay accepted
# ------------------------------------------------------------------------------------------


@covers(layerwise.pool_output, layerwise.default_layers)
def test_pool_output_accepts_numpy_batch_sizes_half_and_views():
    assert torch.equal(layerwise.pool_output(MAPS, np.int64(4)), MAPS.mean(dim=(2, 3)))
    half = layerwise.pool_output(MAPS.half(), 4, spatial="flatten")
    assert half.dtype == torch.float16 and half.shape == (4, 75)
    tokens = torch.randn(5, 4, 8).transpose(0, 1)  # non-contiguous (B, T, D)
    assert torch.equal(layerwise.pool_output(tokens, 4, seq_first=False), tokens[:, 0])
    assert layerwise.default_layers(_net()) == ["0", "1", "2"]


@covers(layerwise.layer_collapse, layerwise.linear_layer_collapse)
def test_layerwise_accepts_numpy_classes_tuples_and_float64_models():
    ref = layerwise.layer_collapse(_net(), _batches(), ["0", "2"], K)
    out = layerwise.layer_collapse(_net(), tuple(_batches()), ("0", "2"), np.int64(K))
    assert torch.equal(out.nc1, ref.nc1) and out.layers == ("0", "2")
    out = layerwise.layer_collapse(_net(torch.float64), _batches(torch.float64), ["2"], K)
    assert out.nc1.dtype == torch.float64
    net = _net()
    fwd = layerwise.layer_collapse(
        net, [(X6.double(), Y)], ["0"], K, forward=lambda x: net(x.float())
    )
    assert fwd.num_samples == 6  # forward= takes the inputs as they come
    lin = layerwise.linear_layer_collapse((W1.half(), W2.half()), X12.half(), Y12, np.int64(K))
    assert lin.nc1.dtype == torch.float16 and lin.dims == (6, 4, 3)
