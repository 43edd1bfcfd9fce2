"""Per-modality calibration: each media modality's cloud of vectors moved onto the centre of the text cloud.

A shared space learned by aligning media stems to a frozen text model keeps each modality in its own region:
every photo sits closer to every other photo than to any description, so on a mixed table the media item nearest
the centre of its modality's cloud is the top hit for many queries that are not about it (a hub). With
`ModelConfig.calibration == "centre"` the model moves each media vector by its modality's learned shift and
re-normalises:

    v' = normalize(v + shift[kind])        shift[kind] = mean(text vectors) - mean(kind's vectors)

The shifts are a (len(KINDS), out_dim) buffer (`calibration_shift`, the text row zero) fitted on training data
(`fit_shift`; the command is gemb2/train/calibrate.py). An item's kind is its media: video if it has a video,
else image if it has an image, else audio if it has audio, else text. Text items are never touched: their vectors
stay bit for bit what the model gives without calibration. At "none" (the default) there is no buffer and no step,
so a model without calibration has the vectors and the id it had before this existed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layout import KINDS, Batch

BUFFER = "calibration_shift"


def add_buffer(model: nn.Module, out_dim: int) -> None:
    """Give `model` a zero shift buffer (a model built with calibration on, before its fitted shifts are loaded)."""
    if BUFFER not in dict(model.named_buffers()):
        model.register_buffer(BUFFER, torch.zeros(len(KINDS), out_dim))


def item_kinds(batch: Batch) -> torch.Tensor:
    """Each item's calibration kind (a row of KINDS) from where its media tokens sit. -> (B,) long."""
    T = batch.input_ids.shape[1]
    kinds = torch.full((len(batch),), KINDS["text"], dtype=torch.long, device=batch.input_ids.device)
    # lowest priority first: a video's audio track is audio, but the item is a video
    for slots, kind in [*((s, "audio") for s in batch.audio_slots), (batch.image_slots, "image")]:
        _mark(kinds, slots, T, kind)
    _mark(kinds, batch.frame_slots, T, "video")
    return kinds


def _mark(kinds: torch.Tensor, slots: torch.Tensor, T: int, kind: str) -> None:
    flat = slots.reshape(-1)
    if flat.numel():
        kinds[flat[flat >= 0] // T] = KINDS[kind]


def calibrate(v: torch.Tensor, shift: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
    """Unit vectors (B, D), the (len(KINDS), D) shifts, each item's kind (B,) -> (B, D): media rows shifted and
    re-normalised, text rows returned as they are (not re-normalised: bit for bit the input)."""
    moved = F.normalize(v + shift.to(v.dtype)[kinds], dim=-1)
    return torch.where((kinds != KINDS["text"])[:, None], moved, v)


def fit_shift(media: Mapping[str, np.ndarray], text: np.ndarray) -> torch.Tensor:
    """The shifts from unit vectors of training data: `media` {kind: (N_k, D)} (image, audio, video; a kind left
    out keeps a zero shift) and `text` (N_t, D). Means in float64, in row order: the same inputs give the same
    bytes. -> (len(KINDS), D) float32, the text row zero."""
    centre = np.asarray(text, dtype=np.float64).mean(0)
    shift = np.zeros((len(KINDS), centre.shape[0]), dtype=np.float64)
    for kind, vectors in media.items():
        if kind == "text" or kind not in KINDS:
            raise ValueError(f"calibration kinds are image, audio and video, not {kind!r}")
        if len(vectors):
            shift[KINDS[kind]] = centre - np.asarray(vectors, dtype=np.float64).mean(0)
    return torch.from_numpy(shift.astype(np.float32))
