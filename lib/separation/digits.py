r"""Beyond the lecture: a ReLU MLP trained on real, offline data (scikit-learn's digits).

He & Su's law of data separation in a network far from the theorem's assumptions (ReLU,
BatchNorm, cross-entropy, inputs that are not orthogonal): :func:`train_digits_mlp` trains it and
measures :math:`D_l` after every hidden layer, on the training and on the held-out split.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from lib import data, metrics
from lib._checks import check_device, check_dtype, check_generator, check_real
from lib._checks import check_int as _check_int
from lib.separation._validate import (
    _check_positive,
)
from lib.separation.theory import DecayFit, fit_decay

__all__ = ["DigitsRun", "DigitsSetting", "load_digits", "train_digits_mlp"]


def load_digits(
    test_fraction: float = 0.3,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""scikit-learn's 8x8 handwritten digits (:func:`lib.data.digits`), split and standardised.

    1797 images, ``K = 10``, shipped with scikit-learn. A random split, stratified by class;
    every pixel standardised with the training split's
    mean and standard deviation (constant pixels stay 0):

    .. math::

        x_{ij} \leftarrow (x_{ij} - \mu_j)/\sigma_j.

    Args:
        test_fraction: share of each class held out, in ``(0, 1)``.
        generator: random source for the split.
        dtype: floating dtype (default: torch's default).

    Returns:
        ``(X_train, y_train, X_test, y_test)``: ``(N_tr, 64)``, ``(N_tr,)``, ``(N_te, 64)``,
        ``(N_te,)`` on the CPU.

    Reference:
        Alpaydin & Kaynak, *Optical recognition of handwritten digits*, UCI, 1998
        (``sklearn.datasets.load_digits``).

    Example:
        >>> Xtr, ytr, Xte, yte = load_digits(generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
        >>> Xtr.shape[1], int(ytr.max()) + 1  # doctest: +SKIP
        (64, 10)
    """
    if not (isinstance(test_fraction, numbers.Real) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    check_generator(generator)
    check_dtype(dtype)
    dtype = dtype or torch.get_default_dtype()
    X, y = data.digits(torch.float64)  # (1797, 64) raw pixels in [0, 16], (1797,) int64
    train, test = [], []
    for k in range(int(y.max()) + 1):
        members = (y == k).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = max(1, round(test_fraction * len(members)))
        test.append(members[:n_test])
        train.append(members[n_test:])
    tr, te = torch.cat(train).sort().values, torch.cat(test).sort().values
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd = torch.where(sd > 0, sd, torch.ones_like(sd))
    Xs = ((X - mu) / sd).to(dtype)
    return Xs[tr], y[tr], Xs[te], y[te]


@dataclass(frozen=True)
class DigitsSetting:
    """A ReLU MLP on digits, trained as in He & Su's experiments (SGD, momentum, cross-entropy)."""

    depth: int = 6  # hidden layers, each Linear -> [BatchNorm] -> ReLU; then a linear classifier
    width: int = 64  # hidden width
    batchnorm: bool = True  # He & Su's networks use BatchNorm
    epochs: int = 60  # passes over the training split
    batch_size: int = 128  # mini-batch size
    lr: float = 0.05  # SGD learning rate
    momentum: float = 0.9  # heavy-ball momentum
    weight_decay: float = 5e-4  # L2 penalty
    test_fraction: float = 0.3  # held-out share of each class
    seed: int = 0  # seeds the split, the initialisation and the batches


@dataclass(frozen=True)
class DigitsRun:
    r"""Result of :func:`train_digits_mlp`.

    Attributes:
        setting: its :class:`DigitsSetting`.
        train_separation: ``(depth + 1,)``, :math:`D_0` (pixels) to :math:`D_{\text{depth}}`
            (last hidden layer) on the training split.
        test_separation: the same on the test split.
        train_accuracy, test_accuracy: classification accuracy.
        model: the trained ``nn.Sequential`` (hidden blocks, then the classifier), eval mode.
    """

    setting: DigitsSetting
    train_separation: Tensor
    test_separation: Tensor
    train_accuracy: float
    test_accuracy: float
    model: nn.Module

    @property
    def fit(self) -> DecayFit:
        """:func:`fit_decay` of the training-split separations (all hidden layers and the input)."""
        return fit_decay(self.train_separation)

    def summary(self) -> dict[str, object]:
        """Named scalars for :func:`lib.report`."""
        return {
            "network": f"{self.setting.depth} hidden layers of {self.setting.width}, "
            + ("with" if self.setting.batchnorm else "without")
            + " BatchNorm",
            "train / test accuracy": f"{self.train_accuracy:.3f} / {self.test_accuracy:.3f}",
            "D_0 (pixels), train split": self.train_separation[0],
            "D_last hidden, train split": self.train_separation[-1],
            "fitted ratio D_(l+1)/D_l": self.fit.ratio,
            "R^2 of log D_l on l": self.fit.r2,
        }


def _digits_model(s: DigitsSetting, g: torch.Generator, dtype: torch.dtype) -> nn.Sequential:
    blocks: list[nn.Module] = []
    d_in = 64
    for _ in range(s.depth):
        mods = [nn.Linear(d_in, s.width, dtype=dtype)]
        if s.batchnorm:
            mods.append(nn.BatchNorm1d(s.width, dtype=dtype))
        blocks.append(nn.Sequential(*mods, nn.ReLU()))
        d_in = s.width
    model = nn.Sequential(*blocks, nn.Linear(d_in, 10, dtype=dtype))
    with torch.no_grad():  # PyTorch's default init, drawn from our generator (no global seed)
        for m in model.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                m.weight.uniform_(-bound, bound, generator=g)
                m.bias.uniform_(-bound, bound, generator=g)
    return model


def _check_digits_setting(s: DigitsSetting) -> DigitsSetting:
    """Check every knob of a :class:`DigitsSetting`; integers (NumPy ones too) come back as ``int``."""
    ints = {name: _check_int(name, getattr(s, name), 1) for name in ("depth", "width", "epochs")}
    ints["batch_size"] = _check_int("batch_size", s.batch_size, 1)
    ints["seed"] = _check_int("seed", s.seed, 0)
    if not isinstance(s.batchnorm, (bool, np.bool_)):
        raise ValueError(f"batchnorm must be True or False, got {s.batchnorm!r}")
    if s.batchnorm and ints["batch_size"] < 2:
        raise ValueError(
            f"batch_size must be >= 2 with batchnorm=True (BatchNorm needs two samples per "
            f"batch, so batch_size={s.batch_size!r} would never take a step); raise batch_size "
            "or set batchnorm=False"
        )
    _check_positive("lr", s.lr)
    momentum = s.momentum
    if not (isinstance(momentum, numbers.Real) and not isinstance(momentum, bool)) or not (
        0 <= momentum < 1
    ):
        raise ValueError(f"momentum must lie in [0, 1) (a number), got {momentum!r}")
    check_real("weight_decay", s.weight_decay, 0.0, strict=False)
    return replace(s, **ints)


def _check_epoch_loss(loss: Tensor, epoch: int, s: DigitsSetting) -> None:
    """Stop with a message once the last batch's loss is non-finite (NaN weights stay NaN)."""
    if not bool(torch.isfinite(loss)):
        raise ValueError(
            f"training diverged: the cross-entropy became non-finite in epoch {epoch + 1}; the "
            f"learning rate lr={s.lr:g} is too large for this network (depth={s.depth}, "
            f"width={s.width}, batchnorm={s.batchnorm}); lower setting.lr"
        )


def train_digits_mlp(
    setting: DigitsSetting = DigitsSetting(),
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> DigitsRun:
    r"""Train a ReLU MLP on scikit-learn's digits and measure :math:`D_l` after every hidden layer.

    .. math::

        \boldsymbol z^0 = \boldsymbol x,\quad
        \boldsymbol z^l = \mathrm{ReLU}(\mathrm{BN}(A_l \boldsymbol z^{l-1} + \boldsymbol b_l)),
        \quad \text{logits} = C\boldsymbol z^{\text{depth}} + \boldsymbol c,

    minimising cross-entropy with mini-batch SGD (momentum, weight decay). The features are taken
    in eval mode (BatchNorm with its running statistics). A network of the kind He & Su study —
    beyond the lecture's theory, which covers linear networks on orthogonal data.

    Args:
        setting: the :class:`DigitsSetting`.
        dtype: float64 by default (deterministic, and cheap at this size).
        device: where to train (default CPU).

    Returns:
        A :class:`DigitsRun`.

    Raises:
        ValueError: a bad knob of ``setting``, naming it; ``batch_size < 2`` with BatchNorm
            (BatchNorm cannot use one-sample batches, so no step would ever be taken); a
            ``dtype`` that is not floating or a ``device`` without values (``meta``); a loss that
            became non-finite (checked once per epoch), naming ``lr``.

    Reference:
        He & Su, *A law of data separation in deep learning*, PNAS 2023 (Fig. 1 set-up, on
        Fashion-MNIST there).

    Example:
        >>> run = train_digits_mlp(DigitsSetting(depth=2, epochs=2))  # doctest: +SKIP
        >>> tuple(run.train_separation.shape)  # doctest: +SKIP
        (3,)
    """
    if not isinstance(setting, DigitsSetting):
        raise ValueError(f"setting must be a DigitsSetting, got {type(setting).__name__}")
    s = _check_digits_setting(setting)
    check_dtype(dtype)
    check_device(device)
    g = torch.Generator().manual_seed(s.seed)
    Xtr, ytr, Xte, yte = load_digits(s.test_fraction, g, dtype)
    Xtr, ytr, Xte, yte = (t.to(device) for t in (Xtr, ytr, Xte, yte))
    model = _digits_model(s, g, dtype).to(device)
    opt = torch.optim.SGD(
        model.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay
    )
    model.train()
    for epoch in range(s.epochs):
        order = torch.randperm(len(ytr), generator=g).to(device)
        for start in range(0, len(ytr), s.batch_size):
            batch = order[start : start + s.batch_size]
            if len(batch) < 2 and s.batchnorm:
                continue  # BatchNorm needs two samples
            loss = nn.functional.cross_entropy(model(Xtr[batch]), ytr[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        _check_epoch_loss(loss, epoch, s)  # one host sync per epoch, none per step
    model.eval()

    def profile(X: Tensor, y: Tensor) -> tuple[Tensor, float]:
        Z, D = X, [metrics.trace_ratio(X, y, 10)]
        for block in list(model)[:-1]:
            Z = block(Z)  # (N, width)
            D.append(metrics.trace_ratio(Z, y, 10))
        accuracy = float((model[-1](Z).argmax(1) == y).to(torch.float64).mean())
        return torch.stack(D), accuracy

    with torch.no_grad():
        D_tr, acc_tr = profile(Xtr, ytr)
        D_te, acc_te = profile(Xte, yte)
    return DigitsRun(s, D_tr, D_te, acc_tr, acc_te, model)
