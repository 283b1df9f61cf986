"""lib.transfer fails loudly on bad inputs, part 2 (issue 15): backbones, data, models, layers,
the lecture's table, the experiments and the figures. Every case names the argument at fault.

Nothing here downloads or trains: models are tiny or on the meta device, and data that is not on
disk fails offline in seconds (the network is stubbed out, never contacted).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from _cases import case, covers  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from lib import transfer  # noqa: E402
from lib.layerwise import LayerCollapse  # noqa: E402
from lib.transfer import figures, offline  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

EXEMPT = {
    "lib.transfer.offline.OfflineError": "an exception class that lib raises; nobody calls it",
    "lib.transfer.train.TransferResult": "a result record that fine_tune builds, callers never do",
}

SR, FT = "small_resnet", "full_ft"
SMALL, TM, BUILD = transfer.SmallResNet, transfer.TransferModel, transfer.build
LOAD, SUBSET, PRE = transfer.load_dataset, transfer.balanced_subset, transfer.preprocess
MD, SWEEP, MOST = transfer.percentage_markdown, transfer.data_size_sweep, transfer.most_collapsed
CVT, CM, DOWN = transfer.collapse_vs_transfer, transfer.compare_methods, transfer.downstream
SM, PT, RANK = transfer.source_models, transfer.pretrain_source, transfer.rank_correlation
NAMES, LNC1, KEY, BLOCKS = (
    transfer.layer_names,
    transfer.layer_nc1,
    transfer.key_layer,
    transfer.residual_blocks,
)
COUNTS, FRACTION, TABLE = (
    transfer.parameter_counts,
    transfer.trainable_fraction,
    transfer.percentage_table,
)
PCT, PM, PDS, PLN = (
    figures.plot_collapse_vs_transfer,
    figures.plot_methods,
    figures.plot_data_sizes,
    figures.plot_layer_nc1,
)
OK_SOURCE = transfer.Source("a", SR, False)
SOURCES = [transfer.Source("a", "resnet18", True), transfer.Source("b", "resnet50", True)]


def tensors(n=10, labels=None):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 5 if labels is None else torch.as_tensor(labels)
    return TensorDataset(torch.randn(n, 1, 8, 8, generator=g), y)


def model(method=FT):
    torch.manual_seed(0)
    return BUILD(SR, 5, method)


def parts(**kwargs):
    """TransferModel's arguments, valid unless overridden."""
    args = {"encoder": SMALL(), "head": nn.Linear(128, 5), "backbone": SR, "method": FT}
    return {"key_layer": "layer2.1", **args, **kwargs}


def collapse(layers=("encoder.layer1.0", "penultimate")):
    t = torch.tensor([2.0, 1.0], dtype=torch.float64)
    return LayerCollapse(layers, t, t, (16, 128), 10)


D = tensors()
FLOAT_Y = TensorDataset(D.tensors[0], D.tensors[1].float())
COLUMN_Y = TensorDataset(D.tensors[0], D.tensors[1][:, None])
ROW = {"backbone": "b", "dataset": "d", "K": 2, "method": FT, "computed": 1.0, "lecture": 1.0}
RESULT = transfer.TransferResult(FT, 0.5, 1.0, 1.0, model=None)

