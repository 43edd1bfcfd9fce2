"""The native gemb2 model: config, stems, shared backbone, pooling + Matryoshka projection, checkpoint I/O.

    from gemb2.model import Gemb2Model, tiny
    model = Gemb2Model(tiny()).eval()                  # random init from a config (fixed seed)
    vecs = model.encode(["a red car"], task="query")   # (1, 64) float32, unit length

Loading a preset, a model folder or a foreign checkpoint by name is `gemb2.load_model` (gemb2.pretrained,
which imports this package and never the other way round).
"""

from __future__ import annotations

from .config import ModelConfig, base, mini, tiny
from .io import load_pretrained, save_pretrained
from .model import Batch, Gemb2Model, truncate

__all__ = [
    "ModelConfig",
    "Gemb2Model",
    "Batch",
    "save_pretrained",
    "load_pretrained",
    "truncate",
    "tiny",
    "mini",
    "base",
]
