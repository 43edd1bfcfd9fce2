"""Manifest items -> model-ready parts, through the same loaders as `gemb2 embed`.

A file part is cut by `gemb2.data.load.load_file` with the model's LoadSpec
(`gemb2.pipeline.loadspec.load_spec_for`), so training sees exactly the windows that embedding sees:
the part becomes the window containing `start` (default 0); audio and video are then trimmed to
[start, end) (seconds). Text files give the token window containing character `start`.
"""

from __future__ import annotations

import numpy as np

from gemb2.data.discover import modality_of
from gemb2.data.load import load_file
from gemb2.data.manifest import ItemRef, PartRef
from gemb2.data.segments import LoadSpec
from gemb2.errors import FatalError
from gemb2.parts import SAMPLE_RATE, Audio, Part, Text, Video


class ItemLoadError(FatalError, ValueError):
    """A manifest part whose file cannot be loaded; the message names the path and the reason."""


def load_item(item: ItemRef, spec: LoadSpec) -> tuple[Part, ...]:
    """The parts of one item, decoded."""
    return tuple(load_part(p, spec) for p in item)


def load_part(ref: PartRef, spec: LoadSpec) -> Part:
    """One part: a text as it is, a file through the embed loaders (the window containing `start`)."""
    if ref.text is not None:
        return Text(ref.text)
    path = ref.path
    assert path is not None  # a part is a text or a path (manifest.parse_example)
    modality = modality_of(path)
    if modality is None:
        raise ItemLoadError(f"{path}: unknown file type (extension not known to gemb2 embed)")
    start = ref.start or 0.0
    try:
        for seg in load_file(path, modality, spec):
            if modality == "image":
                return seg.parts[0]
            if seg.end > start:  # the window that contains `start`
                part = seg.parts[0]
                return _trim(part, seg.start, start, ref.end) if modality in ("audio", "video") else part
    except Exception as e:  # LoadError and decoder errors: name the file
        raise ItemLoadError(f"{path}: {e}") from None
    raise ItemLoadError(f"{path}: no {modality} window contains start={start:g}")


def _trim(part: Part, seg_start: float, start: float, end: float | None) -> Part:
    """Cut an Audio or Video part (whose window begins at seg_start seconds) to [start, end)."""
    if isinstance(part, Audio):
        return _trim_audio(part, seg_start, start, end)
    assert isinstance(part, Video)
    lo = max(0.0, start - seg_start)
    hi = None if end is None else end - seg_start
    keep = part.times >= lo
    if hi is not None:
        keep &= part.times < hi
    if not keep.any():
        keep[np.argmin(np.abs(part.times - lo))] = True  # at least the nearest frame
    audio = None if part.audio is None else _trim_audio(part.audio, seg_start, start, end)
    return Video(part.frames[keep], (part.times[keep] - lo).astype(np.float32), audio)


def _trim_audio(part: Audio, seg_start: float, start: float, end: float | None) -> Audio:
    """Cut Audio (whose window begins at seg_start seconds) to [start, end); at least one sample stays."""
    lo = max(0.0, start - seg_start)
    hi = None if end is None else end - seg_start
    s = part.samples[int(lo * SAMPLE_RATE) : None if hi is None else int(hi * SAMPLE_RATE)]
    return Audio(s if len(s) else part.samples[:1])
