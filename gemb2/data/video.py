"""Video files -> windows of sampled frames with their audio, streamed.

Frames: OpenCV's `VideoCapture` (FFmpeg backend). Each window of `spec.video_window_s` seconds is sampled
on a grid starting at the window's start with a step of 1 / `spec.video_fps` seconds, widened to
window / `spec.max_frames` when that would give more than `max_frames` frames (the cap is spread evenly
over the window). Every frame is `grab()`bed (demuxed and decoded, not converted); only the frame
nearest each grid time is `retrieve()`d, converted and resized (`fit_image`). Frame times come from
the frame index and the stream's frame rate (constant-frame-rate video; the timestamps of variable-rate
video are used when the rate is unknown).

Audio: the first audio stream, decoded lazily by a second (PyAV) demuxer of the same file, resampled to
16 kHz mono and cut in step with the frame windows; a video without one gives Video(audio=None), and so
does a window past the end of the audio track.

Memory: one window of frames (at most max_frames small images) and one window of audio.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from gemb2.data.audio import PcmReader, av_pcm_blocks
from gemb2.data.segments import LoadError, Segment
from gemb2.data.spec import LoadSpec
from gemb2.parts import SAMPLE_RATE, Audio, Video, fit_image


def load_video(path: str, spec: LoadSpec) -> Iterator[Segment]:
    import cv2

    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise LoadError("cannot open the video: no decodable video stream")
    audio = _audio_track(path)
    try:
        yield from _windows(cap, audio, spec)
    finally:
        cap.release()
        if audio is not None:
            audio.close()


def sample_step(spec: LoadSpec) -> float:
    """Seconds between sampled frames: 1/fps, widened so that a window holds at most max_frames."""
    return max(1.0 / spec.video_fps, spec.video_window_s / spec.max_frames)


def _windows(cap, audio: PcmReader | None, spec: LoadSpec) -> Iterator[Segment]:
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if math.isfinite(fps) and 0 < fps < 1000 else None
    half = 0.5 / fps if fps else 0.0  # a frame "at" a grid time may be up to half a frame before it
    span, step = spec.video_window_s, sample_step(spec)
    window, index, n = 0, 0, 0  # current window, segments emitted, frames grabbed
    next_t = 0.0
    frames: list[np.ndarray] = []  # (S, S, 3) uint8 each
    times: list[float] = []
    audio_done = 0  # samples of audio consumed
    t = 0.0

    def emit(end: float) -> Segment | None:
        nonlocal audio_done
        clip = None
        if audio is not None:
            want = max(0, round(end * SAMPLE_RATE) - audio_done)
            samples = audio.read(want)  # (<= want,) float32
            audio_done += want
            clip = Audio(samples) if len(samples) else None
        if not frames:
            return None
        return Segment(index=index, start=float(window * span), end=float(end),
                       parts=(Video(np.stack(frames), np.asarray(times, np.float32), clip),))

    while cap.grab():
        t = n / fps if fps else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        n += 1
        while int((t + half) // span) > window:  # this frame opens a later window: close the current one
            seg = emit((window + 1) * span)
            if seg is not None:
                yield seg
                index += 1
            frames, times = [], []
            window += 1
            next_t = window * span
        if t + half >= next_t and len(frames) < spec.max_frames:
            ok, bgr = cap.retrieve()
            if ok and bgr is not None:
                frames.append(np.ascontiguousarray(fit_image(bgr, spec.image_size)[:, :, ::-1]))  # BGR -> RGB
                times.append(max(0.0, t - window * span))
            while next_t <= t + half:
                next_t += step
    duration = n / fps if fps else t
    seg = emit(max(duration, window * span))
    if seg is not None:
        yield seg
        index += 1
    if index == 0:
        raise LoadError("no decodable video frames")


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
