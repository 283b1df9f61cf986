"""Small synthetic data sets that need no download: labelled Gaussian classes.

Real data sets (torchvision, timm/open_clip preprocessing) arrive with the transfer-learning
chapter; everything here is generated, so tests and offline runs can use it.
"""

from __future__ import annotations

import torch

__all__ = ["gaussian_classes"]


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
    for name, value, low in (
        ("num_classes", num_classes, 2),
        ("per_class", per_class, 1),
        ("dim", dim, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    for name, value in (("separation", separation), ("noise", noise)):
        if not (float(value) >= 0.0) or value == float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    dtype = dtype or torch.get_default_dtype()
    centres = torch.randn(num_classes, dim, generator=generator, dtype=dtype) / dim**0.5  # (K, p)
    y = torch.arange(num_classes).repeat_interleave(per_class)  # (N,)
    H = separation * centres[y] + noise * torch.randn(len(y), dim, generator=generator, dtype=dtype)
    return H.to(device), y.to(device)
