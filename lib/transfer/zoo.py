r"""Any public model as a point of chapter 1's comparison, named the way its library names it.

The lecture compares public ImageNet models: the :math:`\mathcal{NC}_1` of their features on the
downstream training data against the test accuracy of a linear probe on them. Next to the book's
own public backbones (``"resnet18"``, ``"resnet50"``, ``"vit_b32"``, ``"clip_vit_b32"``),
:func:`lib.transfer.source_models` and :func:`lib.transfer.collapse_vs_transfer` take any model
of the two libraries by name:

* ``"timm:<model>"`` — a timm model with its pretrained tag, e.g. ``"timm:densenet121.tv_in1k"``,
  read at its pooled penultimate features (``num_classes=0``), through the preprocessing of its
  pretrained config;
* ``"open_clip:<architecture>/<tag>"`` — an open_clip image tower, e.g.
  ``"open_clip:ViT-B-16/laion2b_s34b_b88k"`` (``open_clip.list_pretrained()`` lists them), read
  at its image embedding, normalised as CLIP does, through its own preprocessing (any open_clip
  tower has one, whatever its architecture; the book's own ``"clip_vit_b32"`` probes the 768-d
  features before the projection instead, :func:`lib.transfer.build`'s ``clip_head``).

Such a model gets the linear probe only (an arbitrary architecture has no key layer here): its
features give :math:`\mathcal{NC}_1` and an L-BFGS probe on them (the one of
:func:`lib.transfer.fit_linear_probe`) gives the test accuracy. With ``pretrained=False`` the
same path runs offline on random weights, which tests the code, not the finding.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from lib._checks import check_int, check_type
from lib.metrics import nc1
from lib.transfer._inputs import _check_subset
from lib.transfer.backbones import _check_image_size
from lib.transfer.data import DATASETS, NUM_CLASSES, _pictures, balanced_subset
from lib.transfer.models import _check_device
from lib.transfer.offline import _hub_access
from lib.transfer.train import FitConfig, _autocast, _check_config, _fit_head, _loader

__all__ = ["ZooEncoder", "is_zoo_name", "zoo_encoder", "zoo_preprocess", "zoo_probe"]

_LIBRARIES = ("timm", "open_clip")
_EXAMPLES = "'timm:densenet121.tv_in1k' or 'open_clip:ViT-B-32/openai'"


def is_zoo_name(name: object) -> bool:
    """Whether ``name`` is written as ``"timm:…"`` or ``"open_clip:…"`` (not yet checked).

    Example:
        >>> is_zoo_name("timm:resnet18.a1_in1k"), is_zoo_name("resnet18")
        (True, False)
    """
    return isinstance(name, str) and name.split(":", 1)[0] in _LIBRARIES and ":" in name


def parse_zoo_name(argname: str, name: object) -> tuple[str, str, str | None]:
    """``(library, model, tag)`` of a checked zoo name; a bad one raises ``ValueError`` naming
    ``argname``, what was expected and how to find valid names (no network needed)."""
    if not is_zoo_name(name):
        raise ValueError(f"{argname} must be a model name like {_EXAMPLES}, got {name!r}")
    library, model = name.split(":", 1)
    if library == "timm":
        import timm  # lazy: seconds to import

        if not timm.is_model(model.split(".", 1)[0]):
            raise ValueError(
                f"{argname} {name!r}: timm has no model {model.split('.', 1)[0]!r}; "
                "timm.list_models('pattern*') lists them"
            )
        return library, model, None
    arch, _, tag = model.partition("/")
    import open_clip  # lazy: seconds to import

    if arch not in open_clip.list_models() or not tag:
        raise ValueError(
            f"{argname} {name!r}: write 'open_clip:<architecture>/<pretrained tag>' with an "
            "architecture and tag from open_clip.list_pretrained(), e.g. 'open_clip:ViT-B-32/openai'"
        )
    return library, arch, tag


class ZooEncoder(nn.Module):
    """A library model as a feature map: images ``(B, 3, S, S)`` → features ``(B, p)``.

    Attributes:
        name: the zoo name it was built from.
        network: the timm model (``num_classes=0``) or open_clip image tower.
        normalize: whether the features are scaled to unit norm (open_clip, as CLIP does).
        num_features: ``p``.
    """

    def __init__(self, name: str, network: nn.Module, normalize: bool, num_features: int) -> None:
        parse_zoo_name("name", name)
        check_type("network", network, nn.Module, "a timm model or an open_clip image tower")
        check_type("normalize", normalize, bool)
        num_features = check_int("num_features", num_features, 1)
        super().__init__()
        self.name, self.network = name, network
        self.normalize, self.num_features = normalize, num_features

    def forward(self, x: Tensor) -> Tensor:
        h = self.network(x)  # (B, p)
        return F.normalize(h, dim=-1) if self.normalize else h


def zoo_encoder(name: str, *, pretrained: bool = True, image_size: int | None = None) -> ZooEncoder:
    """The model ``name`` (:func:`is_zoo_name`) as a :class:`ZooEncoder`, on the CPU, eval mode.

    Args:
        name: ``"timm:<model>"`` or ``"open_clip:<architecture>/<tag>"``.
        pretrained: public weights (downloaded once, then cached; offline and not cached raises
            :class:`~lib.transfer.OfflineError` in seconds) or, with ``False``, random weights.
        image_size: input side for models that fix it (ViTs); default the checkpoint's.

    Example:
        >>> zoo_encoder("timm:resnet10t.c3_in1k", pretrained=False).num_features
        512
    """
    library, model, tag = parse_zoo_name("name", name)
    check_type("pretrained", pretrained, bool)
    image_size = _check_image_size("image_size", image_size)
    with _hub_access(repr(name)) if pretrained else _quiet():
        if library == "timm":
            network = _timm_network(model, pretrained, image_size)
            width, normalize = network.num_features, False
        else:
            import open_clip  # lazy: seconds to import

            kwargs: dict[str, Any] = {"force_image_size": image_size} if image_size else {}
            clip = open_clip.create_model(model, pretrained=tag if pretrained else None, **kwargs)
            network, normalize = clip.visual, True
            width = network.output_dim
    return ZooEncoder(name, network, normalize, width).eval()


def _timm_network(model: str, pretrained: bool, image_size: int | None) -> nn.Module:
    import timm  # lazy: seconds to import

    if image_size is not None:
        try:  # ViTs and other fixed-size models take img_size; convolutional ones refuse it
            return timm.create_model(
                model, pretrained=pretrained, num_classes=0, img_size=image_size
            )
        except TypeError:
            pass
    return timm.create_model(model, pretrained=pretrained, num_classes=0)


class _quiet:
    """Silence open_clip's "No pretrained weights loaded" warning for random weights."""

    def __enter__(self) -> None:
        self.level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().setLevel(self.level)


