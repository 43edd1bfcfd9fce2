"""The image stem: pixels -> a grid of patch tokens (ViT's patch embedding, trained from scratch).

Reference: Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words" (patch projection + learned
position per patch). Input normalisation lives here, with CLIP's mean and std (Radford et al. 2021),
so callers pass plain uint8 RGB. Video frames go through the same stem (see model.py).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig

MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's RGB mean
STD = (0.26862954, 0.26130258, 0.27577711)  # CLIP's RGB std


class PatchStem(nn.Module):
    """(B, 3, S, S) uint8 RGB (or float in [0, 1]) -> (B, k, H) tokens, k = (S / patch_size) ** 2."""

    mean: torch.Tensor  # (1, 3, 1, 1) buffers, registered in __init__
    std: torch.Tensor
    # what `forward` does to uint8 pixels first, as (x * scale - mean) / std per RGB channel (for the ONNX manifest)
    pixel_normalisation = {"scale": 1 / 255, "mean": list(MEAN), "std": list(STD)}

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.size = cfg.image_size
        self.grid = cfg.image_size // cfg.patch_size
        self.proj = nn.Conv2d(3, cfg.hidden, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.position = nn.Parameter(torch.randn(self.grid * self.grid, cfg.hidden) * 0.02)  # (k, H)
        # not saved: constants of the preprocessing, not weights
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.ndim != 4 or pixels.shape[1:] != (3, self.size, self.size):
            raise ValueError(f"image stem expects (B, 3, {self.size}, {self.size}) pixels, got {tuple(pixels.shape)}")
        x = pixels.float() / 255.0 if pixels.dtype == torch.uint8 else pixels.float()
        x = ((x - self.mean) / self.std).to(self.proj.weight.dtype)  # (B, 3, S, S)
        x = self.proj(x)  # (B, H, g, g)
        x = x.flatten(2).transpose(1, 2)  # (B, g*g, H), row-major patches
        return x + self.position
