r"""Training and evaluation of a :class:`~lib.transfer.models.TransferModel`.

:func:`fit` (momentum SGD or AdamW, cosine schedule, cross-entropy) trains exactly the
parameters the method left trainable; :func:`fit_linear_probe` fits the head on cached features
by L-BFGS; :func:`extract_features` and :func:`accuracy` read a model; :func:`fine_tune` builds,
trains and measures one method in one call (:class:`TransferResult`).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from lib._checks import check_int, check_option, check_real, check_type
from lib.metrics import nc1
from lib.transfer._cache import _cache_key, _read_cache
from lib.transfer._inputs import (
    _check_images,
    _check_labels,
    _check_model,
    _check_nonempty,
    _one_sample_batches,
    _stop_non_finite,
)
from lib.transfer.backbones import Backbone
from lib.transfer.models import Method, TransferModel, build, trainable_fraction

__all__ = [
    "FitConfig",
    "TransferResult",
    "accuracy",
    "extract_features",
    "fine_tune",
    "fit",
    "fit_linear_probe",
]


@dataclass(frozen=True)
class FitConfig:
    """Fine-tuning hyper-parameters (SGD with momentum or AdamW, cosine schedule, cross-entropy).

    Every field is checked at construction (also by ``dataclasses.replace``); a bad value raises
    ``ValueError`` (``TypeError`` for a non-bool ``amp``/``progress``) naming the field.
    ``epochs=0`` is allowed and trains nothing (:func:`fit` returns an empty loss record).
    """

    epochs: int = 10  # passes over the training data (0: no training)
    batch_size: int = 64  # samples per step
    lr: float = 0.05  # η, peak learning rate (cosine-annealed to 0)
    momentum: float = 0.9  # β
    weight_decay: float = 5e-4  # λ, on the trained parameters
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    probe_iters: int = 100  # L-BFGS iterations of the linear probe on cached features
    amp: bool = True  # mixed precision (bfloat16/float16 autocast) on CUDA; ignored on CPU
    progress: bool = True  # tqdm progress bar (on stderr)
    num_workers: int = 0  # DataLoader worker processes
    optimizer: str = "sgd"  # "sgd" (momentum β) or "adamw" (β ignored; ViTs from scratch need it)

    def __post_init__(self) -> None:
        for name, low in (("epochs", 0), ("batch_size", 1), ("probe_iters", 1), ("num_workers", 0)):
            # NumPy integers are stored as int: DataLoader and range() want Python ints
            object.__setattr__(self, name, check_int(name, getattr(self, name), low))
        check_real("lr", self.lr, 0.0, strict=True)
        check_real("momentum", self.momentum, 0.0, strict=False)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be < 1 (heavy-ball SGD diverges), got {self.momentum}")
        check_real("weight_decay", self.weight_decay, 0.0, strict=False)
        check_real("label_smoothing", self.label_smoothing, 0.0, strict=False)
        if self.label_smoothing > 1:
            raise ValueError(f"label_smoothing must be in [0, 1], got {self.label_smoothing}")
        check_option("optimizer", self.optimizer, ("sgd", "adamw"))
        for name in ("amp", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")


def _check_config(config: object) -> None:
    """``config`` is a :class:`FitConfig` (its fields were checked when it was made)."""
    check_type("config", config, FitConfig, "e.g. FitConfig(epochs=5)")


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _loader(data: Dataset | DataLoader, batch_size: int, shuffle: bool, generator=None, workers=0):
    if isinstance(data, DataLoader):
        return data
    return DataLoader(
        data, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=workers
    )


def _autocast(device: torch.device, enabled: bool):
    if not enabled or device.type != "cuda":
        return nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return torch.autocast("cuda", dtype=dtype), scaler


def _progress(iterable: Iterable, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr)


def fit(
    model: nn.Module,
    data: Dataset | DataLoader,
    config: FitConfig = FitConfig(),
    *,
    generator: torch.Generator | None = None,
    callback: Callable[[int, nn.Module], None] | None = None,
) -> Tensor:
    r"""Train the model's trainable parameters with SGD on cross-entropy.

    .. math::
        \min_{\text{trainable}}\ \frac1N\sum_i \mathcal L_{\rm CE}(f(\boldsymbol x_i), y_i)
        + \frac\lambda2\|\text{trainable}\|_F^2,

    momentum SGD (or AdamW) with a cosine learning-rate schedule, mixed precision on CUDA.
    Inputs are moved to the model's device.

    Args:
        model: e.g. from :func:`build`; only parameters with ``requires_grad`` are trained.
        data: ``Dataset`` (shuffled with ``generator``) or ``DataLoader`` of ``(x, y)``.
        config: hyper-parameters.
        generator: CPU generator for the shuffling.
        callback: called as ``callback(epoch, model)`` after every epoch (epochs count from 1).

    Returns:
        Mean training loss per epoch, ``(epochs,)``, on the CPU.

    Raises:
        TypeError: ``model``, ``data``, ``config``, ``generator`` or ``callback`` of wrong kind.
        ValueError: a ``meta`` model, empty ``data``, images without the model's channels or
            dtype, or (for a :class:`TransferModel`) labels that are not integers in ``[0, K)``
            — checked once, before training; a last batch of one sample that a training
            BatchNorm layer cannot normalise (raised when it comes: the weights have changed).
        FloatingPointError: an epoch's mean loss is NaN or inf (checked once per epoch, on the
            loss already read for the record): the weights are no longer usable.

    Example:
        >>> model = build("small_resnet", 5, "linear_probe")
        >>> data = balanced_subset(load_dataset("digits", "train"), 4)
        >>> fit(model, data, FitConfig(epochs=2, progress=False)).shape
        torch.Size([2])
    """
    _check_config(config)
    _check_model(model)
    check_type("data", data, (Dataset, DataLoader), "e.g. load_dataset(...) or a TensorDataset")
    if generator is not None:
        check_type("generator", generator, torch.Generator)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable as callback(epoch, model), got {callback!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    losses = torch.zeros(config.epochs)
    if not params or config.epochs == 0:
        return losses
    _check_nonempty(data)
    _check_images(model, data)
    if isinstance(model, TransferModel):
        _check_labels(data, model.head.out_features)
    device = _device_of(model)
    loader = _loader(data, config.batch_size, True, generator, config.num_workers)
    if len(loader) == 0:
        raise ValueError("data gives no batches (empty data set or DataLoader)")
    with _one_sample_batches(loader):  # torch's BatchNorm error, said in our words
        return _train(model, loader, params, losses, config, callback, device)


def _train(
    model: nn.Module,
    loader: DataLoader,
    params: list[Tensor],
    losses: Tensor,
    config: FitConfig,
    callback: Callable[[int, nn.Module], None] | None,
    device: torch.device,
) -> Tensor:
    """:func:`fit`'s loop over ``config.epochs`` epochs; fills and returns ``losses``."""
    extra = {"momentum": config.momentum} if config.optimizer == "sgd" else {}  # AdamW: no β
    kind = torch.optim.SGD if config.optimizer == "sgd" else torch.optim.AdamW
    optimizer = kind(params, lr=config.lr, weight_decay=config.weight_decay, **extra)
    total = config.epochs * len(loader)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    )
    cast, scaler = _autocast(device, config.amp)
    model.train()
    bar = _progress(range(config.epochs), config.progress, "fit")
    for epoch in bar:
        running, count = 0.0, 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with cast:
                loss = F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            schedule.step()
            running += float(loss.detach()) * len(y)
            count += len(y)
        losses[epoch] = running / max(count, 1)
        if not math.isfinite(running):
            _stop_non_finite(epoch, config, params, scaler is not None)
        if callback is not None:
            callback(epoch + 1, model)
    model.eval()
    return losses


