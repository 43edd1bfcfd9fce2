"""How the loader tests read a file back: its segments through gemb2's loader, and the pitch of decoded audio."""

from __future__ import annotations

import numpy as np

from gemb2.data.discover import modality_of
from gemb2.data.load import load_file
from gemb2.data.segments import LoadSpec, Segment
from gemb2.parts import SAMPLE_RATE


def load(path, modality: str | None = None, **spec) -> list[Segment]:
    """Every segment of `path`, loaded as `modality` (by default the one its extension says) with LoadSpec(**spec)."""
    return list(load_file(str(path), modality or modality_of(str(path)), LoadSpec(**spec)))


def peak_hz(x: np.ndarray) -> float:
    """The strongest frequency of a mono signal at SAMPLE_RATE."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * SAMPLE_RATE / len(x)
