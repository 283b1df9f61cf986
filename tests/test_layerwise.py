"""Tests for lib.layerwise: hooks agree with features extracted independently, in two passes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lib.layerwise import (
    LayerCollapse,
    default_layers,
    layer_collapse,
    linear_layer_collapse,
    pool_output,
)
from lib.metrics import nc1, trace_ratio

F64 = torch.float64
K = 3


class CountingLoader:
    """A re-iterable list of batches that counts how often it is iterated."""

    def __init__(self, batches):
        self.batches = batches
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)


def image_batches(n_batches=3, batch=8, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_batches * batch, 3, size, size, generator=g)
    y = torch.arange(n_batches * batch) % K
    y = y[torch.randperm(len(y), generator=g)]
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, len(y), batch)], x, y


def assert_matches(result: LayerCollapse, features: list[torch.Tensor], y: torch.Tensor):
    """Layer-wise values equal nc1/trace_ratio of independently extracted, stacked features."""
    assert result.nc1.shape == result.trace_ratio.shape == (len(features),)
    for i, H in enumerate(features):
        assert result.dims[i] == H.shape[1]
        expected_nc1, expected_d = nc1(H.to(F64), y), trace_ratio(H.to(F64), y)
        assert float(result.nc1[i]) == pytest.approx(float(expected_nc1), rel=1e-9)
        assert float(result.trace_ratio[i]) == pytest.approx(float(expected_d), rel=1e-9)


def test_deep_linear_network_matches_weight_products():
    L, d = 4, 12
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.Linear(d, d, bias=False) for _ in range(L)]).to(F64)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(30, d, generator=g, dtype=F64)
    y = torch.arange(30) % K
    loader = CountingLoader([(X[:10], y[:10]), (X[10:], y[10:])])
    result = layer_collapse(net, loader, default_layers(net), num_classes=K)
    # z^l = W_l ... W_1 x, rows: Z^l = X W_1ᵀ ... W_lᵀ
    features, Z = [], X
    with torch.no_grad():
        for layer in net:
            Z = Z @ layer.weight.T
            features.append(Z)
    assert_matches(result, features, y)
    assert loader.passes == 2
    assert result.layers == ("0", "1", "2", "3") and result.num_samples == 30
    assert result.nc1.dtype == F64


def test_linear_layer_collapse_matches_hooks_on_the_same_weights():
    g = torch.Generator().manual_seed(3)
    dims = [10, 8, 8, 6]
    Ws = [torch.randn(dims[i + 1], dims[i], generator=g, dtype=F64) for i in range(3)]
    X = torch.randn(24, 10, generator=g, dtype=F64)
    y = torch.arange(24) % K
    out = linear_layer_collapse(Ws, X, y)
    net = nn.Sequential(*[nn.Linear(W.shape[1], W.shape[0], bias=False) for W in Ws]).to(F64)
    with torch.no_grad():
        for layer, W in zip(net, Ws):
            layer.weight.copy_(W)
    hooked = layer_collapse(net, [(X[:12], y[:12]), (X[12:], y[12:])], ["0", "1", "2"], K)
    assert out.layers == ("input", "1", "2", "3") and out.dims == (10, 8, 8, 6)
    torch.testing.assert_close(out.nc1[1:], hooked.nc1, rtol=1e-10, atol=0)
    torch.testing.assert_close(out.trace_ratio[1:], hooked.trace_ratio, rtol=1e-10, atol=0)
    assert float(out.nc1[0]) == pytest.approx(float(nc1(X, y)), rel=1e-12)
    with pytest.raises(ValueError, match=r"W_2 must have shape \(d_2, 8\)"):
        linear_layer_collapse([Ws[0], Ws[0]], X, y)
    with pytest.raises(ValueError, match="non-empty list"):
        linear_layer_collapse([], X, y)


def test_timm_resnet18_stages_match_forward_intermediates():
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet18", pretrained=False, num_classes=K)
    batches, x, y = image_batches(n_batches=2)
    loader = CountingLoader(batches)
    model.train()
    result = layer_collapse(model, loader, default_layers(model), num_classes=K)
    assert model.training  # mode restored
    assert loader.passes == 2
    model.eval()
    with torch.no_grad():
        maps = [
            model.forward_intermediates(xb, indices=[1, 2, 3, 4], intermediates_only=True)
            for xb, _ in batches
        ]
    features = [
        torch.cat([m[i] for m in maps]).mean(dim=(2, 3)) for i in range(4)
    ]  # global avg pool
    assert_matches(result, features, y)
    assert result.dims == (64, 128, 256, 512)
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed


def test_timm_resnet_flatten_pooling():
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet18", pretrained=False, num_classes=K).eval()
    batches, x, y = image_batches(n_batches=2)
    result = layer_collapse(model, batches, ["layer3"], num_classes=K, spatial="flatten")
    with torch.no_grad():
        H = torch.cat(
            [
                model.forward_intermediates(xb, indices=[3], intermediates_only=True)[0]
                for xb, _ in batches
            ]
        )
    assert_matches(result, [H.flatten(1)], y)


def test_timm_vit_blocks_use_the_cls_token():
    timm = pytest.importorskip("timm")
    model = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=4, num_classes=K
    )
    batches, x, y = image_batches(n_batches=2)
    layers = ["blocks.0", "blocks.2", "blocks.3"]
    result = layer_collapse(model, batches, layers, num_classes=K)
    model.eval()
    with torch.no_grad():
        outs = [
            model.forward_intermediates(
                xb,
                indices=[0, 2, 3],
                return_prefix_tokens=True,
                output_fmt="NLC",
                intermediates_only=True,
            )
            for xb, _ in batches
        ]
    features = [torch.cat([o[i][1][:, 0] for o in outs]) for i in range(3)]  # prefix token 0 = CLS
    assert_matches(result, features, y)
    avg = layer_collapse(model, batches, ["blocks.3"], num_classes=K, tokens="avg")
    assert float(avg.nc1[0]) != pytest.approx(float(result.nc1[2]), rel=1e-3)


def test_open_clip_vision_transformer_blocks():
    pytest.importorskip("open_clip")
    from open_clip.transformer import VisionTransformer

    torch.manual_seed(0)
    vis = VisionTransformer(
        image_size=32, patch_size=8, width=64, layers=2, heads=2, mlp_ratio=2.0, output_dim=16
    )
    batches, x, y = image_batches(batch=5)  # 5 samples, 17 tokens
    layers = default_layers(vis)
    assert layers == ["transformer.resblocks.0", "transformer.resblocks.1"]
    result = layer_collapse(vis, batches, layers, num_classes=K)
    vis.eval()
    with torch.no_grad():
        outs = [
            vis.forward_intermediates(
                xb, output_fmt="NLC", output_extra_tokens=True, intermediates_only=True
            )
            for xb, _ in batches
        ]
    features = [
        torch.cat([o["image_intermediates_prefix"][i][:, 0] for o in outs]) for i in range(2)
    ]
    assert_matches(result, features, y)


@pytest.mark.slow
def test_open_clip_vit_b_32_runs_from_the_factory():
    open_clip = pytest.importorskip("open_clip")
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    assert default_layers(model)[0] == "visual.transformer.resblocks.0"
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(6, 3, 224, 224, generator=g), torch.arange(6) % K)]
    loader = CountingLoader(batches)
    result = layer_collapse(
        model,
        loader,
        ["visual.transformer.resblocks.0", "visual.transformer.resblocks.11"],
        K,
        forward=model.encode_image,
    )
    assert loader.passes == 2
    assert result.dims == (768, 768)
    assert torch.isfinite(result.nc1).all() and (result.nc1 >= 0).all()


class SeqFirstStack(nn.Module):
    """Runs its block on (T, B, D) tensors and says so with ``batch_first = False``."""

    batch_first = False

    def __init__(self, d):
        super().__init__()
        self.block = nn.Linear(d, d)

    def forward(self, x):  # x: (B, T, D)
        return self.block(x.transpose(0, 1))  # (T, B, D)


def test_sequence_first_layout_is_read_from_batch_first_even_when_T_equals_B():
    torch.manual_seed(0)
    model = SeqFirstStack(6).to(F64)  # float64: batched and whole products agree to 1e-9
    g = torch.Generator().manual_seed(2)
    x = torch.randn(12, 4, 6, generator=g, dtype=F64)  # batches of B = 4 samples with T = 4 tokens
    y = torch.arange(12) % K
    batches = [(x[i : i + 4], y[i : i + 4]) for i in range(0, 12, 4)]
    result = layer_collapse(model, batches, ["block"], num_classes=K)
    with torch.no_grad():
        H = model.block(x)[:, 0]  # CLS of the batch-first computation
    assert_matches(result, [H], y)


def test_pool_output_shapes_and_layouts():
    t = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    assert torch.equal(pool_output(t, 2), t.mean(dim=(2, 3)))
    assert torch.equal(pool_output(t, 2, spatial="flatten"), t.reshape(2, -1))
    seq = torch.randn(2, 7, 5)
    assert torch.equal(pool_output(seq, 2), seq[:, 0])
    assert torch.equal(pool_output(seq, 2, tokens="avg"), seq.mean(1))
    assert torch.equal(pool_output(seq, 2, tokens="flatten"), seq.reshape(2, -1))
    assert torch.equal(pool_output(seq.transpose(0, 1), 2), seq[:, 0])  # (T, B, D) detected
    assert torch.equal(pool_output((seq, None), 2), seq[:, 0])  # tuple output
    square = torch.randn(3, 3, 5)
    assert torch.equal(pool_output(square, 3, seq_first=True), square[0])
    assert torch.equal(pool_output(square, 3), square[:, 0])
    flat = torch.randn(4, 9)
    assert torch.equal(pool_output(flat, 4), flat)


def test_pool_output_errors():
    with pytest.raises(ValueError, match=r"cannot find the batch dimension.*\(5, 6\).*3 samples"):
        pool_output(torch.randn(5, 6), 3)
    with pytest.raises(ValueError, match="unknown spatial .*; allowed values: 'avg', 'flatten'"):
        pool_output(torch.randn(2, 3, 4, 4), 2, spatial="max")
    with pytest.raises(
        ValueError, match="unknown tokens .*; allowed values: 'cls', 'avg', 'flatten'"
    ):
        pool_output(torch.randn(2, 3, 4), 2, tokens="first")
    with pytest.raises(ValueError, match="layer output must be a tensor"):
        pool_output({"a": 1}, 2)


def test_layer_collapse_errors():
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    batches = [(torch.randn(6, 4), torch.arange(6) % K)]
    with pytest.raises(ValueError, match="re-iterable"):
        layer_collapse(net, iter(batches), ["0"], K)
    with pytest.raises(ValueError, match=r"unknown layer name\(s\) \['fc'\]"):
        layer_collapse(net, batches, ["fc"], K)
    with pytest.raises(ValueError, match="non-empty list of module names"):
        layer_collapse(net, batches, "0", K)
    with pytest.raises(ValueError, match="distinct"):
        layer_collapse(net, batches, ["0", "0"], K)
    with pytest.raises(ValueError, match="data yielded no batches"):
        layer_collapse(net, [], ["0"], K)
    with pytest.raises(ValueError, match=r"\(x, y\) batches"):
        layer_collapse(net, [torch.randn(6, 4)], ["0"], K)
    with pytest.raises(ValueError, match="at least two classes"):
        layer_collapse(net, batches, ["0"], 1)
    shared = nn.Linear(4, 4)
    twice = nn.Sequential(shared, nn.ReLU(), shared)
    with pytest.raises(ValueError, match="ran 2 times in one forward"):
        layer_collapse(twice, batches, ["0"], K)
    assert not shared._forward_hooks  # removed on error too
    with pytest.raises(ValueError, match="no default layers"):
        default_layers(nn.Linear(3, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_layer_collapse_on_cuda_matches_cpu():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8)).to(F64)
    g = torch.Generator().manual_seed(4)
    batches = [(torch.randn(9, 8, generator=g, dtype=F64), torch.arange(9) % K) for _ in range(2)]
    cpu = layer_collapse(net, batches, ["0", "2"], K)
    gpu = layer_collapse(net.to("cuda"), batches, ["0", "2"], K)  # CPU batches, moved by the call
    assert gpu.nc1.device.type == "cuda"
    torch.testing.assert_close(gpu.nc1.cpu(), cpu.nc1, rtol=1e-10, atol=0)
    torch.testing.assert_close(gpu.trace_ratio.cpu(), cpu.trace_ratio, rtol=1e-10, atol=0)
