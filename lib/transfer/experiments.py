r"""The chapter's experiments, one call each, on the offline digits or the paper's data sets.

* :func:`pretrain_source`, :func:`source_models` — pretrained starting points (:class:`Source`):
  offline, snapshots of source runs on digits 0–4; online, public checkpoints;
* :func:`collapse_vs_transfer`, :func:`most_collapsed`, :func:`rank_correlation` — "more
  variability collapse, better transfer performance";
* :func:`downstream`, :func:`compare_methods`, :func:`data_size_sweep` — the fine-tuning methods
  on one downstream task, and against the number of downstream samples.

Reference:
    Li et al., arXiv:2212.12206 (2022); Lecture 6, Section 1.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from lib._checks import check_int, check_real, check_type
from lib._checks import check_option as _check_option
from lib.transfer._inputs import _check_list, _check_methods, _check_subset
from lib.transfer.backbones import (
    _OWN_BACKBONES,
    _PUBLIC_BACKBONES,
    BACKBONES,
    Backbone,
    _check_image_size,
)
from lib.transfer.data import DATASETS, NUM_CLASSES, DatasetName, balanced_subset, load_dataset
from lib.transfer.models import build
from lib.transfer.train import FitConfig, TransferResult, _check_config, fine_tune, fit
from lib.transfer.zoo import is_zoo_name, parse_zoo_name, zoo_probe

__all__ = [
    "Source",
    "collapse_vs_transfer",
    "compare_methods",
    "data_size_sweep",
    "downstream",
    "most_collapsed",
    "pretrain_source",
    "rank_correlation",
    "source_models",
]


def _check_sources(sources: object) -> None:
    """``sources``: a non-empty list of :class:`Source` (e.g. from :func:`source_models`)."""
    _check_list("sources", sources, "Source objects (e.g. source_models(...))")
    for i, source in enumerate(sources):
        check_type(f"sources[{i}]", source, Source, "e.g. an element of source_models(...)")


def pretrain_source(
    backbone: Backbone = "small_resnet",
    dataset: DatasetName = "digits_source",
    *,
    snapshots: Sequence[int] = (0, 1, 2, 4, 8, 16),
    config: FitConfig = FitConfig(),
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> dict[int, dict[str, Tensor]]:
    """Pretrain a backbone on a source task; return its weights after several numbers of epochs.

    The offline stand-in for public pretrained models: snapshots of one run give source models
    of increasing quality, whose features collapse more or less on a downstream task.

    Args:
        backbone: the backbone to pretrain (random initialisation, full fine-tuning).
        dataset: the source data set (training split).
        snapshots: epochs after which to keep the weights (0: the random initialisation); the
            run lasts ``max(snapshots)`` epochs with ``config``'s other settings.
        config: training hyper-parameters (``epochs`` is ignored).
        device: where to train.
        generator: shuffling of the training data.

    Returns:
        Mapping epoch → backbone state dict (CPU tensors), for ``build(..., pretrained=...)``.

    Example:
        >>> weights = pretrain_source(snapshots=(0, 1), config=FitConfig(progress=False))
        >>> sorted(weights)
        [0, 1]
    """
    _check_option("backbone", backbone, BACKBONES)
    _check_option("dataset", dataset, DATASETS)
    _check_config(config)
    _check_list("snapshots", snapshots, "epochs")
    for e in snapshots:
        check_int("snapshots (each)", e, 0)
    wanted = sorted(set(int(e) for e in snapshots))
    model = build(backbone, NUM_CLASSES[dataset], "full_ft", device=device)
    train = load_dataset(dataset, "train", backbone)
    weights: dict[int, dict[str, Tensor]] = {}

    def keep(epoch: int, net: nn.Module) -> None:
        if epoch in wanted:
            weights[epoch] = {
                k: v.detach().cpu().clone() for k, v in net.encoder.state_dict().items()
            }

    keep(0, model)
    fit(model, train, replace(config, epochs=wanted[-1]), generator=generator, callback=keep)
    return weights


@dataclass(frozen=True)
class Source:
    """A pretrained starting point: a label, the backbone and its ``pretrained`` argument."""

    label: str  # shown in plots
    backbone: str  # one of BACKBONES, or a timm / open_clip name (lib.transfer.zoo)
    pretrained: bool | Mapping[str, Tensor]  # True (public weights) or a backbone state dict

    def __post_init__(self) -> None:
        check_type("label", self.label, str)
        if is_zoo_name(self.backbone):
            parse_zoo_name("backbone", self.backbone)
            check_type("pretrained", self.pretrained, bool, "True (public weights) or False")
        else:
            _check_option("backbone", self.backbone, BACKBONES)
            check_type(
                "pretrained", self.pretrained, (bool, Mapping), "True, False or a state dict"
            )


def source_models(
    backbone: Backbone,
    *,
    lrs: Sequence[float] = (0.01, 0.03, 0.1),
    snapshots: Sequence[int] = (2, 8),
    compare: Sequence[str] = ("resnet18", "resnet50", "vit_b32", "clip_vit_b32"),
    config: FitConfig = FitConfig(),
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> list[Source]:
    """Several pretrained models to compare: offline source runs, or public checkpoints.

    For ``"small_resnet"`` and ``"small_vit"`` (offline) the backbone is pretrained on
    ``digits_source`` (digits 0–4) once per learning rate in ``lrs`` (other settings from
    ``config``), keeping the weights after each number of epochs in ``snapshots``
    (:func:`pretrain_source`): ``len(lrs) * len(snapshots)`` source models of different quality.
    For the other backbones: the public checkpoints of the architectures in ``compare``, then
    ``backbone``'s; ``compare`` may also name any timm or open_clip model
    (``"timm:densenet121.tv_in1k"``, ``"open_clip:ViT-B-16/laion2b_s34b_b88k"``;
    :mod:`lib.transfer.zoo`).

    Args:
        backbone: one of :data:`BACKBONES`.
        lrs: offline: learning rates of the source runs.
        snapshots: offline: epochs after which each run's weights are kept.
        compare: online: models compared with ``backbone``: public backbones of
            :data:`BACKBONES` or timm / open_clip names.
        config: offline: :class:`FitConfig` of the source runs (``lr`` and ``epochs`` replaced).
        device: where to pretrain.
        generator: shuffling of the source data (shared by the runs, in order).

    Returns:
        A list of :class:`Source`.

    Example:
        >>> [s.label for s in source_models("resnet50", compare=("resnet18", "resnet50"))]
        ['resnet18', 'resnet50']
    """
    _check_option("backbone", backbone, BACKBONES)
    check_type("compare", compare, (list, tuple), "backbone names, e.g. ['resnet18']")
    for name in compare:
        if is_zoo_name(name):
            parse_zoo_name("compare (each)", name)
        else:
            _check_option("compare (each)", name, _PUBLIC_BACKBONES)
    if backbone in _OWN_BACKBONES:
        _check_config(config)
        _check_list("lrs", lrs, "learning rates")
        for lr in lrs:  # all of them before the first run trains
            check_real("lrs (each)", lr, 0.0, strict=True)
        _check_list("snapshots", snapshots, "epochs")
    if backbone not in _OWN_BACKBONES:
        names = [name for name in compare if name != backbone] + [backbone]
        return [Source(name, name, True) for name in names]
    sources = []
    for lr in lrs:
        weights = pretrain_source(
            backbone,
            snapshots=snapshots,
            config=replace(config, lr=lr),
            device=device,
            generator=generator,
        )
        sources += [Source(f"η={lr:g}, {e} ep", backbone, w) for e, w in weights.items()]
    return sources


def most_collapsed(sources: Sequence[Source], rows: Sequence[Mapping[str, Any]]) -> Source:
    r"""The source whose features collapse most on the downstream data (smallest :math:`\mathcal{NC}_1`).

    The lecture's message turned into a model-selection rule that needs no test data. A NaN
    ``nc1`` in any row raises ``ValueError`` (a NaN must not win or lose silently); ties go to
    the first source.

    Args:
        sources: as from :func:`source_models`.
        rows: :func:`collapse_vs_transfer` of the same sources.

    Returns:
        One of ``sources``.

    Example:
        >>> s = [Source("a", "resnet18", True), Source("b", "resnet50", True)]
        >>> most_collapsed(s, [{"nc1": 2.0}, {"nc1": 1.0}]).label
        'b'
    """
    _check_sources(sources)
    check_type("rows", rows, (list, tuple), "the result of collapse_vs_transfer(...)")
    if len(sources) != len(rows) or not rows:
        raise ValueError(
            "need one collapse_vs_transfer row per source: got "
            f"{len(sources)} sources and {len(rows)} rows"
        )
    for i, row in enumerate(rows):
        value = row.get("nc1") if isinstance(row, Mapping) else None
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ValueError(f"rows[{i}]['nc1'] must be a number, got {value!r}")
        if math.isnan(value):
            raise ValueError(
                f"rows[{i}]['nc1'] is NaN (source {sources[i].label!r}): its collapse is unknown, "
                "so no source can be chosen; recompute that row or drop it with its source"
            )
    return sources[min(range(len(rows)), key=lambda i: rows[i]["nc1"])]


def rank_correlation(x: Sequence[float] | Tensor, y: Sequence[float] | Tensor) -> Tensor:
    r"""Spearman's rank correlation of two samples (no ties assumed; ties get arbitrary order).

    .. math::
        \rho = 1 - \frac{6\sum_i d_i^2}{n(n^2-1)},\qquad d_i = \operatorname{rank}(x_i) -
        \operatorname{rank}(y_i).

    Args:
        x, y: samples ``(n,)``, ``n >= 2`` (sequences or tensors).

    Returns:
        0-dim float64 tensor in ``[-1, 1]``.

    Example:
        >>> rank_correlation([1.0, 2.0, 3.0], [30.0, 20.0, 10.0])
        tensor(-1., dtype=torch.float64)
    """
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    for name, v in (("x", x), ("y", y)):
        if v.ndim != 1:
            raise ValueError(f"{name} must be a 1-D sample, got shape {tuple(v.shape)}")
    if x.shape != y.shape or len(x) < 2:
        raise ValueError(
            f"x and y must be 1-D samples of the same length >= 2, got lengths {len(x)} and "
            f"{len(y)}"
        )
    for name, v in (("x", x), ("y", y)):
        if not bool(torch.isfinite(v).all()):
            raise ValueError(
                f"{name} contains NaN or inf; ranks of non-finite values are undefined"
            )
    n = len(x)
    d = x.argsort().argsort().double() - y.argsort().argsort().double()
    return 1 - 6 * d.square().sum() / (n * (n**2 - 1))


def downstream(
    dataset: DatasetName,
    backbone: Backbone,
    *,
    per_class: int | None = None,
    root: str | os.PathLike = "data",
    image_size: int | None = None,
    seed: int = 0,
) -> tuple[Dataset, Dataset]:
    """Training and test split of a downstream data set; the training split subsampled per class.

    Args:
        dataset, backbone, root, image_size: as in :func:`load_dataset`.
        per_class: training samples per class (:func:`balanced_subset`, drawn with ``seed``);
            ``None`` keeps them all.
        seed: seed of the draw (the same seed gives the same subset in every function here).

    Returns:
        ``(train, test)`` data sets with a ``classes`` attribute.

    Example:
        >>> train, test = downstream("digits", "small_resnet", per_class=3)
        >>> len(train), len(test) > 300
        (15, True)
    """
    _check_option("dataset", dataset, DATASETS)
    _check_option("backbone", backbone, BACKBONES)
    per_class, seed = _check_subset(per_class, seed)
    train = load_dataset(dataset, "train", backbone, root=root, image_size=image_size)
    test = load_dataset(dataset, "test", backbone, root=root, image_size=image_size)
    if per_class is not None:
        train = balanced_subset(train, per_class, generator=torch.Generator().manual_seed(seed))
    return train, test


def collapse_vs_transfer(
    sources: Sequence[Source],
    dataset: DatasetName,
    *,
    per_class: int | None = None,
    config: FitConfig = FitConfig(),
    root: str | os.PathLike = "data",
    image_size: int | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    r"""Downstream :math:`\mathcal{NC}_1` of each pretrained model against its linear-probe accuracy.

    For every source: the penultimate features of the downstream training set (``per_class``
    samples per class, the same draw for every model) give :math:`\mathcal{NC}_1`; a linear probe
    fitted on them gives the test accuracy (CLIP: on its 768-d features before the projection).
    A source named by timm or open_clip (:mod:`lib.transfer.zoo`) goes through :func:`zoo_probe`.

    Args:
        sources: as from :func:`source_models`.
        dataset: the downstream data set (:data:`DATASETS`).
        per_class: training samples per class (:func:`downstream`); ``None``: all.
        config: :class:`FitConfig` of the probe.
        root: folder of the torchvision data.
        image_size: input side of the public backbones (default each checkpoint's, 224); a small
            one makes a random-weight dry run of the online path cheap.
        device: where to run.
        seed: seed of the training subset.

    Returns:
        One dict per source: ``label``, ``nc1``, ``accuracy`` (floats).

    Reference:
        Lecture 6, "More variability collapse, better transfer performance"; Li et al. 2022, Fig. 1.

    Example:
        >>> rows = collapse_vs_transfer(source_models("small_resnet", lrs=(0.05,), snapshots=(1,),
        ...     config=FitConfig(progress=False)), "digits", per_class=10)
        >>> sorted(rows[0])
        ['accuracy', 'label', 'nc1']
    """
    _check_option("dataset", dataset, DATASETS)
    _check_sources(sources)
    _check_config(config)
    per_class, seed = _check_subset(per_class, seed)
    image_size = _check_image_size("image_size", image_size)
    rows = []
    for source in sources:
        if is_zoo_name(source.backbone):
            row = zoo_probe(
                source.backbone,
                dataset,
                pretrained=bool(source.pretrained),
                per_class=per_class,
                config=config,
                root=root,
                image_size=image_size,
                device=device,
                seed=seed,
            )
            rows.append({**row, "label": source.label})
            continue
        size = None if source.backbone in _OWN_BACKBONES else image_size
        train, test = downstream(
            dataset, source.backbone, per_class=per_class, root=root, seed=seed, image_size=size
        )
        result = fine_tune(
            source.backbone,
            "linear_probe",
            train,
            test,
            NUM_CLASSES[dataset],
            pretrained=source.pretrained,
            config=config,
            class_names=train.classes if source.backbone == "clip_vit_b32" else None,
            image_size=size,
            device=device,
        )
        rows.append({"label": source.label, "nc1": result.nc1, "accuracy": result.accuracy})
    return rows


def compare_methods(
    backbone: Backbone,
    dataset: DatasetName,
    methods: Sequence[str] = ("linear_probe", "layer_ft", "scl_ft", "full_ft"),
    *,
    pretrained: bool | Mapping[str, Tensor] = False,
    per_class: int | None = None,
    config: FitConfig = FitConfig(),
    root: str | os.PathLike = "data",
    image_size: int | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> list[TransferResult]:
    """Fine-tune one pretrained model on one downstream data set with each method.

    Every method sees the same training subset (``per_class`` samples per class, drawn with
    ``seed``; ``None``: all) and the same shuffling seed.

    Args:
        backbone, pretrained, image_size: as in :func:`build`.
        dataset: the downstream data set (:data:`DATASETS`).
        methods: names from :data:`METHODS`.
        per_class: training samples per class; ``None``: all.
        config: :class:`FitConfig`.
        root: folder of the torchvision data.
        device: where to train.
        seed: seed of the training subset and of each method's shuffling.

    Returns:
        One :class:`TransferResult` per method, in order.

    Example:
        >>> res = compare_methods("small_resnet", "digits", ["linear_probe"], per_class=5,
        ...                       config=FitConfig(progress=False))
        >>> [r.method for r in res]
        ['linear_probe']
    """
    _check_option("backbone", backbone, BACKBONES)
    _check_option("dataset", dataset, DATASETS)
    _check_methods(methods)
    _check_config(config)
    per_class, seed = _check_subset(per_class, seed)
    train, test = downstream(
        dataset, backbone, per_class=per_class, root=root, image_size=image_size, seed=seed
    )
    return [
        fine_tune(
            backbone,
            method,
            train,
            test,
            NUM_CLASSES[dataset],
            pretrained=pretrained,
            config=config,
            class_names=train.classes if backbone == "clip_vit_b32" else None,
            image_size=image_size,
            device=device,
            generator=torch.Generator().manual_seed(seed),
        )
        for method in methods
    ]


def data_size_sweep(
    backbone: Backbone,
    dataset: DatasetName,
    sizes: Sequence[int],
    methods: Sequence[str] = ("linear_probe", "layer_ft", "scl_ft", "full_ft"),
    *,
    pretrained: bool | Mapping[str, Tensor] = False,
    seeds: Sequence[int] = (0,),
    config: FitConfig = FitConfig(),
    root: str | os.PathLike = "data",
    device: torch.device | str | None = None,
) -> dict[str, Tensor]:
    """Test accuracy of each method against the number of downstream training samples per class.

    Args:
        backbone, dataset, methods, pretrained, config, root, device: as in
            :func:`compare_methods`.
        sizes: training samples per class, one :func:`compare_methods` call per size and seed.
        seeds: seeds of the training subsets (and shuffles) averaged per size.

    Returns:
        Mapping method → accuracies ``(len(sizes),)``, each the mean over ``seeds`` (different
        training subsets and shuffles), on the CPU.

    Reference:
        Lecture 6, "Less overfitting compared to full model FT".

    Example:
        >>> out = data_size_sweep("small_resnet", "digits", [2], ["linear_probe"],
        ...                       config=FitConfig(progress=False))
        >>> out["linear_probe"].shape
        torch.Size([1])
    """
    _check_option("backbone", backbone, BACKBONES)
    _check_option("dataset", dataset, DATASETS)
    _check_list("sizes", sizes, "samples per class")
    for n in sizes:
        check_int("sizes (each)", n, 1)
    _check_methods(methods)
    _check_list("seeds", seeds, "seeds")
    for seed in seeds:
        check_int("seeds (each)", seed, 0)
    _check_config(config)
    table = {method: torch.zeros(len(sizes)) for method in methods}
    for i, n in enumerate(sizes):
        for seed in seeds:
            results = compare_methods(
                backbone,
                dataset,
                methods,
                pretrained=pretrained,
                per_class=n,
                config=config,
                root=root,
                device=device,
                seed=seed,
            )
            for result in results:
                table[result.method][i] += result.accuracy / len(seeds)
    return table
