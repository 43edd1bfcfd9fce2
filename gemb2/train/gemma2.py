"""Training another model family through gemb2's loop: what differs for EmbeddingGemma 2 (pretrained/embedding_gemma2.py).

The loop (loop.py) is the same for every family; it asks this module three things where gemb2's own model
(Gemb2Model) has its own way:

    prepare_gemma2(model, s)        freeze, LoRA on the text encoder's projections, gradient checkpointing
    embed_gemma2(model, items, dev) items (prompts already prepended as Text parts) -> (n, D) unit vectors,
                                    differentiable: the folder's tokenizer, image / audio slots, one forward
    save_trained(model, folder)     the model as a folder `gemb2 embed --model` takes (LoRA merged): for this
                                    family the Hugging Face / sentence-transformers layout (pretrained/gemma2_save.py)

LoRA here follows PEFT's convention (Hu et al. 2021, section 4.2): with `lora_rank` > 0 every weight of the
model is frozen and only the adapters on the text encoder's attention and MLP projections
(`hf.language_model.layers.N.self_attn.{q,k,v,o}_proj`, `mlp.{gate,up,down}_proj`) train; `freeze` is for full
fine-tuning (lora_rank 0) of the rest. The adapters are merged into the weights when a checkpoint or the
final model is written, so the result is a plain EmbeddingGemma 2 checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .lora import DEFAULT_TARGETS, apply_lora, freeze

if TYPE_CHECKING:
    from gemb2.parts import Part
    from gemb2.pretrained.embedding_gemma2 import EmbeddingGemma2

    from .loop import TrainSettings

# the text encoder's linear layers: attention and MLP projections (Gemma's names)
GEMMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def is_gemma2(model) -> bool:
    from gemb2.pretrained.embedding_gemma2 import EmbeddingGemma2

    return isinstance(model, EmbeddingGemma2)


def prepare_gemma2(model: EmbeddingGemma2, s: TrainSettings) -> None:
    """Freeze what the settings say, put LoRA on the text encoder, switch gradient checkpointing on."""
    if s.freeze_text:
        raise ValueError("freeze_text: only gemb2's own models have a text row to freeze; use freeze: [prefixes]")
    if s.feature_cache_mb:
        raise ValueError("feature_cache_mb: only gemb2's own models have frozen stem encoders to cache")
    freeze(model, s.freeze)
    if s.lora_rank:
        model.requires_grad_(False)  # PEFT's convention: only the adapters train
        targets = GEMMA_TARGETS if tuple(s.lora_targets) == DEFAULT_TARGETS else s.lora_targets
        with torch.random.fork_rng(devices=[]):  # the adapters' init depends on the seed only
            torch.manual_seed(s.seed)
            apply_lora(_text_encoder(model), s.lora_rank, s.lora_alpha, targets)
    if s.gradient_checkpointing:
        hf: Any = model.hf  # a transformers PreTrainedModel (activation_checkpointing_enable from transformers 5.x)
        if hasattr(hf, "activation_checkpointing_enable"):
            hf.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _text_encoder(model: EmbeddingGemma2) -> torch.nn.Module:
    lm = getattr(model.hf, "language_model", None)
    if not isinstance(lm, torch.nn.Module):
        raise ValueError("this EmbeddingGemma 2 model has no language_model to put LoRA on")
    return lm


def embed_gemma2(model: EmbeddingGemma2, items: Sequence[Sequence[Part]], device: torch.device) -> torch.Tensor:
    """Items -> (n, D) unit vectors with autograd: each item laid out as `encode` lays it out with no prompt
    (the batch carries its prompts as leading Text parts), padded to the longest, media in order."""
    laid = [model.layout(item, "") for item in items]
    ids = model._ids([t for t, _ in laid], [not media for _, media in laid])
    longest = max(len(x) for x in ids)
    x = torch.full((len(ids), longest), model.pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), longest), dtype=torch.long)
    for r, row in enumerate(ids):
        x[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
    media = model._media([m for _, ms in laid for m in ms], device)
    return model(x.to(device), mask.to(device), **media)


def save_trained(model, folder: Path) -> None:
    """Write a trained model (adapters merged by the caller) as the folder its family loads from."""
    if is_gemma2(model):
        from gemb2.pretrained.gemma2_save import save_embedding_gemma2

        save_embedding_gemma2(model, folder)
    else:
        from gemb2.model import save_pretrained

        save_pretrained(model, folder)
