"""Small data sets that need no download: labelled Gaussian classes and scikit-learn's digits.

Real data sets (torchvision, timm/open_clip preprocessing) live with the transfer-learning
chapter (:mod:`lib.transfer`); everything here is generated or ships with a package, so tests
and offline runs can use it. Each chapter normalises the digits its own way, documented there.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits as _sklearn_digits

from lib._checks import check_int

__all__ = ["digits", "gaussian_classes"]


def digits(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 handwritten digits, as shipped: 1797 images, ``K = 10`` classes.

    The one loader of the offline digits; chapters 1 and 3 split and normalise them their own
    way (:func:`lib.transfer.load_dataset`, :func:`lib.separation.load_digits`).

    Args:
        dtype: floating dtype of the pixels.

    Returns:
        ``(X, y)``: pixel values in ``[0, 16]``, ``(1797, 64)``, and labels ``(1797,)`` (int64),
        on the CPU, in scikit-learn's order.

    Reference:
        Alpaydin & Kaynak, *Optical recognition of handwritten digits*, UCI, 1998
        (``sklearn.datasets.load_digits``).

    Example:
        >>> X, y = digits()
        >>> tuple(X.shape), int(y.max()) + 1
        ((1797, 64), 10)
    """
    X, y = _sklearn_digits(return_X_y=True)
    return torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=torch.int64)


def gaussian_classes(
    num_classes: int,
    per_class: int,
    dim: int,
    separation: float = 1.0,
    noise: float = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Balanced, labelled Gaussian classes around random class centres.

    .. math::
        \boldsymbol h_i = s\,\boldsymbol\mu_{y_i} + \sigma\,\boldsymbol g_i,\qquad
        \boldsymbol\mu_k \sim \mathcal N(0, \boldsymbol I_p/p)\ \text{(fixed per call)},\quad
        \boldsymbol g_i \sim \mathcal N(0, \boldsymbol I_p),

    so larger ``separation`` :math:`s` (or smaller ``noise`` :math:`\sigma`) gives more collapsed,
    better separated classes. Samples are ordered class by class.

    Args:
        num_classes: :math:`K \ge 2`.
        per_class: :math:`n \ge 1` samples per class, :math:`N = nK`.
        dim: feature dimension :math:`p \ge 1`.
        separation: scale :math:`s \ge 0` of the class centres.
        noise: standard deviation :math:`\sigma \ge 0` of the within-class noise.
        generator: CPU generator for reproducible draws.
        dtype: floating dtype (default: torch's default dtype).
        device: where the returned tensors live (drawn on the CPU, then moved).

    Returns:
        ``(H, y)``: features ``(N, p)`` and integer labels ``(N,)`` on ``device``.

    Example:
        >>> H, y = gaussian_classes(3, 5, 4, generator=torch.Generator().manual_seed(0))
        >>> tuple(H.shape), y.tolist()[:6]
        ((15, 4), [0, 0, 0, 0, 0, 1])
    """
    num_classes = check_int("num_classes", num_classes, 2)
    per_class = check_int("per_class", per_class, 1)
    dim = check_int("dim", dim, 1)
    for name, value in (("separation", separation), ("noise", noise)):
        if not (float(value) >= 0.0) or value == float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    dtype = dtype or torch.get_default_dtype()
    centres = torch.randn(num_classes, dim, generator=generator, dtype=dtype) / dim**0.5  # (K, p)
    y = torch.arange(num_classes).repeat_interleave(per_class)  # (N,)
    H = separation * centres[y] + noise * torch.randn(len(y), dim, generator=generator, dtype=dtype)
    return H.to(device), y.to(device)
