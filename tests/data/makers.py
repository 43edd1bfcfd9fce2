"""Real media files for the loader tests, written by real encoders into tmp_path."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    """(N, C) float32 sine."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1)


def write_video(path, seconds: float, fps: float, size=(64, 48), fourcc: str = "mp4v") -> None:
    """A video whose frame k is filled with grey level k % 256 (so a frame's index can be read back)."""
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
    for k in range(int(round(seconds * fps))):
        w.write(np.full((size[1], size[0], 3), k % 256, np.uint8))
    w.release()


def ffmpeg(*args: str) -> None:
    from tests.system import need_debian

    need_debian("ffmpeg")
    exe = shutil.which("ffmpeg")
    subprocess.run([exe, "-y", "-loglevel", "error", *args], check=True)
