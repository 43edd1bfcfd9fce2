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
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import IMAGENET_CLASSES, ModelConfig
from .efficientnet_lite import efficientnet_lite, preprocess


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

    def train(self, mode: bool = True) -> EfficientNetStem:
        super().train(mode)
        for m in self.encoder.modules():  # BatchNorm keeps its running statistics (see the module docstring)
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.ndim != 4 or pixels.shape[1:] != (3, self.size, self.size):
            raise ValueError(f"image stem expects (B, 3, {self.size}, {self.size}) pixels, got {tuple(pixels.shape)}")
        x = preprocess(pixels).to(self.proj.weight.dtype)  # (B, 3, S, S)
        f = self.encoder.forward_features(x)  # (B, 1280, g, g)
        f = f.flatten(2).transpose(1, 2)  # (B, g*g, 1280), row-major cells
        return self.proj(f) + self.position  # (B, k, H)

    def classify(self, pixels: torch.Tensor) -> torch.Tensor:
        """ImageNet class probabilities of the CNN's own head (built when config.recognise_classes > 0).
        (B, 3, S, S) uint8 -> (B, 1000) float32."""
        x = preprocess(pixels).to(self.proj.weight.dtype)
        return self.encoder(x).float().softmax(-1)
