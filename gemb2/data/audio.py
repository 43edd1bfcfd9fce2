"""Audio files -> windows of mono float32 16 kHz samples, streamed block by block.

Decoders: libsndfile (`soundfile`) for WAV/FLAC/Ogg/Opus/MP3; PyAV (FFmpeg) for M4A/AAC, and as the fallback
when libsndfile cannot open a file. Any sample rate and channel count comes out mono (mean of the channels)
at 16 kHz; resampling is FFmpeg's libswresample (windowed-sinc polyphase filter), driven through
`av.AudioResampler` for PyAV's frames and for soundfile's numpy blocks alike. Only one window plus one
decoded block is in memory at a time, so a 2-hour file streams.

Windows are `spec.audio_window_s` long; the last one is shorter. A tail shorter than MIN_TAIL_S after at
least one full window is dropped (resampler rounding, not content). NaN and inf samples are replaced by 0
and samples are clipped to [-1, 1] (a few bad samples should not lose a recording).

The same reader gives the audio track of videos (see video.py).
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterator

import numpy as np

from gemb2.data.segments import LoadError, Segment
from gemb2.data.spec import LoadSpec
from gemb2.parts import SAMPLE_RATE, Audio

SOUNDFILE_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".opus", ".mp3"})
BLOCK_FRAMES = 1 << 16  # frames read from libsndfile at a time
MIN_TAIL_S = 0.01


def load_audio(path: str, spec: LoadSpec) -> Iterator[Segment]:
    reader = PcmReader(pcm_blocks(path))
    n = max(1, round(spec.audio_window_s * SAMPLE_RATE))
    done = 0  # samples already emitted
    index = 0
    try:
        while True:
            chunk = reader.read(n)  # (<= n,) float32
            if len(chunk) == 0 or (index > 0 and len(chunk) < MIN_TAIL_S * SAMPLE_RATE):
                break
            yield Segment(index=index, start=done / SAMPLE_RATE, end=(done + len(chunk)) / SAMPLE_RATE,
                          parts=(Audio(chunk),))
            done += len(chunk)
            index += 1
    finally:
        reader.close()
    if index == 0:
        raise LoadError("no audio samples")


def pcm_blocks(path: str) -> Iterator[np.ndarray]:
    """Mono float32 16 kHz blocks of an audio file, by libsndfile when it can, else by PyAV."""
    if os.path.splitext(path)[1].lower() in SOUNDFILE_EXTENSIONS:
        import soundfile as sf

        try:
            f = sf.SoundFile(path)
        except (sf.LibsndfileError, RuntimeError, TypeError):
            pass  # e.g. an MP3 that libsndfile rejects: FFmpeg may still read it
        else:
            return _soundfile_blocks(f)
    blocks = av_pcm_blocks(path)
    if blocks is None:
        raise LoadError("no audio stream in the file")
    return blocks


def _soundfile_blocks(f) -> Iterator[np.ndarray]:
    import soundfile as sf

    with f:
        resample = Resampler(f.samplerate)
        try:
            for block in f.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):  # (N, C)
                yield _clean(resample(_clean(block.mean(axis=1))))
        except (sf.LibsndfileError, RuntimeError) as e:
            raise LoadError(f"cannot decode audio: {e}") from None
        yield _clean(resample.flush())


def av_pcm_blocks(path: str) -> Iterator[np.ndarray] | None:
    """Mono float32 16 kHz blocks of the first audio stream of any FFmpeg-readable file; None if it has none.

    The container is opened now (so a missing stream is known at once) and decoded lazily as the
    iterator is consumed; closing the iterator closes the container.
    """
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise LoadError(f"cannot open the file with FFmpeg: {_av_reason(e)}") from None
    if not container.streams.audio:
        container.close()
        return None
    return _av_blocks(container)


def _av_blocks(container) -> Iterator[np.ndarray]:
    import av

    with container:
        stream = container.streams.audio[0]
        # frame_size: 1 s output blocks instead of one per codec frame (~23 ms for AAC): the same samples, a
        # fortieth of the Python calls; 30 % less time on a video's audio track (benchmarks/media_throughput.py)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE, frame_size=SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield _clean(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                yield _clean(out.to_ndarray().reshape(-1))
        except av.FFmpegError as e:
            raise LoadError(f"cannot decode audio: {_av_reason(e)}") from None


class Resampler:
    """Mono float32 blocks at `rate` Hz -> mono float32 at 16 kHz, streaming (state kept across blocks).

    libswresample's default filter (a Kaiser-windowed sinc, 32 phases) through `av.AudioResampler`.
    """

    def __init__(self, rate: int):
        self.rate = int(rate)
        self._pts = 0
        self._r = None
        if self.rate != SAMPLE_RATE:
            import av

            self._r = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """(N,) float32 at self.rate -> (M,) float32 at 16 kHz (M ~ N * 16000 / rate, may lag a little)."""
        if self._r is None or len(block) == 0:
            return block if self._r is None else np.zeros(0, np.float32)
        import av

        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block, np.float32)[None, :], format="flt",
                                           layout="mono")
        frame.sample_rate = self.rate
        frame.time_base = Fraction(1, self.rate)
        frame.pts = self._pts
        self._pts += len(block)
        return _concat(out.to_ndarray().reshape(-1) for out in self._r.resample(frame))

    def flush(self) -> np.ndarray:
        """The samples still held in the filter's delay line."""
        if self._r is None or self._pts == 0:
            return np.zeros(0, np.float32)
        return _concat(out.to_ndarray().reshape(-1) for out in self._r.resample(None))


class PcmReader:
    """Reads a stream of sample blocks in pieces of a chosen length."""

    def __init__(self, blocks: Iterator[np.ndarray]):
        self._blocks = blocks
        self._buf: list[np.ndarray] = []
        self._have = 0
        self._eof = False

    def read(self, n: int) -> np.ndarray:
        """The next n samples, (n,) float32; fewer only at the end of the stream."""
        while self._have < n and not self._eof:
            try:
                block = next(self._blocks)
            except StopIteration:
                self._eof = True
                break
            if len(block):
                self._buf.append(block)
                self._have += len(block)
        data = _concat(self._buf)
        out, rest = data[:n].copy(), data[n:]
        self._buf = [rest] if len(rest) else []
        self._have = len(rest)
        return out

    def close(self) -> None:
        close = getattr(self._blocks, "close", None)
        if close is not None:
            close()


def _clean(x: np.ndarray) -> np.ndarray:
    """float32, NaN/inf -> 0, clipped to [-1, 1]."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(x, -1.0, 1.0, out=x)


def _concat(blocks) -> np.ndarray:
    blocks = list(blocks)
    if not blocks:
        return np.zeros(0, np.float32)
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def _av_reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e)
