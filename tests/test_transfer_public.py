"""Chapter 1's public-model comparison (the lecture's figure of public ImageNet models), its online
path run offline on random weights: ``source_models`` of a public backbone, then
``collapse_vs_transfer`` on the offline digits, which a public backbone reads as grey RGB
pictures through its own preprocessing. NC1 is checked against a naive recomputation (a loop over
the images and the formula with a dense pseudo-inverse, ``_linalg.dense_reference``). Nothing here downloads."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from _linalg import dense_reference
from PIL import Image

from lib import transfer

PUBLIC = ["resnet18", "resnet50", "vit_b32", "clip_vit_b32"]
SIZE = 32  # input side of the dry run: one 32×32 patch for the ViTs, cheap for the ResNets


def test_digits_reach_a_public_backbone_as_its_own_preprocessed_pictures():
    small = transfer.load_dataset("digits", "train")
    for backbone in ("resnet18", "clip_vit_b32"):
        photos = transfer.load_dataset("digits", "train", backbone, image_size=SIZE)
        assert len(photos) == len(small) and photos.classes == small.classes
        x, y = photos[7]
        assert tuple(x.shape) == (3, SIZE, SIZE) and int(y) == int(small[7][1])
        mean = torch.asarray(photos.transform.transforms[-1].mean).view(3, 1, 1)
        std = torch.asarray(photos.transform.transforms[-1].std).view(3, 1, 1)
        pixels = x * std + mean  # back to [0, 1]: a grey picture has three equal channels
        torch.testing.assert_close(pixels[0], pixels[1], atol=1e-5, rtol=0)
        torch.testing.assert_close(pixels[1], pixels[2], atol=1e-5, rtol=0)
        # the digit itself: dark where the 8×8 digit is dark, bright where it is bright
        digit = small[7][0][0] * 0.4 + 0.3  # undo the small backbones' normalisation
        coarse = torch.nn.functional.adaptive_avg_pool2d(pixels[:1], 8)[0]
        assert torch.corrcoef(torch.stack([coarse.flatten(), digit.flatten()]))[0, 1] > 0.9


def test_online_comparison_runs_offline_on_random_weights_and_nc1_matches_the_formula():
    names = [s.label for s in transfer.source_models("vit_b32", compare=PUBLIC)]
    assert names == ["resnet18", "resnet50", "clip_vit_b32", "vit_b32"]  # the backbone last
    weights = {}
    for name in names:  # random weights, fixed, so the same model can be rebuilt for the oracle
        torch.manual_seed(0)
        weights[name] = transfer.build(
            name, 5, "linear_probe", image_size=SIZE
        ).encoder.state_dict()
    sources = [
        replace(s, pretrained=weights[s.label])
        for s in transfer.source_models("vit_b32", compare=PUBLIC)
    ]
    config = transfer.FitConfig(progress=False, probe_iters=20)
    rows = transfer.collapse_vs_transfer(
        sources, "digits", per_class=4, config=config, image_size=SIZE
    )
    assert [r["label"] for r in rows] == names
    for row in rows:
        assert math.isfinite(row["nc1"]) and row["nc1"] > 0
        assert 0.0 <= row["accuracy"] <= 1.0
    for name in ("resnet18", "clip_vit_b32"):  # a CNN, and CLIP's tower without its projection
        train, _ = transfer.downstream("digits", name, per_class=4, image_size=SIZE)
        model = transfer.build(name, 5, "linear_probe", weights[name], image_size=SIZE).eval()
        with torch.no_grad():
            H = torch.stack(
                [model.forward_features(train[i][0][None])[0] for i in range(len(train))]
            )
        y = torch.stack([torch.as_tensor(train[i][1]) for i in range(len(train))])
        row = rows[names.index(name)]
        assert row["nc1"] == pytest.approx(dense_reference(H, y, 5)[0].item(), rel=1e-3)


def test_random_weights_are_not_what_the_figure_is_about():
    """The dry run's points depend on the weights: two random draws give two different NC1."""
    sources = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        weights = transfer.build(
            "resnet18", 5, "linear_probe", image_size=SIZE
        ).encoder.state_dict()
        sources.append(transfer.Source(f"seed {seed}", "resnet18", weights))
    config = transfer.FitConfig(progress=False, probe_iters=5)
    rows = transfer.collapse_vs_transfer(
        sources, "digits", per_class=3, config=config, image_size=SIZE
    )
    assert rows[0]["nc1"] != pytest.approx(rows[1]["nc1"], rel=1e-3)


