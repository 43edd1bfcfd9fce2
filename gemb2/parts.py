"""The parts an item is made of, shared by the loaders (which make them) and the model (which embeds them).

An *item* is a sequence of parts; a single part is an item of one part. Parts hold
decoded, model-ready media so that loader processes can do the heavy decoding and
resizing and send only small arrays to the model:

    Text(text)                        a string
    Image(pixels)                     (H, W, 3) uint8 RGB
    Audio(samples)                    (N,) float32 mono at SAMPLE_RATE Hz, in [-1, 1]
    Video(frames, times, audio)       (T, H, W, 3) uint8 RGB frames, (T,) float32 seconds
                                      from the segment start, and the audio track or None

This module depends only on numpy and OpenCV so both sides can import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000  # Hz: every audio part is mono at this rate (Whisper's front end expects it)

MODALITIES = ("text", "image", "audio", "video")


@dataclass(frozen=True, slots=True)
class Text:
    text: str

    modality = "text"


@dataclass(frozen=True, slots=True, eq=False)
class Image:
    pixels: np.ndarray  # (H, W, 3) uint8 RGB

    modality = "image"

    def __post_init__(self) -> None:
        p = self.pixels
        if not (isinstance(p, np.ndarray) and p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3):
            raise ValueError(f"Image.pixels must be an (H, W, 3) uint8 array, got {_describe(p)}")
        if p.shape[0] == 0 or p.shape[1] == 0:
            raise ValueError(f"Image.pixels is empty: shape {p.shape}")


@dataclass(frozen=True, slots=True, eq=False)
class Audio:
    samples: np.ndarray  # (N,) float32, mono, SAMPLE_RATE Hz

    modality = "audio"

    def __post_init__(self) -> None:
        s = self.samples
        if not (isinstance(s, np.ndarray) and s.dtype == np.float32 and s.ndim == 1):
            raise ValueError(f"Audio.samples must be a 1-D float32 array at {SAMPLE_RATE} Hz, got {_describe(s)}")

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


@dataclass(frozen=True, slots=True, eq=False)
class Video:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    times: np.ndarray  # (T,) float32, seconds from the segment's start
    audio: Audio | None = None

    modality = "video"

    def __post_init__(self) -> None:
        f = self.frames
        if not (isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim == 4 and f.shape[3] == 3):
            raise ValueError(f"Video.frames must be a (T, H, W, 3) uint8 array, got {_describe(f)}")
        if f.shape[0] == 0:
            raise ValueError("Video.frames holds no frame")
        if self.times.shape != (f.shape[0],):
            raise ValueError(f"Video.times must have shape ({f.shape[0]},), got {self.times.shape}")


Part = Text | Image | Audio | Video
Item = Sequence[Part]


def as_item(x: Part | Item | str) -> tuple[Part, ...]:
    """Normalise a str, a single part, or a sequence of parts to a tuple of parts."""
    if isinstance(x, str):
        return (Text(x),)
    if isinstance(x, (Text, Image, Audio, Video)):
        return (x,)
    parts = tuple(Text(p) if isinstance(p, str) else p for p in x)
    if not parts:
        raise ValueError("an item needs at least one part")
    for p in parts:
        if not isinstance(p, (Text, Image, Audio, Video)):
            raise TypeError(f"an item's parts must be Text, Image, Audio or Video, got {type(p).__name__}")
    return parts


def item_modality(parts: Sequence[Part]) -> str:
    """The modality recorded for an item: its one modality, or 'mixed' for an interleaved item."""
    kinds = {p.modality for p in parts}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def fit_image(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is `size`, then centre-crop to (size, size, 3).

    Area interpolation when shrinking (no aliasing), bicubic when enlarging.
    (H, W, 3) uint8 -> (size, size, 3) uint8.
    """
    import cv2

    h, w = pixels.shape[:2]
    if (h, w) == (size, size):
        return pixels
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(pixels, (nw, nh), interpolation=interp)  # (nh, nw, 3)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(resized[top : top + size, left : left + size])


def patch_budget_size(h: int, w: int, patch: int, pool: int, max_soft_tokens: int) -> tuple[int, int]:
    """The (height, width) EmbeddingGemma 2's (Gemma 4's) image processor resizes an h x w image to: the largest
    aspect-preserving size with at most max_soft_tokens x pool^2 patches of `patch` px, sides multiples of
    pool x patch (transformers' get_aspect_ratio_preserving_size, same arithmetic)."""
    import math

    max_patches = max_soft_tokens * pool**2
    factor = math.sqrt(max_patches * patch**2 / (h * w))
    side = pool * patch
    th, tw = int(math.floor(factor * h / side)) * side, int(math.floor(factor * w / side)) * side
    longest = (max_patches // pool**2) * side
    if th == 0:
        th, tw = side, min(int(math.floor(w / h)) * side, longest)
    elif tw == 0:
        tw, th = side, min(int(math.floor(h / w)) * side, longest)
    return th, tw


def _describe(x: object) -> str:
    if isinstance(x, np.ndarray):
        return f"array of shape {x.shape} and dtype {x.dtype}"
    return type(x).__name__
