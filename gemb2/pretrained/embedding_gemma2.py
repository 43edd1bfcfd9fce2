"""EmbeddingGemma 2 (google/embeddinggemma-2) as a gemb2 model family, wrapping transformers' implementation.

Reference: transformers' `models.embedding_gemma2` (EmbeddingGemma2Model: a bidirectional Gemma text encoder whose
last hidden states are projected to `text_config.embedding_dim`) and sentence-transformers' pipeline over it
(mean pooling over the attention mask, then L2 normalisation), which is what `encode` computes:

    folder/config.json (model_type embedding_gemma2), model.safetensors, tokenizer.json,
          config_sentence_transformers.json ("prompts"), sentence_bert_config.json ("max_seq_length")
    text -> prompt + text -> tokenizer.json (<bos> ... <eos>) -> EmbeddingGemma2Model -> (B, T, D)
         -> mean over real tokens -> L2 normalise -> (B, D); Matryoshka prefixes re-normalised

The object has the API the pipeline uses on gemb2's own models (`encode`, `check_dim`, `truncate`, `model_id`,
`device`, `config.modalities` / `out_dim` / `matryoshka_dims`, `load_spec`), an nn.Module parameter tree under
`.hf` (the transformers model: LoRA targets `hf.language_model.layers.*.self_attn.q_proj` etc.), and a
differentiable, traceable `forward(input_ids, attention_mask)` (training and the ONNX export call it).
Prompts come from the folder: `encode(task=NAME)` takes any name of config_sentence_transformers.json's
"prompts"; "query" and "document" fall back to the "Retrieval-query" / "Retrieval-document" names; None: none.

Images: with a vision tower and a preprocessor_config.json, an Image part becomes <|image> + n x <|image|> +
<image|> in the text (n: its soft tokens at the processor's size, parts.patch_budget_size) and its pixels go through
transformers' Gemma4ImageProcessorPil (the reference's own, no torchvision needed); loaders hand images over whole
(LoadSpec.image_patches). Audio: with an audio tower, an Audio part becomes <|audio> + n x <|audio|> + <audio|> (n:
EmbeddingGemma2Processor.compute_sscp of its feature mask) and its samples go through Gemma4AudioFeatureExtractor
(128 mel bins, 16 kHz; loaders cut 30 s windows, the processor's 750-token cap). Video: with a vision tower, a
Video part becomes per frame <|image> + n x <|video|> + <image|> and its frames go through the video processor's
rules (gemma2_video.py: frame sampling, per-frame resize, timestamps; the folder's video_preprocessor_config.json).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gemb2.errors import FatalError, UsageError
from gemb2.parts import SAMPLE_RATE, Audio, Image, Item, Part, Text, Video, as_item, patch_budget_size
from gemb2.pretrained.gemma2_video import VideoRules, read_rules, video_inputs, video_text

FAMILY = "embeddinggemma-2"
MODEL_TYPE = "embedding_gemma2"
MATRYOSHKA = (512, 256, 128)  # the published prefixes below the 768-d vector (model card), kept where < out_dim
DEFAULT_CONTEXT = 8192  # tokens, when the folder does not say (sentence_bert_config.json's max_seq_length)
TASK_ALIASES = {"query": ("query", "Retrieval-query"), "document": ("document", "Retrieval-document")}
CPU_TOKENS = 4096  # padded tokens a CPU batch holds: long texts go a few at a time, short ones many (less padding)
AUDIO_TOKENS = 750  # the processor's audio_seq_length: at most 30 s of audio (40 ms a token) per clip
INSTALL = "pip install 'gemb2[gemma]'  (transformers >= 5.24)"


class EmbeddingGemma2Error(FatalError, ValueError):
    """A folder of this family that cannot be used as it is (missing or wrong-shape weights, a bad config)."""


class PromptError(UsageError, ValueError):
    """A prompt name the folder does not define."""


def prompt_name(prompts: dict[str, str], task: str | None) -> str | None:
    """The name among `prompts` for a task or prompt name (None: no prompt); PromptError lists the known ones."""
    if task is None or task == "none":
        return None
    if task in prompts:
        return task
    for name in TASK_ALIASES.get(task, ()):
        if name in prompts:
            return name
    if task in TASK_ALIASES:  # a folder without that prompt: no prefix, as sentence-transformers does
        return None
    known = ", ".join(sorted(prompts)) or "none"
    raise PromptError(f"unknown prompt {task!r}: this model's prompts are {known}")


def is_embedding_gemma2_folder(path: Path) -> bool:
    """Whether `path/config.json` says model_type embedding_gemma2."""
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError as e:
        raise EmbeddingGemma2Error(f"{path}: not valid JSON ({e})") from None


IDENTITY_FILES = (
    "config.json",
    "tokenizer.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
)


def folder_id(path: Path) -> str:
    """The model id of a folder, without building the model: FAMILY@ a hash of its config, tokenizer, prompts,
    context and weight bytes (a fine-tuned copy gets a new id)."""
    h = hashlib.sha256()
    for name in IDENTITY_FILES:
        f = path / name
        h.update(f"{name}|".encode())
        if f.is_file():
            with open(f, "rb") as fh:
                while block := fh.read(1 << 22):
                    h.update(block)
    return f"{FAMILY}@{h.hexdigest()[:12]}"


@dataclass(frozen=True)
class GemmaInfo:
    """What the pipeline reads from a model's `config`: its output, prefixes, modalities, context and prompts."""

    out_dim: int
    matryoshka_dims: tuple[int, ...]
    max_text_tokens: int  # the context: text windows and single texts are cut to fit it
    prompts: dict[str, str] = field(default_factory=dict)
    modalities: tuple[str, ...] = ("text",)
    name: str = FAMILY

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "out_dim": self.out_dim,
            "matryoshka_dims": list(self.matryoshka_dims),
            "max_text_tokens": self.max_text_tokens,
            "modalities": list(self.modalities),
            "prompts": dict(self.prompts),
        }


