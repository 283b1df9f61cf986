"""Tests for lib.transfer: trainable parameters per method, the lecture's table from the real
architectures, the SCL skip, fail-fast offline errors and the paper-scale path on tiny models.

Nothing here downloads: every model is built with pretrained=False (or on the meta device), and
the real-data loaders are exercised offline.
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from lib import transfer
from lib.metrics import nc1

METHODS_TRAINED = ("linear_probe", "layer_ft", "scl_ft", "full_ft")
FAST = transfer.FitConfig(epochs=1, batch_size=8, probe_iters=5, progress=False)
PRETRAIN = transfer.FitConfig(batch_size=250, probe_iters=5, progress=False)  # 2 steps per epoch


def materialize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give a meta-device model real CPU storage with small random weights (fast, no init code)."""
    model = model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05, generator=g)
        for name, b in model.named_buffers():
            b.fill_(1 if name.endswith("running_var") else 0)
    return model


def expected_trainable(model: transfer.TransferModel, method: str) -> set[str]:
    """Names the method must train, written out from the method's definition."""
    names = {n for n, _ in model.named_parameters()}
    head = {n for n in names if n.startswith("head.")}
    key = {n for n in names if n.startswith(f"encoder.{model.key_layer}.")}
    return {
        "zero_shot": set(),
        "linear_probe": head,
        "layer_ft": head | key,
        "scl_ft": head | key,
        "full_ft": names,
    }[method]


# --------------------------------------------------------------------------------------------
# Trainable parameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS_TRAINED)
def test_each_method_trains_exactly_its_parameters(method):
    model = transfer.build("small_resnet", 5, method)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == expected_trainable(model, method)
    # independent count: numel of the expected names over numel of all named parameters
    sizes = {n: p.numel() for n, p in model.named_parameters()}
    expected = sum(sizes[n] for n in expected_trainable(model, method)) / sum(sizes.values())
    assert transfer.trainable_fraction(model) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50", "vit_b32", "clip_vit_b32"])
def test_real_architectures_freeze_the_right_parameters(backbone):
    for method in (
        "layer_ft",
        "full_ft",
        "zero_shot" if backbone == "clip_vit_b32" else "linear_probe",
    ):
        model = transfer.build(backbone, 7, method, device="meta")
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert trainable == expected_trainable(model, method), (backbone, method)


def test_trainable_fraction_of_any_module():
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))  # 15 + 8 parameters
    net[0].requires_grad_(False)
    assert transfer.trainable_fraction(net) == pytest.approx(8 / 23)
    assert transfer.parameter_counts(net) == (8, 23)


