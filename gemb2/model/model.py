"""The native multimodal embedding model: one sequence per item, one shared backbone, one vector.

Reference: Gemini Embedding 2 (arXiv 2605.27295): every modality becomes tokens of ONE sequence,
task prompts are text prefixes, the vector is a Matryoshka embedding. Pooling follows
sentence-transformers (mean over the real tokens, [CLS] and [SEP] included).

    item = [part 1, part 2, ...]                  Text | Image | Audio | Video, interleaved
    sequence = [CLS] prompt part1 part2 ... [SEP]  text -> word embeddings; media -> stem tokens
    + modality-type embedding per token (text, image, audio, video)
    -> backbone (positions over the whole sequence) -> mean pool -> linear -> L2 normalise

Video: frames go through the image stem; each frame's patch grid is average-pooled to
`video_tokens_per_frame` tokens, plus a learned temporal embedding of the frame's time bucket;
the video's audio track follows its frames through the audio stem (tokens typed "audio").

Truncation: the text of an item (with [CLS], [SEP] and the prompt) gets `max_text_tokens`, spent
in part order; the whole sequence is cut to `max_positions` (the last position is [SEP]).
Audio longer than `audio_window_s` is cut to its first window (the loaders already cut windows).

Stems (stems.py): a model without an image stem refuses images and videos, one without an audio
stem refuses audio and embeds a video from its frames alone (`config.modalities` says what fits).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..parts import SAMPLE_RATE, Audio, Image, Item, Part, Text, Video, as_item, fit_image
from .backbone import Backbone
from .config import ModelConfig
from .stems import build_audio_stem, build_image_stem
from .tokenizer import TextTokenizer

KINDS = {"text": 0, "image": 1, "audio": 2, "video": 3}  # rows of the modality-type embedding
TASKS = ("query", "document", None)
STEM_CHUNK = 8  # on a CPU, encode runs the media stems on at most this many images / frames / audio windows at once
MAX_MEDIA = {"cpu": 64, "cuda": 1024}  # images + video frames per forward call of encode (device type -> count)


@dataclass
class Batch:
    """A collated batch, ready for `Gemb2Model.forward`. Slots are flat positions b * T + t, -1 = truncated."""

    input_ids: torch.Tensor  # (B, T) long: word ids; [PAD] at media and padding positions
    kinds: torch.Tensor  # (B, T) long: modality-type per position
    mask: torch.Tensor  # (B, T) bool: True = a real token
    images: torch.Tensor  # (Ni, 3, S, S) uint8
    image_slots: torch.Tensor  # (Ni, k) long
    frames: torch.Tensor  # (Nf, 3, S, S) uint8: every video's frames, video after video
    frame_buckets: torch.Tensor  # (Nf,) long: temporal bucket of each frame
    frame_slots: torch.Tensor  # (Nf, r) long
    audio: tuple[torch.Tensor, ...]  # groups of equal length: (n_g, N_g) float32 samples
    audio_slots: tuple[torch.Tensor, ...]  # (n_g, N_g / samples_per_token) long

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        def move(v):
            if isinstance(v, tuple):
                return tuple(t.to(device, non_blocking=non_blocking) for t in v)
            return v.to(device, non_blocking=non_blocking)

        return Batch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory, so that `to(cuda, non_blocking=True)` overlaps with compute."""

        def pin(v):
            return tuple(t.pin_memory() for t in v) if isinstance(v, tuple) else v.pin_memory()

        return Batch(**{f.name: pin(getattr(self, f.name)) for f in fields(self)})


@dataclass
class _Plan:
    """One item laid out as pieces (before pixels are resized); `length` is its sequence length."""

    pieces: list  # ("ids", list[int]) | ("image", pixels) | ("audio", samples) | ("video", frames, times, audio)
    length: int

    @property
    def media(self) -> int:
        """Images and video frames: what the image stem runs on."""
        return sum(1 if p[0] == "image" else len(p[1]) if p[0] == "video" else 0 for p in self.pieces)


