"""Which stem a config asks for: one small builder per modality (the stems are in their own files).

    image_stem: "patch" (image_stem.py) | "efficientnet" (efficientnet_stem.py) | "none"
    audio_stem: "mel" (audio_stem.py)   | "whisper" (whisper_stem.py)           | "none"

Every image stem maps (B, 3, S, S) uint8 -> (B, grid * grid, H) and has `.grid`; every audio stem maps
(B, N) samples -> (B, N / samples_per_token, H) and has `.samples_per_token`. Pretrained stems start
random here; their `load_encoder()` copies real weights in (assemble.py), and a saved model folder
holds them with everything else.
"""

from __future__ import annotations

from torch import nn

from .config import ModelConfig


def build_image_stem(cfg: ModelConfig) -> nn.Module | None:
    if cfg.image_stem == "patch":
        from .image_stem import PatchStem

        return PatchStem(cfg)
    if cfg.image_stem == "efficientnet":
        from .efficientnet_stem import EfficientNetStem

        return EfficientNetStem(cfg)
    return None  # "none" (ModelConfig validated the name)


def build_audio_stem(cfg: ModelConfig) -> nn.Module | None:
    if cfg.audio_stem == "mel":
        from .audio_stem import MelStem

        return MelStem(cfg)
    if cfg.audio_stem == "whisper":
        from .whisper_stem import WhisperStem

        return WhisperStem(cfg)
    return None
