"""The loader spec a model needs: the bridge between a model's config and the data loaders."""

from __future__ import annotations

import os
import tempfile
from typing import cast

from gemb2.data.segments import LoadSpec


def load_spec_for(model) -> LoadSpec:
    """How to cut and preprocess files for `model` (image size, windows, frame rate, the text budget).
    A model family that knows its own (EmbeddingGemma 2: `load_spec()`) says so itself."""
    own = getattr(model, "load_spec", None)
    if callable(own):
        return cast(LoadSpec, own())
    cfg = model.config
    prompt_tokens = len(model.tokenizer.encode(cfg.document_prompt)) if cfg.document_prompt else 0
    window = max(16, cfg.max_text_tokens - 2 - prompt_tokens)  # [CLS] + prompt + window + [SEP] fits
    return LoadSpec(
        modalities=cfg.modalities,
        image_size=cfg.image_size,
        audio_window_s=cfg.audio_window_s,
        video_window_s=cfg.audio_window_s,
        video_fps=cfg.video_fps,
        max_frames=cfg.max_frames,
        text_window_tokens=window,
        text_overlap_tokens=min(32, window // 4),
        tokenizer_file=_tokenizer_file(model),
    )


_TOKENIZER_FILES: dict[int, str] = {}


def _tokenizer_file(model) -> str:
    """A tokenizer.json on disk that loader processes can open (written once per process and model)."""
    path = getattr(model.tokenizer, "path", None)
    if path and os.path.exists(path):
        return path
    key = id(model.tokenizer)
    if key not in _TOKENIZER_FILES:
        fd, tmp = tempfile.mkstemp(prefix="gemb2-tokenizer-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(model.tokenizer.to_str())
        _TOKENIZER_FILES[key] = tmp
    return _TOKENIZER_FILES[key]
