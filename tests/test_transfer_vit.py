"""The ViT layer-wise curve of chapter 1: the tiny offline ViT (``small_vit``) and the online
ViT-B/32 path on random weights. Per-block NC1 from ``lib.transfer.layer_nc1`` (forward hooks,
class token) equals ``lib.metrics.nc1`` of features taken by a naive forward through the blocks.
Nothing here downloads."""

from __future__ import annotations

import time

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lib import transfer
from lib.metrics import nc1
from lib.transfer import offline as _offline

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

K = 3


@torch.no_grad()
def naive_block_features(model: transfer.TransferModel, data, batch_size: int):
    """Class token after each block, then the penultimate features, by hand (no hooks)."""
    vit = model.encoder
    batches, labels = [], []
    for x, y in DataLoader(data, batch_size=batch_size, shuffle=False):
        tokens = vit.patch_embed(x)  # (B, T, D) patch tokens
        cls = vit.cls_token.expand(len(x), -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + vit.pos_embed  # class token first
        tokens = vit.norm_pre(tokens)
        rows = []
        for block in vit.blocks:
            tokens = block(tokens)
            rows.append(tokens[:, 0])  # the class token
        rows.append(vit.norm(tokens)[:, 0])  # what the head reads
        batches.append(rows)
        labels.append(y)
    return [torch.cat(layer).double() for layer in zip(*batches)], torch.cat(labels)


def assert_oracle(model, data, batch_size):
    curve = transfer.layer_nc1(model, data, K, batch_size=batch_size)
    feats, y = naive_block_features(model.eval(), data, batch_size)
    depth = len(model.encoder.blocks)
    assert curve.layers == tuple(f"encoder.blocks.{i}" for i in range(depth)) + ("penultimate",)
    assert len(feats) == depth + 1
    for i, H in enumerate(feats):
        expected = float(nc1(H, y, K))
        assert float(curve.nc1[i]) == pytest.approx(expected, rel=1e-6), curve.layers[i]
    # the naive forward really is the model's: its last entry is forward_features
    with torch.no_grad():
        h = torch.cat([model.forward_features(x) for x, _ in DataLoader(data, batch_size)])
    torch.testing.assert_close(feats[-1].float(), h)
    return curve


def digits_subset(per_class=6):
    train, _ = transfer.downstream("digits", "small_vit", per_class=per_class)
    keep = [i for i in range(len(train)) if int(train[i][1]) < K]  # classes 0..K-1
    images = torch.stack([train[i][0] for i in keep])
    labels = torch.stack([torch.as_tensor(train[i][1]) for i in keep])
    return TensorDataset(images, labels)


def test_small_vit_is_a_tiny_timm_vit_with_the_class_token_readout():
    model = transfer.build("small_vit", K, "linear_probe")
    vit = model.encoder
    assert type(vit).__name__ == "VisionTransformer"
    assert len(vit.blocks) == transfer.SMALL_VIT["depth"] == 6
    assert vit.global_pool == "token" and vit.num_prefix_tokens == 1
    assert transfer.key_layer("small_vit") == "blocks.2"
    assert model.in_chans == 1 and model.num_features == transfer.SMALL_VIT["embed_dim"]
    assert transfer.layer_names(model)[-2:] == ["encoder.blocks.5", "penultimate"]


def test_small_vit_layer_nc1_equals_nc1_of_a_naive_forward_through_the_blocks():
    torch.manual_seed(0)
    data = digits_subset()
    weights = transfer.build("small_vit", K, "full_ft").encoder.state_dict()
    model = transfer.build("small_vit", K, "linear_probe", weights)
    curve = assert_oracle(model, data, batch_size=7)  # several batches, one of them partial
    assert torch.isfinite(curve.nc1).all() and (curve.nc1 > 0).all()


def test_oracle_sees_a_wrong_readout():
    """Mean-pooled tokens give other values than the class token: the test can fail."""
    torch.manual_seed(1)
    data = digits_subset()
    model = transfer.build("small_vit", K, "linear_probe")
    curve = transfer.layer_nc1(model, data, K)
    feats, y = naive_block_features(model.eval(), data, 256)
    with torch.no_grad():
        tokens = model.encoder.forward_features(torch.stack([x for x, _ in data]))
    mean_pooled = float(nc1(model.encoder.norm(tokens).mean(1).double(), y, K))
    assert float(curve.nc1[-1]) != pytest.approx(mean_pooled, rel=1e-3)
    assert float(curve.nc1[-1]) == pytest.approx(float(nc1(feats[-1], y, K)), rel=1e-6)


def test_small_vit_pretrains_offline_and_changes_its_curve():
    config = transfer.FitConfig(batch_size=64, lr=1e-3, optimizer="adamw", progress=False)
    (source,) = transfer.source_models(
        "small_vit",
        lrs=[1e-3],
        snapshots=[1],
        compare=[],
        config=config,
        generator=torch.Generator().manual_seed(0),
    )
    assert source.backbone == "small_vit" and isinstance(source.pretrained, dict)
    data = digits_subset(4)
    torch.manual_seed(0)
    before = transfer.layer_nc1(transfer.build("small_vit", K, "linear_probe"), data, K)
    after = transfer.layer_nc1(
        transfer.build("small_vit", K, "linear_probe", source.pretrained), data, K
    )
    assert not torch.allclose(before.nc1, after.nc1)


def test_adamw_and_sgd_take_different_steps():
    data = digits_subset(4)
    out = {}
    for name in ("sgd", "adamw"):
        torch.manual_seed(0)
        model = transfer.build("small_vit", K, "full_ft")
        config = transfer.FitConfig(epochs=1, batch_size=8, lr=1e-3, optimizer=name, progress=False)
        transfer.fit(model, data, config, generator=torch.Generator().manual_seed(0))
        out[name] = model.head.weight.detach().clone()
    assert not torch.allclose(out["sgd"], out["adamw"])


def test_vit_b32_online_path_on_random_weights_matches_the_naive_forward():
    """The paper-scale path (timm's vit_base_patch32_224) with pretrained=False: no download."""
    (source,) = transfer.source_models("vit_b32", compare=[])
    assert source.pretrained is True  # the notebook's paper-scale call asks for public weights
    torch.manual_seed(0)
    model = transfer.build("vit_b32", K, "linear_probe", False, image_size=64)
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(12, 3, 64, 64, generator=g), torch.arange(12) % K)
    curve = assert_oracle(model, data, batch_size=5)
    assert len(curve.layers) == 13


def test_vit_b32_public_weights_fail_fast_offline(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(_offline, "_reachable", lambda *a, **k: False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    (source,) = transfer.source_models("vit_b32", compare=[])
    start = time.perf_counter()
    with pytest.raises(transfer.OfflineError, match="pretrained=False"):
        transfer.build(source.backbone, K, "linear_probe", source.pretrained)
    assert time.perf_counter() - start < 5


def test_digits_are_tensors_for_the_small_vit_and_pictures_for_vit_b32():
    assert tuple(transfer.load_dataset("digits", "test", "small_vit")[0][0].shape) == (1, 8, 8)
    photos = transfer.load_dataset("digits", "train", "vit_b32", image_size=32)
    assert tuple(photos[0][0].shape) == (3, 32, 32)
    with pytest.raises(ValueError, match="allowed values: 'resnet18'"):
        transfer.source_models("small_vit", compare=["small_vit"])
