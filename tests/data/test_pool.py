"""load_parallel(): spawned workers, dead workers, early close, and streaming with bounded memory."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading

import numpy as np
import soundfile as sf
from PIL import Image as PILImage

from gemb2.data.discover import FileEntry, discover
from gemb2.data.load import load_file
from gemb2.data.pool import FileDone, FileFailed, SegmentLoaded, content_hash, load_parallel
from gemb2.data.segments import LoadSpec
from tests.media import tone, write_video

SPEC = LoadSpec(image_size=32, audio_window_s=1.0, video_window_s=2.0, video_fps=2.0, text_window_tokens=8,
                text_overlap_tokens=2)


def mixed_tree(root) -> list[FileEntry]:
    root.mkdir(exist_ok=True)
    PILImage.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)).save(root / "a.png")
    sf.write(root / "b.wav", tone(2.5, 22050), 22050)
    (root / "c.txt").write_text(" ".join(f"word{i}" for i in range(30)))
    write_video(root / "d.avi", seconds=3, fps=10, fourcc="MJPG", numbered=True)
    (root / "e.jpg").write_text("not an image")
    (root / "f.wav").write_bytes(b"")
    return [e for e in discover([str(root)]) if isinstance(e, FileEntry)]


def collect(events) -> tuple[dict, dict]:
    """file_id -> list of segments, file_id -> terminal event; checks per-file order and one terminal event."""
    segs: dict[int, list] = {}
    ends: dict[int, object] = {}
    for ev in events:
        assert ev.file_id not in ends, f"event after the end of file {ev.file_id}"
        if isinstance(ev, SegmentLoaded):
            segs.setdefault(ev.file_id, []).append(ev.segment)
            assert ev.segment.index == len(segs[ev.file_id]) - 1
        else:
            ends[ev.file_id] = ev
    return segs, ends


def flat(seg) -> tuple:
    arrays = []
    for p in seg.parts:
        for name in ("pixels", "samples", "frames", "text"):
            if hasattr(p, name):
                v = getattr(p, name)
                arrays.append(v.tobytes() if isinstance(v, np.ndarray) else v)
    return seg.index, seg.start, seg.end, seg.text, tuple(arrays)


def test_two_workers_give_the_same_events_as_inline(tmp_path):
    entries = mixed_tree(tmp_path / "m")
    segs0, ends0 = collect(load_parallel(entries, SPEC, workers=0))
    segs2, ends2 = collect(load_parallel(entries, SPEC, workers=2, max_pending_segments=3))
    assert ends0 == ends2 and sorted(ends0) == list(range(len(entries)))
    assert {k: [flat(s) for s in v] for k, v in segs0.items()} == {k: [flat(s) for s in v] for k, v in segs2.items()}
    by_name = {os.path.basename(entries[i].path): ev for i, ev in ends0.items()}
    assert by_name["a.png"] == FileDone(0, 1, content_hash(entries[0].path))
    assert len(by_name["a.png"].content_hash) == 32
    assert by_name["b.wav"].n_segments == 3 and by_name["d.avi"].n_segments == 2
    assert by_name["e.jpg"] == FileFailed(4, "content is not an image (extension .jpg, looks like text)")
    assert by_name["f.wav"] == FileFailed(5, "empty file (0 bytes)")
    assert str(tmp_path) not in by_name["e.jpg"].reason


def run_with_timeout(fn, timeout=120):
    out: list = []
    err: list = []

    def target():
        try:
            out.append(fn())
        except BaseException as e:  # re-raised below in the test's thread
            err.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "load_parallel hung"
    if err:
        raise err[0]
    return out[0]


def test_killed_worker_is_reported_and_replaced(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    sf.write(root / "long.wav", tone(120.0, 16000), 16000)  # 120 one-second windows: the worker blocks in send
    for i in range(4):
        (root / f"t{i}.txt").write_text(f"text number {i}")
    entries = [e for e in discover([str(root)]) if isinstance(e, FileEntry)]
    long_id = [i for i, e in enumerate(entries) if e.path.endswith("long.wav")][0]

    def consume():
        events = []
        killed = False
        for ev in load_parallel(entries, SPEC, workers=2, max_pending_segments=1):
            events.append(ev)
            if not killed and isinstance(ev, SegmentLoaded) and ev.file_id == long_id:
                [holder] = [c for c in mp.active_children()
                            if c.name == "gemb2-loader" and read_positions(c.pid, entries[long_id].path)]
                os.kill(holder.pid, signal.SIGKILL)  # the worker that has the long file open, mid-file
                killed = True
        return events

    segs, ends = collect(run_with_timeout(consume))
    assert sorted(ends) == list(range(len(entries)))  # every file ends, once
    assert isinstance(ends[long_id], FileFailed)
    assert ends[long_id].reason == "loader worker process died (killed by signal 9) while loading"
    assert len(segs[long_id]) < 120
    assert all(isinstance(ends[i], FileDone) for i in ends if i != long_id)  # the replacement loaded the rest
    assert not [c for c in mp.active_children() if c.name == "gemb2-loader"]


def test_early_close_terminates_workers(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    sf.write(root / "long.wav", tone(60.0, 16000), 16000)
    entries = [e for e in discover([str(root)]) if isinstance(e, FileEntry)]
    gen = load_parallel(entries, SPEC, workers=1, max_pending_segments=1)
    assert isinstance(next(gen), SegmentLoaded)
    assert [c for c in mp.active_children() if c.name == "gemb2-loader"]
    gen.close()
    assert not [c for c in mp.active_children() if c.name == "gemb2-loader"]


def read_positions(pid: int, path: str) -> list[int]:
    """Offsets of the open descriptors of process `pid` on `path` (Linux /proc)."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    out.append(int(f.read().split("pos:")[1].split()[0]))
        except (FileNotFoundError, IndexError):
            pass
    return out


def test_long_video_streams_incrementally(tmp_path):
    """A 20-minute video: the first window arrives while the file is still being read, in process and in a worker."""
    path = str(tmp_path / "long.avi")
    write_video(path, seconds=20 * 60, fps=2, size=(32, 24), fourcc="MJPG", numbered=True)
    size = os.path.getsize(path)
    spec = LoadSpec(image_size=16, video_window_s=10.0, video_fps=1.0)

    it = load_file(path, "video", spec)
    first = next(it)
    assert (first.index, first.start, first.end) == (0, 0.0, 10.0)
    positions = read_positions(os.getpid(), path)
    assert positions and max(positions) < size // 4  # only the start of the file was read
    it.close()

    [entry] = [e for e in discover([path]) if isinstance(e, FileEntry)]
    gen = load_parallel([entry], spec, workers=1, max_pending_segments=2)
    ev = next(gen)
    assert isinstance(ev, SegmentLoaded) and ev.segment.index == 0
    [worker] = [c for c in mp.active_children() if c.name == "gemb2-loader"]
    positions = read_positions(worker.pid, path)  # the worker is blocked on the bounded pipe, mid-file
    assert positions and max(positions) < size // 4
    gen.close()