def truncate(vectors: np.ndarray | torch.Tensor, dim: int) -> np.ndarray | torch.Tensor:
    """Matryoshka: the first `dim` coordinates, re-normalised to unit length. (..., D) -> (..., dim)."""
    if isinstance(vectors, torch.Tensor):
        return F.normalize(vectors[..., :dim], dim=-1)
    v = np.asarray(vectors)[..., :dim]
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.maximum(norm, 1e-12)).astype(v.dtype, copy=False)


class Gemb2Model(nn.Module):
    """Text, images, audio, video and interleaved items -> L2-normalised vectors of `config.out_dim`."""

    def __init__(self, config: ModelConfig, tokenizer: TextTokenizer | None = None):
        super().__init__()
        self.config = cfg = config
        self.tokenizer = tokenizer or TextTokenizer.from_file()
        if self.tokenizer.vocab_size > cfg.vocab_size:
            raise ValueError(f"the tokenizer has {self.tokenizer.vocab_size} tokens but vocab_size is {cfg.vocab_size}")
        with torch.random.fork_rng(devices=[]):  # a fixed seed: every process builds identical weights
            torch.manual_seed(cfg.seed)
            self.backbone = Backbone(cfg)
            self.image_stem = build_image_stem(cfg)  # None when the config says "none"
            self.audio_stem = build_audio_stem(cfg)
            self.time_embeddings = nn.Embedding(cfg.max_time_buckets, cfg.hidden)  # video frames by time
            nn.init.normal_(self.time_embeddings.weight, std=0.02)
            # zeros: a pretrained text backbone sees exactly its own inputs at the start of training
            self.modality_embeddings = nn.Embedding(len(KINDS), cfg.hidden)
            nn.init.zeros_(self.modality_embeddings.weight)
            self.projection = nn.Linear(cfg.hidden, cfg.out_dim)
            nn.init.normal_(self.projection.weight, std=cfg.hidden**-0.5)
            nn.init.zeros_(self.projection.bias)
        tok = self.tokenizer
        self._prompt_ids = {
            "query": tok.encode(cfg.query_prompt),
            "document": tok.encode(cfg.document_prompt),
            None: [],
        }
        self._frame_side = int(round(cfg.video_tokens_per_frame**0.5))
        self._id_cache: tuple | None = None

    # --- identity and placement ------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.projection.weight.device

    @property
    def model_id(self) -> str:
        """f"{config.name}@{digest}": the digest hashes the config, the tokenizer and every weight.

        Hashing reads every weight (about 0.1 s for a MiniLM-sized model); the result is cached
        until a weight changes.
        """
        state = self.state_dict()
        key = tuple((k, v._version, v.data_ptr(), v.device.type, v.dtype) for k, v in state.items())
        if self._id_cache is None or self._id_cache[0] != key:
            self._id_cache = (key, f"{self.config.name}@{weights_digest(self.config, self.tokenizer, state)}")
        return self._id_cache[1]

    # --- collation ---------------------------------------------------------------------------

    def collate(self, items: Sequence[Item | Part | str], task: str | None = "document") -> Batch:
        """Items (or single parts, or strings) -> a Batch of CPU tensors. task: "query", "document" or None."""
        return self._collate_plans(self._plan_many([as_item(x) for x in items], task))

    def _plan_many(self, items: Sequence[tuple[Part, ...]], task: str | None) -> list[_Plan]:
        if task not in TASKS:
            raise ValueError(f"task must be 'query', 'document' or None, got {task!r}")
        texts = [p.text for parts in items for p in parts if isinstance(p, Text)]
        ids = iter(self.tokenizer.encode_batch(texts) if texts else [])
        return [self._plan(parts, [next(ids) for p in parts if isinstance(p, Text)], task) for parts in items]

    def _plan(self, parts: tuple[Part, ...], text_ids: list[list[int]], task: str | None) -> _Plan:
        cfg, tok = self.config, self.tokenizer
        text_budget = cfg.max_text_tokens - 2  # [CLS] and [SEP]
        prompt = self._prompt_ids[task][:text_budget]
        text_budget -= len(prompt)
        pieces: list = [("ids", [tok.cls_id] + prompt)]
        length = 1 + len(prompt)
        next_ids = iter(text_ids)
        for p in parts:
            if isinstance(p, Text):
                ids = next(next_ids)[:text_budget]
                text_budget -= len(ids)
                pieces.append(("ids", ids))
                length += len(ids)
            elif isinstance(p, (Image, Video)) and self.image_stem is None:
                raise ValueError(
                    f"this model has no image stem (image_stem='none'): it embeds "
                    f"{', '.join(cfg.modalities)}, not {type(p).__name__.lower()}"
                )
            elif isinstance(p, Audio) and self.audio_stem is None:
                raise ValueError(
                    f"this model has no audio stem (audio_stem='none'): it embeds "
                    f"{', '.join(cfg.modalities)}, not audio"
                )
            elif isinstance(p, Image):
                pieces.append(("image", p.pixels))
                length += cfg.image_tokens
            elif isinstance(p, Audio):
                samples = self._fit_audio(p.samples)
                pieces.append(("audio", samples))
                length += len(samples) // self.audio_stem.samples_per_token
            elif isinstance(p, Video):
                frames, times = p.frames, p.times
                if len(frames) > cfg.max_frames:  # keep max_frames, evenly spaced
                    keep = np.linspace(0, len(frames) - 1, cfg.max_frames).round().astype(int)
                    frames, times = frames[keep], times[keep]
                has_track = p.audio is not None and self.audio_stem is not None
                samples = self._fit_audio(p.audio.samples) if has_track else None
                pieces.append(("video", frames, times, samples))
                length += len(frames) * cfg.video_tokens_per_frame
                if samples is not None:
                    length += len(samples) // self.audio_stem.samples_per_token
            else:
                raise TypeError(f"unknown part type {type(p).__name__}")
        return _Plan(pieces, min(length, cfg.max_positions - 1) + 1)  # + [SEP]

    def _fit_audio(self, samples: np.ndarray) -> np.ndarray:
        """Cut to the first window, zero-pad to whole tokens (at least one token)."""
        window = int(round(self.config.audio_window_s * SAMPLE_RATE))
        s = samples[:window]
        per = self.audio_stem.samples_per_token
        n = max(1, -(-len(s) // per)) * per
        return np.pad(s, (0, n - len(s))) if n != len(s) else s

    def _collate_plans(self, plans: Sequence[_Plan]) -> Batch:
        cfg, tok = self.config, self.tokenizer
        B, T = len(plans), max((p.length for p in plans), default=2)
        limit = cfg.max_positions - 1  # the last position is kept for [SEP]
        input_ids = torch.full((B, T), tok.pad_id, dtype=torch.long)
        kinds = torch.zeros((B, T), dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.bool)
        images, image_slots, frames, buckets, frame_slots = [], [], [], [], []
        audio_groups: dict[int, tuple[list, list]] = {}  # samples length -> (samples, slots)

        for b, plan in enumerate(plans):
            t = 0

            def slots(n: int, kind: str) -> list[int]:  # claim n positions; -1 past the limit
                nonlocal t
                s = [b * T + i if i < limit else -1 for i in range(t, t + n)]
                kinds[b, t : min(t + n, limit)] = KINDS[kind]
                t += n
                return s

            def add_audio(samples: np.ndarray) -> None:
                group = audio_groups.setdefault(len(samples), ([], []))
                group[0].append(samples)
                group[1].append(slots(len(samples) // self.audio_stem.samples_per_token, "audio"))

            for piece in plan.pieces:
                if piece[0] == "ids":
                    ids = piece[1][: max(0, limit - t)]
                    input_ids[b, t : t + len(ids)] = torch.tensor(ids, dtype=torch.long)
                    t += len(ids)
                elif piece[0] == "image":
                    images.append(fit_image(piece[1], cfg.image_size))
                    image_slots.append(slots(cfg.image_tokens, "image"))
                elif piece[0] == "video":
                    _, fr, times, samples = piece
                    for f, time in zip(fr, times):
                        frames.append(fit_image(f, cfg.image_size))
                        buckets.append(min(max(int(time // cfg.time_bucket_s), 0), cfg.max_time_buckets - 1))
                        frame_slots.append(slots(cfg.video_tokens_per_frame, "video"))
                    if samples is not None:
                        add_audio(samples)
                else:  # "audio"
                    add_audio(piece[1])
            end = min(t, limit)
            input_ids[b, end] = tok.sep_id
            mask[b, : end + 1] = True
            if end + 1 != plan.length:  # _plan and this loop must agree
                raise RuntimeError(f"internal: planned {plan.length} tokens, laid out {end + 1}")

        S, k, r = cfg.image_size, cfg.image_tokens, cfg.video_tokens_per_frame

        def pixels(arrays: list) -> torch.Tensor:  # list of (S, S, 3) uint8 -> (N, 3, S, S) uint8
            if not arrays:
                return torch.zeros((0, 3, S, S), dtype=torch.uint8)
            return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

        def slot_tensor(rows: list, width: int) -> torch.Tensor:
            return torch.tensor(rows, dtype=torch.long).view(len(rows), width)

        lengths = sorted(audio_groups)
        return Batch(
            input_ids=input_ids,
            kinds=kinds,
            mask=mask,
            images=pixels(images),
            image_slots=slot_tensor(image_slots, k),
            frames=pixels(frames),
            frame_buckets=torch.tensor(buckets, dtype=torch.long),
            frame_slots=slot_tensor(frame_slots, r),
            audio=tuple(torch.from_numpy(np.stack(audio_groups[n][0]).astype(np.float32)) for n in lengths),
            audio_slots=tuple(slot_tensor(audio_groups[n][1], n // self.audio_stem.samples_per_token) for n in lengths),
        )

    # --- the forward pass ----------------------------------------------------------------

    def forward(self, batch: Batch, *, stem_chunk: int | None = None) -> torch.Tensor:
        """Batch -> (B, out_dim) L2-normalised embeddings. Differentiable (training calls this).

        `stem_chunk`: run the image and audio stems on at most this many images, frames or audio windows
        at a time (`encode` does on a CPU, to bound activation memory: EfficientNet-Lite0 at 224 px needs
        ~16 MB per image); None runs each stem once on all of them. The stems treat items independently,
        so the vectors are the same either way (to float rounding).
        """
        B, T = batch.input_ids.shape
        x = self.backbone.embeddings.word_embeddings(batch.input_ids)  # (B, T, H)
        H = x.shape[-1]
        tokens, slots = [], []  # media tokens and where they go
        if len(batch.images):
            tokens.append(_chunked(self.image_stem, batch.images, stem_chunk).reshape(-1, H))  # (Ni * k, H)
            slots.append(batch.image_slots.reshape(-1))
        if len(batch.frames):
            f = self.frame_tokens(
                _chunked(self.image_stem, batch.frames, stem_chunk), batch.frame_buckets
            )  # (Nf, r, H)
            tokens.append(f.reshape(-1, H))
            slots.append(batch.frame_slots.reshape(-1))
        for samples, s in zip(batch.audio, batch.audio_slots):
            tokens.append(_chunked(self.audio_stem, samples, stem_chunk).reshape(-1, H))  # (n_g * m_g, H)
            slots.append(s.reshape(-1))
        if tokens:
            tok, idx = torch.cat(tokens).to(x.dtype), torch.cat(slots)
            keep = idx >= 0  # drop the tokens truncation cut off
            x = x.reshape(B * T, H).index_put((idx[keep],), tok[keep]).view(B, T, H)
        x = x + self.modality_embeddings(batch.kinds)  # (B, T, H)
        return self.head(x, batch.mask)  # (B, out_dim)

    def frame_tokens(self, grid_tokens: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
        """A video's frames as tokens: each frame's image-stem grid average-pooled to `video_tokens_per_frame`
        cells, plus the time embedding of its bucket. (Nf, k, H), (Nf,) long -> (Nf, r, H)."""
        H, g = grid_tokens.shape[-1], self.image_stem.grid
        f = grid_tokens.transpose(1, 2).reshape(-1, H, g, g)  # (Nf, H, g, g)
        f = pool_grid(f, self._frame_side)  # (Nf, H, r_side, r_side)
        f = f.flatten(2).transpose(1, 2)  # (Nf, r, H)
        return f + self.time_embeddings(buckets)[:, None, :]  # (Nf, r, H)

    def head(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Typed input embeddings -> the vector: backbone, mean over real tokens, projection, L2 normalise.
        (B, T, H), (B, T) bool -> (B, out_dim)."""
        h = self.backbone(x, mask)  # (B, T, H)
        m = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * m).sum(1) / m.sum(1)  # (B, H) mean over real tokens
        return F.normalize(self.projection(pooled), dim=-1)  # (B, out_dim)

    # --- inference --------------------------------------------------------------------------

    def check_dim(self, dim: int | None) -> int:
        """None -> out_dim; otherwise `dim` must be one of config.matryoshka_dims."""
        if dim is None:
            return self.config.out_dim
        if dim not in self.config.matryoshka_dims:
            allowed = list(self.config.matryoshka_dims)
            raise ValueError(f"dim {dim} is not one of this model's Matryoshka dims {allowed}")
        return dim

    def truncate(self, vectors: np.ndarray | torch.Tensor, dim: int) -> np.ndarray | torch.Tensor:
        """Matryoshka prefix of `dim` (one of config.matryoshka_dims), re-normalised."""
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
        """Items -> (N, dim) float32 unit vectors, in input order.

        Runs in eval mode under inference_mode. Items are tokenized in bulk, sorted by sequence length and
        cut into batches of at most `batch_size` items and `max_tokens` padded positions (defaults: 32 items
        on a CPU; 1024 items / 65,536 positions on a GPU, where small batches starve it). `precision`:
        "auto" (fp16 autocast on a GPU, fp32 elsewhere), "fp32", "fp16" or "bf16" (bf16 autocast on a CPU
        is ~2.4x faster on all-MiniLM-L6-v2 with avx512_bf16, min cosine 0.99993 to fp32 over 1,500 varied
        sentences; fp32 is exact). On a GPU, batches go through pinned memory with non-blocking copies and the vectors stay on the device until one copy at the end,
        so the CPU collates the next batch while the GPU runs this one. `device` moves the model there first.
        """
        dim = self.check_dim(dim)
        if device is not None:
            self.to(device)
        dev = self.device
        cuda = dev.type == "cuda"
        batch_size = batch_size if batch_size is not None else (1024 if cuda else 32)
        max_tokens = max_tokens if max_tokens is not None else (65536 if cuda else None)
        if batch_size < 1 or (max_tokens is not None and max_tokens < 1):
            raise ValueError(f"batch_size and max_tokens must be >= 1, got {batch_size} and {max_tokens}")
        amp = _autocast_dtype(precision, dev)
        stem_chunk = None if cuda else STEM_CHUNK
        plans = self._plan_many([as_item(x) for x in items], task)
        order = sorted(range(len(plans)), key=lambda i: -plans[i].length)  # longest first: less padding
        out = torch.empty((len(plans), dim), dtype=torch.float32, device=dev)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode(), torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                for chunk in length_batches(
                    [plans[i].length for i in order],
                    batch_size,
                    max_tokens,
                    media=[plans[i].media for i in order],
                    max_media=MAX_MEDIA.get(dev.type, MAX_MEDIA["cpu"]),
                ):
                    idx = [order[i] for i in chunk]
                    batch = self._collate_plans([plans[i] for i in idx])
                    batch = batch.pin_memory().to(dev, non_blocking=True) if cuda else batch.to(dev)
                    v = self.forward(batch, stem_chunk=stem_chunk)[:, :dim].float()  # (b, dim)
                    out[torch.tensor(idx, device=dev)] = F.normalize(v, dim=-1)
        finally:
            self.train(was_training)
        return out.cpu().numpy()


def pool_grid(f: torch.Tensor, side: int) -> torch.Tensor:
    """Adaptive average pooling of a square grid: (N, C, g, g) -> (N, C, side, side), PyTorch's bins
    (cell i averages rows floor(i * g / side) .. ceil((i + 1) * g / side) - 1; they overlap when side does not
    divide g). While exporting to ONNX, the same means as two matmuls with a constant bin matrix: the ONNX
    exporter cannot convert adaptive pooling with a non-dividing size (7x7 -> 2x2)."""
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(f, side)
    bins = grid_bins(int(f.shape[-1]), side).to(f)  # (side, g); the grid is a constant of the model
    return bins @ f @ bins.T  # (N, C, side, side)


def grid_bins(g: int, side: int) -> torch.Tensor:
    """(side, g) float32: row i holds 1 / len over adaptive pooling's bin i of a g-long axis, 0 elsewhere."""
    bins = torch.zeros(side, g)
    for i in range(side):
        lo, hi = (i * g) // side, -(-((i + 1) * g) // side)
        bins[i, lo:hi] = 1.0 / (hi - lo)
    return bins


def _chunked(stem: nn.Module, x: torch.Tensor, chunk: int | None) -> torch.Tensor:
    """stem(x), computed on at most `chunk` rows of x at a time (None: all at once)."""
    if chunk is None or len(x) <= chunk:
        return stem(x)
    return torch.cat([stem(x[i : i + chunk]) for i in range(0, len(x), chunk)])


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`; None = plain fp32."""
    choices = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    if precision not in choices:
        raise ValueError(f"precision must be 'auto', 'fp32', 'fp16' or 'bf16', got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision 'fp16' needs a GPU; on a CPU use 'fp32' (default) or 'bf16'")
    return choices[precision]


def length_batches(
    lengths: Sequence[int],
    batch_size: int,
    max_tokens: int | None = None,
    *,
    media: Sequence[int] | None = None,
    max_media: int | None = None,
) -> list[list[int]]:
    """Cut positions 0..n-1 of `lengths` (sorted longest first) into consecutive batches of at most
    `batch_size` items whose padded size (items x the first, longest, length) stays within `max_tokens`
    and whose `media` (images + video frames per item) add up to at most `max_media` (a single item over
    a limit still gets a batch of its own). The media cap bounds the memory of one call on video: the
    collated frames and the stems' outputs grow with the frames, not with the items."""
    batches: list[list[int]] = []
    i, n = 0, len(lengths)
    while i < n:
        cap = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // max(1, lengths[i])))
        j = min(n, i + cap)
        if media is not None and max_media is not None:
            total, k = media[i], i + 1
            while k < j and total + media[k] <= max_media:
                total += media[k]
                k += 1
            j = k
        batches.append(list(range(i, j)))
        i = j
    return batches


def identity_projection_(model: Gemb2Model) -> Gemb2Model:
    """Set the output projection to the identity (out_dim must equal hidden): the pooled backbone state IS the vector."""
    cfg = model.config
    if cfg.out_dim != cfg.hidden:
        raise ValueError(
            f"an identity projection needs out_dim == hidden, got out_dim {cfg.out_dim} and hidden {cfg.hidden}"
        )
    with torch.no_grad():
        model.projection.weight.copy_(torch.eye(cfg.hidden, dtype=model.projection.weight.dtype))
        model.projection.bias.zero_()
    return model


def weights_digest(config: ModelConfig, tokenizer: TextTokenizer, state: dict[str, torch.Tensor]) -> str:
    """A short, stable hash of what decides the vectors: config, tokenizer, and every tensor's name, dtype and bytes."""
    h = hashlib.sha256()
    h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    h.update(tokenizer.digest.encode())
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:12]