def test_key_layers_follow_the_one_rule():
    for backbone in transfer.BACKBONES:
        encoder = transfer.build(backbone, 3, "layer_ft", device="meta").encoder
        blocks = transfer.residual_blocks(encoder)
        assert transfer.KEY_LAYERS[backbone] == blocks[len(blocks) // 2 - 1]
    assert transfer.key_layer("resnet50") == "layer3.0"


def test_frozen_parts_stay_in_eval_mode():
    model = transfer.build("small_resnet", 5, "layer_ft").train()
    for name, module in model.encoder.named_modules():
        inside = name == model.key_layer or name.startswith(model.key_layer + ".")
        assert module.training == inside, name
    assert all(m.training for m in transfer.build("small_resnet", 5, "full_ft").train().modules())


def test_fit_changes_only_trainable_parameters_and_their_statistics():
    model = transfer.build("small_resnet", 5, "layer_ft")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = transfer.balanced_subset(transfer.load_dataset("digits", "train"), 4)
    transfer.fit(model, data, FAST, generator=torch.Generator().manual_seed(0))
    for name, value in model.state_dict().items():
        trained = name.startswith(("head.", f"encoder.{model.key_layer}."))
        changed = not torch.equal(value, before[name])
        if not trained:
            assert not changed, f"frozen {name} changed"
    assert not torch.equal(model.head.weight, before["head.weight"])


# --------------------------------------------------------------------------------------------
# The lecture's table, from the real architectures
# --------------------------------------------------------------------------------------------


def closed_form_percent(backbone: str, K: int, method: str) -> float:
    """Published parameter counts, written out by hand (the oracle for percentage_table)."""
    if backbone == "resnet50":
        total = 25_557_032 - (2048 * 1000 + 1000)  # torchvision ResNet50 without its fc
        # layer3.0: 1x1 512->256, 3x3 256->256, 1x1 256->1024, downsample 1x1 512->1024, 4 BNs
        key = 512 * 256 + 9 * 256 * 256 + 256 * 1024 + 512 * 1024 + 2 * (256 + 256 + 1024 + 1024)
        head = 2048 * K + K
    elif backbone == "vit_b32":
        total = 88_224_232 - (768 * 1000 + 1000)  # timm ViT-B/32 without its head
        key = 12 * 768**2 + 13 * 768  # one block: qkv, proj, 2 MLP layers, 2 LayerNorms
        head = 768 * K + K
    else:
        total = 87_849_216  # open_clip ViT-B-32 image tower (conv1 has no bias, proj 768x512)
        key = 12 * 768**2 + 13 * 768
        head = 512 * K  # zero-shot head: text embeddings, no bias
    trainable = {"linear_probe": head, "zero_shot": 0, "layer_ft": key + head, "scl_ft": key + head}
    return 100 * trainable.get(method, total + head) / (total + head)


def test_percentage_table_reproduces_the_lecture():
    rows = transfer.percentage_table()
    assert len(rows) == 4 * len(transfer.LECTURE_PERCENT)
    for row in rows:
        expected = closed_form_percent(row["backbone"], row["K"], row["method"])
        assert row["computed"] == pytest.approx(expected, rel=1e-12), row
        diff = abs(round(row["computed"], 2) - row["lecture"])
        if row["backbone"] == "resnet50" or row["method"] in (
            "linear_probe",
            "zero_shot",
            "full_ft",
        ):
            assert diff < 1e-9, row  # to the printed two decimals
        elif row["backbone"] == "vit_b32":  # 224 px: Aircraft 8.1853 prints as 8.19, lecture 8.18
            assert diff <= 0.01 + 1e-9, row
        else:  # CLIP: a head on the 512-d joint embedding; the lecture's grows like a 768-d one
            assert diff <= 0.05, row
    scl = {(r["backbone"], r["dataset"]): r["computed"] for r in rows if r["method"] == "scl_ft"}
    layer = {
        (r["backbone"], r["dataset"]): r["computed"] for r in rows if r["method"] == "layer_ft"
    }
    assert scl == layer


def test_vit_at_384_px_reproduces_the_lecture_row_exactly():
    rows = [r for r in transfer.percentage_table(vit_image_size=384) if r["backbone"] == "vit_b32"]
    assert [round(r["computed"], 2) for r in rows] == [
        v for key, values in transfer.LECTURE_PERCENT.items() if key[0] == "vit_b32" for v in values
    ]


def test_percentage_markdown_lists_computed_and_lecture_values():
    text = transfer.percentage_markdown(transfer.percentage_table()[:4])
    assert "| resnet50 | cifar10 | 10 | 0.09 (0.09) | 6.52 (6.52) | 6.52 (6.52) |" in text


# --------------------------------------------------------------------------------------------
# SCL FT: same parameters, a real skip
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backbone", transfer.BACKBONES)
def test_scl_ft_adds_no_parameters(backbone):
    layer = transfer.build(backbone, 10, "layer_ft", device="meta")
    scl = transfer.build(backbone, 10, "scl_ft", device="meta")
    assert transfer.parameter_counts(scl) == transfer.parameter_counts(layer)
    assert {n for n, _ in scl.named_parameters()} == {n for n, _ in layer.named_parameters()}


def independent_skip(model: transfer.TransferModel, x: torch.Tensor) -> torch.Tensor:
    """The skip recomputed from the key layer's output, captured with a separate hook."""
    seen = []
    handle = model.encoder.get_submodule(model.key_layer).register_forward_hook(
        lambda _m, _i, out: seen.append(out)
    )
    with torch.no_grad():
        model.encoder(x)
    handle.remove()
    z = seen[0]
    p = model.num_features
    if z.ndim == 4:  # ResNet: average pool, zero-pad the channels
        s = z.mean(dim=(2, 3))
        return torch.cat([s, s.new_zeros(len(s), p - s.shape[1])], dim=1)
    if hasattr(model.encoder, "ln_post"):  # CLIP: class token, ln_post, proj
        return model.encoder.ln_post(z[:, 0]) @ model.encoder.proj
    return model.encoder.norm(z)[:, 0]  # timm ViT: class token through the final norm


@pytest.mark.parametrize("backbone", ["small_resnet", "resnet18", "vit_b32", "clip_vit_b32"])
def test_skip_really_changes_the_penultimate_features(backbone):
    g = torch.Generator().manual_seed(0)
    if backbone == "small_resnet":
        layer = transfer.build(backbone, 5, "layer_ft")
        scl = transfer.build(backbone, 5, "scl_ft", pretrained=layer.encoder.state_dict())
        x = torch.randn(4, 1, 8, 8, generator=g)
    else:
        size = 64 if backbone == "vit_b32" else 32
        layer = materialize(transfer.build(backbone, 5, "layer_ft", image_size=size, device="meta"))
        scl = materialize(transfer.build(backbone, 5, "scl_ft", image_size=size, device="meta"))
        x = torch.randn(4, 3, size, size, generator=g)
    layer.eval(), scl.eval()
    with torch.no_grad():
        h_layer, h_scl = layer.forward_features(x), scl.forward_features(x)
    assert not torch.allclose(h_layer, h_scl)
    with torch.no_grad():
        expected = layer.encoder(x) + independent_skip(layer, x)
    if backbone == "clip_vit_b32":
        expected = torch.nn.functional.normalize(expected, dim=-1)
    torch.testing.assert_close(h_scl, expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Offline: fail fast, say what to do
# --------------------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No host is reachable and the Hugging Face cache is empty."""
    import huggingface_hub.constants as hub

    monkeypatch.setattr(transfer, "_reachable", lambda *a, **k: False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path


@pytest.mark.parametrize("backbone", ["resnet18", "clip_vit_b32"])
def test_pretrained_weights_offline_fail_fast_with_advice(offline, backbone):
    start = time.perf_counter()
    with pytest.raises(transfer.OfflineError, match="pretrained=False"):
        transfer.build(backbone, 3, "linear_probe", pretrained=True)
    assert time.perf_counter() - start < 5


def test_pretrained_weights_fail_fast_on_this_machine_if_it_is_offline(monkeypatch, tmp_path):
    """The real connectivity check (no patching); skipped where the network is up (no download)."""
    if transfer._reachable(transfer._HUB_HOST):
        pytest.skip("the Hub is reachable here; the test never downloads")
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)  # as on a machine without the variable
    start = time.perf_counter()
    with pytest.raises(transfer.OfflineError, match="cannot be reached"):
        transfer.build("resnet18", 3, "full_ft", pretrained=True)
    assert time.perf_counter() - start < 5


def test_dataset_offline_fails_fast_with_advice(offline):
    start = time.perf_counter()
    with pytest.raises(transfer.OfflineError, match="DATASET='digits'"):
        transfer.load_dataset("cifar10", "train", "resnet18", root=offline / "data")
    assert time.perf_counter() - start < 5
    with pytest.raises(FileNotFoundError, match="download=True"):
        transfer.load_dataset("pet", "test", "resnet18", root=offline / "data", download=False)


def test_dataset_on_disk_gets_the_backbones_preprocessing(monkeypatch, tmp_path):
    import torchvision

    class OnDiskCIFAR(torchvision.datasets.FakeData):
        url = torchvision.datasets.CIFAR10.url

        def __init__(self, root, train, transform, download):
            assert not download, "must not download when the files are there"
            super().__init__(size=6, image_size=(3, 32, 32), num_classes=10, transform=transform)
            self.classes = [str(k) for k in range(10)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", OnDiskCIFAR)
    monkeypatch.setattr(transfer, "_reachable", lambda *a, **k: pytest.fail("went to the network"))
    data = transfer.load_dataset("cifar10", "test", "clip_vit_b32", root=tmp_path, image_size=32)
    x, _ = data[0]
    assert tuple(x.shape) == (3, 32, 32)
    clip_mean = (0.48145466, 0.4578275, 0.40821073)
    assert tuple(data.transform.transforms[-1].mean) == pytest.approx(clip_mean)


# --------------------------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown backbone 'resnet34'; allowed values: 'small_resnet', 'resnet18'"):
        transfer.build("resnet34", 10, "full_ft")
    with pytest.raises(ValueError, match="unknown method 'lora'; allowed values: 'linear_probe', 'zero_shot'"):
        transfer.build("resnet18", 10, "lora")
    for K in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
            transfer.build("small_resnet", K, "full_ft")
    with pytest.raises(ValueError, match="zero_shot' needs a text tower"):
        transfer.build("resnet18", 10, "zero_shot", device="meta")
    with pytest.raises(ValueError, match="class_names needs num_classes=3 names, got 2"):
        transfer.build("clip_vit_b32", 3, "zero_shot", class_names=["a", "b"], device="meta")
    with pytest.raises(ValueError, match="layer must be one of the residual blocks"):
        transfer.build("small_resnet", 3, "layer_ft", layer="fc")
    with pytest.raises(ValueError, match="unknown name 'imagenet'; allowed values: 'digits'"):
        transfer.load_dataset("imagenet", "train", "resnet18")
    with pytest.raises(ValueError, match="'small_resnet' has no public weights"):
        transfer.build("small_resnet", 3, "full_ft", pretrained=True)


# --------------------------------------------------------------------------------------------
# Data, training, features, layer-wise NC1
# --------------------------------------------------------------------------------------------


def test_digits_tasks_are_disjoint_balanced_splits():
    src = transfer.load_dataset("digits_source", "train")
    train, test = transfer.load_dataset("digits", "train"), transfer.load_dataset("digits", "test")
    assert len(src) == len(train) == 500 and train.classes == ["5", "6", "7", "8", "9"]
    assert torch.bincount(train.targets).tolist() == [100] * 5
    assert len(test) > 350
    rows = {tuple(x.flatten().tolist()) for x in train.tensors[0]}
    assert not any(tuple(x.flatten().tolist()) in rows for x in test.tensors[0][:50])
    sub = transfer.balanced_subset(train, 7, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(train.targets[sub.indices]).tolist() == [7] * 5


def test_layer_nc1_penultimate_matches_the_features():
    model = transfer.build("small_resnet", 5, "scl_ft")
    data = transfer.load_dataset("digits", "test")
    out = transfer.layer_nc1(model, data, 5)
    assert out.layers == tuple(transfer.layer_names(model)) and len(out.layers) == 9
    H, y = transfer.extract_features(model, data)
    assert float(out.nc1[-1]) == pytest.approx(float(nc1(H.double(), y)), rel=1e-6)


def test_linear_probe_fits_separable_features_and_uses_the_cache(tmp_path):
    model = transfer.build("small_resnet", 5, "linear_probe")
    data = transfer.load_dataset("digits", "train")
    cache = tmp_path / "feats.pt"
    config = transfer.FitConfig(probe_iters=200, weight_decay=0.0, progress=False)
    H, y = transfer.fit_linear_probe(model, data, config, cache=cache)
    assert cache.exists() and float(transfer.accuracy(model, data)) > 0.9

    class Untouchable(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            raise AssertionError("the cache should have been used")

    again = transfer.build("small_resnet", 5, "linear_probe", pretrained=model.encoder.state_dict())
    H2, _ = transfer.fit_linear_probe(again, Untouchable(), config, cache=cache)
    torch.testing.assert_close(H2, H)


def test_paper_scale_path_end_to_end_on_fakedata():
    """resnet18 and CLIP with random weights, FakeData at 32 px: every method, every metric."""
    import torchvision

    for backbone, methods in (
        ("resnet18", METHODS_TRAINED),
        ("clip_vit_b32", ("zero_shot", "scl_ft")),
    ):
        transform = transfer.preprocess(backbone, image_size=32)
        train, test = (
            torchvision.datasets.FakeData(
                size=n, image_size=(3, 32, 32), num_classes=3, transform=transform, random_offset=s
            )
            for n, s in ((12, 0), (6, 100))
        )
        fractions = []
        for method in methods:
            res = transfer.fine_tune(
                backbone,
                method,
                train,
                test,
                3,
                config=FAST,
                class_names=["cat", "dog", "car"] if backbone == "clip_vit_b32" else None,
                image_size=32,
                generator=torch.Generator().manual_seed(0),
            )
            assert 0 <= res.accuracy <= 1 and res.nc1 >= 0, (backbone, method)
            fractions.append(res.fraction)
        assert fractions == sorted(fractions)
        out = transfer.layer_nc1(res.model, test, 3)
        assert torch.isfinite(out.nc1).all() and out.layers[-1] == "penultimate"


def test_pretrain_source_returns_snapshots_that_build_models():
    weights = transfer.pretrain_source(
        snapshots=(0, 1), config=PRETRAIN, generator=torch.Generator().manual_seed(0)
    )
    assert sorted(weights) == [0, 1]
    changed = [not torch.equal(weights[0][k], weights[1][k]) for k in weights[0]]
    assert any(changed)
    model = transfer.build("small_resnet", 5, "scl_ft", pretrained=weights[1])
    torch.testing.assert_close(
        model.encoder.state_dict()["conv1.weight"], weights[1]["conv1.weight"]
    )


def test_rank_correlation_matches_the_pearson_correlation_of_ranks():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(9, generator=g), torch.randn(9, generator=g)
    rx, ry = x.argsort().argsort().double(), y.argsort().argsort().double()
    pearson = torch.corrcoef(torch.stack([rx, ry]))[0, 1]
    assert float(transfer.rank_correlation(x, y)) == pytest.approx(float(pearson), abs=1e-12)
    assert float(transfer.rank_correlation([1, 2, 3], [1, 5, 9])) == 1.0
    with pytest.raises(ValueError, match="same length"):
        transfer.rank_correlation([1.0], [2.0])


def test_chapter_experiments_run_offline_on_a_tiny_budget():
    sources = transfer.source_models(
        "small_resnet", lrs=(0.05,), snapshots=(1, 2), config=PRETRAIN, generator=torch.Generator()
    )
    assert [s.label for s in sources] == ["η=0.05, 1 ep", "η=0.05, 2 ep"]
    rows = transfer.collapse_vs_transfer(sources, "digits", per_class=4, config=FAST)
    best = transfer.most_collapsed(sources, rows)
    assert best.label == min(rows, key=lambda r: r["nc1"])["label"]
    sweep = transfer.data_size_sweep(
        "small_resnet",
        "digits",
        [2, 3],
        ("linear_probe", "scl_ft"),
        pretrained=best.pretrained,
        seeds=(0, 1),
        config=FAST,
    )
    assert set(sweep) == {"linear_probe", "scl_ft"} and sweep["scl_ft"].shape == (2,)
    train, _ = transfer.downstream("digits", "small_resnet", per_class=3, seed=5)
    again, _ = transfer.downstream("digits", "small_resnet", per_class=3, seed=5)
    assert train.indices == again.indices
    public = transfer.source_models("vit_b32", compare=("resnet18", "vit_b32", "resnet50"))
    assert [s.label for s in public] == ["resnet18", "resnet50", "vit_b32"]
