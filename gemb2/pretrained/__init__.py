"""Pretrained models: importers of foreign checkpoints, assembly from pretrained parts, and model sources.

    from gemb2.pretrained import load_model
    model = load_model("tiny")                         # a preset, a release, or a checkpoint folder
    vecs = model.encode(["a red car"], task="query")   # (1, 64) float32, unit length

`load_model(source)` takes a preset name (PRESETS, FOLDER_PRESETS), a release (gemb2-mini), a gemb2
model folder, a Hugging Face BERT folder (a text-only model: mean pooling, identity projection, no
prompts) or `hf:ORG/NAME` (the only source that may download). `assemble(Parts(...))` builds a model
from pretrained parts (a BERT backbone, EfficientNet-Lite image stem, Whisper audio stem): what
`gemb2 init` runs. The files:

    sources.py      what a --model value means (load_model, model_source_id, presets, DEFAULT_MODEL)
    assemble.py     Parts -> a Gemb2Model with every pretrained part loaded (gemb2 init)
    release.py      shipped releases: pretrained parts + the weights training added (assets/<name>/)
    bert.py         Hugging Face BERT folders -> the backbone and tokenizer
    whisper.py      Whisper encoders from CTranslate2 (ct2.py reads model.bin) or HF safetensors
    efficientnet.py EfficientNet-Lite .pth / safetensors state dicts
    weights.py      where the offline weight packages are, and the two safe ways to open a weight file

The arrow points one way: this package imports gemb2.model (the native model); gemb2.model never imports it.
"""

from __future__ import annotations

from .assemble import Parts, assemble
from .bert import BertImportError, load_bert_text_model
from .sources import DEFAULT_MODEL, FOLDER_PRESETS, PRESETS, ModelSourceError, load_model, model_source_id
from .weights import MissingWeightsError

__all__ = [
    "load_model",
    "model_source_id",
    "ModelSourceError",
    "PRESETS",
    "FOLDER_PRESETS",
    "DEFAULT_MODEL",
    "Parts",
    "assemble",
    "load_bert_text_model",
    "BertImportError",
    "MissingWeightsError",
]
