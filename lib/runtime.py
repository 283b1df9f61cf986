"""Run-time basics every notebook uses: device resolution, seeding, rounded reporting, setup.

Nothing here touches the network, and nothing initialises CUDA until a caller asks for
``device="auto"`` or ``"cuda"``.
"""

from __future__ import annotations

import importlib.metadata as md
import math
import numbers
import os
import platform
import random
from collections.abc import Mapping

import torch

from lib._checks import check_int, check_not_meta, check_type

__all__ = [
    "environment",
    "format_report",
    "format_value",
    "report",
    "resolve_device",
    "seed_everything",
    "setup",
]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device request into a :class:`torch.device`.

    ``"auto"`` picks ``cuda`` when a GPU is available, then ``mps``, else ``cpu``. Anything else is
    passed to :class:`torch.device` after checking that the backend exists, so a notebook asked to
    run with ``DEVICE="cuda"`` on a machine without a GPU fails at once with a message instead of
    deep inside a training loop.

    Requests that cannot run here raise a ``ValueError`` naming ``device``: ``cuda`` without a
    GPU or with an index beyond the GPUs present, ``mps`` where it is unavailable, and ``meta``
    (shapes without data: nothing can be computed there).

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``.

    Returns:
        The resolved ``torch.device``.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if isinstance(device, torch.device):
        dev = device
    elif not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    elif device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise ValueError(
                f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
            ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} was requested but no CUDA GPU is available here; "
            "use DEVICE='auto' or 'cpu' (on Colab: Runtime > Change runtime type > GPU)"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} was requested but this machine has "
            f"{torch.cuda.device_count()} CUDA GPU(s), numbered from 0; use 'cuda' or 'cuda:0'"
        )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"device {device!r} was requested but Apple's MPS is not available here; "
                "use DEVICE='auto' or 'cpu'"
            )
    if dev.type == "meta":
        raise ValueError(
            f"device {device!r} holds shapes without data, so nothing can run there; "
            "use DEVICE='auto', 'cpu' or 'cuda'"
        )
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy (when installed) and torch (CPU and all GPUs).

    Library code never seeds globally; notebooks call this once (through :func:`setup`) and
    pass explicit ``generator=`` objects to ``lib`` functions where reproducibility matters.

    Args:
        seed: an integer in ``[0, 2**64)`` (Python or NumPy integer), torch's seed range.

    Returns:
        A CPU ``torch.Generator`` seeded with ``seed``, for passing as ``generator=``.
    """
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be a non-negative integer below 2**64, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)  # noqa: NPY002 - seeding the legacy global RNG is the point
    except ImportError:  # pragma: no cover - numpy ships with torch's usual installs
        pass
    torch.manual_seed(seed)  # also seeds every CUDA device, lazily
    return torch.Generator().manual_seed(seed)


def setup(
    seed: int = 0,
    device: str | torch.device = "auto",
    style: bool = True,
    threads: int | None = None,
    reproducible: bool = True,
) -> torch.device:
    """The one setup call at the top of every notebook: seed, device, CPU threads, plot style.

    Prints one line (``device: cpu  seed: 0``) so a reader sees where the notebook ran.

    Every argument is checked before anything is seeded or set.

    With ``reproducible`` (the default) CPU results do not depend on the make of the CPU. Two
    libraries pick their code path by processor, and the paths round differently, which a long
    training run amplifies into different printed numbers:

    * Intel's MKL (torch's BLAS on x86) picks its kernels by vendor and instruction set, and
      its instruction-set modes do not cross vendors: in ``MKL_CBWR=AVX2`` mode an Intel Xeon
      and an AMD EPYC still print different numbers for chapter 1 (on the AMD machine the AVX2
      and AVX-512 modes run its one non-Intel path). ``setup`` sets ``MKL_CBWR=COMPATIBLE``,
      MKL's mode that gives the same results on every Intel and compatible processor, unless
      the variable is already set. It takes effect only if no MKL routine has run yet in the
      process, which is why it sits in the notebooks' first call.
    * oneDNN, which runs float32 convolutions on the CPU and has no such switch: ``setup`` turns
      it off (``torch.backends.mkldnn.enabled = False``), so convolutions run as ATen's
      im2col + MKL matrix products. Chapter 1's small ResNet trains several times slower on
      a CPU this way; pass ``reproducible=False`` for speed (large convolutions on a CPU).

    Args:
        seed: seed for :func:`seed_everything`.
        device: device request for :func:`resolve_device`.
        style: ``bool``, apply the book's matplotlib style (:func:`lib.plotting.use_style`).
        threads: CPU threads for torch (``torch.set_num_threads``); ``None`` keeps torch's
            default. Chapters of small matrices pass ``threads=1``: one thread is fastest there,
            and it does not stall when the CPU is busy.
        reproducible: ``bool``, make CPU results independent of the make of the CPU (above).

    Returns:
        The resolved ``torch.device``.

    Example:
        >>> setup(seed=0, device="cpu", style=False, threads=1)
        device: cpu  seed: 0
        device(type='cpu')
    """
    if threads is not None:
        threads = check_int("threads", threads, 1)
    check_type("style", style, bool)
    check_type("reproducible", reproducible, bool)
    dev = resolve_device(device)  # before seeding: no side effect if the request is refused
    if reproducible:  # the same numbers on Intel and AMD CPUs (see above)
        os.environ.setdefault("MKL_CBWR", "COMPATIBLE")
        torch.backends.mkldnn.enabled = False
    seed_everything(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    if style:
        from lib.plotting import use_style  # lazy: ``import lib`` does not load matplotlib

        use_style()
    print(f"device: {dev.type}  seed: {seed}")
    return dev


def format_value(value: object, digits: int = 4) -> str:
    """Format a scalar with ``digits`` significant digits; 0-dim tensors are unwrapped.

    Rounding to a few significant digits keeps printed outputs identical across BLAS builds and
    thread counts, which is what lets nbval compare stored outputs with a fresh run. NaN and
    infinities print as ``nan``, ``inf``, ``-inf``.

    Args:
        value: a Python number, NumPy scalar, one-element tensor or array, bool, str or None.
        digits: significant digits, an integer ``>= 1``.

    Returns:
        The text.
    """
    return _format(value, check_int("digits", digits, 1), "value")


def _format(value: object, digits: int, name: str) -> str:
    """:func:`format_value` of a checked ``digits``; errors name the value ``name``."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and math.prod(shape) != 1:  # torch.Size is a tuple
        kind = "tensor" if isinstance(value, torch.Tensor) else "array"
        raise ValueError(
            f"{name} is not a scalar: report prints scalars only; got a {kind} of shape "
            f"{tuple(shape)} (reduce it first, or print a rounded summary)"
        )
    if isinstance(value, torch.Tensor):
        check_not_meta(name, value)
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x) or math.isinf(x):
            return str(x)
        if x == 0.0:
            return "0"
        text = f"{x:.{digits}g}"
        return "0" if float(text) == 0.0 else text  # never print "-0"
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars and 1-element arrays
        return _format(value.item(), digits, name)
    raise ValueError(
        f"{name} must be a number, NumPy scalar or one-element tensor; cannot format "
        f"{type(value).__name__} as a scalar"
    )


