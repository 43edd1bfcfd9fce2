"""The export's graphs as PyTorch modules (inputs and outputs: onnx.py's docstring), each the model's own pieces
for items of one kind, from inputs to the vector.

A graph runs `Gemb2Model.text_tokens` (text) or `sequence` over `image_tokens` / `video_tokens` / `audio_tokens`
(media, the document prompt baked in), then `head` and the Matryoshka prefix (`truncate`): the functions
`forward` runs, so a graph cannot drift from the model. `graph_specs` gives each graph with the inputs it is
traced on, its input names, dynamic axes and the stems it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gemb2.model.config import ModelConfig
from gemb2.model.layout import KINDS
from gemb2.model.model import Gemb2Model, truncate
from gemb2.parts import SAMPLE_RATE

OPSET = 17
GRAPHS = ("text", "image", "audio", "video", "video_frames")


class _Graph(nn.Module):
    """What every graph shares: the model's head and Matryoshka prefix on input embeddings the model made."""

    def __init__(self, model: Gemb2Model, dim: int) -> None:
        super().__init__()
        self.m, self.dim = model, dim

    def vector(self, x: torch.Tensor, mask: torch.Tensor | None = None, kind: str = "text") -> torch.Tensor:
        """(B, T, H) input embeddings of items of `kind`, (B, T) bool (None: every position real) -> (B, dim)."""
        mask = torch.ones(x.shape[:2], dtype=torch.bool) if mask is None else mask
        kinds = torch.full(x.shape[:1], KINDS[kind], dtype=torch.long)  # the model's per-modality calibration
        return truncate(self.m.calibrated(self.m.head(x, mask), kinds), self.dim)  # (B, dim)


class TextGraph(_Graph):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.vector(self.m.text_tokens(input_ids), attention_mask > 0)


class ImageGraph(_Graph):
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vector(self.m.sequence([self.m.image_tokens(pixels)]), kind="image")


class AudioGraph(_Graph):
    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        return self.vector(self.m.sequence([self.m.audio_tokens(samples)]), kind="audio")


class VideoGraph(_Graph):
    """Every video's frames through `video_tokens` (pooled grid + time embedding), then its audio track."""

    def frames(self, frames: torch.Tensor, times: torch.Tensor) -> torch.Tensor:  # -> (B, F * r, H)
        f = self.m.video_tokens(frames.flatten(0, 1), times.reshape(-1))  # (B*F, r, H)
        return f.reshape(frames.shape[0], -1, f.shape[-1])

    def forward(self, frames: torch.Tensor, times: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        return self.vector(self.m.sequence([self.frames(frames, times), self.m.audio_tokens(samples)]), kind="video")


class SilentVideoGraph(VideoGraph):
    def forward(self, frames: torch.Tensor, times: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.vector(self.m.sequence([self.frames(frames, times)]), kind="video")


class Examples:
    """Made-up inputs in a model's shapes: for tracing (batch 2), and for checking on other shapes."""

    def __init__(self, model: Gemb2Model) -> None:
        cfg = model.config
        self.size = cfg.image_size
        self.spt = model.layout.samples_per_token or 0
        self.window = model.layout.audio_window

    def pixels(self, *shape: int, seed: int) -> torch.Tensor:
        """Random uint8 RGB of shape (*shape, 3, S, S)."""
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, 256, (*shape, 3, self.size, self.size), dtype=torch.uint8, generator=g)

    def audio(self, B: int, seconds: float, seed: int) -> torch.Tensor:
        """(B, N): a noisy tone, a whole number of tokens, within one window."""
        spt = self.spt
        n = max(1, min(round(seconds * SAMPLE_RATE / spt), self.window // spt)) * spt
        g = torch.Generator().manual_seed(seed)
        t = torch.arange(n, dtype=torch.float32) / SAMPLE_RATE
        return (0.3 * torch.sin(2 * torch.pi * 440 * t) + 0.05 * torch.randn(B, n, generator=g)).clamp(-1, 1)


@dataclass
class GraphSpec:
    """One graph to export: the module, its trace inputs, input names, dynamic axes, the stems it needs."""

    module: _Graph
    example: Callable[[], tuple[torch.Tensor, ...]]
    inputs: list[str]
    axes: dict[str, dict[int, str]]
    needs: tuple[str, ...]


def graph_specs(model: Gemb2Model, dim: int, ex: Examples) -> dict[str, GraphSpec]:
    """Every graph of GRAPHS for `model` (whether or not it has the stems a graph needs)."""
    pad = model.tokenizer.pad_id
    video_axes = {"frames": {0: "batch", 1: "frames"}, "times": {0: "batch", 1: "frames"}}
    samples_axes = {"samples": {0: "batch", 1: "samples"}}
    one_frame = lambda: (ex.pixels(2, 1, seed=0), torch.tensor([[1.0]] * 2))  # noqa: E731
    return {
        "text": GraphSpec(
            TextGraph(model, dim),
            # a padded example: tracing must take the masked-attention path (an all-ones mask may skip it)
            lambda: (torch.full((2, 7), pad), torch.tensor([[1] * 7, [1] * 4 + [0] * 3])),
            ["input_ids", "attention_mask"],
            {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}},
            (),
        ),
        "image": GraphSpec(
            ImageGraph(model, dim),
            lambda: (ex.pixels(2, seed=0),),
            ["pixels"],
            {"pixels": {0: "batch"}},
            ("image_stem",),
        ),
        "audio": GraphSpec(
            AudioGraph(model, dim), lambda: (ex.audio(2, 1.0, 0),), ["samples"], samples_axes, ("audio_stem",)
        ),
        "video": GraphSpec(
            VideoGraph(model, dim),
            lambda: (*one_frame(), ex.audio(2, 1.0, 0)),
            ["frames", "times", "samples"],
            video_axes | samples_axes,
            ("image_stem", "audio_stem"),
        ),
        "video_frames": GraphSpec(
            SilentVideoGraph(model, dim), one_frame, ["frames", "times"], video_axes, ("image_stem",)
        ),
    }


def describe_inputs(name: str, cfg: ModelConfig, spt: int) -> list[dict[str, Any]]:
    """A graph's inputs for the manifest: name, dtype and shape (named axes are dynamic)."""
    S = cfg.image_size
    frames = [
        {"name": "frames", "dtype": "uint8", "shape": ["batch", "frames", 3, S, S]},
        {"name": "times", "dtype": "float32", "shape": ["batch", "frames"]},
    ]
    samples = [{"name": "samples", "dtype": "float32", "shape": ["batch", f"samples (multiple of {spt})"]}]
    return {
        "text": [
            {"name": "input_ids", "dtype": "int64", "shape": ["batch", "length"]},
            {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "length"]},
        ],
        "image": [{"name": "pixels", "dtype": "uint8", "shape": ["batch", 3, S, S]}],
        "audio": samples,
        "video": frames + samples,
        "video_frames": frames,
    }[name]
