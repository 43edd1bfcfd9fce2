"""The gemb2 model: config, stems, shared backbone, pooling + Matryoshka projection, checkpoint I/O.

    from gemb2.model import load_model
    model = load_model("tiny")                         # a preset, or a checkpoint folder
    vecs = model.encode(["a red car"], task="query")   # (1, 64) float32, unit length

`load_model(source)` takes a preset name (see PRESETS) or a folder holding config.json.
"""

from __future__ import annotations

from .config import ModelConfig, base, mini, tiny
from .io import load_pretrained, save_pretrained
from .model import Batch, Gemb2Model, truncate
from .sources import DEFAULT_MODEL, PRESETS, ModelSourceError, load_model, model_source_id

__all__ = ["ModelConfig", "Gemb2Model", "Batch", "load_model", "save_pretrained", "load_pretrained",
           "model_source_id", "ModelSourceError", "truncate", "PRESETS", "DEFAULT_MODEL", "tiny", "mini", "base"]