TYPE_ERRORS = [
    # backbones
    case("small-depths-int", SMALL, lambda: SMALL(depths=2), "^depths "),
    case("blocks-None", BLOCKS, lambda: BLOCKS(None), "^encoder"),
    # data
    case("subset-tensor", SUBSET, lambda: SUBSET(torch.zeros(3), 1), "^data must be a Dataset"),
    case("subset-generator", SUBSET, lambda: SUBSET(D, 1, generator=0), "^generator "),
    case("load-root", LOAD, lambda: LOAD("cifar10", "train", "resnet18", root=None), "^root "),
    case("load-download", LOAD, lambda: LOAD("dtd", "test", "resnet18", download=1), "^download "),
    # models
    case("build-device", BUILD, lambda: BUILD(SR, 3, FT, device=0), "^device "),
    case("model-encoder", TM, lambda: TM(**parts(encoder=None)), "^encoder "),
    case("model-head", TM, lambda: TM(**parts(head=nn.Identity())), "^head "),
    case("model-normalize", TM, lambda: TM(**parts(normalize=1)), "^normalize "),
    case("counts-None", COUNTS, lambda: COUNTS(None), "^model"),
    case("counts-tensor", COUNTS, lambda: COUNTS(D), "^model"),
    case("fraction-None", FRACTION, lambda: FRACTION(1), "^model"),
    # layers
    case("names-None", NAMES, lambda: NAMES(None), "^model must be a TransferModel"),
    case("names-encoder", NAMES, lambda: NAMES(SMALL()), "^model must be a TransferModel"),
    case("nc1-model", LNC1, lambda: LNC1(nn.Linear(2, 2), D, 5), "^model must be a TransferModel"),
    case("nc1-data", LNC1, lambda: LNC1(model(), None, 5), "^data must be"),
    # table
    case("markdown-None", MD, lambda: MD(None), "^rows must be a list"),
    case("markdown-str", MD, lambda: MD("rows"), "^rows must be a list"),
    case("markdown-row", MD, lambda: MD([1]), r"^rows\[0\] must be"),
    # experiments
    case("source-label", transfer.Source, lambda: transfer.Source(1, SR, False), "^label "),
    case("source-pretrained", transfer.Source, lambda: transfer.Source("a", SR, None), "^pretrained"),
    case("collapse-str", CVT, lambda: CVT("abc", "digits"), "^sources must be a list"),
    case("collapse-source", CVT, lambda: CVT(["a"], "digits"), r"^sources\[0\] must be a Source"),
    case("collapse-config", CVT, lambda: CVT([OK_SOURCE], "digits", config={}), "^config "),
    case("compare-config", CM, lambda: CM(SR, "digits", [FT], config=None), "^config "),
    case("sweep-config", SWEEP, lambda: SWEEP(SR, "digits", [2], [FT], config=1), "^config "),
    case("pretrain-config", PT, lambda: PT(snapshots=(0,), config=None), "^config "),
    case("sources-config", SM, lambda: SM(SR, config=None), "^config "),
    case("sources-lrs-str", SM, lambda: SM(SR, lrs="0.1"), "^lrs must be a list"),
    case("sources-compare-str", SM, lambda: SM("resnet50", compare="resnet18"), "^compare "),
    case("most-None", MOST, lambda: MOST(None, None), "^sources must be a list"),
    case("most-rows", MOST, lambda: MOST(SOURCES, {"nc1": 1.0}), "^rows must be"),
    # figures
    case("cvt-None", PCT, lambda: PCT(None), "^rows "),
    case("cvt-row", PCT, lambda: PCT([1]), r"^rows\[0\]"),
    case("methods-None", PM, lambda: PM(None), "^results "),
    case("methods-dict", PM, lambda: PM([{"method": FT}]), r"^results\[0\]"),
    case("sizes-None", PDS, lambda: PDS(None, {}), "^sizes "),
    case("sizes-table", PDS, lambda: PDS([1], None), "^table "),
    case("sizes-list", PDS, lambda: PDS([1], {FT: [0.5]}), r"^table\['full_ft'\]"),
    case("layers-None", PLN, lambda: PLN(None), "^curves "),
    case("layers-tensor", PLN, lambda: PLN({FT: D.tensors[0]}), r"^curves\['full_ft'\]"),
    case("layers-key", PLN, lambda: PLN({FT: collapse()}, 3), "^key_layer "),
]  # fmt: skip

