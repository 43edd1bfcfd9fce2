"""Shared fixtures for the model tests: the tiny preset and small synthetic media made here."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gemb2 import load_model  # noqa: E402
from gemb2.model import Gemb2Model  # noqa: E402
from gemb2.parts import SAMPLE_RATE, Audio, Image, Text, Video  # noqa: E402


@pytest.fixture(scope="module")
def model() -> Gemb2Model:
    return load_model("tiny")


class Media:
    """Small synthetic parts: noise images, a noisy tone, noise video with a tone track."""

    def __init__(self, seed: int = 1234):
        self.rng = np.random.default_rng(seed)

    def image(self, h: int = 48, w: int = 80) -> Image:
        return Image(self.rng.integers(0, 256, (h, w, 3), dtype=np.uint8))

    def audio(self, seconds: float = 1.0, freq: float = 440.0) -> Audio:
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * self.rng.standard_normal(len(t))
        return Audio(x.astype(np.float32))

    def video(self, frames: int = 4, with_audio: bool = True) -> Video:
        pixels = self.rng.integers(0, 256, (frames, 36, 64, 3), dtype=np.uint8)
        times = np.arange(frames, dtype=np.float32)
        return Video(pixels, times, self.audio(seconds=frames) if with_audio else None)

    def every_modality(self) -> list:
        """One item per modality, a silent video, and two interleaved items."""
        return [
            "a red car parked by the sea",
            self.image(),
            self.audio(),
            self.video(),
            self.video(frames=2, with_audio=False),
            [Text("a slide:"), self.image(64, 64), Text("and its narration"), self.audio(0.5)],
            [self.image(), self.image(100, 30), Text("two pictures")],
        ]


@pytest.fixture
def media() -> Media:
    return Media()
