"""Property-based fuzzing of the loaders (run by test_fuzz.py in a subprocess, under a timeout).

For every supported extension (text: one of each kind), hypothesis feeds `load_file` random bytes, a valid file of that format cut
at a random point, and a valid file with random bytes overwritten. The property: loading raises LoadError
or yields valid segments (indices 0..n-1; uint8 (S, S, 3) pixels; finite float32 samples in [-1, 1];
frames with their times), never any other exception. A hang or a crash of a codec ends the subprocess
and fails the calling test. Not collected by pytest on its own (the name does not start with test_).
"""

from __future__ import annotations

import io
import os
import tempfile

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from gemb2.data.discover import EXTENSIONS
from gemb2.data.load import load_file
from gemb2.data.segments import LoadError, LoadSpec
from gemb2.parts import Audio, Image, Text, Video
from tests.media import tone, write_video
from tests.pdfs import PdfPage, write_pdf

SPEC = LoadSpec(image_size=16, audio_window_s=1.0, video_window_s=1.0, video_fps=2.0, max_frames=4,
                text_window_tokens=16, text_overlap_tokens=4)
EXAMPLES = int(os.environ.get("GEMB2_FUZZ_EXAMPLES", "25"))  # per extension and kind of input


def _seed(ext: str) -> bytes:
    """A small valid file for `ext` (random bytes with no seed format: the magic alone is then fuzzed)."""
    rng = np.random.default_rng(0)
    pil = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
           ".tiff": "TIFF", ".gif": "GIF"}
    snd = {".wav": ("WAV", None), ".flac": ("FLAC", None), ".ogg": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS"),
           ".mp3": ("MP3", None)}
    if ext in pil:
        buf = io.BytesIO()
        PILImage.fromarray(rng.integers(0, 256, (24, 20, 3), np.uint8)).save(buf, format=pil[ext])
        return buf.getvalue()
    if ext in snd:
        buf = io.BytesIO()
        try:
            sf.write(buf, tone(1.5, 16000), 16000 if ext != ".opus" else 48000, format=snd[ext][0], subtype=snd[ext][1])
            return buf.getvalue()
        except (sf.LibsndfileError, ValueError, TypeError):
            pass
    if ext in (".mp4", ".m4v", ".mov", ".avi", ".mkv"):
        fourcc = {".avi": "MJPG", ".mkv": "MJPG"}.get(ext, "mp4v")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "v" + ext)
            write_video(path, seconds=1.5, fps=4, size=(24, 16), fourcc=fourcc, numbered=True)
            if os.path.exists(path) and os.path.getsize(path) > 0:
                return open(path, "rb").read()
    if ext in (".html", ".htm"):
        return b"<title>t</title><p>a &amp; b<script>x()</script><pre> c\n d</pre><!-- e --><td>f"
    if EXTENSIONS[ext] == "text":
        return "a small text, with ünïcode and\nlines".encode("utf-8")
    if ext == ".pdf":
        with tempfile.TemporaryDirectory() as d:
            path = write_pdf(os.path.join(d, "a.pdf"), [PdfPage("A page of text."), PdfPage("Rotated", rotate=90)])
            return open(path, "rb").read()
    magic = {".m4a": b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00", ".aac": b"\xff\xf1\x50\x80\x02\x1f\xfc",
             ".webm": b"\x1a\x45\xdf\xa3", ".opus": b"OggS", ".mp3": b"ID3\x03\x00\x00\x00\x00\x00\x00"}
    return magic.get(ext, b"") + rng.bytes(512)


# Text extensions share one loader: fuzz one of each way it reads (prose, a page, data, code), not all fifty.
FUZZED = sorted(e for e, m in EXTENSIONS.items() if m != "text" or e in (".txt", ".md", ".html", ".json", ".py"))
SEEDS = {ext: _seed(ext) for ext in FUZZED}


def inputs(ext: str):
    seed = SEEDS[ext]
    cut = st.integers(0, len(seed)).map(lambda n: seed[:n])
    flips = st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), min_size=1, max_size=8).map(
        lambda fl: _flip(seed, fl))
    return st.one_of(st.binary(max_size=2048), cut, flips)


def _flip(seed: bytes, flips) -> bytes:
    b = bytearray(seed)
    for i, v in flips:
        b[i] = v
    return bytes(b)


def check_segment(seg, i: int, modality: str) -> None:
    assert seg.index == i and np.isfinite(seg.start) and np.isfinite(seg.end) and seg.end >= seg.start
    assert seg.parts
    for p in seg.parts:
        if isinstance(p, Image):
            assert p.pixels.dtype == np.uint8 and p.pixels.shape == (SPEC.image_size, SPEC.image_size, 3)
        elif isinstance(p, Audio):
            _check_samples(p.samples)
        elif isinstance(p, Video):
            assert p.frames.dtype == np.uint8 and p.frames.ndim == 4 and len(p.frames) >= 1
            assert len(p.times) == len(p.frames) and np.isfinite(p.times).all()
            if p.audio is not None:
                _check_samples(p.audio.samples)
        else:
            assert isinstance(p, Text) and isinstance(p.text, str)


def _check_samples(x: np.ndarray) -> None:
    assert x.dtype == np.float32 and x.ndim == 1 and len(x) > 0
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0


@pytest.mark.parametrize("ext", FUZZED)
def test_random_bytes_raise_load_error_or_give_valid_segments(ext, tmp_path):
    modality = EXTENSIONS[ext]

    @settings(max_examples=EXAMPLES * 3, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=inputs(ext))
    def prop(data: bytes) -> None:
        path = tmp_path / f"fuzz{ext}"
        path.write_bytes(data)
        try:
            for i, seg in enumerate(load_file(str(path), modality, SPEC)):
                check_segment(seg, i, modality)
                if i >= 64:
                    break
        except LoadError as e:
            assert str(e) and "\n" not in str(e).strip()

    prop()