VALUE_ERRORS = [
    # backbones
    case("small-in_chans-0", SMALL, lambda: SMALL(in_chans=0), "^in_chans "),
    case("small-in_chans-float", SMALL, lambda: SMALL(in_chans=1.5), "^in_chans "),
    case("small-3-stages", SMALL, lambda: SMALL(widths=(8, 16, 32)), "^widths must give the 4"),
    case("small-width-negative", SMALL, lambda: SMALL(widths=(16, -1, 64, 128)), r"^widths \(each\)"),
    case("small-depth-0", SMALL, lambda: SMALL(depths=(0, 2, 2, 2)), r"^depths \(each\)"),
    case("small-dtype", SMALL, lambda: SMALL(dtype=torch.int64), "^dtype "),
    case("small-rgb", SMALL, lambda: SMALL().forward(torch.randn(2, 3, 8, 8)), r"^x must be images \(B, 1"),
    case("small-flat", SMALL, lambda: SMALL().forward(torch.randn(2, 64)), "^x must be images"),
    case("key-unknown", KEY, lambda: KEY("resnet34"), "^unknown backbone 'resnet34'"),
    case("key-None", KEY, lambda: KEY(None), "^unknown backbone None"),
    case("blocks-linear", BLOCKS, lambda: BLOCKS(nn.Linear(2, 2)), "encoder Linear"),
    case("blocks-model", BLOCKS, lambda: BLOCKS(model()), "pass model.encoder"),
    # data
    case("load-name", LOAD, lambda: LOAD("imagenet", "train"), "^unknown name 'imagenet'"),
    case("load-split", LOAD, lambda: LOAD("digits", "val"), "^unknown split 'val'"),
    case("load-backbone", LOAD, lambda: LOAD("digits", "train", "vgg"), "^unknown backbone 'vgg'"),
    case("load-cifar-small", LOAD, lambda: LOAD("cifar10", "train"), "^'small_resnet' reads"),
    case("load-cifar-small-vit", LOAD, lambda: LOAD("cifar10", "train", "small_vit"), "^'small_vit' reads"),
    case("preprocess-small-vit", PRE, lambda: PRE("small_vit"), "^unknown backbone 'small_vit'"),
    case("build-small-vit-public", BUILD, lambda: BUILD("small_vit", 3, FT, pretrained=True), "^'small_vit' has no public weights"),
    case("fitconfig-optimizer", transfer.FitConfig, lambda: transfer.FitConfig(optimizer="adam"), "^unknown optimizer 'adam'"),
    case("load-split_seed", LOAD, lambda: LOAD("digits", "train", split_seed=1.5), "^split_seed "),
    case("load-image_size", LOAD, lambda: LOAD("digits", "train", image_size=0), "^image_size "),
    case("preprocess-small", PRE, lambda: PRE(SR), "^unknown backbone 'small_resnet'"),
    case("preprocess-size", PRE, lambda: PRE("resnet18", image_size=-3), "^image_size "),
    case("preprocess-float", PRE, lambda: PRE("vit_b32", image_size=2.5), "^image_size "),
    case("subset-per_class", SUBSET, lambda: SUBSET(D, 0), "^per_class "),
    case("subset-float-labels", SUBSET, lambda: SUBSET(FLOAT_Y, 1), "^labels of data must be integer"),
    case("subset-2d-labels", SUBSET, lambda: SUBSET(COLUMN_Y, 1), "^labels of data must be one"),
    # models
    case("build-backbone", BUILD, lambda: BUILD("resnet34", 3, FT), "^unknown backbone 'resnet34'"),
    case("build-method", BUILD, lambda: BUILD(SR, 3, "lora"), "^unknown method 'lora'"),
    case("build-K-1", BUILD, lambda: BUILD(SR, 1, FT), "^num_classes "),
    case("build-K-float", BUILD, lambda: BUILD(SR, 3.0, FT), "^num_classes "),
    case("build-zero_shot", BUILD, lambda: BUILD(SR, 3, "zero_shot"), "^method 'zero_shot'"),
    case("build-class_names-str", BUILD, lambda: BUILD("clip_vit_b32", 3, "zero_shot", class_names="abc", device="meta"), "^class_names "),
    case("build-class_names-cnn", BUILD, lambda: BUILD(SR, 2, FT, class_names=["a", "b"]), "^class_names "),
    case("build-clip_head", BUILD, lambda: BUILD("clip_vit_b32", 3, FT, clip_head="proj", device="meta"), "^unknown clip_head 'proj'"),
    case("build-clip_head-cnn", BUILD, lambda: BUILD(SR, 3, FT, clip_head="joint"), "^clip_head is for 'clip_vit_b32'"),
    case("build-clip_head-zero_shot", BUILD, lambda: BUILD("clip_vit_b32", 3, "zero_shot", clip_head="tower", device="meta"), "^clip_head='tower' cannot"),
    case("build-image_size", BUILD, lambda: BUILD("vit_b32", 3, FT, image_size=0, device="meta"), "^image_size "),
    case("build-device-name", BUILD, lambda: BUILD(SR, 3, FT, device="gpu0"), "^device 'gpu0'"),
    case("build-dtype-int", BUILD, lambda: BUILD(SR, 3, FT, dtype=torch.int64), "^dtype "),
    case("build-dtype-str", BUILD, lambda: BUILD(SR, 3, FT, dtype="float32"), "^dtype "),
    case("build-pretrained-None", BUILD, lambda: BUILD(SR, 3, FT, None), "^pretrained "),
    case("build-pretrained-dict", BUILD, lambda: BUILD(SR, 3, FT, {"x": torch.zeros(1)}), "^pretrained is a state dict"),
    case("build-pretrained-public", BUILD, lambda: BUILD(SR, 3, FT, True), "pass pretrained=False"),
    case("build-meta-pretrained", BUILD, lambda: BUILD("resnet18", 3, FT, True, device="meta"), "^device='meta'"),
    case("build-layer", BUILD, lambda: BUILD(SR, 3, "layer_ft", layer="layer9.0"), "^layer must be"),
    case("build-layer-full_ft", BUILD, lambda: BUILD(SR, 3, FT, layer="fc"), "^layer must be"),
    case("model-width", TM, lambda: TM(**parts(head=nn.Linear(64, 5))), "^head takes 64 features"),
    case("model-method", TM, lambda: TM(**parts(method="nope")), "^unknown method 'nope'"),
    case("model-backbone", TM, lambda: TM(**parts(backbone="vgg")), "^unknown backbone 'vgg'"),
    case("fraction-empty", FRACTION, lambda: FRACTION(nn.ReLU()), "^model has no parameters"),
    # layers
    case("nc1-meta", LNC1, lambda: LNC1(BUILD(SR, 5, FT, device="meta"), D, 5), "^model is on the 'meta'"),
    case("nc1-layers-str", LNC1, lambda: LNC1(model(), D, 5, layers="penultimate"), "^layers must be a list"),
    case("nc1-layers-empty", LNC1, lambda: LNC1(model(), D, 5, layers=[]), "^layers is empty"),
    case("nc1-batch", LNC1, lambda: LNC1(model(), D, 5, batch_size=0), "^batch_size "),
    case("nc1-labels", LNC1, lambda: LNC1(model(), tensors(labels=[7] * 10), 5), r"^labels of data must lie in \[0, 5\)"),
    case("nc1-float-labels", LNC1, lambda: LNC1(model(), FLOAT_Y, 5), "^labels of data must be integer"),
    # table
    case("table-size-0", TABLE, lambda: TABLE(vit_image_size=0), "^vit_image_size "),
    case("table-size-str", TABLE, lambda: TABLE(vit_image_size="224"), "^vit_image_size "),
    case("markdown-empty", MD, lambda: MD([]), "^rows is empty"),
    case("markdown-keys", MD, lambda: MD([{"backbone": "b"}]), r"^rows\[0\] lacks the key\(s\) \['dataset'"),
    # experiments
    case("source-backbone", transfer.Source, lambda: transfer.Source("a", "vgg", True), "^unknown backbone 'vgg'"),
    case("downstream-dataset", DOWN, lambda: DOWN("imagenet", SR), "^unknown dataset 'imagenet'"),
    case("downstream-backbone", DOWN, lambda: DOWN("digits", "vgg"), "^unknown backbone 'vgg'"),
    case("downstream-per_class", DOWN, lambda: DOWN("digits", SR, per_class=0), "^per_class "),
    case("downstream-seed", DOWN, lambda: DOWN("digits", SR, per_class=2, seed=None), "^seed "),
    case("collapse-per_class", CVT, lambda: CVT([OK_SOURCE], "digits", per_class=0), "^per_class "),
    case("collapse-seed", CVT, lambda: CVT([OK_SOURCE], "digits", seed=-1), "^seed "),
    case("compare-backbone", CM, lambda: CM("vgg", "digits"), "^unknown backbone 'vgg'"),
    case("compare-clip_head", CM, lambda: CM("clip_vit_b32", "digits", clip_head="proj"), "^unknown clip_head 'proj'"),
    case("compare-clip_head-zero_shot", CM, lambda: CM("clip_vit_b32", "digits", ["zero_shot"], clip_head="tower"), "^clip_head='tower' cannot"),
    case("sweep-clip_head-cnn", SWEEP, lambda: SWEEP(SR, "digits", [2], clip_head="joint"), "^clip_head is for 'clip_vit_b32'"),
    case("compare-dataset", CM, lambda: CM(SR, "imagenet"), "^unknown dataset 'imagenet'"),
    case("compare-method", CM, lambda: CM(SR, "digits", ["lora"]), "^unknown method 'lora'"),
    case("compare-seed", CM, lambda: CM(SR, "digits", [FT], seed=1.5), "^seed "),
    case("compare-per_class", CM, lambda: CM(SR, "digits", [FT], per_class=0), "^per_class "),
    case("compare-pretrained", CM, lambda: CM(SR, "digits", [FT], per_class=1, pretrained="yes"), "^pretrained "),
    case("sweep-seed", SWEEP, lambda: SWEEP(SR, "digits", [2], [FT], seeds=(0.5,)), r"^seeds \(each\)"),
    case("sources-snapshots", SM, lambda: SM(SR, snapshots=()), "^snapshots is empty"),
    case("sources-lr-negative", SM, lambda: SM(SR, lrs=(0.1, -0.1)), r"^lrs \(each\)"),
    case("most-empty", MOST, lambda: MOST([], []), "^sources is empty"),
    # figures
    case("cvt-empty", PCT, lambda: PCT([]), "^rows is empty"),
    case("cvt-keys", PCT, lambda: PCT([{"nc1": 1.0}]), r"^rows\[0\] lacks"),
    case("methods-empty", PM, lambda: PM([]), "^results is empty"),
    case("sizes-empty", PDS, lambda: PDS([1], {}), "^table is empty"),
    case("sizes-shape", PDS, lambda: PDS([1, 2, 3], {FT: torch.zeros(2)}), r"^table\['full_ft'\] must hold"),
    case("sizes-method", PDS, lambda: PDS([1], {"nope": torch.zeros(1)}), r"^unknown method \(a key of table\)"),
    case("layers-empty", PLN, lambda: PLN({}), "^curves is empty"),
    case("layers-other", PLN, lambda: PLN({FT: collapse(), "scl_ft": collapse(("a", "b"))}), r"^curves\['scl_ft'\] is over other layers"),
]  # fmt: skip


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize(("call", "match"), TYPE_ERRORS)
def test_wrong_objects_are_type_errors_naming_the_argument(call, match):
    with pytest.raises(TypeError, match=match):
        call()


