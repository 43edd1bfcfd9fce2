"""Real media files for tests, written with real encoders (OpenCV, soundfile, Pillow, ffmpeg)."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np


def write_text(path, text: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def write_image(path, seed: int = 0, size=(48, 64)) -> str:
    """A PNG/JPEG of smooth random colour blobs (decodes to distinct vectors per seed)."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    img = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return str(path)


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    """(N, C) float32 sine."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1)


def write_wav(path, seconds: float = 1.0, freq: float = 440.0, sr: int = 16000) -> str:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
    return str(path)


def write_video(path, seconds: float = 3.0, fps: float = 10, size=(64, 48), seed: int = 0, fourcc: str = "mp4v",
                numbered: bool = False) -> str:
    """A video (no audio) of a colour gradient moving 2 pixels a frame (distinct vectors per seed), or, `numbered`,
    whose frame k is a flat grey of level k % 256 (so a frame's index can be read back)."""
    import cv2

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
    base = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    for k in range(int(round(seconds * fps))):
        w.write(np.full_like(base, k % 256) if numbered else np.roll(base, k * 2, axis=1))
    w.release()
    return str(path)


def ffmpeg(*args: object) -> None:
    """Run ffmpeg (quiet, overwriting) with `args`; skips the test, naming the apt-get line, where it is missing."""
    from tests.system import need_debian

    need_debian("ffmpeg")
    subprocess.run([shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-y", "-loglevel", "error", *map(str, args)],
                   check=True)


def mixed_tree(root, n_text: int = 3, n_image: int = 2) -> dict[str, str]:
    """A small folder of every modality; returns {name: path}."""
    files = {}
    for i in range(n_text):
        files[f"t{i}"] = write_text(os.path.join(root, "text", f"note{i}.txt"), f"note number {i} about topic {i * 7}")
    for i in range(n_image):
        files[f"i{i}"] = write_image(os.path.join(root, "img", f"pic{i}.png"), seed=i)
    files["a0"] = write_wav(os.path.join(root, "audio", "tone.wav"))
    files["v0"] = write_video(os.path.join(root, "video", "clip.mp4"))
    return files
