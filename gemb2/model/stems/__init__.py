"""The modality stems, one file each, and which one a config asks for (one small builder per modality).

    image_stem: "patch" (patch.py) | "efficientnet" (efficientnet.py, its CNN in efficientnet_lite.py) | "none"
    audio_stem: "mel" (mel.py)     | "whisper" (whisper.py, its encoder in whisper_encoder.py)          | "none"

Every image stem maps (B, 3, S, S) uint8 -> (B, grid * grid, H) and has `.grid`; every audio stem maps
(B, N) samples -> (B, N / samples_per_token, H) and has `.samples_per_token`. Pretrained stems start
random here; gemb2.pretrained (efficientnet.py, whisper.py) copies real weights in when a model is
assembled, and a saved model folder holds them with everything else.
"""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig


def build_image_stem(cfg: ModelConfig) -> nn.Module | None:
    if cfg.image_stem == "patch":
        from .patch import PatchStem

        return PatchStem(cfg)
    if cfg.image_stem == "efficientnet":
        from .efficientnet import EfficientNetStem

        return EfficientNetStem(cfg)
    return None  # "none" (ModelConfig validated the name)


def build_audio_stem(cfg: ModelConfig) -> nn.Module | None:
    if cfg.audio_stem == "mel":
        from .mel import MelStem

        return MelStem(cfg)
    if cfg.audio_stem == "whisper":
        from .whisper import WhisperStem

        return WhisperStem(cfg)
    return None
