"""lib.transfer.zoo fails loudly on bad inputs (any timm / open_clip model in chapter 1's
comparison): every case names the argument at fault and says how to find valid names. Nothing
here downloads: names are checked against the libraries' own lists, offline."""

from __future__ import annotations

import pytest
from _cases import case
from torch import nn

from lib import transfer

EXEMPT = {
    "lib.transfer.zoo.is_zoo_name": "a predicate: any object is a valid question (False if not)",
}

ENC, PRE, PROBE, ZE = (
    transfer.zoo_encoder,
    transfer.zoo_preprocess,
    transfer.zoo_probe,
    transfer.ZooEncoder,
)
TIMM = "timm:resnet10t.c3_in1k"

CASES = [
    case("encoder-plain-name", ENC, lambda: ENC("resnet18"), "^name must be a model name like"),
    case("encoder-timm-unknown", ENC, lambda: ENC("timm:no_such_net"), "timm has no model 'no_such_net'.*list_models"),
    case("encoder-clip-no-tag", ENC, lambda: ENC("open_clip:ViT-B-32"), "open_clip:<architecture>/<pretrained tag>"),
    case("encoder-clip-unknown", ENC, lambda: ENC("open_clip:NoNet/openai"), "list_pretrained"),
    case("encoder-pretrained", ENC, lambda: ENC(TIMM, pretrained="yes"), "^pretrained "),
    case("encoder-image-size", ENC, lambda: ENC(TIMM, pretrained=False, image_size=0), "^image_size "),
    case("preprocess-encoder", PRE, lambda: PRE(nn.Linear(2, 2)), "^encoder "),
    case("probe-dataset", PROBE, lambda: PROBE(TIMM, "imagenet", pretrained=False), "^dataset must be a downstream"),
    case("probe-source-digits", PROBE, lambda: PROBE(TIMM, "digits_source", pretrained=False), "^dataset must be a downstream"),
    case("probe-per-class", PROBE, lambda: PROBE(TIMM, "digits", pretrained=False, per_class=0), "^per_class "),
    case("probe-config", PROBE, lambda: PROBE(TIMM, "digits", pretrained=False, config={}), "config"),
    case("zoo-encoder-name", ZE, lambda: ZE("resnet18", nn.Identity(), False, 3), "^name must be"),
    case("zoo-encoder-network", ZE, lambda: ZE(TIMM, "net", False, 3), "^network "),
    case("zoo-encoder-width", ZE, lambda: ZE(TIMM, nn.Identity(), False, 0), "^num_features "),
    case("source-zoo-unknown", transfer.Source, lambda: transfer.Source("a", "timm:no_such_net", True), "^backbone 'timm:no_such_net'"),
    case("source-zoo-state-dict", transfer.Source, lambda: transfer.Source("a", TIMM, {}), "^pretrained "),
    case("compare-zoo-unknown", transfer.source_models, lambda: transfer.source_models("resnet50", compare=["timm:no_such_net"]), r"^compare \(each\) 'timm:no_such_net'"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "match"), CASES)
def test_bad_input_names_the_argument(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()