@pytest.mark.parametrize(("call", "match"), VALUE_ERRORS)
def test_bad_values_and_options_are_value_errors_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------------------------
# Offline: data that is not on disk fails in seconds (the network stubbed out, never contacted)
# --------------------------------------------------------------------------------------------


@covers(transfer.load_dataset)
def test_missing_data_fails_fast_offline_or_without_download(monkeypatch, tmp_path):
    monkeypatch.setattr(offline, "_reachable", lambda *a, **k: False)
    root = tmp_path / "no-data"
    with pytest.raises(
        transfer.OfflineError, match=f"cannot download cifar10: it is not in '{root}"
    ):
        transfer.load_dataset("cifar10", "train", "resnet18", root=root)
    with pytest.raises(FileNotFoundError, match="not in .*; pass download=True"):
        transfer.load_dataset("cifar10", "test", "resnet18", root=root, download=False)


# --------------------------------------------------------------------------------------------
# Valid edge inputs are accepted; degenerate data gets its documented answer
# --------------------------------------------------------------------------------------------


@covers(transfer.SmallResNet, transfer.residual_blocks, transfer.key_layer)
def test_backbone_accepts_numpy_integers_lists_and_non_contiguous_images():
    net = transfer.SmallResNet(np.int64(3), widths=[4, 8, 8, 16], depths=(1, 1, 1, np.int64(1)))
    x = torch.randn(2, 3, 8, 8).transpose(2, 3)
    assert not x.is_contiguous() and net.forward(x).shape == (2, 16)
    assert transfer.residual_blocks(net) == ["layer1.0", "layer2.0", "layer3.0", "layer4.0"]
    assert transfer.key_layer("vit_b32") == "blocks.5"


