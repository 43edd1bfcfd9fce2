"""Video files -> windows of sampled frames with their audio, streamed.

Frames: PyAV (FFmpeg's libavcodec, one decoder thread: the loader processes are the parallelism). Each
window of `spec.video_window_s` seconds is sampled on a grid starting at the window's start with a step of
1 / `spec.video_fps` seconds, widened to window / `spec.max_frames` when that would give more than
`max_frames` frames (the cap is spread evenly over the window). The frame taken for a grid time is the
first one at or after it (within half a frame); only taken frames are converted to RGB, rotated upright
(the stream's display matrix, as phones write it) and resized (`fit_image`). Frame times are the
frames' timestamps from the stream's start.

Index sampling (`spec.video_sampling = "index"`, EmbeddingGemma 2): frames are counted, not timed, as transformers'
video processors count them: every frame is decoded, each window of round(window x native fps) frames is a clip,
and the clip's frames are those `reference_indices` names (frame int(i x native / fps); past max_frames spread
evenly or cut); they are kept whole when the model resizes frames itself (`spec.image_patches`).

Skipping: between grid times the decoder is told to drop non-reference frames (`skip_frame = NONREF`:
B-frames nothing else is predicted from, which are ~half the frames of a typical H.264 file); near a
grid time (within 2.5 frames) it decodes everything, so the frame taken is the very frame a full decode
would take (tests/data/test_audio_video_loaders.py). That saves much of the decoding work at 1 frame/s
(BENCHMARKS.md, "Images and video"). `skip_nonref=False` decodes every frame.

Corrupt packets are skipped (as players do); a file with no decodable frame is a LoadError. A file with no
video stream but an audio one (a voice note saved as .mp4, Opus alone in .webm, a song whose only picture
is its cover) is loaded as audio (audio.py): its segments hold Audio parts, so its rows are audio rows.

Audio: the first audio stream, decoded lazily by a second (PyAV) demuxer of the same file, resampled to
16 kHz mono and cut in step with the frame windows; a video without one gives Video(audio=None), and so
does a window past the end of the audio track.

Memory: one window of frames (at most max_frames small images) and one window of audio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from gemb2.data.audio import PcmReader, av_pcm_blocks
from gemb2.data.segments import LoadError, LoadSpec, Segment
from gemb2.parts import SAMPLE_RATE, Audio, Video, fit_image

MAX_BAD_PACKETS = 200  # corrupt packets tolerated per file before it is called unreadable


def load_video(path: str, spec: LoadSpec, *, skip_nonref: bool = True) -> Iterator[Segment]:
    import av
    from av.error import FFmpegError

    try:
        container = av.open(path, metadata_errors="ignore")
    except (FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise LoadError(f"cannot open the video: {getattr(e, 'strerror', None) or e}") from None
    audio = None
    try:
        if _picture_stream(container) is None:
            if not container.streams.audio:
                raise LoadError("cannot open the video: no video or audio stream")
            container.close()  # an audio-only file under a video extension (a voice note .mp4, Opus in .webm)
            from gemb2.data.audio import load_audio

            yield from load_audio(path, spec)
            return
        audio = _audio_track(path)
        if spec.video_sampling == "index":  # frames counted by number: every one decoded
            yield from _index_windows(_frames(container, spec, False), audio, spec)
        else:
            yield from _windows(_frames(container, spec, skip_nonref), audio, spec)
    finally:
        container.close()
        if audio is not None:
            audio.close()


def _picture_stream(container):
    """The first video stream that is moving pictures, not an attached cover image; None if there is none."""
    from av.stream import Disposition

    cover = Disposition.attached_pic
    return next((s for s in container.streams.video if not s.disposition & cover), None)


def sample_step(spec: LoadSpec) -> float:
    """Seconds between sampled frames: 1/fps, widened so that a window holds at most max_frames."""
    return max(1.0 / spec.video_fps, spec.video_window_s / spec.max_frames)


def _frames(container, spec: LoadSpec, skip_nonref: bool) -> Iterator[tuple[float, float, Callable[[], np.ndarray]]]:
    """(time s, frame duration s, pixels()) of the decoded frames in presentation order; pixels() gives
    (H, W, 3) uint8 RGB, upright."""
    from av.error import FFmpegError

    stream = _picture_stream(container)
    if stream is None:
        raise LoadError("cannot open the video: no video stream")
    cc = stream.codec_context
    if cc is None:
        raise LoadError("cannot decode the video: FFmpeg has no decoder for its codec")
    cc.thread_count = 1
    tb = float(stream.time_base) if stream.time_base else None
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate and 0 < float(rate) < 1000 else None
    frame_s = 1.0 / fps if fps else 0.04
    origin = stream.start_time if stream.start_time is not None else None
    span, step = spec.video_window_s, sample_step(spec)
    margin = 2.5 * frame_s
    mode, bad, n = "DEFAULT", 0, 0

    def out(decoded) -> Iterator[tuple[float, float, Callable[[], np.ndarray]]]:
        nonlocal origin, n
        for frame in decoded:
            if frame.pts is None or tb is None:
                t = n * frame_s
            else:
                if origin is None:
                    origin = frame.pts
                t = (frame.pts - origin) * tb
            n += 1
            yield max(0.0, t), frame_s, _pixels(frame)

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except FFmpegError:  # a damaged container: what was read so far stands (as players do)
            packet = None
        if packet is None:  # flush the frames the decoder still holds, then stop
            try:
                held = cc.decode(None)
            except FFmpegError:
                held = []
            yield from out(held)
            if n == 0:
                raise LoadError("cannot read the video: the container is damaged before its first frame")
            return
        if skip_nonref and packet.pts is not None and tb is not None:
            want = "DEFAULT" if _near_grid((packet.pts - (origin or 0)) * tb, span, step, margin) else "NONREF"
            if want != mode:
                cc.skip_frame = mode = want
        try:
            decoded = packet.decode()
        except FFmpegError:
            bad += 1
            if bad > MAX_BAD_PACKETS:
                raise LoadError(f"more than {MAX_BAD_PACKETS} undecodable video packets") from None
            continue
        yield from out(decoded)


def _near_grid(t: float, span: float, step: float, margin: float) -> bool:
    """Whether time `t` (s) is within `margin` of a sampling time: the grid of `step` restarts at each window
    of `span` seconds, and a window's end counts as a sampling time."""
    if t < margin:
        return True
    w = math.floor(t / span)
    r = (t - w * span) % step
    return min(r, step - r, (w + 1) * span - t) <= margin


