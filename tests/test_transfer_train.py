"""lib.transfer.train: fit trains exactly the trainable parameters, the linear probe and its
features cache, layer-wise NC1, and the paper-scale path on tiny random-weight models."""

from __future__ import annotations

import pytest
import torch

from lib import transfer
from lib.metrics import nc1

METHODS_TRAINED = ("linear_probe", "layer_ft", "scl_ft", "full_ft")
FAST = transfer.FitConfig(epochs=1, batch_size=8, probe_iters=5, progress=False)


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

    def untouchable(x):  # same weights and data, so the cache applies: the backbone must not run
        raise AssertionError("the cache should have been used")

    again = transfer.build("small_resnet", 5, "linear_probe", pretrained=model.encoder.state_dict())
    again.encoder.forward = untouchable
    H2, _ = transfer.fit_linear_probe(again, data, config, cache=cache)
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