@covers(transfer.balanced_subset, transfer.load_dataset, transfer.preprocess)
def test_data_accepts_numpy_integers_and_keeps_all_of_a_small_class():
    assert len(transfer.balanced_subset(D, 100)) == 10  # documented: all of a class with fewer
    assert len(transfer.balanced_subset(D, np.int64(1))) == 5
    data = transfer.load_dataset("digits", "test", split_seed=np.int64(0))
    assert torch.equal(data.targets, transfer.load_dataset("digits", "test").targets)
    transform = transfer.preprocess("resnet18", image_size=np.int64(32))
    assert transform(Image.new("RGB", (40, 48))).shape == (3, 32, 32)


@covers(
    transfer.build, transfer.parameter_counts, transfer.trainable_fraction, transfer.layer_names
)
def test_models_accept_numpy_integers_and_an_all_frozen_model_trains_nothing():
    net = transfer.build(SR, np.int64(3), "layer_ft", layer="layer3.0", image_size=np.int64(8))
    assert net.key_layer == "layer3.0" and transfer.layer_names(net)[-1] == "penultimate"
    zero_shot = transfer.build(
        "clip_vit_b32", 3, "zero_shot", class_names=("a", "b", "c"), device="meta"
    )
    trainable, total = transfer.parameter_counts(zero_shot)
    assert trainable == 0 < total and transfer.trainable_fraction(zero_shot) == 0.0


