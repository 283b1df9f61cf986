"""lib.transfer.models and lib.transfer.backbones: trainable parameters per method, key layers,
the SCL skip and build's argument checks.

Nothing here downloads: every model is built with pretrained=False or on the meta device.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lib import transfer

METHODS_TRAINED = ("linear_probe", "layer_ft", "scl_ft", "full_ft")


def materialize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give a meta-device model real CPU storage with small random weights (fast, no init code)."""
    model = model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05, generator=g)
        for name, b in model.named_buffers():
            b.fill_(1 if name.endswith("running_var") else 0)
    return model


def expected_trainable(model: transfer.TransferModel, method: str) -> set[str]:
    """Names the method must train, written out from the method's definition."""
    names = {n for n, _ in model.named_parameters()}
    head = {n for n in names if n.startswith("head.")}
    key = {n for n in names if n.startswith(f"encoder.{model.key_layer}.")}
    return {
        "zero_shot": set(),
        "linear_probe": head,
        "layer_ft": head | key,
        "scl_ft": head | key,
        "full_ft": names,
    }[method]


# --------------------------------------------------------------------------------------------
# Trainable parameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS_TRAINED)
def test_each_method_trains_exactly_its_parameters(method):
    model = transfer.build("small_resnet", 5, method)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == expected_trainable(model, method)
    # independent count: numel of the expected names over numel of all named parameters
    sizes = {n: p.numel() for n, p in model.named_parameters()}
    expected = sum(sizes[n] for n in expected_trainable(model, method)) / sum(sizes.values())
    assert transfer.trainable_fraction(model) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50", "vit_b32", "clip_vit_b32"])
def test_real_architectures_freeze_the_right_parameters(backbone):
    for method in (
        "layer_ft",
        "full_ft",
        "zero_shot" if backbone == "clip_vit_b32" else "linear_probe",
    ):
        model = transfer.build(backbone, 7, method, device="meta")
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert trainable == expected_trainable(model, method), (backbone, method)


def test_clip_tower_head_reads_the_features_before_the_projection():
    """The default CLIP head sits on the class token after ln_post: the joint embedding of the
    same (seeded, random) weights is exactly those features times CLIP's projection."""
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    models = {}
    for head in ("tower", "joint"):
        torch.manual_seed(0)  # open_clip initialises from the global generator
        models[head] = transfer.build("clip_vit_b32", 3, "layer_ft", image_size=32, clip_head=head)
    tower, joint = models["tower"].eval(), models["joint"].eval()
    assert tower.encoder.proj is None and joint.encoder.proj.shape == (768, 512)
    assert (tower.head.in_features, tower.head.bias is not None, tower.normalize) == (
        768,
        True,
        False,
    )
    assert (joint.head.in_features, joint.head.bias is None, joint.normalize) == (512, True, True)
    default = transfer.build("clip_vit_b32", 3, "layer_ft", image_size=32, device="meta")
    assert default.encoder.proj is None and default.head.in_features == 768
    with torch.no_grad():
        h = tower.forward_features(x)
        torch.testing.assert_close(h @ joint.encoder.proj, joint.encoder(x), rtol=1e-5, atol=1e-6)
        z = joint.forward_features(x)
    torch.testing.assert_close(z, torch.nn.functional.normalize(h @ joint.encoder.proj, dim=-1))
    zero_shot = transfer.build("clip_vit_b32", 3, "zero_shot", device="meta")
    assert zero_shot.encoder.proj is not None and zero_shot.head.in_features == 512


def test_trainable_fraction_of_any_module():
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))  # 15 + 8 parameters
    net[0].requires_grad_(False)
    assert transfer.trainable_fraction(net) == pytest.approx(8 / 23)
    assert transfer.parameter_counts(net) == (8, 23)


