"""The EfficientNet image stem: pixels -> EfficientNet-Lite's last feature map -> tokens -> projector.

References: Tan & Le 2019 (EfficientNet; the Lite variants, efficientnet_lite.py); LLaVA (Liu et al. 2023,
sec. 4.1) for "a pretrained vision encoder's grid features, projected linearly into the language
model's embedding space, one token per grid cell".

    (B, 3, S, S) uint8 -> (x - 127) / 128 -> EfficientNet-Lite features (B, 1280, g, g), g = ceil(S / 32)
    -> (B, g*g, 1280) -> Linear(1280, hidden) + a learned position per cell -> (B, g*g, H)

Lite0 at 224 px gives a 7x7 grid: 49 tokens. Video frames go through the same stem (model.py pools
each frame's grid). The CNN's BatchNorm layers always use their running statistics (they stay in
eval mode even when the model trains): contrastive batches are small and mixed, and the pretrained
statistics are the ones the weights expect. Pretrained weights: `gemb2.pretrained.efficientnet`.

A model that recognises classes (recognise.py) runs `classify` on each image and on some video frames before
the layout, then `forward` on the same pixels. Inside `reusing()` (what `Gemb2Model.encode` opens around both)
the CNN runs once per picture: `classify` keeps each row's feature map, keyed by a digest of its uint8 bytes and
shape and by where and how the features are computed (device, dtype, autocast); `forward` takes the rows it finds
and runs the CNN on the others only. Outside the block (training, the ONNX export, direct calls) nothing is kept
or looked up; in it, a grad-enabled, train-mode or traced call bypasses it, and at most `REUSE_BYTES` of features
are kept. A kept row was computed in the classifier's batch, not the layout's: the same to float rounding (CPU
kernels vary with the batch and its memory layout; gemb2-mini-v2's vectors move by < 1e-6), the class names bit
for bit the same.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import torch
from torch import nn

from ..config import IMAGENET_CLASSES, ModelConfig
from .efficientnet_lite import efficientnet_lite, preprocess
from .reuse import REUSE_BYTES, Reuse


class EfficientNetStem(nn.Module):
    """(B, 3, S, S) uint8 RGB -> (B, k, H) tokens, k = ceil(S / 32) ** 2."""

    # what `forward` does to the pixels first, as (x * scale - mean) / std per RGB channel (for the ONNX manifest)
    pixel_normalisation = {"scale": 1.0, "mean": [127.0, 127.0, 127.0], "std": [128.0, 128.0, 128.0]}

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.size = cfg.image_size
        self.grid = cfg.image_grid
        self.variant = cfg.image_encoder
        # the ImageNet classifier head only where the model recognises classes (recognise.py calls `classify`)
        self.encoder = efficientnet_lite(
            cfg.image_encoder, num_classes=IMAGENET_CLASSES if cfg.recognise_classes else 0
        )
        self.proj = nn.Linear(self.encoder.num_features, cfg.hidden)
        nn.init.normal_(self.proj.weight, std=self.encoder.num_features**-0.5)
        nn.init.zeros_(self.proj.bias)
        self.position = nn.Parameter(torch.randn(self.grid * self.grid, cfg.hidden) * 0.02)  # (k, H)
        self.encoder.eval()
        self.reuse = Reuse()  # row key -> (1280, g, g) features `classify` computed, inside `reusing` (reuse.py)

    def train(self, mode: bool = True) -> EfficientNetStem:
        super().train(mode)
        for m in self.encoder.modules():  # BatchNorm keeps its running statistics (see the module docstring)
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.ndim != 4 or pixels.shape[1:] != (3, self.size, self.size):
            raise ValueError(f"image stem expects (B, 3, {self.size}, {self.size}) pixels, got {tuple(pixels.shape)}")
        f = self.features(pixels)  # (B, 1280, g, g)
        f = f.flatten(2).transpose(1, 2)  # (B, g*g, 1280), row-major cells
        return self.proj(f) + self.position  # (B, k, H)

    def classify(self, pixels: torch.Tensor) -> torch.Tensor:
        """ImageNet class probabilities of the CNN's own head (built when config.recognise_classes > 0).
        (B, 3, S, S) uint8 -> (B, 1000) float32. Inside `reusing`, each row's features are kept for `forward`."""
        f = self.encoder.forward_features(self._normalised(pixels))  # (B, 1280, g, g)
        keys = self._keys(pixels)
        if keys is not None:
            self.reuse.keep(keys, f)
        return self.encoder.forward_head(f).float().softmax(-1)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The CNN's last feature map, (B, 3, S, S) uint8 -> (B, 1280, g, g): rows `classify` computed inside
        `reusing` are taken as they are, the CNN runs on the others (all of them outside the block)."""
        keys = self._keys(pixels)
        rows = self.reuse.take(keys) if keys is not None else []
        todo = [i for i, row in enumerate(rows) if row is None]
        if len(todo) == len(rows):  # nothing kept for these (or nothing may be reused): the CNN on all of them
            return self.encoder.forward_features(self._normalised(pixels))
        fresh = dict(zip(todo, self.encoder.forward_features(self._normalised(pixels[todo])))) if todo else {}
        return torch.stack([fresh[i] if row is None else row for i, row in enumerate(rows)])  # (B, 1280, g, g)

    def reusing(self, max_bytes: int = REUSE_BYTES) -> contextlib.AbstractContextManager:
        """Within the block, `forward` reuses the feature maps `classify` computed for the same pixels (up to
        `max_bytes` of them); they are dropped when the block ends. A nested block shares the outer one's."""
        return self.reuse.reusing(max_bytes)

    def _normalised(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) uint8 -> the CNN's input, channels-last in memory: oneDNN's NHWC convolutions run
        EfficientNet-Lite0 about twice as fast on a CPU as NCHW (BENCHMARKS.md), the numbers the same to rounding."""
        x = preprocess(pixels).to(self.proj.weight.dtype)  # (B, 3, S, S)
        return x.contiguous(memory_format=torch.channels_last)

    def _keys(self, pixels: torch.Tensor) -> list[bytes] | None:
        """Each row's key: where and how its features are computed (device, dtype, autocast), its shape and a digest
        of its uint8 bytes. None where nothing may be reused: outside `reusing`, with gradients on, in train mode,
        while tracing or exporting (the traced graph must not depend on what was kept)."""
        jit: Any = torch.jit  # its tracing helpers, which its stubs do not export
        if (
            not self.reuse.active
            or torch.is_grad_enabled()
            or self.training
            or pixels.dtype != torch.uint8
            or jit.is_tracing()
            or jit.is_scripting()
            or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling()
        ):
            return None
        device = pixels.device.type
        autocast = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        how = f"{pixels.device}|{self.proj.weight.dtype}|{autocast}|{tuple(pixels.shape[1:])}|".encode()
        rows = pixels.detach().cpu().contiguous()
        return [how + hashlib.blake2b(r.numpy().data, digest_size=16).digest() for r in rows]