@covers(transfer.layer_nc1, transfer.percentage_markdown)
def test_layer_nc1_with_n_equal_k_is_zero_and_markdown_shows_nan_as_nan():
    five = tensors(5)  # one sample per class: no within-class spread, NC1 = 0
    out = transfer.layer_nc1(model(), five, np.int64(5), layers=("penultimate",), batch_size=2)
    assert out.nc1.tolist() == [0.0]
    text = transfer.percentage_markdown(({**ROW, "computed": math.nan},))  # a tuple of rows
    assert "| nan (1.00) |" in text


@covers(transfer.Source, transfer.pretrain_source, transfer.source_models, transfer.downstream)
def test_experiments_accept_numpy_seeds_snapshot_zero_and_no_comparison():
    assert transfer.Source("a", SR, {"w": torch.zeros(1)}).label == "a"
    weights = transfer.pretrain_source(snapshots=(np.int64(0),))  # 0 epochs: no training
    assert sorted(weights) == [0]
    assert [s.label for s in transfer.source_models("resnet50", compare=[])] == ["resnet50"]
    train, _ = transfer.downstream("digits", SR, per_class=np.int64(2), seed=np.int64(3))
    assert len(train) == 10


@covers(figures.plot_methods, figures.plot_data_sizes, figures.plot_layer_nc1)
def test_figures_accept_tuples_and_one_entry():
    assert figures.plot_methods((RESULT,)).axes[0].patches[0].get_height() == 50.0
    fig = figures.plot_data_sizes((5,), {FT: torch.tensor([0.25])})
    assert fig.axes[0].lines[0].get_ydata().tolist() == [25.0]
    fig = figures.plot_layer_nc1({FT: collapse()}, key_layer="penultimate")
    assert fig.axes[0].lines[0].get_ydata().tolist() == [2.0, 1.0]


# --------------------------------------------------------------------------------------------
# Unknown names: a ValueError listing the allowed values (never a bare KeyError)
# --------------------------------------------------------------------------------------------


UNKNOWN = [
    (lambda: transfer.NUM_CLASSES["imagenet"], "unknown data set 'imagenet'.*'digits'"),
    (lambda: transfer.KEY_LAYERS["resnet34"], "unknown backbone 'resnet34'.*'small_resnet'"),
    case("pretrain-dataset", PT, lambda: PT(dataset="imagenet"), "unknown dataset 'imagenet'"),
    case("pretrain-backbone", PT, lambda: PT(backbone="vgg"), "unknown backbone 'vgg'"),
    case("sources-backbone", SM, lambda: SM("vgg"), "unknown backbone 'vgg'"),
    case("sources-compare", SM, lambda: SM("resnet50", compare=("vgg",)), "unknown compare"),
    case("collapse-dataset", CVT, lambda: CVT([], "imagenet"), "unknown dataset 'imagenet'"),
    case("layer_nc1-layers", LNC1, lambda: LNC1(model(), D, 5, layers=["nope"]), "unknown layer 'nope'"),
    case("key_layer", TM, lambda: TM(**parts(method="layer_ft", key_layer="nope")), "unknown key_layer 'nope'; allowed values: layer1.0"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "match"), UNKNOWN)