def test_key_layers_follow_the_one_rule():
    for backbone in transfer.BACKBONES:
        encoder = transfer.build(backbone, 3, "layer_ft", device="meta").encoder
        blocks = transfer.residual_blocks(encoder)
        assert transfer.KEY_LAYERS[backbone] == blocks[len(blocks) // 2 - 1]
    assert transfer.key_layer("resnet50") == "layer3.0"


def test_frozen_parts_stay_in_eval_mode():
    model = transfer.build("small_resnet", 5, "layer_ft").train()
    for name, module in model.encoder.named_modules():
        inside = name == model.key_layer or name.startswith(model.key_layer + ".")
        assert module.training == inside, name
    assert all(m.training for m in transfer.build("small_resnet", 5, "full_ft").train().modules())


# --------------------------------------------------------------------------------------------
# SCL FT: same parameters, a real skip
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backbone", transfer.BACKBONES)
def test_scl_ft_adds_no_parameters(backbone):
    layer = transfer.build(backbone, 10, "layer_ft", device="meta")
    scl = transfer.build(backbone, 10, "scl_ft", device="meta")
    assert transfer.parameter_counts(scl) == transfer.parameter_counts(layer)
    assert {n for n, _ in scl.named_parameters()} == {n for n, _ in layer.named_parameters()}


def independent_skip(model: transfer.TransferModel, x: torch.Tensor) -> torch.Tensor:
    """The skip recomputed from the key layer's output, captured with a separate hook."""
    seen = []
    handle = model.encoder.get_submodule(model.key_layer).register_forward_hook(
        lambda _m, _i, out: seen.append(out)
    )
    with torch.no_grad():
        model.encoder(x)
    handle.remove()
    z = seen[0]
    p = model.num_features
    if z.ndim == 4:  # ResNet: average pool, zero-pad the channels
        s = z.mean(dim=(2, 3))
        return torch.cat([s, s.new_zeros(len(s), p - s.shape[1])], dim=1)
    if hasattr(model.encoder, "ln_post"):  # CLIP: class token, ln_post (proj: joint head only)
        s = model.encoder.ln_post(z[:, 0])
        return s if model.encoder.proj is None else s @ model.encoder.proj
    return model.encoder.norm(z)[:, 0]  # timm ViT: class token through the final norm


@pytest.mark.parametrize(
    ("backbone", "clip_head"),
    [
        ("small_resnet", None),
        ("resnet18", None),
        ("vit_b32", None),
        ("clip_vit_b32", None),
        ("clip_vit_b32", "joint"),
    ],
)
def test_skip_really_changes_the_penultimate_features(backbone, clip_head):
    g = torch.Generator().manual_seed(0)
    kw = {"clip_head": clip_head} if clip_head else {}
    if backbone == "small_resnet":
        layer = transfer.build(backbone, 5, "layer_ft")
        scl = transfer.build(backbone, 5, "scl_ft", pretrained=layer.encoder.state_dict())
        x = torch.randn(4, 1, 8, 8, generator=g)
    else:
        size = 64 if backbone == "vit_b32" else 32
        layer = materialize(
            transfer.build(backbone, 5, "layer_ft", image_size=size, device="meta", **kw)
        )
        scl = materialize(
            transfer.build(backbone, 5, "scl_ft", image_size=size, device="meta", **kw)
        )
        x = torch.randn(4, 3, size, size, generator=g)
    layer.eval(), scl.eval()
    with torch.no_grad():
        h_layer, h_scl = layer.forward_features(x), scl.forward_features(x)
    assert not torch.allclose(h_layer, h_scl)
    with torch.no_grad():
        expected = layer.encoder(x) + independent_skip(layer, x)
    if clip_head == "joint":
        expected = torch.nn.functional.normalize(expected, dim=-1)
    torch.testing.assert_close(h_scl, expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(
        ValueError, match="unknown backbone 'resnet34'; allowed values: 'small_resnet', 'resnet18'"
    ):
        transfer.build("resnet34", 10, "full_ft")
    with pytest.raises(
        ValueError, match="unknown method 'lora'; allowed values: 'linear_probe', 'zero_shot'"
    ):
        transfer.build("resnet18", 10, "lora")
    for K in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
            transfer.build("small_resnet", K, "full_ft")
    with pytest.raises(ValueError, match="zero_shot' needs a text tower"):
        transfer.build("resnet18", 10, "zero_shot", device="meta")
    with pytest.raises(ValueError, match="class_names needs num_classes=3 names, got 2"):
        transfer.build("clip_vit_b32", 3, "zero_shot", class_names=["a", "b"], device="meta")
    with pytest.raises(ValueError, match="layer must be one of the residual blocks"):
        transfer.build("small_resnet", 3, "layer_ft", layer="fc")
    with pytest.raises(ValueError, match="unknown name 'imagenet'; allowed values: 'digits'"):
        transfer.load_dataset("imagenet", "train", "resnet18")
    with pytest.raises(ValueError, match="'small_resnet' has no public weights"):
        transfer.build("small_resnet", 3, "full_ft", pretrained=True)