def _pixels(frame) -> Callable[[], np.ndarray]:
    """A frame's pixels, converted only when asked: () -> (H, W, 3) uint8 RGB, turned upright."""

    def get() -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3)
        turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
        return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb

    return get


def _windows(
    frames: Iterator[tuple[float, float, Callable[[], np.ndarray]]], audio: PcmReader | None, spec: LoadSpec
) -> Iterator[Segment]:
    span, step = spec.video_window_s, sample_step(spec)
    window, index = 0, 0  # current window, segments emitted
    next_t = 0.0
    taken: list[np.ndarray] = []  # (S, S, 3) uint8 each
    times: list[float] = []
    audio_done = 0  # samples of audio consumed
    last, seen = 0.0, 0

    def emit(end: float) -> Segment | None:
        nonlocal audio_done
        clip = None
        if audio is not None:
            want = max(0, round(end * SAMPLE_RATE) - audio_done)
            samples = audio.read(want)  # (<= want,) float32
            audio_done += want
            clip = Audio(samples) if len(samples) else None
        if not taken:
            return None
        return Segment(
            index=index,
            start=float(window * span),
            end=float(end),
            parts=(Video(np.stack(taken), np.asarray(times, np.float32), clip),),
        )

    for t, dur, get in frames:
        seen += 1
        half = 0.5 * dur  # a frame "at" a grid time may be up to half a frame before it
        last = max(last, t + dur)
        while int((t + half) // span) > window:  # this frame opens a later window: close the current one
            seg = emit((window + 1) * span)
            if seg is not None:
                yield seg
                index += 1
            taken, times = [], []
            window += 1
            next_t = window * span
        if t + half >= next_t and len(taken) < spec.max_frames:
            taken.append(_fit(get(), spec))
            times.append(max(0.0, t - window * span))
            while next_t <= t + half:
                next_t += step
    if seen == 0:
        raise LoadError("no decodable video frames")
    seg = emit(max(last, window * span))
    if seg is not None:
        yield seg
        index += 1
    if index == 0:
        raise LoadError("no decodable video frames")


def _fit(pixels: np.ndarray, spec: LoadSpec) -> np.ndarray:
    """A frame as the model takes it: whole when the model resizes it itself (spec.image_patches), else fitted."""
    return pixels if spec.image_patches is not None else fit_image(pixels, spec.image_size)


def reference_indices(total: int, native_fps: float, spec: LoadSpec) -> np.ndarray:
    """The frames transformers' video processors (EmbeddingGemma 2's `sample_frames`) keep of a clip of `total`
    decoded frames at `native_fps`: max(1, int(duration x fps)) frames, frame i being number int(i x native /
    fps) (at most the last), duration = total / native; past max_frames, `video_overflow`: uniform keeps
    linspace(0, n - 1, max_frames) of them, truncate the first max_frames."""
    duration = total / native_fps
    step = native_fps / spec.video_fps  # native frames per sampled frame
    n = max(1, int(duration * spec.video_fps))
    indices = np.array([min(total - 1, int(i * step)) for i in range(n)], dtype=int)
    if len(indices) > spec.max_frames:
        if spec.video_overflow == "truncate":
            return indices[: spec.max_frames]
        return indices[np.linspace(0, len(indices) - 1, spec.max_frames, dtype=int)]
    return indices


def _index_windows(
    frames: Iterator[tuple[float, float, Callable[[], np.ndarray]]], audio: PcmReader | None, spec: LoadSpec
) -> Iterator[Segment]:
    """Windows of round(video_window_s x native fps) decoded frames, each sampled as a clip of its own
    (`reference_indices`): a video within one window gets the very frames the reference processor takes."""
    span = spec.video_window_s
    window = index = pos = audio_done = 0
    per_window, step, native, next_i = 0, 1.0, 25.0, 0
    kept: dict[int, tuple[float, np.ndarray]] = {}  # frame number in the window -> (time in it, pixels)
    last: tuple[float, Callable[[], np.ndarray]] = (0.0, lambda: np.zeros((0, 0, 3), np.uint8))
    end = 0.0

    def close(end: float) -> Segment:
        nonlocal audio_done
        clip = None
        if audio is not None:
            want = max(0, round(end * SAMPLE_RATE) - audio_done)
            samples = audio.read(want)
            audio_done += want
            clip = Audio(samples) if len(samples) else None
        got = [kept[i] if i in kept else (last[0], _fit(last[1](), spec)) for i in reference_indices(pos, native, spec)]
        return Segment(
            index=index,
            start=float(window * span),
            end=float(end),
            parts=(Video(np.stack([p for _, p in got]), np.asarray([t for t, _ in got], np.float32), clip),),
        )

    for t, dur, get in frames:
        if per_window == 0:
            native = 1.0 / dur
            per_window, step = max(1, round(span * native)), native / spec.video_fps
        if pos == per_window:  # this frame opens the next window
            yield close((window + 1) * span)
            index, window, pos, next_i, kept = index + 1, window + 1, 0, 0, {}
        while int(next_i * step) < pos:
            next_i += 1
        here = max(0.0, t - window * span)
        if int(next_i * step) == pos:
            kept[pos] = (here, _fit(get(), spec))
        last, end = (here, get), max(end, t + dur)
        pos += 1
    if pos == 0:
        raise LoadError("no decodable video frames")
    yield close(max(end, window * span))


def _audio_track(path: str) -> PcmReader | None:
    """The video's audio as a lazily decoded 16 kHz reader, or None when it has no (readable) audio stream."""
    try:
        blocks = av_pcm_blocks(path)
    except LoadError:
        return None
    return None if blocks is None else _Tolerant(blocks)


class _Tolerant(PcmReader):
    """An audio track whose decoding errors end the track (the frames still count) instead of the file."""

    def read(self, n: int) -> np.ndarray:
        try:
            return super().read(n)
        except LoadError:
            self._eof = True
            return np.zeros(0, np.float32)
