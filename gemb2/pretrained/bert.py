"""Importer of BERT-family text encoders in Hugging Face layout, as the gemb2 backbone.

References: Devlin et al. 2019 (BERT); Hugging Face `transformers` `BertModel` (the parameter names,
which gemb2/model/backbone.py keeps); Reimers & Gurevych 2019 (Sentence-BERT: mean pooling over the real tokens).

A Hugging Face BERT folder holds:

    config.json                  BertConfig: sizes, hidden_act, layer_norm_eps, ...
    model.safetensors            BertModel weights (pytorch_model.bin is read with weights_only=True)
    tokenizer.json               the fast tokenizer (WordPiece)
    sentence_bert_config.json    optional: max_seq_length, the text budget sentence-transformers uses
    1_Pooling/config.json        optional: the pooling sentence-transformers uses (gemb2 always mean-pools)

Known layouts: sentence-transformers/all-MiniLM-L6-v2 (BertModel, mean pooling), intfloat/e5-small(-v2)
(BertModel, mean pooling: use "query: " / "passage: " prompts), BAAI/bge-small-en(-v1.5) (BertModel,
CLS pooling: loads and fine-tunes, but mean pooling does not reproduce its own vectors). Names may
carry a `bert.` prefix (BertFor* checkpoints) and old `LayerNorm.gamma/beta` names; `pooler.*`,
`cls.*` (pre-training heads) and `embeddings.position_ids` are dropped; anything else unexpected,
any missing tensor and any wrong shape is an error that names the tensor.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from gemb2.errors import FatalError
from gemb2.model.config import ModelConfig
from gemb2.model.io import check_exact_state
from gemb2.model.model import Gemb2Model, identity_projection_
from gemb2.model.tokenizer import TextTokenizer

from .weights import load_foreign_state_dict, require_safetensors

log = logging.getLogger("gemb2")

BERT_TYPES = ("bert",)
DROPPED_PREFIXES = ("pooler.", "cls.")  # BertModel's pooler and BertForPreTraining's heads: unused
DROPPED_NAMES = ("embeddings.position_ids", "embeddings.token_type_ids")  # buffers, not weights


class BertImportError(FatalError, ValueError):
    """The folder is not a BERT checkpoint gemb2 can import; the message names the file and the problem."""


def is_hf_folder(folder: str | Path) -> bool:
    """A folder with a Hugging Face config.json (one with "model_type"), not a gemb2 checkpoint."""
    path = Path(folder) / "config.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") != "gemb2" and "model_type" in doc


def read_bert_config(folder: str | Path) -> dict[str, Any]:
    """The folder's config.json, checked to be a BERT that backbone.py can hold."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise BertImportError(
            f"{folder}: no config.json (a Hugging Face BERT folder has config.json, "
            "model.safetensors and tokenizer.json)"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise BertImportError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise BertImportError(f"{path}: not a JSON object")
    kind = doc.get("model_type")
    if kind not in BERT_TYPES:
        raise BertImportError(f"{path}: model_type {kind!r} is not supported (gemb2 imports {', '.join(BERT_TYPES)})")
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        if not isinstance(doc.get(key), int):
            raise BertImportError(f"{path}: {key} must be an integer, got {doc.get(key)!r}")
    checks = {
        "hidden_act": ("gelu", doc.get("hidden_act", "gelu")),
        "position_embedding_type": ("absolute", doc.get("position_embedding_type", "absolute")),
        "type_vocab_size": (2, doc.get("type_vocab_size", 2)),
    }
    for key, (want, got) in checks.items():
        if got != want:
            raise BertImportError(f"{path}: {key} {got!r} is not supported (the gemb2 backbone has {want!r})")
    return doc


def bert_config(folder: str | Path, **changes: Any) -> ModelConfig:
    """A text-only gemb2 config with the folder's BERT shapes: no stems, identity-sized output, no prompts.

    The text budget is sentence-transformers' `max_seq_length` when the folder says it, else the
    position table's size. `changes` override any field (ModelConfig.replace).
    """
    folder = Path(folder)
    doc = read_bert_config(folder)
    max_positions = int(doc.get("max_position_embeddings", 512))
    budget = max_positions
    st = folder / "sentence_bert_config.json"
    if st.is_file():
        try:
            budget = int(json.loads(st.read_text(encoding="utf-8")).get("max_seq_length") or budget)
        except (ValueError, TypeError, AttributeError):
            raise BertImportError(f"{st}: max_seq_length must be an integer") from None
    hidden = doc["hidden_size"]
    cfg = ModelConfig(
        name=hf_model_name(folder),
        vocab_size=doc["vocab_size"],
        hidden=hidden,
        layers=doc["num_hidden_layers"],
        heads=doc["num_attention_heads"],
        intermediate=doc["intermediate_size"],
        max_positions=max_positions,
        layer_norm_eps=float(doc.get("layer_norm_eps", 1e-12)),
        dropout=float(doc.get("hidden_dropout_prob", 0.1)),
        max_text_tokens=max(3, min(budget, max_positions)),
        query_prompt="",
        document_prompt="",
        image_stem="none",
        audio_stem="none",
        out_dim=hidden,
        matryoshka_dims=(hidden,),
    )
    _warn_if_not_mean_pooled(folder)
    return cfg.replace(**changes) if changes else cfg