def test_collapse_vs_transfer_image_size_is_checked():
    sources = [transfer.Source("r", "resnet18", False)]
    with pytest.raises(ValueError, match="^image_size "):
        transfer.collapse_vs_transfer(sources, "digits", per_class=2, image_size=0)


ZOO = ["timm:resnet10t.c3_in1k", "open_clip:RN50/openai"]


def test_any_timm_or_open_clip_model_joins_the_comparison_by_name():
    sources = transfer.source_models("vit_b32", compare=["resnet18", *ZOO])
    assert [s.label for s in sources] == ["resnet18", *ZOO, "vit_b32"]
    assert [s.backbone for s in sources] == [s.label for s in sources]


def test_zoo_rows_match_a_naive_pipeline_on_random_weights():
    """The timm model's row: NC1 of features computed image by image from the 8x8 digits (grey
    PIL pictures through the checkpoint's own preprocessing), with the same random weights."""
    config = transfer.FitConfig(progress=False, probe_iters=20)
    torch.manual_seed(0)  # the encoder is the first thing drawn, in the row and in the oracle
    rows = transfer.collapse_vs_transfer(
        [transfer.Source("mine", ZOO[0], False)], "digits", per_class=4, config=config,
        image_size=SIZE,
    )  # fmt: skip
    assert rows[0]["label"] == "mine" and 0.0 <= rows[0]["accuracy"] <= 1.0
    torch.manual_seed(0)
    encoder = transfer.zoo_encoder(ZOO[0], pretrained=False, image_size=SIZE)
    transform = transfer.zoo_preprocess(encoder, image_size=SIZE)
    small, _ = transfer.downstream("digits", "small_resnet", per_class=4)  # the same draw
    pictures = []
    for i in range(len(small)):
        digit = ((small[i][0][0] * 0.4 + 0.3).clamp(0, 1) * 255).round().to(torch.uint8)
        pictures.append(transform(Image.fromarray(digit.numpy(), mode="L").convert("RGB")))
    with torch.no_grad():
        H = encoder(torch.stack(pictures))
    y = torch.stack([torch.as_tensor(small[i][1]) for i in range(len(small))])
    assert rows[0]["nc1"] == pytest.approx(dense_reference(H, y, 5)[0].item(), rel=1e-3)


def test_open_clip_features_are_unit_vectors_and_its_row_is_finite():
    encoder = transfer.zoo_encoder(ZOO[1], pretrained=False, image_size=SIZE)
    assert encoder.normalize and encoder.num_features == 1024
    with torch.no_grad():
        h = encoder(torch.randn(3, 3, SIZE, SIZE))
    torch.testing.assert_close(h.norm(dim=1), torch.ones(3), rtol=0, atol=1e-5)
    row = transfer.zoo_probe(
        ZOO[1], "digits", pretrained=False, per_class=3, image_size=SIZE,
        config=transfer.FitConfig(progress=False, probe_iters=5),
    )  # fmt: skip
    assert math.isfinite(row["nc1"]) and 0.0 <= row["accuracy"] <= 1.0


def test_zoo_public_weights_fail_fast_offline(monkeypatch, tmp_path):
    import time

    import huggingface_hub.constants as hub

    from lib.transfer import offline

    monkeypatch.setattr(offline, "_reachable", lambda *a, **k: False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    start = time.perf_counter()
    with pytest.raises(transfer.OfflineError, match="pretrained=False"):
        transfer.zoo_encoder(ZOO[0])
    assert time.perf_counter() - start < 10
