"""Offline failure: requests for pretrained weights or data that cannot arrive fail in seconds.

Without network, :func:`lib.transfer.build` with ``pretrained=True`` and
:func:`lib.transfer.load_dataset` of a torchvision data set that is not on disk raise
:class:`OfflineError` within seconds, with a message saying what to do, instead of retrying for a
minute. Both look the network up through :func:`_reachable` (one TCP connection attempt).
"""

from __future__ import annotations

import socket
from contextlib import contextmanager

__all__ = ["OfflineError"]

_HUB_HOST = "huggingface.co"
_CONNECT_TIMEOUT_S = 3.0


class OfflineError(RuntimeError):
    """Pretrained weights or a data set were requested but are neither on disk nor reachable."""


def _reachable(host: str, port: int = 443, timeout: float = _CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _weights_message(what: str, offline: bool = True) -> str:
    if not offline:
        return (
            f"downloading the pretrained weights of {what} from {_HUB_HOST} failed (see the "
            "error above); retry, or build with pretrained=False (random weights)."
        )
    return (
        f"cannot load the pretrained weights of {what}: they are not in the local Hugging Face "
        f"cache and {_HUB_HOST} cannot be reached from here (offline, or HF_HUB_OFFLINE=1). "
        "Run once with network access (e.g. on Colab) so that they are downloaded and cached, "
        "copy a filled cache (~/.cache/huggingface) to this machine, or build with "
        "pretrained=False (random weights; the chapter's offline default pretrains its own "
        "small source model)."
    )


@contextmanager
def _hub_access(what: str):
    """Run a timm/open_clip weight download; offline, fail in seconds with :class:`OfflineError`.

    When the Hub is unreachable, Hugging Face's offline mode is switched on for the duration, so
    cached weights still load and missing ones fail at once instead of after a minute of retries.
    """
    try:  # lazy: a dependency of timm/open_clip, needed only when public weights are requested
        import huggingface_hub.constants as hub_constants
    except ImportError:  # pragma: no cover - timm and open_clip depend on it
        hub_constants = None
    previous = getattr(hub_constants, "HF_HUB_OFFLINE", False)
    offline = bool(previous) or not _reachable(_HUB_HOST)
    if hub_constants is not None and offline:
        hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    except OSError as err:  # huggingface_hub's LocalEntryNotFoundError and friends
        raise OfflineError(_weights_message(what, offline)) from err
    except RuntimeError as err:  # open_clip wraps download failures in RuntimeError
        text = str(err).lower()
        if offline or any(word in text for word in ("download", "hub", "cache", "connection")):
            raise OfflineError(_weights_message(what, offline)) from err
        raise
    finally:
        if hub_constants is not None:
            hub_constants.HF_HUB_OFFLINE = previous
