"""lib.transfer.offline: without network, weights and data that are not on disk fail in seconds
with advice. Nothing here downloads."""

from __future__ import annotations

import time

import pytest

from lib import transfer
from lib.transfer import offline as _offline


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No host is reachable and the Hugging Face cache is empty."""
    import huggingface_hub.constants as hub

    monkeypatch.setattr(_offline, "_reachable", lambda *a, **k: False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path


@pytest.mark.parametrize("backbone", ["resnet18", "clip_vit_b32"])
def test_pretrained_weights_offline_fail_fast_with_advice(offline, backbone):
    start = time.perf_counter()
    with pytest.raises(transfer.OfflineError, match="pretrained=False"):
        transfer.build(backbone, 3, "linear_probe", pretrained=True)
    assert time.perf_counter() - start < 5


def test_pretrained_weights_fail_fast_on_this_machine_if_it_is_offline(monkeypatch, tmp_path):
    """The real connectivity check (no patching); skipped where the network is up (no download)."""
    if _offline._reachable(_offline._HUB_HOST):
        pytest.skip("the Hub is reachable here; the test never downloads")
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)  # as on a machine without the variable
    start = time.perf_counter()
    with pytest.raises(transfer.OfflineError, match="cannot be reached"):
        transfer.build("resnet18", 3, "full_ft", pretrained=True)
    assert time.perf_counter() - start < 5


def test_dataset_offline_fails_fast_with_advice(offline):
    start = time.perf_counter()
    with pytest.raises(transfer.OfflineError, match="DATASET='digits'"):
        transfer.load_dataset("cifar10", "train", "resnet18", root=offline / "data")
    assert time.perf_counter() - start < 5
    with pytest.raises(FileNotFoundError, match="download=True"):
        transfer.load_dataset("pet", "test", "resnet18", root=offline / "data", download=False)