def hf_model_name(folder: str | Path) -> str:
    """A model name from the folder: its own name, or its parent's when it is a generic "model" folder."""
    folder = Path(folder).resolve()
    name = folder.name
    if name in ("model", "models", "weights") and folder.parent.name:
        name = folder.parent.name
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        name = folder.parent.parent.name[len("models--") :].replace("--", "/")  # the Hugging Face cache layout
    return name.replace("@", "_") or "bert"


def read_bert_state(folder: str | Path) -> dict[str, torch.Tensor]:
    """The folder's weights with BertModel names (prefix, gamma/beta and dropped tensors handled)."""
    folder = Path(folder)
    st, pt = folder / "model.safetensors", folder / "pytorch_model.bin"
    if st.is_file():
        from safetensors.torch import load_file

        path, state = st, load_file(str(require_safetensors(st)))
    elif pt.is_file():
        path, state = pt, load_foreign_state_dict(pt)  # torch.load(weights_only=True): no code runs
    elif (folder / "model.safetensors.index.json").is_file():
        raise BertImportError(f"{folder}: sharded checkpoints (model.safetensors.index.json) are not supported")
    else:
        raise BertImportError(f"{folder}: no model.safetensors (or pytorch_model.bin)")
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        key = name[len("bert.") :] if name.startswith("bert.") else name
        if key.startswith(DROPPED_PREFIXES) or key in DROPPED_NAMES:
            continue
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if key in out:
            raise BertImportError(f"{path}: tensor {name!r} appears twice (with and without the 'bert.' prefix)")
        out[key] = t
    return out


def load_bert_weights(backbone: torch.nn.Module, folder: str | Path, assign: bool = False) -> None:
    """Copy the folder's BERT weights into `backbone` (backbone.py), exactly (`assign`: the loaded tensors become
    its parameters, no second copy in memory; load_state_dict's assign).

    Raises BertImportError naming the first missing, unexpected or wrongly shaped tensor.
    """
    folder = Path(folder)
    state = read_bert_state(folder)
    expected = backbone.state_dict()
    check_exact_state(expected, state, str(folder), "BERT", BertImportError)
    for name, got in state.items():
        if not got.is_floating_point():
            raise BertImportError(f"{folder}: tensor {name!r} has dtype {got.dtype}, expected a float tensor")
    backbone.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True, assign=assign)


def load_bert_text_model(folder: str | Path, **changes: Any) -> Gemb2Model:
    """A text-only Gemb2Model from a Hugging Face BERT folder: its backbone and tokenizer, mean pooling,
    an identity projection, no prompts (so it reproduces sentence-transformers' mean-pooled vectors).
    `changes` override config fields (e.g. name, or prompts)."""
    folder = Path(folder)
    cfg = bert_config(folder, **changes)
    model = Gemb2Model(cfg, bert_tokenizer(folder))
    load_bert_weights(model.backbone, folder)
    identity_projection_(model)
    return model.eval()


def bert_tokenizer(folder: str | Path) -> TextTokenizer:
    """The folder's tokenizer.json as a TextTokenizer."""
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise BertImportError(
            f"{folder}: no tokenizer.json (save a fast tokenizer there, e.g. with transformers: "
            "AutoTokenizer.from_pretrained(folder).save_pretrained(folder))"
        )
    try:
        return TextTokenizer.from_file(path)
    except Exception as e:  # tokenizers raises its own exception types for a malformed file
        raise BertImportError(f"{path}: not a usable tokenizer ({e})") from None


def _warn_if_not_mean_pooled(folder: Path) -> None:
    pooling = folder / "1_Pooling" / "config.json"
    try:
        doc = json.loads(pooling.read_text(encoding="utf-8")) if pooling.is_file() else {}
    except ValueError:
        return
    modes = pooling_modes(doc) if isinstance(doc, dict) and doc else ("mean",)
    if modes != ("mean",):
        log.warning(
            "%s was trained with %s pooling; gemb2 mean-pools, so its vectors will differ from "
            "sentence-transformers' until fine-tuned",
            folder,
            "+".join(modes),
        )


# sentence-transformers' older 1_Pooling/config.json: one bool per mode (the order it concatenates them in)
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def pooling_modes(doc: dict[str, Any]) -> tuple[str, ...]:
    """The pooling modes a sentence-transformers 1_Pooling/config.json names, read as sentence-transformers does.

    Current folders say `"pooling_mode": "mean"` (or a list of modes); older ones set one bool per mode
    (`"pooling_mode_mean_tokens": true`). A config with neither means mean pooling, as it does there.
    """
    mode = doc.get("pooling_mode")
    if isinstance(mode, str):
        return (mode,)
    if isinstance(mode, (list, tuple)) and mode and all(isinstance(m, str) for m in mode):
        return tuple(mode)
    return tuple(name for key, name in _LEGACY_POOLING_KEYS.items() if doc.get(key)) or ("mean",)
