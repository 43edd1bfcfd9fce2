"""Audio files -> windows of mono float32 16 kHz samples, streamed block by block.

Decoders: libsndfile (`soundfile`) for WAV/AIFF/FLAC/Ogg (.ogg, .oga, .opus); PyAV (FFmpeg) for everything
else (MP3, M4A/AAC, audio-only video containers), and as the fallback whenever libsndfile fails: it cannot
open the file, reports no frames or no seeking (a GSM 6.10 WAV, a damaged MP3 header), gives no samples, or
fails in the middle (PyAV then takes over where libsndfile stopped, by sample count). MP3 goes to PyAV
first: libsndfile trusts the first LAME/Xing header's frame count, so MP3s joined with `cat` lost all but
their first part. PyAV skips a corrupt packet (as players do; MAX_BAD_PACKETS per file).

Any sample rate and channel count comes out mono (mean of the channels) at 16 kHz; resampling is FFmpeg's
libswresample (windowed-sinc polyphase filter), driven through `av.AudioResampler` for PyAV's frames and
for soundfile's numpy blocks alike. A file shorter than the filter (a WAV of 4 samples) would come out
empty from it: that is padded with silence through the filter and cut to its length. Only one window plus
one decoded block is in memory at a time, so a 2-hour file streams.

Windows are `spec.audio_window_s` long; the last one is shorter. A tail shorter than MIN_TAIL_S after at
least one full window is dropped (resampler rounding, not content). NaN and inf samples are replaced by 0
and samples are clipped to [-1, 1] (a few bad samples should not lose a recording).

The same reader gives the audio track of videos (see video.py).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from fractions import Fraction

import numpy as np

from gemb2.data.segments import LoadError, LoadSpec, Segment
from gemb2.parts import SAMPLE_RATE, Audio

Blocks = Generator[np.ndarray, None, None]  # (N,) float32 16 kHz blocks, closed to let go of the file

SOUNDFILE_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".aifc"})
BLOCK_FRAMES = 1 << 16  # frames read from libsndfile at a time
MIN_TAIL_S = 0.01
MAX_BAD_PACKETS = 200  # corrupt audio packets skipped per file before it is called undecodable
SHORT_INPUT = 4096  # input samples kept to resample again when the filter gave nothing (see Resampler.flush)


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
            yield Segment(
                index=index, start=done / SAMPLE_RATE, end=(done + len(chunk)) / SAMPLE_RATE, parts=(Audio(chunk),)
            )
            done += len(chunk)
            index += 1
    finally:
        reader.close()
    if index == 0:
        raise LoadError("no audio samples")


def pcm_blocks(path: str) -> Blocks:
    """Mono float32 16 kHz blocks of an audio file, by libsndfile when it can, else by PyAV."""
    if os.path.splitext(path)[1].lower() in SOUNDFILE_EXTENSIONS:
        f = _soundfile_open(path)
        if f is not None:
            return _with_fallback(_soundfile_blocks(f), path)
    blocks = av_pcm_blocks(path)
    if blocks is None:
        raise LoadError("no audio stream in the file")
    return blocks


def _soundfile_open(path: str):
    """A `soundfile.SoundFile` ready for block reading, or None when libsndfile cannot give one."""
    import soundfile as sf

    try:
        f = sf.SoundFile(path)
    except MemoryError:
        raise
    except Exception:  # LibsndfileError, RuntimeError, TypeError ...: FFmpeg may still read it
        return None
    # no length or no seeking (GSM 6.10 in WAV; an MP3 whose LAME header is off): blocks() cannot read it
    if not (0 < f.frames < 1 << 62) or not f.seekable():
        f.close()
        return None
    return f


def _soundfile_blocks(f) -> Blocks:
    with f:
        resample = Resampler(f.samplerate)
        for block in f.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):  # (N, C)
            yield _clean(resample(_clean(block.mean(axis=1))))
        yield _clean(resample.flush())


def _with_fallback(blocks: Blocks, path: str) -> Blocks:
    """`blocks` (libsndfile's), continued by PyAV if they fail or give nothing: PyAV's samples past those
    already given (the two resample alike, so the seam is within a few samples)."""
    done = 0
    cause: Exception | None = None
    try:
        for block in blocks:
            done += len(block)
            yield block
    except MemoryError:
        raise
    except Exception as e:  # any libsndfile failure: its own errors, ValueError, RuntimeError, ...
        cause = e
    finally:
        blocks.close()
    if cause is None and done:
        return
    try:
        rest = av_pcm_blocks(path)
    except LoadError:
        if cause is None:
            return  # libsndfile read it, and it holds no samples
        rest = None
    if rest is None:
        if cause is None:
            return
        raise LoadError(f"cannot decode audio: {_short_reason(cause)}")
    try:
        for block in rest:
            if done >= len(block):
                done -= len(block)
                continue
            yield block[done:]
            done = 0
    finally:
        rest.close()


def av_pcm_blocks(path: str) -> Blocks | None:
    """Mono float32 16 kHz blocks of the first audio stream of any FFmpeg-readable file; None if it has none.

    The container is opened now (so a missing stream is known at once) and decoded lazily as the
    iterator is consumed; closing the iterator closes the container.
    """
    import av
    from av.error import FFmpegError

    try:
        container = av.open(path, metadata_errors="ignore")
    except (FFmpegError, UnicodeDecodeError) as e:
        raise LoadError(f"cannot open the file with FFmpeg: {_av_reason(e)}") from None
    if not container.streams.audio:
        container.close()
        return None
    return _av_blocks(container)


def _av_blocks(container) -> Blocks:
    import av
    from av.error import FFmpegError

    with container:
        stream = container.streams.audio[0]
        # frame_size: 1 s output blocks instead of one per codec frame (~23 ms for AAC): the same samples, a
        # fortieth of the Python calls, and less time on a video's audio track (BENCHMARKS.md, "Images and video")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE, frame_size=SAMPLE_RATE)
        head: list | None = []  # the first decoded frames, while they are short (see _short_input)
        n_in = n_out = bad = 0
        error: Exception | None = None
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except FFmpegError as e:  # a damaged container: what was read so far stands, then flush
                error = e
                packet = None
            try:
                frames = packet.decode() if packet is not None else stream.codec_context.decode(None)
            except FFmpegError as e:  # a corrupt packet (the ID3 tag of a second MP3 joined by cat)
                error, bad = e, bad + 1
                if bad > MAX_BAD_PACKETS:
                    raise LoadError(
                        f"cannot decode audio: more than {MAX_BAD_PACKETS} corrupt packets ({_av_reason(e)})"
                    ) from None
                frames = []
            for frame in frames:
                n_in += frame.samples
                if head is not None:
                    head = head + [frame] if n_in <= SHORT_INPUT else None
                try:
                    outs = resampler.resample(frame)
                except ValueError:  # the stream changed rate or layout mid-way (MP3s of two rates joined by cat)
                    outs = resampler.resample(None)  # the old rate's tail, then a resampler for the new one
                    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE, frame_size=SAMPLE_RATE)
                    outs = list(outs) + list(resampler.resample(frame))
                for out in outs:
                    n_out += out.samples
                    yield _clean(out.to_ndarray().reshape(-1))
            if packet is None:
                break
        try:
            for out in resampler.resample(None):
                n_out += out.samples
                yield _clean(out.to_ndarray().reshape(-1))
        except FFmpegError as e:
            raise LoadError(f"cannot decode audio: {_av_reason(e)}") from None
        if n_out == 0 and head:
            yield _clean(_short_input(head))
        elif n_in == 0 and error is not None:
            raise LoadError(f"cannot decode audio: {_av_reason(error)}")


def _short_input(frames: list) -> np.ndarray:
    """PyAV frames too short for the resampler to give anything -> (M,) float32 at 16 kHz."""
    import av

    mono = av.AudioResampler(format="flt", layout="mono")  # channels only: no rate change, no filter delay
    x = _concat(out.to_ndarray().reshape(-1) for f in frames for out in mono.resample(f))
    x = _concat([x, *(out.to_ndarray().reshape(-1) for out in mono.resample(None))])
    r = Resampler(frames[0].sample_rate)
    return _concat([r(x), r.flush()])


class Resampler:
    """Mono float32 blocks at `rate` Hz -> mono float32 at 16 kHz, streaming (state kept across blocks).

    libswresample's default filter (a Kaiser-windowed sinc, 32 phases) through `av.AudioResampler`.
    """

    def __init__(self, rate: int):
        self.rate = int(rate)
        self._pts = 0
        self._out = 0  # samples given so far
        self._head: list[np.ndarray] | None = []  # the input, while it is at most SHORT_INPUT samples
        self._r = None
        if self.rate != SAMPLE_RATE:
            import av

            self._r = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """(N,) float32 at self.rate -> (M,) float32 at 16 kHz (M ~ N * 16000 / rate, may lag a little)."""
        if self._r is None or len(block) == 0:
            return block if self._r is None else np.zeros(0, np.float32)
        if self._head is not None:
            self._head = self._head + [block.copy()] if self._pts + len(block) <= SHORT_INPUT else None
        out = _concat(out.to_ndarray().reshape(-1) for out in self._r.resample(self._frame(block)))
        self._out += len(out)
        return out

    def flush(self) -> np.ndarray:
        """The samples still held in the filter's delay line.

        An input shorter than the filter comes out of libswresample as nothing at all, flush or not: it is
        then resampled again, followed by 0.1 s of silence, and cut to its length at 16 kHz."""
        if self._r is None or self._pts == 0:
            return np.zeros(0, np.float32)
        out = _concat(out.to_ndarray().reshape(-1) for out in self._r.resample(None))
        if self._out + len(out) == 0 and self._head:
            x = _concat(self._head)
            again = Resampler(self.rate)
            again._head = None
            y = _concat([again(x), again(np.zeros(self.rate // 10, np.float32)), again.flush()])
            out = y[: max(1, round(len(x) * SAMPLE_RATE / self.rate))]
        self._out += len(out)
        return out

    def _frame(self, block: np.ndarray):
        import av

        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(block, np.float32)[None, :], format="flt", layout="mono"
        )
        frame.sample_rate = self.rate
        frame.time_base = Fraction(1, self.rate)
        frame.pts = self._pts
        self._pts += len(block)
        return frame


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


def _av_reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e)


def _short_reason(e: BaseException) -> str:
    """A decoder's exception as a short reason for a person: its message's first line, no Python type name."""
    text = _av_reason(e).strip()
    return text.splitlines()[0] if text else "the decoder failed"
