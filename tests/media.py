"""Real media files for tests, written with real encoders (OpenCV, soundfile, Pillow)."""

from __future__ import annotations

import os

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


def write_wav(path, seconds: float = 1.0, freq: float = 440.0, sr: int = 16000) -> str:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
    return str(path)


def write_video(path, seconds: float = 3.0, fps: int = 10, size=(64, 48), seed: int = 0) -> str:
    """An mp4v video (no audio) of a moving colour gradient."""
    import cv2

    os.makedirs(os.path.dirname(path), exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert w.isOpened()
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    for i in range(int(seconds * fps)):
        w.write(np.roll(base, i * 2, axis=1))
    w.release()
    return str(path)


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
