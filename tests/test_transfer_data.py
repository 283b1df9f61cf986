"""lib.transfer.data: the offline digits tasks, balanced subsets and torchvision data sets with
each backbone's preprocessing (read from disk, never downloaded here)."""

from __future__ import annotations

import pytest
import torch

from lib import transfer
from lib.transfer import offline as _offline


def test_digits_tasks_are_disjoint_balanced_splits():
    src = transfer.load_dataset("digits_source", "train")
    train, test = transfer.load_dataset("digits", "train"), transfer.load_dataset("digits", "test")
    assert len(src) == len(train) == 500 and train.classes == ["5", "6", "7", "8", "9"]
    assert torch.bincount(train.targets).tolist() == [100] * 5
    assert len(test) > 350
    rows = {tuple(x.flatten().tolist()) for x in train.tensors[0]}
    assert not any(tuple(x.flatten().tolist()) in rows for x in test.tensors[0][:50])
    sub = transfer.balanced_subset(train, 7, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(train.targets[sub.indices]).tolist() == [7] * 5


def test_dataset_on_disk_gets_the_backbones_preprocessing(monkeypatch, tmp_path):
    import torchvision

    class OnDiskCIFAR(torchvision.datasets.FakeData):
        url = torchvision.datasets.CIFAR10.url

        def __init__(self, root, train, transform, download):
            assert not download, "must not download when the files are there"
            super().__init__(size=6, image_size=(3, 32, 32), num_classes=10, transform=transform)
            self.classes = [str(k) for k in range(10)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", OnDiskCIFAR)
    monkeypatch.setattr(_offline, "_reachable", lambda *a, **k: pytest.fail("went to the network"))
    data = transfer.load_dataset("cifar10", "test", "clip_vit_b32", root=tmp_path, image_size=32)
    x, _ = data[0]
    assert tuple(x.shape) == (3, 32, 32)
    clip_mean = (0.48145466, 0.4578275, 0.40821073)
    assert tuple(data.transform.transforms[-1].mean) == pytest.approx(clip_mean)


def test_digits_are_the_shared_loaders_pixels_split_by_one_seeded_permutation():
    """Oracle: scikit-learn's digits, normalised and split here from the definition."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    images = (torch.tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0 - 0.3) / 0.4
    labels = torch.tensor(y)
    for seed in (0, 3):
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        for name, first in (("digits", 5), ("digits_source", 0)):
            per_class = [order[labels[order] == k] for k in range(first, first + 5)]
            for split, idx in (
                ("train", torch.cat([i[:100] for i in per_class])),
                ("test", torch.cat([i[100:] for i in per_class])),
            ):
                data = transfer.load_dataset(name, split, split_seed=seed)
                assert torch.equal(data.tensors[0], images[idx]), (name, split, seed)
                assert torch.equal(data.targets, labels[idx] - first), (name, split, seed)
    # the default is the split of every stored result (seed 0); another seed moves samples
    default = transfer.load_dataset("digits", "train")
    assert torch.equal(
        default.tensors[0], transfer.load_dataset("digits", "train", split_seed=0).tensors[0]
    )
    other = transfer.load_dataset("digits", "train", split_seed=1)
    assert not torch.equal(default.tensors[0], other.tensors[0])