def format_report(
    values: Mapping[str, object] | None = None, digits: int = 4, **kwargs: object
) -> str:
    """Text of :func:`report`: named scalars rounded to ``digits`` significant digits, aligned.

    Args:
        values: mapping from name (a ``str``) to a Python number, NumPy scalar or 0-dim tensor.
        digits: significant digits, an integer ``>= 1``.
        **kwargs: more name/value pairs.

    Returns:
        One line per value.
    """
    digits = check_int("digits", digits, 1)
    if values is not None:
        check_type("values", values, Mapping, "name -> value, e.g. {'NC1': 0.5}")
    items = dict(values or {}, **kwargs)
    if not items:
        raise ValueError("report needs at least one name=value pair")
    for k in items:
        check_type(f"the name {k!r} in values", k, str)
    width = max(len(k) for k in items)
    return "\n".join(f"{k:<{width}}  {_format(v, digits, k)}" for k, v in items.items())


def report(values: Mapping[str, object] | None = None, digits: int = 4, **kwargs: object) -> None:
    """Print named scalars rounded to ``digits`` significant digits, one per line, aligned.

    The one way notebooks print numbers: rounding keeps stored outputs identical across runs.

    Args:
        values: mapping from name to a Python number, NumPy scalar or 0-dim tensor.
        digits: significant digits.
        **kwargs: more name/value pairs.

    Example:
        >>> report(NC1=0.123456, K=10)
        NC1  0.1235
        K    10
    """
    print(format_report(values, digits, **kwargs))


def environment() -> dict[str, str]:
    """Versions of the stack and the accelerator this kernel sees, for the getting-started check.

    Returns:
        Mapping from component to a short description (printed by the notebook; its output
        differs between machines, so notebooks mark that cell ``nbval-ignore-output``).
    """
    info = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "timm", "open_clip_torch", "matplotlib", "jupyter-book"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            info[pkg] = "not installed"
    if torch.cuda.is_available():
        info["gpu"] = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    else:
        info["gpu"] = "none (CPU only)"
    return info
