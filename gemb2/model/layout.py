"""The layout: how items become one sequence of positions each, and a batch of them the tensors `Gemb2Model` runs on.

    sequence = [CLS] prompt part1 part2 ... [SEP]   text -> token ids; image -> image_tokens slots;
                                                    audio -> one slot per samples_per_token samples;
                                                    video -> video_tokens_per_frame slots per frame, then its track

Two steps, so that `encode` can sort and batch items by length before any pixel is resized:
`Layout.plan_many` tokenises the texts in bulk and plans each item (its pieces and sequence length),
`Layout.collate` lays planned items out as a `Batch` (ids, slots for the media tokens, pixels, samples).

Truncation: the text of an item (with [CLS], [SEP] and the prompt) gets `max_text_tokens`, spent in part order;
the whole sequence is cut to `max_positions` (the last position is [SEP]); a video keeps at most `max_frames`
frames, evenly spaced; audio is cut to its first `audio_window_s` and zero-padded to whole tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from ..parts import SAMPLE_RATE, Audio, Image, Part, Text, Video, fit_image
from .config import ModelConfig
from .tokenizer import TextTokenizer

KINDS = {"text": 0, "image": 1, "audio": 2, "video": 3}  # rows of the modality-type embedding
TASKS = ("query", "document", None)

# A planned piece of an item: ("ids", list[int]) | ("image", pixels) | ("audio", samples)
# | ("video", frames, times, samples or None); pixels and frames are not resized yet.
Piece = tuple[Any, ...]


@dataclass
class Batch:
    """A collated batch, ready for `Gemb2Model.forward`. Slots are flat positions b * T + t, -1 = truncated."""

    input_ids: torch.Tensor  # (B, T) long: word ids; [PAD] at media and padding positions
    mask: torch.Tensor  # (B, T) bool: True = a real token
    images: torch.Tensor  # (Ni, 3, S, S) uint8
    image_slots: torch.Tensor  # (Ni, k) long
    frames: torch.Tensor  # (Nf, 3, S, S) uint8: every video's frames, video after video
    frame_times: torch.Tensor  # (Nf,) float32: seconds from the video's start (the model buckets them)
    frame_slots: torch.Tensor  # (Nf, r) long
    audio: tuple[torch.Tensor, ...]  # groups of equal length: (n_g, N_g) float32 samples
    audio_slots: tuple[torch.Tensor, ...]  # (n_g, N_g / samples_per_token) long

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        def move(v: Any) -> Any:
            if isinstance(v, tuple):
                return tuple(t.to(device, non_blocking=non_blocking) for t in v)
            return v.to(device, non_blocking=non_blocking)

        return Batch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory, so that `to(cuda, non_blocking=True)` overlaps with compute."""

        def pin(v: Any) -> Any:
            return tuple(t.pin_memory() for t in v) if isinstance(v, tuple) else v.pin_memory()

        return Batch(**{f.name: pin(getattr(self, f.name)) for f in fields(self)})


@dataclass
class Plan:
    """One item laid out as pieces (before pixels are resized); `length` is its sequence length."""

    pieces: list[Piece]
    length: int

    @property
    def media(self) -> int:
        """Images and video frames: what the image stem runs on."""
        return sum(1 if p[0] == "image" else len(p[1]) if p[0] == "video" else 0 for p in self.pieces)