def read_info(path: Path, out_dim: int) -> GemmaInfo:
    """The folder's prompts, context and Matryoshka dims (config_sentence_transformers.json may list
    "matryoshka_dims"; otherwise out_dim and the published 512 / 256 / 128 below it)."""
    st = _json(path / "config_sentence_transformers.json")
    prompts = st.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise EmbeddingGemma2Error(f"{path / 'config_sentence_transformers.json'}: 'prompts' must map names to text")
    dims = st.get("matryoshka_dims") or [out_dim, *[d for d in MATRYOSHKA if d < out_dim]]
    context = _json(path / "sentence_bert_config.json").get("max_seq_length") or DEFAULT_CONTEXT
    return GemmaInfo(out_dim, tuple(int(d) for d in dims), int(context), dict(prompts))


class EmbeddingGemma2(nn.Module):
    """A loaded EmbeddingGemma 2 folder: texts -> L2-normalised vectors of `config.out_dim` (Matryoshka prefixes)."""

    def __init__(
        self, hf: nn.Module, tokenizer_file: Path, info: GemmaInfo, model_id: str, image_processor: Any = None
    ):
        super().__init__()
        from tokenizers import Tokenizer

        self.hf = hf  # transformers' EmbeddingGemma2Model: the parameter tree
        self.config = info
        self.tokenizer_file = tokenizer_file
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        hf_config: Any = hf.config
        self.pad_id = int(getattr(hf_config.text_config, "pad_token_id", 0) or 0)
        self._model_id = model_id
        self.image_processor = image_processor  # transformers' Gemma4ImageProcessorPil, None: no images
        self.audio_features: Any = None  # transformers' Gemma4AudioFeatureExtractor (128 mel, 16 kHz), None: no audio
        self.video_rules: VideoRules | None = None  # the video processor's settings, None: no video
        tok = json.loads(tokenizer_file.read_text(encoding="utf-8"))
        added = {t["id"]: t["content"] for t in tok.get("added_tokens", [])}
        c = hf_config
        self._image_marks = tuple(added.get(i, "") for i in (c.boi_token_id, c.image_token_id, c.eoi_token_id))
        self._audio_marks = tuple(added.get(i, "") for i in (c.boa_token_id, c.audio_token_id, c.eoa_token_index))
        self._video_mark = added.get(c.video_token_id, "<|video|>")

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    @property
    def model_id(self) -> str:
        return self._model_id

    # --- prompts --------------------------------------------------------------------------

    def prompt_name(self, task: str | None) -> str | None:
        """The folder's prompt name for a task or prompt name (None: no prompt); PromptError lists the known ones."""
        return prompt_name(self.config.prompts, task)

    def prompt(self, task: str | None) -> str:
        name = self.prompt_name(task)
        return self.config.prompts[name] if name is not None else ""

    # --- the forward pass -------------------------------------------------------------------

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **media: torch.Tensor) -> torch.Tensor:
        """(B, T) ids, (B, T) 0/1 mask -> (B, out_dim) unit vectors: the model, mean over real tokens, normalise.
        `media`: pixel_values (N, max_patches, patch_pixels) and image_position_ids (N, max_patches, 2), the images
        of the batch in order, for the image tokens of input_ids."""
        h = self.hf(input_ids=input_ids, attention_mask=attention_mask, **media).last_hidden_state  # (B, T, D)
        m = attention_mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)  # (B, D)
        return F.normalize(pooled.float(), dim=-1)

    def token_ids(self, texts: Sequence[str], task: str | None = "document") -> list[list[int]]:
        """Prompt + text -> token ids (<bos> ... <eos>), cut to the context as sentence-transformers cuts them."""
        return self._ids([self.prompt(task) + t for t in texts], [True] * len(texts))

    def _ids(self, texts: Sequence[str], cut: Sequence[bool]) -> list[list[int]]:
        limit = self.config.max_text_tokens
        out = []
        for enc, c in zip(self.tokenizer.encode_batch(list(texts)), cut):
            ids = enc.ids
            out.append(ids if len(ids) <= limit or not c else ids[: limit - 1] + ids[-1:])  # keep the closing <eos>
        return out

    def layout(self, item: Sequence[Part], prefix: str) -> tuple[str, list]:
        """One item -> its text with each image's slots (<|image> + n x <|image|> + <image|>, n its soft tokens
        at the processor's size) and its images, in order."""
        text, images = prefix, []
        for p in item:
            if isinstance(p, Text):
                text += p.text
            elif isinstance(p, Image) and self.image_processor is not None:
                ip = self.image_processor
                ph, pw = p.pixels.shape[:2]
                h, w = patch_budget_size(ph, pw, ip.patch_size, ip.pooling_kernel_size, ip.max_soft_tokens)
                n = (h // ip.patch_size) * (w // ip.patch_size) // ip.pooling_kernel_size**2
                boi, tok, eoi = self._image_marks
                text += boi + tok * n + eoi
                images.append(p.pixels)
            elif isinstance(p, Audio) and self.audio_features is not None:
                boa, tok, eoa = self._audio_marks
                text += boa + tok * self._audio_tokens(p.samples) + eoa
                images.append(p)
            elif isinstance(p, Video) and self.video_rules is not None:
                boi, _, eoi = self._image_marks
                text += video_text(p, self.video_rules, (boi, self._video_mark, eoi))
                images.append(p)
            else:
                raise ValueError(
                    f"{FAMILY} in gemb2 does not embed {p.modality} parts (yet, or this folder has no tower)"
                )
        return text, images

    def _audio_tokens(self, samples: np.ndarray) -> int:
        """Soft tokens of one clip: its feature frames through the audio tower's two stride-2 convolutions
        (EmbeddingGemma2Processor.compute_sscp on the feature mask), capped as the processor caps them."""
        from transformers import EmbeddingGemma2Processor

        mask = self.audio_features([samples], sampling_rate=SAMPLE_RATE, return_tensors="np")["input_features_mask"]
        return min(int(EmbeddingGemma2Processor.compute_sscp(mask[0])), AUDIO_TOKENS)

    def _media(self, media: list, dev: torch.device, trim: bool = True) -> dict[str, torch.Tensor]:
        """The tensors for a batch's images and clips; `trim`: images cut to the largest one's patches (False: the
        processor's fixed max_patches, the ONNX image graph's input shape)."""
        out: dict[str, torch.Tensor] = {}
        images = [m for m in media if isinstance(m, np.ndarray)]
        clips = [m.samples for m in media if isinstance(m, Audio)]
        if images:
            assert self.image_processor is not None
            got = self.image_processor(images=images, return_tensors="pt")
            pixels, where = got["pixel_values"], got["image_position_ids"]  # (N, max_patches, ...), pads at the end
            real = int((where != -1).all(-1).sum(1).max()) if trim else where.shape[1]  # a multiple of pool^2
            # the processor pads every image to max_soft_tokens x pool^2 patches; the tower masks the pads and
            # the pooler drops them, so cutting them off gives the same soft tokens for less work
            out |= {"pixel_values": pixels[:, :real].to(dev), "image_position_ids": where[:, :real].to(dev)}
        videos = [m for m in media if isinstance(m, Video)]
        if videos:
            assert self.video_rules is not None
            out |= {k: v.to(dev) for k, v in video_inputs(videos, self.video_rules).items()}
        if clips:
            got = self.audio_features(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            out |= {
                "input_features": got["input_features"].to(dev),
                "input_features_mask": got["input_features_mask"].to(dev),
            }
        return out

    # --- inference --------------------------------------------------------------------------

    def check_dim(self, dim: int | None) -> int:
        from gemb2.model.model import check_matryoshka_dim

        return check_matryoshka_dim(self.config, dim)

    def truncate(self, vectors: np.ndarray | torch.Tensor, dim: int):
        from gemb2.model.model import truncate

        return truncate(vectors, self.check_dim(dim))

    def encode(
        self,
        items: Sequence[Item | Part | str],
        *,
        task: str | None = "document",
        dim: int | None = None,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        precision: str = "auto",
        device: torch.device | str | None = None,
    ) -> np.ndarray:
        """Items -> (N, dim) float32 unit vectors, in input order. `task`: a prompt name of the folder, "query" /
        "document", or None. Sorted by length and padded per batch, a batch at most `batch_size` items and
        `max_tokens` padded tokens (CPU default 4,096: less padding than fixed batches of 32, the same vectors);
        "auto" precision is bf16 on a GPU (the reference overflows in fp16), fp32 on a CPU ("bf16" there is an
        opt-in: faster with AMX, not bit-for-bit)."""
        from gemb2.model.model import truncate

        dim = self.check_dim(dim)
        if device is not None:
            self.to(device)
        dev = self.device
        prefix = self.prompt(task)
        laid = [self.layout(as_item(x), prefix) for x in items]
        ids = self._ids([t for t, _ in laid], [not imgs for _, imgs in laid])
        cuda = dev.type == "cuda"
        batch_size = batch_size or (256 if cuda else 32)
        max_tokens = max_tokens or (65536 if cuda else CPU_TOKENS)
        amp = _amp(precision, dev)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = torch.empty((len(ids), dim), dtype=torch.float32)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode(), torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                i = 0
                while i < len(order):
                    longest = len(ids[order[i]])
                    cap = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // longest))
                    chunk = order[i : i + cap]
                    x = torch.full((len(chunk), longest), self.pad_id, dtype=torch.long)
                    mask = torch.zeros((len(chunk), longest), dtype=torch.long)
                    for r, j in enumerate(chunk):
                        x[r, : len(ids[j])] = torch.tensor(ids[j])
                        mask[r, : len(ids[j])] = 1
                    media = self._media([im for j in chunk for im in laid[j][1]], dev)
                    v = self.forward(x.to(dev), mask.to(dev), **media)  # (b, D)
                    out[torch.tensor(chunk)] = truncate(v, dim).float().cpu()  # (b, dim)
                    i += cap
        finally:
            self.train(was_training)
        return out.numpy()

    def load_spec(self):
        """How the loaders cut files for this model: text windows that fit the context with the longest prompt."""
        from gemb2.data.segments import LoadSpec

        specials = len(self.tokenizer.encode("").ids)  # <bos> and <eos>
        prompts = [len(self.tokenizer.encode(p, add_special_tokens=False).ids) for p in self.config.prompts.values()]
        window = max(16, self.config.max_text_tokens - specials - max(prompts, default=0))
        ip, vr = self.image_processor, self.video_rules or VideoRules()
        return LoadSpec(
            modalities=self.config.modalities,
            image_patches=(ip.patch_size, ip.pooling_kernel_size, ip.max_soft_tokens)
            if ip is not None
            else (vr.patch_size, vr.pooling_kernel_size, vr.max_soft_tokens),  # set: frames are kept whole too
            video_fps=vr.fps,  # video frames: kept whole and sampled by number, as the video processor takes them
            max_frames=vr.max_frames,
            video_sampling="index",
            video_overflow=vr.overflow_strategy or "uniform",
            text_window_tokens=window,
            text_overlap_tokens=min(32, window // 4),
            tokenizer_file=str(self.tokenizer_file),
        )


def _amp(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    choices: dict[str, Any] = {"fp32": None, "bf16": torch.bfloat16}
    if precision not in choices:
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16' for {FAMILY} (fp16 overflows), got {precision!r}")
    return choices[precision]


def load_embedding_gemma2(path: Path) -> EmbeddingGemma2:
    """Load a folder (fp32, eval mode, CPU). Missing, unexpected or wrong-shape weights are one-line errors."""
    try:
        from transformers import EmbeddingGemma2Model
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise EmbeddingGemma2Error(f"{path}: an EmbeddingGemma 2 folder needs transformers: {INSTALL}") from None
    if not (path / "model.safetensors").is_file() and not any(path.glob("model-*.safetensors")):
        raise EmbeddingGemma2Error(f"{path}: no model.safetensors (only safetensors weights are loaded)")
    if not (path / "tokenizer.json").is_file():
        raise EmbeddingGemma2Error(f"{path}: no tokenizer.json")
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # its load report: we check missing and mismatched weights ourselves
    hf_logging.disable_progress_bar()
    try:
        loaded: Any = EmbeddingGemma2Model.from_pretrained(
            str(path), dtype=torch.float32, use_safetensors=True, output_loading_info=True
        )
        hf, info = loaded
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as e:
        raise EmbeddingGemma2Error(f"{path}: cannot load it: {_first_line(e)}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    for kind in ("missing_keys", "mismatched_keys"):
        bad = sorted(str(k if isinstance(k, str) else k[0]) for k in info.get(kind) or [])
        if bad:
            what = "missing" if kind == "missing_keys" else "of the wrong shape"
            raise EmbeddingGemma2Error(f"{path}: {len(bad)} weight(s) {what}, e.g. {bad[0]}")
    out_dim = int(hf.config.text_config.embedding_dim)
    info = read_info(path, out_dim)
    images = None
    if hf.vision_tower is not None and (path / "preprocessor_config.json").is_file():
        from transformers.models.gemma4 import Gemma4ImageProcessorPil

        images = Gemma4ImageProcessorPil.from_pretrained(str(path))
        info = replace(info, modalities=("text", "image"))
    model = EmbeddingGemma2(hf.eval(), path / "tokenizer.json", info, folder_id(path), images)
    if hf.audio_tower is not None:  # the feature extractor's defaults are the model's: 128 mel bins at 16 kHz
        from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

        model.audio_features = Gemma4AudioFeatureExtractor()
        model.config = replace(model.config, modalities=(*model.config.modalities, "audio"))
    if hf.vision_tower is not None:
        try:
            model.video_rules = read_rules(path)
        except (ValueError, TypeError) as e:
            raise EmbeddingGemma2Error(f"{path}: {_first_line(e)}") from None
        if model.video_rules is not None:
            model.config = replace(model.config, modalities=(*model.config.modalities, "video"))
    return model


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"
