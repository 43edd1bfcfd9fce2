"""An EmbeddingGemma 2 model written back as a Hugging Face / sentence-transformers folder.

    save_embedding_gemma2(model, folder)   training's checkpoints and final model; `gemb2 export model --format hf`
    export_hf(model, out, force=False)     the same, then loaded back and checked against the model (cosine)

The folder is what google/embeddinggemma-2 looks like and what `gemb2 embed --model`, transformers'
`EmbeddingGemma2Model.from_pretrained` and `SentenceTransformer(folder)` load (offline):

    config.json, model.safetensors             transformers' save_pretrained (LoRA adapters merged in; safetensors only)
    tokenizer.json, tokenizer_config.json, ... the source folder's tokenizer and processor files, as they were
    modules.json, 1_Pooling/, 2_Normalize/     sentence-transformers' Transformer -> mean Pooling -> Normalize
    config_sentence_transformers.json          the prompts (the source's file, or the model's prompts)
    sentence_bert_config.json                  max_seq_length (the model's context)

A text-only model (no vision or audio tower) keeps no processor files and its tokenizer_config.json names the
tokenizer as its processor: sentence-transformers then loads the tokenizer alone (the multimodal processor
would need torchvision for its video part, which a text model never uses).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gemb2.errors import FatalError, UsageError

if TYPE_CHECKING:
    from .embedding_gemma2 import EmbeddingGemma2

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json")
NOT_COPIED = ("config.json", "model.safetensors.index.json")  # written anew by save_pretrained
CHECK_TEXTS = ["a red car on a wet road at night", "hello world", "the cat sat on the mat; it was happy."]
MIN_COSINE = 0.9999
ST_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]


def save_embedding_gemma2(model: EmbeddingGemma2, folder: str | Path) -> Path:
    """Write `model` (LoRA merged) as a Hugging Face / sentence-transformers folder, replacing `folder` once the
    new one is complete. Returns the folder."""
    from gemb2.model.io import replace_folder

    def write(tmp: Path) -> None:
        _weights(model, tmp)
        _copy_source(model, tmp)
        _sentence_transformers(model, tmp)

    return replace_folder(folder, write)


def _weights(model: EmbeddingGemma2, tmp: Path) -> None:
    """config.json + model.safetensors by transformers' own save_pretrained, adapters merged, quietly."""
    from transformers.utils import logging as hf_logging

    from gemb2.train.lora import merged

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with merged(model):
            hf: Any = model.hf
            hf.save_pretrained(str(tmp))
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if not (tmp / "model.safetensors").is_file() and not any(tmp.glob("model-*.safetensors")):
        raise FatalError(f"{tmp}: transformers wrote no safetensors weights")


def _text_only(model: EmbeddingGemma2) -> bool:
    return getattr(model.hf, "vision_tower", None) is None and getattr(model.hf, "audio_tower", None) is None


def _copy_source(model: EmbeddingGemma2, tmp: Path) -> None:
    """The source folder's tokenizer, processor and sentence-transformers files (JSON, tokenizer.model) and the
    sentence-transformers module folders modules.json names; never its weights or config.json."""
    src = model.tokenizer_file.parent
    text_only = _text_only(model)
    for f in sorted(src.iterdir()):
        if not f.is_file() or f.name in NOT_COPIED or (text_only and f.name in PROCESSOR_FILES):
            continue
        if f.suffix in (".json", ".jinja") or f.name == "tokenizer.model":
            shutil.copyfile(f, tmp / f.name)
    modules = _read(src / "modules.json")
    for m in modules if isinstance(modules, list) else []:
        sub = str(m.get("path") or "") if isinstance(m, dict) else ""
        if sub and (src / sub).is_dir() and not Path(sub).is_absolute() and ".." not in Path(sub).parts:
            (tmp / sub).mkdir(parents=True, exist_ok=True)
            for f in (src / sub).iterdir():
                if f.is_file() and f.suffix in (".json", ".safetensors"):
                    shutil.copyfile(f, tmp / sub / f.name)
    if not (tmp / "tokenizer.json").is_file():
        shutil.copyfile(model.tokenizer_file, tmp / "tokenizer.json")
    tok_config = tmp / "tokenizer_config.json"
    if text_only and tok_config.is_file():  # sentence-transformers loads the tokenizer as the processor
        doc = _read(tok_config)
        if isinstance(doc, dict):
            _write(tok_config, {**doc, "processor_class": "PreTrainedTokenizerFast"})


def _sentence_transformers(model: EmbeddingGemma2, tmp: Path) -> None:
    """The sentence-transformers files the source did not have: mean pooling, normalisation, prompts, context."""
    info = model.config
    if not (tmp / "modules.json").is_file():
        _write(tmp / "modules.json", ST_MODULES)
        _write(
            tmp / "1_Pooling" / "config.json",
            {"word_embedding_dimension": info.out_dim, "pooling_mode_mean_tokens": True, "include_prompt": True},
        )
        (tmp / "2_Normalize").mkdir(exist_ok=True)
    if not (tmp / "config_sentence_transformers.json").is_file():
        doc = {"prompts": dict(info.prompts), "default_prompt_name": None, "similarity_fn_name": "cosine"}
        _write(tmp / "config_sentence_transformers.json", {**doc, "model_type": "SentenceTransformer"})
    if not (tmp / "sentence_bert_config.json").is_file():
        _write(tmp / "sentence_bert_config.json", {"max_seq_length": info.max_text_tokens, "do_lower_case": False})


def export_hf(model: EmbeddingGemma2, out: Path, *, force: bool = False) -> dict:
    """`gemb2 export model OUT --format hf`: write the folder, load it back with gemb2 and check its vectors
    against the model's (cosine >= MIN_COSINE on a few texts, every prompt). OUT appears complete or not at all."""
    from .embedding_gemma2 import load_embedding_gemma2

    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not force)):
        raise UsageError(f"{out} exists and is not an empty folder (use --force to replace it)")
    staged = out.with_name(f".{out.name}.export-{os.getpid()}")
    try:
        save_embedding_gemma2(model, staged)
        back = load_embedding_gemma2(staged)
        worst = 1.0
        for task in [None, *model.config.prompts]:
            a, b = model.encode(CHECK_TEXTS, task=task), back.encode(CHECK_TEXTS, task=task)
            worst = min(worst, float((a * b).sum(1).min()))
        if worst < MIN_COSINE:
            raise FatalError(f"the written folder embeds differently (cosine {worst:.6f}); nothing written to {out}")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staged, out)
    except OSError as e:
        raise FatalError(f"export failed, nothing written to {out}: {e}") from e
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return {"format": "hf", "folder": str(out), "model_id": back.model_id, "min_cosine": worst, "files": files}


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError:
        return None


def _write(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
