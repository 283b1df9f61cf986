r"""The pretrained starting points of chapter 1's comparison, one :class:`Source` each.

* :func:`pretrain_source` — the offline stand-in for public pretrained models: snapshots of one
  source run (digits 0–4) after several numbers of epochs;
* :func:`source_models` — several such runs (one per learning rate), or, online, public
  checkpoints (:data:`BACKBONES`, or any timm / open_clip name through :mod:`lib.transfer.zoo`).

The experiments that use them are in :mod:`lib.transfer.experiments`.

Reference:
    Li et al., arXiv:2212.12206 (2022); Lecture 6, Section 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from lib._checks import check_int, check_real, check_type
from lib._checks import check_option as _check_option
from lib.transfer._inputs import _check_list
from lib.transfer.backbones import _OWN_BACKBONES, _PUBLIC_BACKBONES, BACKBONES, Backbone
from lib.transfer.data import DATASETS, NUM_CLASSES, DatasetName, load_dataset
from lib.transfer.models import build
from lib.transfer.train import FitConfig, _check_config, fit
from lib.transfer.zoo import is_zoo_name, parse_zoo_name

__all__ = ["Source", "pretrain_source", "source_models"]


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