def extract_features(
    model: TransferModel,
    data: Dataset | DataLoader,
    *,
    batch_size: int = 256,
    amp: bool = True,
    progress: bool = False,
    num_workers: int = 0,
) -> tuple[Tensor, Tensor]:
    r"""Penultimate features :math:`\boldsymbol h_i` of a data set (model in eval mode).

    Args:
        model: a :class:`TransferModel`.
        data: ``Dataset`` or ``DataLoader`` of ``(x, y)``; read in order.
        batch_size: when ``data`` is a ``Dataset``.
        amp: autocast on CUDA (features are returned in float32).
        progress: show a tqdm bar.
        num_workers: DataLoader worker processes when ``data`` is a ``Dataset``.

    Returns:
        ``(H, y)``: ``(N, p)`` float32 and ``(N,)`` long, on the model's device.

    Example:
        >>> H, y = extract_features(build("small_resnet", 5, "linear_probe"),
        ...                         load_dataset("digits", "test"))
        >>> H.shape[1], y.shape == (H.shape[0],)
        (128, True)
    """
    _check_model(model, TransferModel, "the result of build(...)")
    batch_size = check_int("batch_size", batch_size, 1)
    num_workers = check_int("num_workers", num_workers, 0)
    check_type("amp", amp, bool)
    check_type("progress", progress, bool)
    _check_nonempty(data)
    _check_images(model, data)
    device = _device_of(model)
    was_training = model.training
    model.eval()
    cast, _ = _autocast(device, amp)
    feats, labels = [], []
    loader = _loader(data, batch_size, False, workers=num_workers)
    with torch.no_grad():
        for x, y in _progress(loader, progress, "features"):
            with cast:
                feats.append(model.forward_features(x.to(device)).float())  # (B, p)
            labels.append(y.to(device))
    model.train(was_training)
    if not feats:
        raise ValueError("data gave no batches; pass a data set with samples")
    return torch.cat(feats), torch.cat(labels)