def test_unknown_names_raise_value_errors_listing_the_allowed_values(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_unknown_table_keys_are_still_key_errors_for_dict_code():
    with pytest.raises(KeyError):
        transfer.NUM_CLASSES["imagenet"]
    assert transfer.NUM_CLASSES.get("imagenet") is None and "digits" in transfer.NUM_CLASSES
    assert dict(transfer.NUM_CLASSES)["cifar10"] == 10


# --------------------------------------------------------------------------------------------
# Experiments: empty sweeps, NaN rows, rank correlation
# --------------------------------------------------------------------------------------------

EMPTY_SWEEPS = [
    case("sweep-seeds", SWEEP, lambda: SWEEP(SR, "digits", [2], [FT], seeds=()), "seeds"),
    case("sweep-sizes", SWEEP, lambda: SWEEP(SR, "digits", [], [FT]), "sizes"),
    case("sweep-methods", SWEEP, lambda: SWEEP(SR, "digits", [2], []), "methods"),
    case("sweep-size-0", SWEEP, lambda: SWEEP(SR, "digits", [0], [FT]), "sizes"),
    case("sweep-str", SWEEP, lambda: SWEEP(SR, "digits", [2], FT), "methods"),
    case("sweep-twice", SWEEP, lambda: SWEEP(SR, "digits", [2], [FT, FT]), "methods must be distinct"),
    case("compare-methods", CM, lambda: CM(SR, "digits", []), "methods"),
    case("collapse-sources", CVT, lambda: CVT([], "digits"), "sources"),
    case("sources-lrs", SM, lambda: SM(SR, lrs=()), "lrs"),
    case("sources-lr-nan", SM, lambda: SM(SR, lrs=(float("nan"),)), "lrs"),
    case("pretrain-empty", PT, lambda: PT(snapshots=()), "snapshots"),
    case("pretrain-negative", PT, lambda: PT(snapshots=(-1,)), "snapshots"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "name"), EMPTY_SWEEPS)
def test_empty_or_bad_sweeps_are_refused_before_any_training(call, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        call()


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        case("nan-1", MOST, [{"nc1": 1.0}, {"nc1": math.nan}], r"rows\[1\]\['nc1'\] is NaN \(source 'b'\)"),
        case("nan-0", MOST, [{"nc1": math.nan}, {"nc1": 1.0}], r"rows\[0\]\['nc1'\] is NaN"),
        case("no-nc1", MOST, [{"nc1": 1.0}, {"accuracy": 0.5}], r"rows\[1\]\['nc1'\] must be a number"),
        case("str-nc1", MOST, [{"nc1": "1.0"}, {"nc1": 2.0}], r"rows\[0\]\['nc1'\] must be a number"),
        case("too-few", MOST, [{"nc1": 1.0}], "2 sources and 1 rows"),
    ],
)  # fmt: skip
def test_most_collapsed_refuses_nan_and_malformed_rows(rows, match):
    with pytest.raises(ValueError, match=match):
        transfer.most_collapsed(SOURCES, rows)


@covers(transfer.most_collapsed)
def test_most_collapsed_accepts_numpy_values_and_breaks_ties_by_order():
    assert transfer.most_collapsed(SOURCES, [{"nc1": 1.0}, {"nc1": 1.0}]).label == "a"
    rows = [{"nc1": np.float64(2.0)}, {"nc1": np.float32(1.0)}]
    assert transfer.most_collapsed(SOURCES, rows).label == "b"
    assert transfer.most_collapsed(SOURCES, [{"nc1": math.inf}, {"nc1": 3.0}]).label == "b"


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        case("x-nan", RANK, [1.0, math.nan, 3.0], [1.0, 2.0, 3.0], "^x contains NaN"),
        case("y-inf", RANK, [1.0, 2.0, 3.0], [1.0, 2.0, math.inf], "^y contains NaN or inf"),
        case("lengths", RANK, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], "^x and y .* 3 and 4"),
        case("n-1", RANK, [1.0], [2.0], "^x and y .*same length >= 2, got lengths 1 and 1"),
        case("empty", RANK, [], [], "^x and y .*same length >= 2"),
        case("x-2d", RANK, [[1.0, 2.0]], [1.0, 2.0], "^x must be a 1-D sample"),
        case("y-scalar", RANK, [1.0, 2.0], 3.0, "^y must be a 1-D sample"),
    ],
)
def test_rank_correlation_refuses_non_finite_and_mismatched_samples(x, y, match):
    with pytest.raises(ValueError, match=match):
        transfer.rank_correlation(x, y)


@covers(transfer.rank_correlation)
def test_rank_correlation_accepts_numpy_and_non_contiguous_samples():
    x = torch.arange(10.0)[::2]
    assert not x.is_contiguous()
    assert float(transfer.rank_correlation(x, np.arange(5.0))) == 1.0
    assert float(transfer.rank_correlation(np.array([1, 2]), np.array([2, 1]))) == -1.0
