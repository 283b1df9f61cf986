"""lib.transfer.table: the lecture's "percentage of parameters fine-tuned" from the real
architectures (built on the meta device: nothing is downloaded or allocated)."""

from __future__ import annotations

import pytest

from lib import transfer


def closed_form_percent(backbone: str, K: int, method: str) -> float:
    """Published parameter counts, written out by hand (the oracle for percentage_table)."""
    if backbone == "resnet50":
        total = 25_557_032 - (2048 * 1000 + 1000)  # torchvision ResNet50 without its fc
        # layer3.0: 1x1 512->256, 3x3 256->256, 1x1 256->1024, downsample 1x1 512->1024, 4 BNs
        key = 512 * 256 + 9 * 256 * 256 + 256 * 1024 + 512 * 1024 + 2 * (256 + 256 + 1024 + 1024)
        head = 2048 * K + K
    elif backbone == "vit_b32":  # at 384 px: 145 position tokens instead of 224 px's 50
        total = 88_224_232 - (768 * 1000 + 1000) + (145 - 50) * 768  # timm ViT-B/32, no head
        key = 12 * 768**2 + 13 * 768  # one block: qkv, proj, 2 MLP layers, 2 LayerNorms
        head = 768 * K + K
    else:
        tower = 87_849_216  # open_clip ViT-B-32 image tower (conv1 has no bias, proj 768x512)
        key = 12 * 768**2 + 13 * 768
        head = 768 * K + K  # trained head on the 768-d features; the projection is removed
        if method in ("layer_ft", "scl_ft"):  # counted against the published tower
            return 100 * (key + head) / tower
        total = tower - 768 * 512
    trainable = {"linear_probe": head, "zero_shot": 0, "layer_ft": key + head, "scl_ft": key + head}
    return 100 * trainable.get(method, total + head) / (total + head)


def test_percentage_table_reproduces_the_lecture():
    rows = transfer.percentage_table()
    assert len(rows) == 4 * len(transfer.LECTURE_PERCENT)
    for row in rows:
        expected = closed_form_percent(row["backbone"], row["K"], row["method"])
        assert row["computed"] == pytest.approx(expected, rel=1e-12), row
        assert abs(round(row["computed"], 2) - row["lecture"]) < 1e-9, row  # two decimals
        if row["backbone"] == "clip_vit_b32" and row["method"] in ("layer_ft", "scl_ft"):
            assert row["of_model"] == pytest.approx(  # our model: no projection, head counted
                100
                * (12 * 768**2 + 13 * 768 + 769 * row["K"])
                / (87_849_216 - 768 * 512 + 769 * row["K"]),
                rel=1e-12,
            )
            assert round(row["of_model"], 2) == round(row["lecture"] + 0.03, 2)
        else:
            assert row["of_model"] == pytest.approx(row["computed"], rel=1e-14)
    scl = {(r["backbone"], r["dataset"]): r["computed"] for r in rows if r["method"] == "scl_ft"}
    layer = {
        (r["backbone"], r["dataset"]): r["computed"] for r in rows if r["method"] == "layer_ft"
    }
    assert scl == layer


def test_vit_at_224_px_is_one_hundredth_off_in_the_aircraft_cell_only():
    rows = [r for r in transfer.percentage_table(vit_image_size=224) if r["backbone"] == "vit_b32"]
    lecture = [
        v for key, values in transfer.LECTURE_PERCENT.items() if key[0] == "vit_b32" for v in values
    ]
    computed = [round(r["computed"], 2) for r in rows]
    off = [(r["dataset"], r["method"]) for r, c, v in zip(rows, computed, lecture) if c != v]
    assert off == [("aircraft", "layer_ft"), ("aircraft", "scl_ft")]
    assert computed[1] == 8.19 and rows[1]["computed"] == pytest.approx(8.1853, abs=5e-5)


def test_percentage_markdown_lists_computed_and_lecture_values():
    text = transfer.percentage_markdown(transfer.percentage_table()[:4])
    assert "| resnet50 | cifar10 | 10 | 0.09 (0.09) | 6.52 (6.52) | 6.52 (6.52) |" in text
