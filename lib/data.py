"""Small data sets that need no download: labelled Gaussian classes and scikit-learn's digits.

Real data sets (torchvision, timm/open_clip preprocessing) live with the transfer-learning
chapter (:mod:`lib.transfer`); everything here is generated or ships with a package, so tests
and offline runs can use it. Each chapter normalises the digits its own way, documented there.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits as _sklearn_digits

from lib._checks import check_int, check_real, check_type
from lib.runtime import resolve_device

__all__ = ["digits", "gaussian_classes"]


def digits(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 handwritten digits, as shipped: 1797 images, ``K = 10`` classes.

    The one loader of the offline digits; chapters 1 and 3 split and normalise them their own
    way (:func:`lib.transfer.load_dataset`, :func:`lib.separation.load_digits`).

    Args:
        dtype: a real floating ``torch.dtype`` of the pixels.

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
    _check_dtype(dtype)
    X, y = _sklearn_digits(return_X_y=True)
    return torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=torch.int64)


def _check_dtype(dtype: object) -> None:
    """Refuse anything but a real floating ``torch.dtype`` (``TypeError`` for a non-dtype)."""
    check_type("dtype", dtype, torch.dtype, "e.g. torch.float32")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a real floating dtype such as torch.float32, got {dtype}")


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
        num_classes: :math:`K \ge 2` (Python or NumPy integer, as the next two).
        per_class: :math:`n \ge 1` samples per class, :math:`N = nK`.
        dim: feature dimension :math:`p \ge 1`.
        separation: scale :math:`s \ge 0` of the class centres, a finite real number.
        noise: standard deviation :math:`\sigma \ge 0` of the within-class noise, finite.
        generator: CPU ``torch.Generator`` for reproducible draws.
        dtype: real floating ``torch.dtype`` (default: torch's default dtype).
        device: where the returned tensors live (drawn on the CPU, then moved), as for
            :func:`lib.runtime.resolve_device` (``"auto"`` included).

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
    check_real("separation", separation, 0.0, strict=False)
    check_real("noise", noise, 0.0, strict=False)
    if dtype is not None:
        _check_dtype(dtype)
    if generator is not None:
        check_type("generator", generator, torch.Generator, "e.g. torch.Generator().manual_seed(0)")
        if generator.device.type != "cpu":
            raise ValueError(
                f"generator must be a CPU generator (the draws are made on the CPU, then moved), "
                f"got one on {generator.device}; use torch.Generator() and pass device="
            )
    if device is not None:
        device = resolve_device(device)
    dtype = dtype or torch.get_default_dtype()
    centres = torch.randn(num_classes, dim, generator=generator, dtype=dtype) / dim**0.5  # (K, p)
    y = torch.arange(num_classes).repeat_interleave(per_class)  # (N,)
    H = separation * centres[y] + noise * torch.randn(len(y), dim, generator=generator, dtype=dtype)
    return H.to(device), y.to(device)
