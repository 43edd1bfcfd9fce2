"""The gemb2 model: config, stems, shared backbone, pooling + Matryoshka projection, checkpoint I/O.

    from gemb2.model import load_model
    model = load_model("tiny")                         # a preset, or a checkpoint folder
    vecs = model.encode(["a red car"], task="query")   # (1, 64) float32, unit length

`load_model(source)` takes a preset name (PRESETS, FOLDER_PRESETS), a gemb2 model folder, a Hugging
Face BERT folder (a text-only model: mean pooling, identity projection, no prompts) or `hf:ORG/NAME`
(the only source that may download). `assemble(Parts(...))` builds a model from pretrained parts
(a BERT backbone, EfficientNet-Lite image stem, Whisper audio stem): what `gemb2 init` runs.
"""

from __future__ import annotations

from .assemble import Parts, assemble
from .bert import BertImportError, load_bert_text_model
from .config import ModelConfig, base, mini, tiny
from .io import load_pretrained, save_pretrained
from .model import Batch, Gemb2Model, truncate
from .sources import DEFAULT_MODEL, FOLDER_PRESETS, PRESETS, ModelSourceError, load_model, model_source_id

__all__ = [
    "ModelConfig",
    "Gemb2Model",
    "Batch",
    "load_model",
    "save_pretrained",
    "load_pretrained",
    "model_source_id",
    "ModelSourceError",
    "truncate",
    "PRESETS",
    "FOLDER_PRESETS",
    "DEFAULT_MODEL",
    "tiny",
    "mini",
    "base",
    "Parts",
    "assemble",
    "load_bert_text_model",
    "BertImportError",
]
