"""lib.transfer fails loudly on bad inputs (issue 15): every case names the argument at fault.

Training, the features cache and the experiments' argument checks; the other public names are in
``test_bad_inputs_transfer_2.py``. Tiny offline models (``small_resnet``) on a handful of 8×8
images; nothing here trains more than one short epoch.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from _cases import case, covers
from torch.utils.data import DataLoader, TensorDataset

from lib import transfer
from lib.transfer import _cache as transfer_cache

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest
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
    case("epochs-1", transfer.FitConfig, {"epochs": -1}, ValueError, "epochs"),
    case("epochs-2", transfer.FitConfig, {"epochs": 1.5}, ValueError, "epochs"),
    case("epochs-3", transfer.FitConfig, {"epochs": True}, ValueError, "epochs"),
    case("batch_size-1", transfer.FitConfig, {"batch_size": 0}, ValueError, "batch_size"),
    case("batch_size-2", transfer.FitConfig, {"batch_size": 4.0}, ValueError, "batch_size"),
    case("lr-1", transfer.FitConfig, {"lr": math.nan}, ValueError, "lr"),
    case("lr-2", transfer.FitConfig, {"lr": math.inf}, ValueError, "lr"),
    case("lr-3", transfer.FitConfig, {"lr": 0.0}, ValueError, "lr"),
    case("lr-4", transfer.FitConfig, {"lr": -0.1}, ValueError, "lr"),
    case("lr-5", transfer.FitConfig, {"lr": "0.1"}, ValueError, "lr"),
    case("momentum-1", transfer.FitConfig, {"momentum": -0.1}, ValueError, "momentum"),
    case("momentum-2", transfer.FitConfig, {"momentum": 1.0}, ValueError, "momentum"),
    case("momentum-3", transfer.FitConfig, {"momentum": math.nan}, ValueError, "momentum"),
    case("weight_decay-1", transfer.FitConfig, {"weight_decay": -1e-4}, ValueError, "weight_decay"),
    case(
        "weight_decay-2", transfer.FitConfig, {"weight_decay": math.nan}, ValueError, "weight_decay"
    ),
    case(
        "label_smoothing-1",
        transfer.FitConfig,
        {"label_smoothing": -0.1},
        ValueError,
        "label_smoothing",
    ),
    case(
        "label_smoothing-2",
        transfer.FitConfig,
        {"label_smoothing": 1.5},
        ValueError,
        "label_smoothing",
    ),
    case("probe_iters-1", transfer.FitConfig, {"probe_iters": 0}, ValueError, "probe_iters"),
    case("num_workers-1", transfer.FitConfig, {"num_workers": -1}, ValueError, "num_workers"),
    case("amp-1", transfer.FitConfig, {"amp": "yes"}, TypeError, "amp"),
    case("progress-1", transfer.FitConfig, {"progress": 1}, TypeError, "progress"),
]


@pytest.mark.parametrize(("kwargs", "error", "name"), BAD_CONFIG)
def test_fit_config_rejects_bad_fields(kwargs, error, name):
    with pytest.raises(error, match=rf"^{name} "):
        transfer.FitConfig(**kwargs)
    with pytest.raises(error, match=rf"^{name} "):
        dataclasses.replace(FAST, **kwargs)


@covers(transfer.FitConfig, transfer.fit)
def test_fit_config_accepts_numpy_numbers_and_zero_epochs():
    config = transfer.FitConfig(
        epochs=np.int64(0), batch_size=np.int64(4), lr=np.float64(0.1), progress=False
    )
    net = model("full_ft")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    losses = transfer.fit(net, tensors(), config)  # documented: epochs=0 trains nothing
    assert losses.shape == (0,)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


@covers(transfer.fit)
def test_fit_stops_on_a_non_finite_loss_and_says_the_weights_are_unusable():
    data = TensorDataset(torch.full((8, 1, 8, 8), math.nan), torch.arange(8) % 5)
    with pytest.raises(FloatingPointError, match="non-finite.*no longer usable.*config.lr"):
        transfer.fit(model("full_ft"), data, FAST)


@covers(transfer.fit)
def test_fit_refuses_a_config_of_the_wrong_type():
    with pytest.raises(TypeError, match="config must be a FitConfig"):
        transfer.fit(model("full_ft"), tensors(), {"lr": 0.1})


# --------------------------------------------------------------------------------------------
# Labels, images and empty data at the entry of every reading function
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "method"),
    [
        case(f"{method}-{bad}", target, bad, method)
        for target, method in (
            (transfer.fit, "full_ft"),
            (transfer.fit_linear_probe, "linear_probe"),
        )
        for bad in (5, -1, 7)
    ],
)
def test_labels_out_of_range_are_refused_before_training(bad, method):
    data = tensors(labels=[0, 1, 2, 3, 4, 0, 1, 2, 3, bad])
    net = model(method)
    with pytest.raises(ValueError, match=r"labels of data must lie in \[0, 5\)"):
        if method == "full_ft":
            transfer.fit(net, data, FAST)
        else:
            transfer.fit_linear_probe(net, data, FAST)


@covers(transfer.fine_tune)
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


TARGETS = {name: getattr(transfer, name) for name in CALLS}


def calls(names):
    return [case(name, TARGETS[name], name) for name in names]


@pytest.mark.parametrize("call", calls(sorted(CALLS)))
def test_rgb_images_into_a_one_channel_network_are_refused(call):
    net = model("linear_probe" if call == "fit_linear_probe" else "full_ft")
    with pytest.raises(ValueError, match=r"images of data must be \(1, H, W\).*\(3, 8, 8\)"):
        CALLS[call](net, RGB)


@pytest.mark.parametrize("call", calls(["extract_features", "accuracy"]))
def test_images_without_a_channel_axis_are_refused(call):
    data = TensorDataset(torch.randn(4, 8, 8), torch.arange(4))
    with pytest.raises(ValueError, match=r"images of data .* got shape \(8, 8\)"):
        CALLS[call](model(), data)


@covers(transfer.TransferModel)
def test_forward_names_x_for_a_wrong_shape():
    net = model()
    with pytest.raises(ValueError, match=r"x must be images \(B, 1, H, W\)"):
        net(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="x must be images"):
        net.forward(torch.randn(2, 64))


@covers(transfer.fine_tune)
def test_fine_tune_names_the_split_with_rgb_images():
    with pytest.raises(ValueError, match="images of test must be"):
        transfer.fine_tune("small_resnet", "full_ft", tensors(), RGB, 5, config=FAST)


EMPTY = TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("call", calls(["fit", "extract_features", "accuracy", "fit_linear_probe"]))
def test_empty_data_is_refused(call):
    net = model("linear_probe" if call == "fit_linear_probe" else "full_ft")
    with pytest.raises(ValueError, match="data is empty"):
        CALLS[call](net, EMPTY)


@covers(transfer.accuracy, transfer.balanced_subset)
def test_empty_data_is_refused_also_through_a_dataloader_and_by_balanced_subset():
    with pytest.raises(ValueError, match="data is empty"):
        transfer.accuracy(model(), DataLoader(EMPTY, batch_size=4))
    with pytest.raises(ValueError, match="data is empty"):
        transfer.balanced_subset(EMPTY, 2)


@covers(transfer.balanced_subset, transfer.extract_features, transfer.accuracy)
def test_valid_edge_inputs_are_accepted():
    data = tensors()
    assert len(transfer.balanced_subset(data, np.int64(1))) == 5
    x = images(10).transpose(2, 3)  # non-contiguous images
    assert not x.is_contiguous()
    H, y = transfer.extract_features(model(), TensorDataset(x, torch.arange(10) % 5))
    assert H.shape == (10, 128) and torch.equal(y, torch.arange(10) % 5)
    assert 0 <= float(transfer.accuracy(model(), data, batch_size=np.int64(3))) <= 1


@covers(transfer.layer_nc1)
def test_layer_nc1_checks_num_classes():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        transfer.layer_nc1(model(), tensors(), 1)


# --------------------------------------------------------------------------------------------
# Wrong objects, dtypes, meta tensors, non-finite data and batches BatchNorm cannot use
# --------------------------------------------------------------------------------------------

FIT, PROBE, TUNE = transfer.fit, transfer.fit_linear_probe, transfer.fine_tune
FEATURES, ACCURACY = transfer.extract_features, transfer.accuracy
D, X, LIN, SR = tensors(), images(), torch.nn.Linear(2, 2), "small_resnet"
F64_X = TensorDataset(images().double(), torch.arange(10) % 5)
U8_X = TensorDataset(images().byte(), torch.arange(10) % 5)
F16_X = TensorDataset(images().half(), torch.arange(10) % 5)
FLOAT_Y = TensorDataset(images(), (torch.arange(10) % 5).float())
COLUMN_Y = TensorDataset(images(), (torch.arange(10) % 5)[:, None])
META_X = TensorDataset(torch.empty(4, 1, 8, 8, device="meta"), torch.arange(4))
NAN_X = TensorDataset(torch.full((4, 1, 8, 8), math.nan), torch.arange(4))


def meta(method="full_ft"):
    return transfer.build(SR, 5, method, device="meta")


TYPE_ERRORS = [
    case("fit-model", FIT, lambda: FIT(None, D, FAST), "^model must be a Module"),
    case("fit-data", FIT, lambda: FIT(model(), None, FAST), "^data must be a Dataset"),
    case("fit-generator", FIT, lambda: FIT(model(), D, generator=0), "^generator "),
    case("fit-callback", FIT, lambda: FIT(model(), D, callback=3), "^callback "),
    case("features-model", FEATURES, lambda: FEATURES(LIN, D), "^model must be a TransferModel"),
    case("features-amp", FEATURES, lambda: FEATURES(model(), D, amp="no"), "^amp "),
    case("features-progress", FEATURES, lambda: FEATURES(model(), D, progress=1), "^progress "),
    case("accuracy-model", ACCURACY, lambda: ACCURACY(None, D), "^model "),
    case("accuracy-tensor", ACCURACY, lambda: ACCURACY(model(), X), "^data must be"),
    case("probe-model", PROBE, lambda: PROBE(LIN, D), "^model must be a TransferModel"),
    case("probe-config", PROBE, lambda: PROBE(model(), D, None), "^config "),
    case("probe-cache", PROBE, lambda: PROBE(model(), D, FAST, cache=3), "^cache "),
    case("tune-generator", TUNE, lambda: TUNE(SR, "full_ft", D, D, 5, generator=1), "^generator "),
    case("tune-train", TUNE, lambda: TUNE(SR, "full_ft", None, D, 5), "^train "),
    case("tune-test", TUNE, lambda: TUNE(SR, "full_ft", D, X, 5), "^test "),
    case("tune-config", TUNE, lambda: TUNE(SR, "full_ft", D, D, 5, config={}), "^config "),
]
VALUE_ERRORS = [
    case("fit-meta", FIT, lambda: FIT(meta(), D, FAST), "^model is on the 'meta' device"),
    case("fit-float64", FIT, lambda: FIT(model(), F64_X, FAST), "^images of data have dtype"),
    case("fit-float-labels", FIT, lambda: FIT(model(), FLOAT_Y, FAST), "^labels of data must be"),
    case("fit-2d-labels", FIT, lambda: FIT(model(), COLUMN_Y, FAST), "^labels of data must be"),
    case("fit-meta-images", FIT, lambda: FIT(model(), META_X, FAST), "^images of data is a 'meta'"),
    case("fit-batch-of-1", FIT, lambda: FIT(model("full_ft"), tensors(9), FAST), "^batch_size=4"),
    case("features-meta", FEATURES, lambda: FEATURES(meta(), D), "^model is on the 'meta'"),
    case("features-batch", FEATURES, lambda: FEATURES(model(), D, batch_size=0), "^batch_size "),
    case(
        "features-workers", FEATURES, lambda: FEATURES(model(), D, num_workers=-1), "^num_workers"
    ),
    case("accuracy-meta", ACCURACY, lambda: ACCURACY(meta(), D), "^model is on the 'meta'"),
    case(
        "accuracy-uint8",
        ACCURACY,
        lambda: ACCURACY(model(), U8_X),
        "^images of data have dtype torch.uint8",
    ),
    case(
        "accuracy-float16",
        ACCURACY,
        lambda: ACCURACY(model(), F16_X),
        "^images of data have dtype torch.float16",
    ),
    case("accuracy-meta-images", ACCURACY, lambda: ACCURACY(model(), META_X), "^images of data"),
    case("accuracy-nan-images", ACCURACY, lambda: ACCURACY(model(), NAN_X), "^model gives NaN"),
    case("probe-meta", PROBE, lambda: PROBE(meta("linear_probe"), D), "^model is on the 'meta'"),
    case("probe-method", PROBE, lambda: PROBE(model("full_ft"), D), "method='linear_probe'"),
    case("probe-float-labels", PROBE, lambda: PROBE(model(), FLOAT_Y, FAST), "^labels of data"),
    case("tune-method", TUNE, lambda: TUNE(SR, "lora", D, D, 5), "^unknown method 'lora'"),
    case("tune-num_classes", TUNE, lambda: TUNE(SR, "full_ft", D, D, 1), "^num_classes "),
    case("tune-device", TUNE, lambda: TUNE(SR, "full_ft", D, D, 5, device="gpu0"), "^device "),
    case(
        "tune-clip_head",
        TUNE,
        lambda: TUNE(SR, "full_ft", D, D, 5, clip_head="tower"),
        "^clip_head is for 'clip_vit_b32'",
    ),
    case("tune-float-labels", TUNE, lambda: TUNE(SR, "full_ft", FLOAT_Y, D, 5), "^labels of train"),
]


@pytest.mark.parametrize(("call", "match"), TYPE_ERRORS)
def test_wrong_objects_are_type_errors_naming_the_argument(call, match):
    with pytest.raises(TypeError, match=match):
        call()


@pytest.mark.parametrize(("call", "match"), VALUE_ERRORS)
def test_meta_dtypes_labels_nan_and_bad_batches_are_value_errors_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@covers(transfer.fit, transfer.accuracy, transfer.fine_tune)
def test_valid_edges_train_float16_bfloat16_n_equals_k_and_one_sample_batches_without_bn():
    for dtype in (torch.float16, torch.bfloat16):  # low precision on the CPU: model and images
        net = transfer.build("small_resnet", 5, "full_ft", dtype=dtype)
        acc = transfer.accuracy(net, TensorDataset(images().to(dtype), torch.arange(10) % 5))
        assert 0 <= float(acc) <= 1
    losses = transfer.fit(model("layer_ft"), tensors(9), FAST)  # last batch of 1: BN sees 4x4
    assert losses.shape == (1,) and torch.isfinite(losses).all()
    five = tensors(5)  # N = K: one sample per class, so the within-class spread is zero
    result = transfer.fine_tune("small_resnet", "linear_probe", five, five, 5, config=FAST)
    assert result.nc1 == 0.0 and 0 <= result.accuracy <= 1


# --------------------------------------------------------------------------------------------
# The linear probe's features cache is keyed by what produced it
# --------------------------------------------------------------------------------------------


def counted(net):
    """Count the encoder's forward passes (the feature extractor's work)."""
    calls = []
    net.encoder.register_forward_hook(lambda *_: calls.append(1))
    return calls


@covers(transfer.fit_linear_probe)
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


@covers(transfer.fit_linear_probe)
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


@covers(transfer.fine_tune)
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


@covers(transfer.fit_linear_probe)
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


@covers(transfer.fit_linear_probe)
def test_an_old_cache_without_a_key_is_recomputed_and_overwritten(tmp_path):
    cache = tmp_path / "old.pt"
    torch.save({"H": torch.zeros(10, 128), "y": torch.zeros(10, dtype=torch.long)}, cache)
    net = model()
    calls = counted(net)
    H, _ = transfer.fit_linear_probe(net, tensors(), FAST, cache=cache)
    assert calls and H.abs().sum() > 0
    assert "key" in torch.load(cache, weights_only=True)


@covers(transfer.fit_linear_probe)
def test_cache_needs_a_map_style_dataset(tmp_path):
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from zip(images(4), torch.arange(4))

    with pytest.raises(ValueError, match="cache needs a map-style Dataset"):
        transfer.fit_linear_probe(model(), Stream(), FAST, cache=tmp_path / "c.pt")