class Layout:
    """The layout rules of one model: its config's sizes, its tokenizer's special ids and prompts, its stems' rates.

    `images`: the model has an image stem; `samples_per_token`: its audio stem's rate (None: no audio stem).
    """

    def __init__(
        self, config: ModelConfig, tokenizer: TextTokenizer, *, images: bool, samples_per_token: int | None
    ) -> None:
        self.config, self.tokenizer = config, tokenizer
        self.images, self.samples_per_token = images, samples_per_token
        self.limit = config.max_positions - 1  # the last position is kept for [SEP]
        self.audio_window = int(round(config.audio_window_s * SAMPLE_RATE))  # samples an audio part keeps
        self.prompt_ids: dict[str | None, list[int]] = {
            "query": tokenizer.encode(config.query_prompt),
            "document": tokenizer.encode(config.document_prompt),
            None: [],
        }

    def prefix(self, task: str | None) -> list[int]:
        """What every sequence starts with: [CLS] and the task's prompt (cut to the text budget)."""
        return [self.tokenizer.cls_id] + self.prompt_ids[task][: self.config.max_text_tokens - 2]

    # --- planning --------------------------------------------------------------------------------

    def plan_many(self, items: Sequence[tuple[Part, ...]], task: str | None) -> list[Plan]:
        """Items -> their plans; every text of every item is tokenised in one call."""
        if task not in TASKS:
            raise ValueError(f"task must be 'query', 'document' or None, got {task!r}")
        texts = [p.text for parts in items for p in parts if isinstance(p, Text)]
        ids = iter(self.tokenizer.encode_batch(texts) if texts else [])
        return [self.plan(parts, [next(ids) for p in parts if isinstance(p, Text)], task) for parts in items]

    def plan(self, parts: tuple[Part, ...], text_ids: list[list[int]], task: str | None) -> Plan:
        """One item's pieces and sequence length; `text_ids` are its Text parts' token ids, in order."""
        prefix = self.prefix(task)
        text_budget = self.config.max_text_tokens - 1 - len(prefix)  # [SEP] ends the text too
        pieces: list[Piece] = [("ids", prefix)]
        length = len(prefix)
        next_ids = iter(text_ids)
        for p in parts:
            if isinstance(p, Text):
                ids = next(next_ids)[:text_budget]
                text_budget -= len(ids)
                pieces.append(("ids", ids))
                length += len(ids)
            else:
                piece = self._media_piece(p)
                pieces.append(piece)
                length += self.piece_length(piece)
        return Plan(pieces, min(length, self.limit) + 1)  # + [SEP]

    def _media_piece(self, p: Part) -> Piece:
        cfg, spt = self.config, self.samples_per_token
        if isinstance(p, (Image, Video)) and not self.images:
            raise ValueError(
                f"this model has no image stem (image_stem='none'): it embeds "
                f"{', '.join(cfg.modalities)}, not {type(p).__name__.lower()}"
            )
        if isinstance(p, Audio) and spt is None:
            raise ValueError(
                f"this model has no audio stem (audio_stem='none'): it embeds {', '.join(cfg.modalities)}, not audio"
            )
        if isinstance(p, Image):
            return ("image", p.pixels)
        if isinstance(p, Audio):
            return ("audio", self.fit_audio(p.samples))
        if isinstance(p, Video):
            frames, times = p.frames, p.times
            if len(frames) > cfg.max_frames:  # keep max_frames, evenly spaced
                keep = np.linspace(0, len(frames) - 1, cfg.max_frames).round().astype(int)
                frames, times = frames[keep], times[keep]
            if not np.isfinite(times).all():  # the time embedding needs a bucket
                raise ValueError(f"Video.times must be finite, got {times.tolist()}")
            track = p.audio.samples if p.audio is not None and spt is not None else None
            return ("video", frames, times, None if track is None else self.fit_audio(track))
        raise TypeError(f"unknown part type {type(p).__name__}")

    def piece_length(self, piece: Piece) -> int:
        """Positions a media piece takes in the sequence (before the cut to max_positions)."""
        cfg, spt = self.config, self.samples_per_token or 1
        if piece[0] == "image":
            return cfg.image_tokens
        if piece[0] == "audio":
            return len(piece[1]) // spt
        _, frames, _, samples = piece  # video
        return len(frames) * cfg.video_tokens_per_frame + (0 if samples is None else len(samples) // spt)

    def fit_audio(self, samples: np.ndarray) -> np.ndarray:
        """Cut to the first window, zero-pad to whole tokens (at least one token)."""
        s = samples[: self.audio_window]
        per = self.samples_per_token or 1
        n = max(1, -(-len(s) // per)) * per
        return np.pad(s, (0, n - len(s))) if n != len(s) else s

    # --- collation -------------------------------------------------------------------------------

    def collate(self, plans: Sequence[Plan]) -> Batch:
        """Planned items -> a Batch of CPU tensors, padded to the longest."""
        rows = _Rows(self, len(plans), max((p.length for p in plans), default=2))
        for b, plan in enumerate(plans):
            rows.lay_out(b, plan)
        return rows.batch()


class _Rows:
    """The tensors and lists of one batch while its items are laid out, item by item."""

    def __init__(self, layout: Layout, B: int, T: int) -> None:
        self.layout, self.cfg, self.T = layout, layout.config, T
        self.input_ids = torch.full((B, T), layout.tokenizer.pad_id, dtype=torch.long)
        self.mask = torch.zeros((B, T), dtype=torch.bool)
        self.images: list[np.ndarray] = []
        self.image_slots: list[list[int]] = []
        self.frames: list[np.ndarray] = []
        self.frame_times: list[float] = []
        self.frame_slots: list[list[int]] = []
        self.audio: dict[int, tuple[list[np.ndarray], list[list[int]]]] = {}  # samples length -> (samples, slots)
        self.b = self.t = 0

    def lay_out(self, b: int, plan: Plan) -> None:
        """Item b's pieces into row b: ids in place, media as slots; then [SEP] and the mask."""
        cfg, limit = self.cfg, self.layout.limit
        self.b, self.t = b, 0
        for piece in plan.pieces:
            if piece[0] == "ids":
                ids = piece[1][: max(0, limit - self.t)]
                self.input_ids[b, self.t : self.t + len(ids)] = torch.tensor(ids, dtype=torch.long)
                self.t += len(ids)
            elif piece[0] == "image":
                self.images.append(fit_image(piece[1], cfg.image_size))
                self.image_slots.append(self.claim(cfg.image_tokens))
            elif piece[0] == "video":
                _, frames, times, samples = piece
                for f, time in zip(frames, times):
                    self.frames.append(fit_image(f, cfg.image_size))
                    self.frame_times.append(float(time))
                    self.frame_slots.append(self.claim(cfg.video_tokens_per_frame))
                if samples is not None:
                    self.add_audio(samples)
            else:  # "audio"
                self.add_audio(piece[1])
        end = min(self.t, limit)
        self.input_ids[b, end] = self.layout.tokenizer.sep_id
        self.mask[b, : end + 1] = True
        if end + 1 != plan.length:  # Layout.plan and this loop must agree
            raise RuntimeError(f"internal: planned {plan.length} tokens, laid out {end + 1}")

    def claim(self, n: int) -> list[int]:
        """The next n positions of the current row, as flat slots; -1 past the limit."""
        b, t, limit = self.b, self.t, self.layout.limit
        self.t += n
        return [b * self.T + i if i < limit else -1 for i in range(t, t + n)]

    def add_audio(self, samples: np.ndarray) -> None:
        group = self.audio.setdefault(len(samples), ([], []))
        group[0].append(samples)
        group[1].append(self.claim(len(samples) // (self.layout.samples_per_token or 1)))

    def batch(self) -> Batch:
        S, k, r = self.cfg.image_size, self.cfg.image_tokens, self.cfg.video_tokens_per_frame
        spt = self.layout.samples_per_token or 1

        def pixels(arrays: list[np.ndarray]) -> torch.Tensor:  # list of (S, S, 3) uint8 -> (N, 3, S, S) uint8
            if not arrays:
                return torch.zeros((0, 3, S, S), dtype=torch.uint8)
            return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

        def slot_tensor(rows: list[list[int]], width: int) -> torch.Tensor:
            return torch.tensor(rows, dtype=torch.long).view(len(rows), width)

        lengths = sorted(self.audio)
        return Batch(
            input_ids=self.input_ids,
            mask=self.mask,
            images=pixels(self.images),
            image_slots=slot_tensor(self.image_slots, k),
            frames=pixels(self.frames),
            frame_times=torch.tensor(self.frame_times, dtype=torch.float32),
            frame_slots=slot_tensor(self.frame_slots, r),
            audio=tuple(torch.from_numpy(np.stack(self.audio[n][0]).astype(np.float32)) for n in lengths),
            audio_slots=tuple(slot_tensor(self.audio[n][1], n // spt) for n in lengths),
        )
