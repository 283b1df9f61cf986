"""lib.transfer fails loudly on bad inputs (issue 15): every case names the argument at fault.

Tiny offline models (``small_resnet``) on a handful of 8×8 images; nothing here trains more than
one short epoch.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lib import transfer
from lib.transfer import _cache as transfer_cache

FAST = transfer.FitConfig(epochs=1, batch_size=4, probe_iters=3, progress=False)


def images(n=10, channels=1, side=8, seed=0):
    return torch.randn(n, channels, side, side, generator=torch.Generator().manual_seed(seed))


def tensors(n=10, channels=1, labels=None, seed=0):
    y = torch.arange(n) % 5 if labels is None else torch.as_tensor(labels)
    return TensorDataset(images(n, channels, seed=seed), y)


def model(method="linear_probe", seed=0):
    torch.manual_seed(seed)
    return transfer.build("small_resnet", 5, method)


# --------------------------------------------------------------------------------------------
# FitConfig: every field checked at construction (also by dataclasses.replace)
# --------------------------------------------------------------------------------------------

BAD_CONFIG = [
    ({"epochs": -1}, ValueError, "epochs"),
    ({"epochs": 1.5}, ValueError, "epochs"),
    ({"epochs": True}, ValueError, "epochs"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 4.0}, ValueError, "batch_size"),
    ({"lr": math.nan}, ValueError, "lr"),
    ({"lr": math.inf}, ValueError, "lr"),
    ({"lr": 0.0}, ValueError, "lr"),
    ({"lr": -0.1}, ValueError, "lr"),
    ({"lr": "0.1"}, ValueError, "lr"),
    ({"momentum": -0.1}, ValueError, "momentum"),
    ({"momentum": 1.0}, ValueError, "momentum"),
    ({"momentum": math.nan}, ValueError, "momentum"),
    ({"weight_decay": -1e-4}, ValueError, "weight_decay"),
    ({"weight_decay": math.nan}, ValueError, "weight_decay"),
    ({"label_smoothing": -0.1}, ValueError, "label_smoothing"),
    ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
    ({"probe_iters": 0}, ValueError, "probe_iters"),
    ({"num_workers": -1}, ValueError, "num_workers"),
    ({"amp": "yes"}, TypeError, "amp"),
    ({"progress": 1}, TypeError, "progress"),
]


@pytest.mark.parametrize(("kwargs", "error", "name"), BAD_CONFIG)
def test_fit_config_rejects_bad_fields(kwargs, error, name):
    with pytest.raises(error, match=name):
        transfer.FitConfig(**kwargs)
    with pytest.raises(error, match=name):
        dataclasses.replace(FAST, **kwargs)


def test_fit_config_accepts_numpy_numbers_and_zero_epochs():
    config = transfer.FitConfig(
        epochs=np.int64(0), batch_size=np.int64(4), lr=np.float64(0.1), progress=False
    )
    net = model("full_ft")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    losses = transfer.fit(net, tensors(), config)  # documented: epochs=0 trains nothing
    assert losses.shape == (0,)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_fit_stops_on_a_non_finite_loss_and_says_the_weights_are_unusable():
    data = TensorDataset(torch.full((8, 1, 8, 8), math.nan), torch.arange(8) % 5)
    with pytest.raises(FloatingPointError, match="non-finite.*no longer usable.*config.lr"):
        transfer.fit(model("full_ft"), data, FAST)


def test_fit_refuses_a_config_of_the_wrong_type():
    with pytest.raises(TypeError, match="config must be a FitConfig"):
        transfer.fit(model("full_ft"), tensors(), {"lr": 0.1})


# --------------------------------------------------------------------------------------------
# Labels, images and empty data at the entry of every reading function
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [5, -1, 7])
@pytest.mark.parametrize("method", ["full_ft", "linear_probe"])
def test_labels_out_of_range_are_refused_before_training(bad, method):
    data = tensors(labels=[0, 1, 2, 3, 4, 0, 1, 2, 3, bad])
    net = model(method)
    with pytest.raises(ValueError, match=r"labels of data must lie in \[0, 5\)"):
        if method == "full_ft":
            transfer.fit(net, data, FAST)
        else:
            transfer.fit_linear_probe(net, data, FAST)


@pytest.mark.parametrize("split", ["train", "test"])
def test_fine_tune_names_the_split_with_bad_labels(split):
    good, bad = tensors(), tensors(labels=[9] * 10)
    train, test = (bad, good) if split == "train" else (good, bad)
    with pytest.raises(ValueError, match=f"labels of {split} must lie in"):
        transfer.fine_tune("small_resnet", "linear_probe", train, test, 5, config=FAST)


RGB = tensors(channels=3)
CALLS = {
    "fit": lambda m, d: transfer.fit(m, d, FAST),
    "fit_linear_probe": lambda m, d: transfer.fit_linear_probe(m, d, FAST),
    "extract_features": lambda m, d: transfer.extract_features(m, d),
    "accuracy": lambda m, d: transfer.accuracy(m, d),
    "layer_nc1": lambda m, d: transfer.layer_nc1(m, d, 5),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_rgb_images_into_a_one_channel_network_are_refused(call):
    net = model("linear_probe" if call == "fit_linear_probe" else "full_ft")
    with pytest.raises(ValueError, match=r"images of data must be \(1, H, W\).*\(3, 8, 8\)"):
        CALLS[call](net, RGB)


@pytest.mark.parametrize("call", ["extract_features", "accuracy"])
def test_images_without_a_channel_axis_are_refused(call):
    data = TensorDataset(torch.randn(4, 8, 8), torch.arange(4))
    with pytest.raises(ValueError, match=r"images of data .* got shape \(8, 8\)"):
        CALLS[call](model(), data)


def test_forward_names_x_for_a_wrong_shape():
    net = model()
    with pytest.raises(ValueError, match=r"x must be images \(B, 1, H, W\)"):
        net(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="x must be images"):
        net(torch.randn(2, 64))


def test_fine_tune_names_the_split_with_rgb_images():
    with pytest.raises(ValueError, match="images of test must be"):
        transfer.fine_tune("small_resnet", "full_ft", tensors(), RGB, 5, config=FAST)


EMPTY = TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("call", ["fit", "extract_features", "accuracy", "fit_linear_probe"])
def test_empty_data_is_refused(call):
    net = model("linear_probe" if call == "fit_linear_probe" else "full_ft")
    with pytest.raises(ValueError, match="data is empty"):
        CALLS[call](net, EMPTY)


def test_empty_data_is_refused_also_through_a_dataloader_and_by_balanced_subset():
    with pytest.raises(ValueError, match="data is empty"):
        transfer.accuracy(model(), DataLoader(EMPTY, batch_size=4))
    with pytest.raises(ValueError, match="data is empty"):
        transfer.balanced_subset(EMPTY, 2)


def test_valid_edge_inputs_are_accepted():
    data = tensors()
    assert len(transfer.balanced_subset(data, np.int64(1))) == 5
    x = images(10).transpose(2, 3)  # non-contiguous images
    assert not x.is_contiguous()
    H, y = transfer.extract_features(model(), TensorDataset(x, torch.arange(10) % 5))
    assert H.shape == (10, 128) and torch.equal(y, torch.arange(10) % 5)
    assert 0 <= float(transfer.accuracy(model(), data, batch_size=np.int64(3))) <= 1


# --------------------------------------------------------------------------------------------
# Unknown names: a ValueError listing the allowed values (never a bare KeyError)
# --------------------------------------------------------------------------------------------


UNKNOWN = [
    (lambda: transfer.NUM_CLASSES["imagenet"], "unknown data set 'imagenet'.*'digits'"),
    (lambda: transfer.KEY_LAYERS["resnet34"], "unknown backbone 'resnet34'.*'small_resnet'"),
    (lambda: transfer.pretrain_source(dataset="imagenet"), "unknown dataset 'imagenet'"),
    (lambda: transfer.pretrain_source(backbone="vgg"), "unknown backbone 'vgg'"),
    (lambda: transfer.source_models("vgg"), "unknown backbone 'vgg'"),
    (lambda: transfer.source_models("resnet50", compare=("vgg",)), "unknown compare"),
    (lambda: transfer.collapse_vs_transfer([], "imagenet"), "unknown dataset 'imagenet'"),
    (lambda: transfer.layer_nc1(model(), tensors(), 5, layers=["nope"]), "unknown layer 'nope'"),
    (
        lambda: transfer.TransferModel(
            transfer.SmallResNet(),
            torch.nn.Linear(128, 5),
            backbone="small_resnet",
            method="layer_ft",
            key_layer="nope",
        ),
        "unknown key_layer 'nope'; allowed values: layer1.0",
    ),
]


@pytest.mark.parametrize(("call", "match"), UNKNOWN)
def test_unknown_names_raise_value_errors_listing_the_allowed_values(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_unknown_table_keys_are_still_key_errors_for_dict_code():
    with pytest.raises(KeyError):
        transfer.NUM_CLASSES["imagenet"]
    assert transfer.NUM_CLASSES.get("imagenet") is None and "digits" in transfer.NUM_CLASSES
    assert dict(transfer.NUM_CLASSES)["cifar10"] == 10


def test_layer_nc1_checks_num_classes():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        transfer.layer_nc1(model(), tensors(), 1)


# --------------------------------------------------------------------------------------------
# Experiments: empty sweeps, NaN rows, rank correlation
# --------------------------------------------------------------------------------------------

EMPTY_SWEEPS = [
    (
        lambda: transfer.data_size_sweep("small_resnet", "digits", [2], ["full_ft"], seeds=()),
        "seeds",
    ),
    (lambda: transfer.data_size_sweep("small_resnet", "digits", [], ["full_ft"]), "sizes"),
    (lambda: transfer.data_size_sweep("small_resnet", "digits", [2], []), "methods"),
    (lambda: transfer.data_size_sweep("small_resnet", "digits", [0], ["full_ft"]), "sizes"),
    (lambda: transfer.data_size_sweep("small_resnet", "digits", [2], "full_ft"), "methods"),
    (
        lambda: transfer.data_size_sweep("small_resnet", "digits", [2], ["full_ft", "full_ft"]),
        "methods must be distinct",
    ),
    (lambda: transfer.compare_methods("small_resnet", "digits", []), "methods"),
    (lambda: transfer.collapse_vs_transfer([], "digits"), "sources"),
    (lambda: transfer.source_models("small_resnet", lrs=()), "lrs"),
    (lambda: transfer.source_models("small_resnet", lrs=(float("nan"),)), "lr"),
    (lambda: transfer.pretrain_source(snapshots=()), "snapshots"),
    (lambda: transfer.pretrain_source(snapshots=(-1,)), "snapshots"),
]


@pytest.mark.parametrize(("call", "name"), EMPTY_SWEEPS)
def test_empty_or_bad_sweeps_are_refused_before_any_training(call, name):
    with pytest.raises(ValueError, match=name):
        call()


SOURCES = [transfer.Source("a", "resnet18", True), transfer.Source("b", "resnet50", True)]


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([{"nc1": 1.0}, {"nc1": math.nan}], r"rows\[1\]\['nc1'\] is NaN \(source 'b'\)"),
        ([{"nc1": math.nan}, {"nc1": 1.0}], r"rows\[0\]\['nc1'\] is NaN"),
        ([{"nc1": 1.0}, {"accuracy": 0.5}], r"rows\[1\]\['nc1'\] must be a number"),
        ([{"nc1": "1.0"}, {"nc1": 2.0}], r"rows\[0\]\['nc1'\] must be a number"),
        ([{"nc1": 1.0}], "2 sources and 1 rows"),
    ],
)
def test_most_collapsed_refuses_nan_and_malformed_rows(rows, match):
    with pytest.raises(ValueError, match=match):
        transfer.most_collapsed(SOURCES, rows)


def test_most_collapsed_accepts_numpy_values_and_breaks_ties_by_order():
    assert transfer.most_collapsed(SOURCES, [{"nc1": 1.0}, {"nc1": 1.0}]).label == "a"
    rows = [{"nc1": np.float64(2.0)}, {"nc1": np.float32(1.0)}]
    assert transfer.most_collapsed(SOURCES, rows).label == "b"
    assert transfer.most_collapsed(SOURCES, [{"nc1": math.inf}, {"nc1": 3.0}]).label == "b"


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1.0, math.nan, 3.0], [1.0, 2.0, 3.0], "x contains NaN"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, math.inf], "y contains NaN or inf"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], "same length >= 2, got lengths 3 and 4"),
        ([1.0], [2.0], "same length >= 2, got lengths 1 and 1"),
        ([], [], "same length >= 2"),
        ([[1.0, 2.0]], [1.0, 2.0], "x must be a 1-D sample"),
        ([1.0, 2.0], 3.0, "y must be a 1-D sample"),
    ],
)
def test_rank_correlation_refuses_non_finite_and_mismatched_samples(x, y, match):
    with pytest.raises(ValueError, match=match):
        transfer.rank_correlation(x, y)


def test_rank_correlation_accepts_numpy_and_non_contiguous_samples():
    x = torch.arange(10.0)[::2]
    assert not x.is_contiguous()
    assert float(transfer.rank_correlation(x, np.arange(5.0))) == 1.0
    assert float(transfer.rank_correlation(np.array([1, 2]), np.array([2, 1]))) == -1.0


# --------------------------------------------------------------------------------------------
# The linear probe's features cache is keyed by what produced it
# --------------------------------------------------------------------------------------------


def counted(net):
    """Count the encoder's forward passes (the feature extractor's work)."""
    calls = []
    net.encoder.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_cache_reused_only_for_the_same_model_data_and_configuration(tmp_path):
    cache = tmp_path / "feats.pt"
    data10, data25 = tensors(10), tensors(25)
    first = model()
    H, _ = transfer.fit_linear_probe(first, data10, FAST, cache=cache)

    same = model()
    calls = counted(same)  # same weights (same seed), same data, same config: reused
    H2, _ = transfer.fit_linear_probe(same, data10, FAST, cache=cache)
    assert not calls and torch.equal(H2, H)
    probe_only = dataclasses.replace(FAST, probe_iters=7, weight_decay=0.0)  # head settings only
    transfer.fit_linear_probe(same, data10, probe_only, cache=cache)
    assert not calls

    more = model()  # the user study's case: 25 samples must not train on 10 cached ones
    H25, y25 = transfer.fit_linear_probe(more, data25, FAST, cache=cache)
    assert H25.shape == (25, 128) and len(y25) == 25
    assert torch.load(cache, weights_only=True)["H"].shape == (25, 128)  # overwritten


@pytest.mark.parametrize("change", ["labels", "images", "batch_size", "weights", "code"])
def test_cache_not_reused_after_a_change(tmp_path, monkeypatch, change):
    cache = tmp_path / "feats.pt"
    data = tensors(10)
    transfer.fit_linear_probe(model(), data, FAST, cache=cache)
    config, seed = FAST, 0
    if change == "labels":
        data = tensors(10, labels=torch.arange(10).flip(0) % 5)
    elif change == "images":
        data = tensors(10, seed=1)
    elif change == "batch_size":
        config = dataclasses.replace(FAST, batch_size=5)
    elif change == "weights":
        seed = 1
    else:
        original = transfer_cache._source_of
        monkeypatch.setattr(transfer_cache, "_source_of", lambda fn: original(fn) + "# edited")
    net = model(seed=seed)
    calls = counted(net)
    H, y = transfer.fit_linear_probe(net, data, config, cache=cache)
    assert calls, "the cache should have been recomputed"
    torch.testing.assert_close(H, transfer.extract_features(model(seed=seed), data)[0])
    assert torch.equal(y, data.tensors[1])


def test_fine_tune_does_not_reuse_a_cache_of_other_data(tmp_path):
    cache = tmp_path / "feats.pt"
    test = tensors(10, seed=3)
    transfer.fine_tune(
        "small_resnet", "linear_probe", tensors(10), test, 5, config=FAST, cache=cache
    )
    transfer.fine_tune(
        "small_resnet", "linear_probe", tensors(25), test, 5, config=FAST, cache=cache
    )
    assert torch.load(cache, weights_only=True)["y"].shape == (25,)


class NotATensor:
    pass


@pytest.mark.parametrize(
    "content",
    [b"not a torch file", [1, 2, 3], {"H": torch.zeros(2)}, {"H": 1, "y": 2, "key": NotATensor()}],
    ids=["garbage", "list", "no-y", "pickled-object"],
)
def test_a_corrupt_cache_is_a_value_error_naming_the_file(tmp_path, content):
    cache = tmp_path / "broken.pt"
    if isinstance(content, bytes):
        cache.write_bytes(content)
    else:
        torch.save(content, cache)
    with pytest.raises(ValueError, match="cache file .*broken.pt"):
        transfer.fit_linear_probe(model(), tensors(), FAST, cache=cache)


def test_an_old_cache_without_a_key_is_recomputed_and_overwritten(tmp_path):
    cache = tmp_path / "old.pt"
    torch.save({"H": torch.zeros(10, 128), "y": torch.zeros(10, dtype=torch.long)}, cache)
    net = model()
    calls = counted(net)
    H, _ = transfer.fit_linear_probe(net, tensors(), FAST, cache=cache)
    assert calls and H.abs().sum() > 0
    assert "key" in torch.load(cache, weights_only=True)


def test_cache_needs_a_map_style_dataset(tmp_path):
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from zip(images(4), torch.arange(4))

    with pytest.raises(ValueError, match="cache needs a map-style Dataset"):
        transfer.fit_linear_probe(model(), Stream(), FAST, cache=tmp_path / "c.pt")
