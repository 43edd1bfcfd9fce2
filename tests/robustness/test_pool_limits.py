"""Per-file limits of the loader pool: a time limit and a memory bound per worker; the run goes on."""

from __future__ import annotations

import multiprocessing as mp
import os
import struct

import numpy as np
import pytest
from PIL import Image as PILImage

from gemb2.data.discover import FileEntry, discover
from gemb2.data.pool import FileDone, FileFailed, load_parallel
from gemb2.data.segments import LoadSpec
from tests.data.test_pool import collect, run_with_timeout


def wav_header(data_bytes: int, rate: int = 44100, channels: int = 2) -> bytes:
    """A 16-bit PCM WAV header announcing `data_bytes` of samples."""
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", data_bytes))


def sparse_wav(path, data_bytes: int) -> None:
    """A real, valid WAV of `data_bytes` of silence that takes no disk space (a sparse file)."""
    with open(path, "wb") as f:
        f.write(wav_header(data_bytes))
        f.truncate(44 + data_bytes)


def entries_of(root) -> list[FileEntry]:
    return [e for e in discover([str(root)]) if isinstance(e, FileEntry)]


def loaders() -> list:
    return [c for c in mp.active_children() if c.name == "gemb2-loader"]


def test_a_file_over_the_time_limit_fails_and_the_run_goes_on(tmp_path):
    sparse_wav(tmp_path / "b-hours.wav", 2_000_000_000)  # 3.1 hours of 44.1 kHz stereo: far more than 1 s to decode
    for i in range(3):
        (tmp_path / f"t{i}.txt").write_text(f"text number {i}")
    entries = entries_of(tmp_path)
    spec = LoadSpec(audio_window_s=4 * 3600.0, file_timeout_s=1.0)  # one window: no segment within 1 s
    segs, ends = collect(run_with_timeout(lambda: list(load_parallel(entries, spec, workers=2)), timeout=60))
    slow = [i for i, e in enumerate(entries) if e.path.endswith(".wav")][0]
    assert ends[slow] == FileFailed(slow, "timed out after 1 s (file_timeout_s)")
    assert all(isinstance(ends[i], FileDone) for i in range(len(entries)) if i != slow)
    assert not loaders()


def test_a_long_file_that_makes_progress_is_not_cut(tmp_path):
    sparse_wav(tmp_path / "long.wav", 200_000_000)  # 19 minutes: ~2.5 s to decode here, a 60 s window every ~0.15 s
    entries = entries_of(tmp_path)
    spec = LoadSpec(audio_window_s=60.0, file_timeout_s=1.0)
    segs, ends = collect(run_with_timeout(lambda: list(load_parallel(entries, spec, workers=1)), timeout=120))
    assert isinstance(ends[0], FileDone) and ends[0].n_segments == 19


def test_time_blocked_on_a_slow_consumer_is_not_counted(tmp_path):
    """A consumer slower than the limit does not make a healthy worker time out (back-pressure is not load time)."""
    import soundfile as sf

    sf.write(tmp_path / "a.wav", np.zeros(16000 * 6, np.float32), 16000)  # six 1-second windows
    entries = entries_of(tmp_path)
    spec = LoadSpec(audio_window_s=1.0, file_timeout_s=0.5)

    def slow_consumer():
        import time

        out = []
        for ev in load_parallel(entries, spec, workers=1, max_pending_segments=1):
            out.append(ev)
            time.sleep(0.3)  # 6 x 0.3 s > the 0.5 s limit; the worker waits on us, not on the file
        return out

    segs, ends = collect(run_with_timeout(slow_consumer, timeout=60))
    assert ends[0] == FileDone(0, 6, ends[0].content_hash)


def test_a_file_over_the_memory_bound_fails_and_the_run_goes_on(tmp_path):
    # 8000 x 8000 RGBA = 64 MP, under the decompression-bomb guard: a legal image that needs ~0.5 GB to decode
    big = np.zeros((8000, 8000, 4), np.uint8)
    big[::97, ::89] = 255
    PILImage.fromarray(big).save(tmp_path / "a-big.png", compress_level=1)
    del big
    (tmp_path / "b.txt").write_text("a small text")
    PILImage.fromarray(np.full((20, 30, 3), 7, np.uint8)).save(tmp_path / "c.png")
    entries = entries_of(tmp_path)
    spec = LoadSpec(image_size=32, max_worker_memory_mb=200)
    segs, ends = collect(run_with_timeout(lambda: list(load_parallel(entries, spec, workers=1)), timeout=120))
    assert isinstance(ends[0], FileFailed), ends[0]
    assert ends[0].reason.startswith(("used more than 200 MiB of memory", "out of memory")), ends[0].reason
    assert isinstance(ends[1], FileDone) and isinstance(ends[2], FileDone)
    assert not loaders()


def test_the_same_image_loads_under_the_default_bound(tmp_path):
    big = np.zeros((8000, 8000, 4), np.uint8)
    big[::97, ::89] = 255
    PILImage.fromarray(big).save(tmp_path / "a-big.png", compress_level=1)
    del big
    entries = entries_of(tmp_path)
    segs, ends = collect(run_with_timeout(lambda: list(load_parallel(entries, LoadSpec(image_size=32), workers=1))))
    assert isinstance(ends[0], FileDone), ends[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_swapped_in_after_the_walk_is_refused_not_waited_on(tmp_path):
    (tmp_path / "a.txt").write_text("a text")
    entries = entries_of(tmp_path)
    os.unlink(tmp_path / "a.txt")
    os.mkfifo(tmp_path / "a.txt")  # no writer: a blocking open would wait forever
    segs, ends = collect(run_with_timeout(lambda: list(load_parallel(entries, LoadSpec(), workers=1)), timeout=60))
    assert ends[0] == FileFailed(0, "not a regular file (it changed since the directory walk)")
    segs, ends = collect(run_with_timeout(lambda: list(load_parallel(entries, LoadSpec(), workers=0)), timeout=60))
    assert ends[0] == FileFailed(0, "not a regular file (it changed since the directory walk)")


def test_limits_are_validated():
    with pytest.raises(ValueError, match="file_timeout_s must be positive, got 0"):
        LoadSpec(file_timeout_s=0)
    with pytest.raises(ValueError, match="max_worker_memory_mb must be >= 64, got 10"):
        LoadSpec(max_worker_memory_mb=10)
