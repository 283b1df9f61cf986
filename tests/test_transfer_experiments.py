"""lib.transfer.sources and lib.transfer.experiments: source models, collapse vs transfer,
method comparison and the data-size sweep, offline on a tiny budget."""

from __future__ import annotations

import pytest
import torch

from lib import transfer

FAST = transfer.FitConfig(epochs=1, batch_size=8, probe_iters=5, progress=False)
PRETRAIN = transfer.FitConfig(batch_size=250, probe_iters=5, progress=False)  # 2 steps per epoch


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


def test_compare_methods_passes_clip_head_to_every_model():
    """CLIP's head sits on the 768-d features by default and on the joint embedding on request."""
    config = transfer.FitConfig(progress=False, probe_iters=2)
    heads = {}
    for clip_head in (None, "joint"):
        (result,) = transfer.compare_methods(
            "clip_vit_b32",
            "digits",
            ["linear_probe"],
            per_class=2,
            image_size=32,
            clip_head=clip_head,
            config=config,
        )
        model = result.model
        heads[clip_head] = (model.head.in_features, model.normalize, model.encoder.proj is None)
    assert heads == {None: (768, False, True), "joint": (512, True, False)}