def fit_linear_probe(
    model: TransferModel,
    data: Dataset | DataLoader,
    config: FitConfig = FitConfig(),
    *,
    cache: str | os.PathLike | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Linear probe through a features cache: extract :math:`\boldsymbol h_i` once, fit the head.

    The frozen backbone runs once over ``data`` (or not at all when ``cache`` holds the features);
    the head is then fitted on the cached features by full-batch L-BFGS on

    .. math::
        \frac1N\sum_i \mathcal L_{\rm CE}(\boldsymbol W\boldsymbol h_i+\boldsymbol b, y_i)
        + \frac\lambda2\|\boldsymbol W\|_F^2 .

    Args:
        model: a :class:`TransferModel` built with ``method="linear_probe"``.
        data: training ``Dataset`` or ``DataLoader``.
        config: ``weight_decay`` (λ), ``probe_iters``, ``batch_size``, ``amp``, ``progress``.
        cache: a ``.pt`` file of features. Reused only when it was written for the same model
            (backbone and a hash of the encoder's weights), the same data (number of samples,
            image shape, a hash of all labels and of a few images), the same ``batch_size``,
            ``amp`` and device type, and the same feature-extraction code; otherwise the
            features are recomputed and the file overwritten. The probe's own settings
            (``probe_iters``, ``weight_decay``) do not invalidate it: it holds features, not the
            head. A file that cannot be read raises ``ValueError`` naming it.

    Returns:
        The training features ``(H, y)``, ``(N, p)`` and ``(N,)``, on the model's device.

    Example:
        >>> model = build("small_resnet", 5, "linear_probe")
        >>> H, y = fit_linear_probe(model, load_dataset("digits", "train"),
        ...                         FitConfig(probe_iters=5, progress=False))
        >>> tuple(H.shape)
        (500, 128)
    """
    _check_model(model, TransferModel, "build(..., method='linear_probe')")
    if getattr(model, "method", None) != "linear_probe":
        raise ValueError("fit_linear_probe needs a model built with method='linear_probe'")
    _check_config(config)
    if cache is not None:
        check_type("cache", cache, (str, os.PathLike), "a .pt file path")
    _check_nonempty(data)
    _check_images(model, data)
    _check_labels(data, model.head.out_features)
    device = _device_of(model)
    path = Path(cache) if cache is not None else None
    code = (extract_features, TransferModel.forward_features)  # what computes the features
    key = _cache_key(model, data, config, device, code) if path is not None else None
    stored = _read_cache(path, key, device) if path is not None else None
    if stored is not None:
        H, y = stored
    else:
        H, y = extract_features(
            model,
            data,
            batch_size=config.batch_size,
            amp=config.amp,
            progress=config.progress,
            num_workers=config.num_workers,
        )
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"key": key, "H": H.cpu(), "y": y.cpu()}, path)
    _fit_head(model.head, H, y, config)
    return H, y


def _fit_head(head: nn.Linear, H: Tensor, y: Tensor, config: FitConfig) -> None:
    """Fit ``head`` in place on features ``H`` (N, p) with labels ``y`` (N,): full-batch L-BFGS
    on cross-entropy + ``config.weight_decay`` / 2 · ‖W‖² (:func:`fit_linear_probe`)."""
    optimizer = torch.optim.LBFGS(
        head.parameters(), lr=1.0, max_iter=config.probe_iters, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(head(H), y) + 0.5 * config.weight_decay * head.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)


def accuracy(
    model: nn.Module, data: Dataset | DataLoader, *, batch_size: int = 256, num_workers: int = 0
) -> Tensor:
    """Top-1 accuracy of ``model`` on ``data`` (eval mode), a 0-dim tensor in ``[0, 1]``.

    Empty ``data`` raises ``ValueError`` (an accuracy of no samples is undefined, not 0), and so
    do NaN or inf logits (their argmax would count as a prediction); the logits are tested on the
    device and read once, after the loop.

    Args:
        model: any classifier returning logits ``(B, K)``; left in its previous mode afterwards.
        data: ``Dataset`` or ``DataLoader`` of ``(x, y)``, ``x`` moved to the model's device.
        batch_size: when ``data`` is a ``Dataset``.
        num_workers: DataLoader worker processes when ``data`` is a ``Dataset``.

    Returns:
        0-dim float tensor on the model's device.

    Example:
        >>> float(accuracy(build("small_resnet", 5, "full_ft"), load_dataset("digits", "test"))) <= 1
        True
    """
    _check_model(model)
    batch_size = check_int("batch_size", batch_size, 1)
    num_workers = check_int("num_workers", num_workers, 0)
    _check_nonempty(data)
    _check_images(model, data)
    device = _device_of(model)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), device=device)
    broken = torch.zeros((), dtype=torch.long, device=device)  # samples with NaN/inf logits
    count = 0
    with torch.no_grad():
        for x, y in _loader(data, batch_size, False, workers=num_workers):
            y = y.to(device)
            logits = model(x.to(device))  # (B, K)
            correct += (logits.argmax(dim=1) == y).sum()
            broken += (~torch.isfinite(logits)).any(dim=1).sum()  # on the device: no sync
            count += len(y)
    model.train(was_training)
    if count == 0:
        raise ValueError("data is empty (0 samples): the accuracy of no samples is undefined")
    if bool(broken):  # one sync, after the loop
        raise ValueError(
            f"model gives NaN or inf logits for {int(broken)} of the {count} samples of data "
            "(non-finite images or weights), whose predicted class would be arbitrary; check "
            "the data for NaN/inf and the model's weights"
        )
    return correct / count


@dataclass(frozen=True)
class TransferResult:
    """Outcome of :func:`fine_tune` on one method."""

    method: str  # fine-tuning method
    accuracy: float  # test accuracy in [0, 1]
    nc1: float  # NC1 of the penultimate features on the training data
    fraction: float  # trainable fraction of the parameters
    model: TransferModel  # the fine-tuned model (eval mode)


def fine_tune(
    backbone: Backbone,
    method: Method,
    train: Dataset,
    test: Dataset,
    num_classes: int,
    *,
    pretrained: bool | Mapping[str, Tensor] = False,
    config: FitConfig = FitConfig(),
    class_names: Sequence[str] | None = None,
    image_size: int | None = None,
    clip_head: str | None = None,
    cache: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> TransferResult:
    r"""Build, fine-tune with one method, and measure accuracy, :math:`\mathcal{NC}_1` and % trained.

    ``linear_probe`` goes through the features cache (:func:`fit_linear_probe`), ``zero_shot``
    trains nothing, the others run :func:`fit`. :math:`\mathcal{NC}_1` is that of the penultimate
    features on the training data, as in the lecture's table.

    Args:
        backbone, method, num_classes, pretrained, class_names, image_size, clip_head: as in
            :func:`build`.
        train: training ``Dataset`` of ``(x, y)``; test: test ``Dataset``.
        config: :class:`FitConfig`.
        cache: features cache of the linear probe.
        device: where to train.
        generator: shuffling of the training data.

    Returns:
        A :class:`TransferResult`.

    Example:
        >>> res = fine_tune("small_resnet", "linear_probe", load_dataset("digits", "train"),
        ...                 load_dataset("digits", "test"), 5, config=FitConfig(probe_iters=5))
        >>> res.method, 0 <= res.accuracy <= 1
        ('linear_probe', True)
    """
    _check_config(config)
    if generator is not None:
        check_type("generator", generator, torch.Generator)
    for name, split in (("train", train), ("test", test)):
        _check_nonempty(split, name)
    model = build(
        backbone,
        num_classes,
        method,
        pretrained,
        class_names=class_names,
        image_size=image_size,
        clip_head=clip_head,
        device=device,
    )
    for name, split in (("train", train), ("test", test)):
        _check_images(model, split, name)
        _check_labels(split, model.head.out_features, name)
    eval_batch = max(config.batch_size, 256)
    if method == "linear_probe":
        H, y = fit_linear_probe(model, train, config, cache=cache)
    else:
        fit(model, train, config, generator=generator)
        H, y = extract_features(
            model, train, batch_size=eval_batch, amp=config.amp, num_workers=config.num_workers
        )
    return TransferResult(
        method=method,
        accuracy=float(
            accuracy(model, test, batch_size=eval_batch, num_workers=config.num_workers)
        ),
        nc1=float(nc1(H, y, num_classes)),
        fraction=trainable_fraction(model),
        model=model,
    )
