r"""The chapter's experiments, one call each, on the offline digits or the paper's data sets.

* the pretrained starting points (:class:`Source`, :func:`source_models`) are in
  :mod:`lib.transfer.sources`;
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
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lib._checks import check_int, check_type
from lib._checks import check_option as _check_option
from lib.transfer._inputs import _check_list, _check_methods, _check_subset
from lib.transfer.backbones import (
    _OWN_BACKBONES,
    BACKBONES,
    Backbone,
    _check_image_size,
)
from lib.transfer.data import DATASETS, NUM_CLASSES, DatasetName, balanced_subset, load_dataset
from lib.transfer.models import _clip_joint
from lib.transfer.sources import Source, _check_sources
from lib.transfer.train import FitConfig, TransferResult, _check_config, fine_tune
from lib.transfer.zoo import is_zoo_name, zoo_probe

__all__ = [
    "collapse_vs_transfer",
    "compare_methods",
    "data_size_sweep",
    "downstream",
    "most_collapsed",
    "rank_correlation",
]


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
    clip_head: str | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> list[TransferResult]:
    """Fine-tune one pretrained model on one downstream data set with each method.

    Every method sees the same training subset (``per_class`` samples per class, drawn with
    ``seed``; ``None``: all) and the same shuffling seed.

    Args:
        backbone, pretrained, image_size, clip_head: as in :func:`build`.
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
    for method in methods:  # before any data is loaded
        _clip_joint(backbone, method, clip_head)
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
            clip_head=clip_head,
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
    clip_head: str | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Tensor]:
    """Test accuracy of each method against the number of downstream training samples per class.

    Args:
        backbone, dataset, methods, pretrained, config, root, clip_head, device: as in
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
    for method in methods:
        _clip_joint(backbone, method, clip_head)
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
                clip_head=clip_head,
                device=device,
                seed=seed,
            )
            for result in results:
                table[result.method][i] += result.accuracy / len(seeds)
    return table