def zoo_preprocess(encoder: ZooEncoder, *, image_size: int | None = None):
    """The evaluation preprocessing of ``encoder``'s checkpoint (PIL image → ``(3, S, S)``).

    timm: resize, centre crop and mean/std of the model's pretrained config; open_clip: the
    tower's own ``preprocess_cfg``. ``image_size`` overrides the side ``S``.
    """
    check_type("encoder", encoder, ZooEncoder, "the result of zoo_encoder(...)")
    image_size = _check_image_size("image_size", image_size)
    if isinstance(getattr(encoder.network, "preprocess_cfg", None), dict):  # open_clip
        from open_clip.transform import image_transform  # lazy: seconds to import

        cfg = encoder.network.preprocess_cfg
        return image_transform(
            image_size or cfg["size"], is_train=False, mean=cfg["mean"], std=cfg["std"]
        )
    import timm  # lazy: seconds to import
    from timm.data import create_transform

    cfg = timm.data.resolve_model_data_config(encoder.network)
    if image_size is not None:
        cfg["input_size"] = (3, image_size, image_size)
    return create_transform(**cfg, is_training=False)


@torch.no_grad()
def _features(
    encoder: ZooEncoder, data: Dataset, config: FitConfig, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Features ``(N, p)`` float32 and labels ``(N,)`` of ``data``, in order, on ``device``."""
    cast, _ = _autocast(device, config.amp)
    feats, labels = [], []
    for x, y in _loader(data, max(config.batch_size, 256), False, workers=config.num_workers):
        with cast:
            feats.append(encoder(x.to(device)).float())
        labels.append(torch.as_tensor(y).to(device))
    return torch.cat(feats), torch.cat(labels)


def zoo_probe(
    name: str,
    dataset: str,
    *,
    pretrained: bool = True,
    per_class: int | None = None,
    config: FitConfig = FitConfig(),
    root: str | os.PathLike = "data",
    image_size: int | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    r"""Downstream :math:`\mathcal{NC}_1` and linear-probe accuracy of the model ``name``.

    The training subset is the one :func:`lib.transfer.downstream` draws with ``per_class`` and
    ``seed`` (the same images for every model); the probe is fitted by
    :func:`lib.transfer.fit_linear_probe`'s L-BFGS on the training features.

    Args:
        name: ``"timm:<model>"`` or ``"open_clip:<architecture>/<tag>"``.
        dataset: a downstream data set (:data:`~lib.transfer.DATASETS`; the digits are read as
            grey pictures).
        pretrained: public weights, or random ones (``False``: offline, for tests).
        per_class, seed: the training subset; ``None`` keeps every image.
        config: ``weight_decay``, ``probe_iters``, ``batch_size``, ``amp``, ``num_workers``.
        root: folder of the torchvision data.
        image_size: input side (default the checkpoint's).
        device: where to run (default the CPU).

    Returns:
        ``{"label": name, "nc1": float, "accuracy": float}``, a row of
        :func:`lib.transfer.collapse_vs_transfer`.

    Example:
        >>> row = zoo_probe("timm:resnet10t.c3_in1k", "digits", pretrained=False, per_class=4,
        ...                 image_size=32, config=FitConfig(probe_iters=5, progress=False))
        >>> sorted(row), 0 <= row["accuracy"] <= 1
        (['accuracy', 'label', 'nc1'], True)
    """
    check_type("dataset", dataset, str)
    if dataset not in DATASETS or dataset == "digits_source":
        raise ValueError(f"dataset must be a downstream data set of {DATASETS[:1] + DATASETS[2:]}")
    _check_config(config)
    per_class, seed = _check_subset(per_class, seed)
    device = _check_device(device) or torch.device("cpu")
    encoder = zoo_encoder(name, pretrained=pretrained, image_size=image_size).to(device)
    transform = zoo_preprocess(encoder, image_size=image_size)
    train, test = (_pictures(dataset, s, transform, root, True, 0) for s in ("train", "test"))
    if per_class is not None:
        train = balanced_subset(train, per_class, generator=torch.Generator().manual_seed(seed))
    K = NUM_CLASSES[dataset]
    H, y = _features(encoder, train, config, device)
    H_test, y_test = _features(encoder, test, config, device)
    head = nn.Linear(encoder.num_features, K).to(device)
    _fit_head(head, H, y, config)
    with torch.no_grad():
        accuracy = (head(H_test).argmax(1) == y_test).double().mean()
    return {"label": name, "nc1": float(nc1(H, y, K)), "accuracy": float(accuracy)}
