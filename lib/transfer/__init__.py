r"""Transfer learning through the lens of neural collapse: linear probe, Layer FT, SCL FT, full FT.

A pretrained network is a feature map :math:`\boldsymbol h = \phi_{\theta'}(\boldsymbol x)` followed
by a linear classifier :math:`\boldsymbol W\boldsymbol h + \boldsymbol b`. On a downstream task with
:math:`K` classes, :func:`build` returns the network with a fresh ``K``-way head and exactly the
parameters one of four methods fine-tunes left trainable:

===================  ===========================================================================
``"linear_probe"``   the head only (features frozen); for CLIP ``"zero_shot"`` trains nothing
``"layer_ft"``       the head and one *key intermediate layer* (:data:`KEY_LAYERS`)
``"scl_ft"``         as ``"layer_ft"``, plus a parameter-free skip connection that adds the key
                     layer's (pooled) features to the penultimate representation
``"full_ft"``        every parameter
===================  ===========================================================================

**Key layer.** One rule for every architecture: the last residual block of the first half of the
network's residual blocks. For ResNet50 (16 bottlenecks) that is ``layer3.0``, for ViT-B/32 and
CLIP's image tower (12 transformer blocks) block 6 (``blocks.5``), for ResNet18 and the book's
small ResNet (8 basic blocks) ``layer2.1``. With these, :func:`trainable_fraction` of the real
architectures reproduces the lecture's "percentage of parameters fine-tuned" row (see
:func:`percentage_table`): ResNet50 exactly, ViT-B/32 exactly at the lecture's 384 px (the
table's default; one unit in the last printed digit off at 224 px), and CLIP with its head on the
tower's 768-d features, its Layer/SCL FT counted against the published image tower; the chapter
explains both choices.

**SCL FT, this book's reading.** The lecture gives the idea ("improving feature collapse via skip
connections", same parameter count as Layer FT), and Li et al. (arXiv 2212.12206) describe SCL FT
as one fine-tuned key layer whose features reach the classifier through a skip connection. Here
the skip is

.. math::
    \boldsymbol h_{\rm SCL}(\boldsymbol x) = \boldsymbol h(\boldsymbol x) + S\big(\boldsymbol z^{l^\star}(\boldsymbol x)\big),

where :math:`\boldsymbol z^{l^\star}` is the key layer's output and :math:`S` is a fixed map with
no parameters: global average pooling of a ResNet feature map followed by zero-padding of the
channels to the penultimate width (the parameter-free "option A" shortcut of He et al. 2016); for
a ViT the class token passed through the network's own frozen final LayerNorm (and, for CLIP, its
frozen projection), i.e. the same read-out the penultimate features get. The head therefore sees
the fine-tuned layer's features directly, not only through the frozen layers after it, so
training that one layer can make the penultimate features collapse further — at zero extra
parameters.

Frozen parts stay in ``eval()`` mode while training (BatchNorm statistics of frozen layers are
frozen too). Data: :func:`load_dataset` (sklearn digits offline; torchvision CIFAR-10/100,
FGVC-Aircraft, DTD, Oxford-IIIT Pet with each backbone's own preprocessing, downloaded when
online). Without network, a request for weights or data that are not on disk raises
:class:`OfflineError` within seconds, saying what to do.

Where each part lives (every name is re-exported here, ``lib.transfer.<name>``):

====================  ========================================================================
``backbones``         :class:`SmallResNet`, the timm / open_clip factories, :data:`KEY_LAYERS`
``models``            :class:`TransferModel`, :func:`build`, :func:`trainable_fraction`
``table``             the lecture's numbers, :func:`percentage_table`, :func:`percentage_markdown`
``data``              :func:`load_dataset`, :func:`preprocess`, :func:`balanced_subset`
``offline``           :class:`OfflineError`: fail in seconds without network
``train``             :class:`FitConfig`, :func:`fit`, :func:`fit_linear_probe`, :func:`fine_tune`
``sources``           pretrained starting points: :class:`Source`, :func:`source_models`
``experiments``       :func:`collapse_vs_transfer`, :func:`compare_methods`, :func:`data_size_sweep`
``zoo``               any timm / open_clip model by name in the comparison: :func:`zoo_probe`
``figures``           the chapter's plots
====================  ========================================================================

Reference:
    Li, Liu, Zhou, Lu, Fernandez-Granda, Zhu & Qu, *Principled and efficient transfer learning of
    deep models via neural collapse*, arXiv:2212.12206 (2022); Lecture 6, Section 1.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# The type aliases (Backbone, DatasetName, Method) are re-exported for annotations, not in __all__.
from lib.transfer.backbones import (
    BACKBONES,
    KEY_LAYERS,
    SMALL_VIT,
    SmallResNet,
    key_layer,
    residual_blocks,
)
from lib.transfer.backbones import Backbone as Backbone
from lib.transfer.data import (
    DATASETS,
    NUM_CLASSES,
    balanced_subset,
    load_dataset,
    preprocess,
)
from lib.transfer.data import DatasetName as DatasetName
from lib.transfer.experiments import (
    collapse_vs_transfer,
    compare_methods,
    data_size_sweep,
    downstream,
    most_collapsed,
    rank_correlation,
)
from lib.transfer.layers import layer_names, layer_nc1
from lib.transfer.models import (
    CLIP_HEADS,
    METHODS,
    TransferModel,
    build,
    parameter_counts,
    trainable_fraction,
)
from lib.transfer.models import Method as Method
from lib.transfer.offline import OfflineError
from lib.transfer.sources import Source, pretrain_source, source_models
from lib.transfer.table import (
    LECTURE_ACCURACY,
    LECTURE_NC1,
    LECTURE_PERCENT,
    percentage_markdown,
    percentage_table,
)
from lib.transfer.train import (
    FitConfig,
    TransferResult,
    accuracy,
    extract_features,
    fine_tune,
    fit,
    fit_linear_probe,
)
from lib.transfer.zoo import ZooEncoder, is_zoo_name, zoo_encoder, zoo_preprocess, zoo_probe

__all__ = [
    "BACKBONES",
    "CLIP_HEADS",
    "DATASETS",
    "KEY_LAYERS",
    "LECTURE_ACCURACY",
    "LECTURE_NC1",
    "LECTURE_PERCENT",
    "METHODS",
    "NUM_CLASSES",
    "FitConfig",
    "OfflineError",
    "SMALL_VIT",
    "SmallResNet",
    "Source",
    "TransferModel",
    "TransferResult",
    "ZooEncoder",
    "accuracy",
    "balanced_subset",
    "build",
    "collapse_vs_transfer",
    "compare_methods",
    "data_size_sweep",
    "downstream",
    "extract_features",
    "fine_tune",
    "fit",
    "fit_linear_probe",
    "is_zoo_name",
    "key_layer",
    "layer_names",
    "layer_nc1",
    "load_dataset",
    "most_collapsed",
    "parameter_counts",
    "percentage_markdown",
    "percentage_table",
    "preprocess",
    "pretrain_source",
    "rank_correlation",
    "residual_blocks",
    "source_models",
    "trainable_fraction",
    "zoo_encoder",
    "zoo_preprocess",
    "zoo_probe",
]


def __getattr__(name: str) -> ModuleType:
    # ``figures`` is imported on first use: it loads matplotlib, which the numbers do not need.
    if name == "figures":
        return importlib.import_module("lib.transfer.figures")
    raise AttributeError(f"module 'lib.transfer' has no attribute {name!r}")
