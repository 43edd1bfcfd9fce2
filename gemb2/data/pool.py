"""Load many files in parallel worker processes, as one ordered-per-file stream of events.

    for ev in load_parallel(entries, spec, workers=4):
        SegmentLoaded(file_id, segment)             # file_id = index into entries; a file's segments in order
        FileDone(file_id, n_segments, content_hash)  # after the file's last segment
        FileFailed(file_id, reason)                  # instead of FileDone; discard that file's segments

Design (the parent is the scheduler; no shared queue whose pipe a dying worker could corrupt):
- Workers are `spawn`ed processes (LanceDB and several codecs are not fork-safe). Each has its own task
  pipe and its own result pipe; the parent gives each worker at most PREFETCH files at a time and
  multiplexes the result pipes and the process sentinels with `multiprocessing.connection.wait`.
- A worker announces each file it starts. When a worker dies (a codec segfaults, the OOM killer), the
  file it had started is reported FileFailed, the files it had not started go back to the queue, and a
  replacement worker is started. A run never hangs on a dead worker.
- Memory is bounded: the parent buffers at most `max_pending_segments` segments AND `max_pending_bytes`
  bytes of them (`segment_nbytes`: pixels, samples, text; one segment is always let in) and reads a pipe
  only when it has room; a worker whose pipe is full blocks in `send`. In flight at any time: the buffer
  plus about one segment per worker (held by the worker). A count alone is no bound on video: one window
  of gemb2-mini is 32 frames of 224x224 plus 30 s of audio, 6.7 MB; 256 of them were 1.7 GB.
- The content hash (blake2b, 16-byte digest as 32 hex chars) is computed by the worker after the
  segments, streaming the file in 1 MiB blocks.
- Per-file limits (`spec.file_timeout_s`, `spec.max_worker_memory_mb`; see `limits.py`): a worker that
  spends longer than the time limit on one step of a file (opening it and producing its first segment,
  any next segment, or finishing it; time blocked on a full result pipe is not counted) is killed and the
  file fails "timed out after N s": a hang is caught, a long but progressing file is not; a worker
  whose resident memory passes the bound (a watchdog thread reads /proc every WATCH_INTERVAL_S) is killed
  and its file fails with that reason; RLIMIT_AS, set by each worker on itself, makes a sudden huge
  allocation fail inside the worker (a MemoryError: that file's failure) before the watchdog can see it.
  Either way a replacement worker is started and the run goes on.
- Closing the generator early (the consumer stops iterating) terminates the workers.
- `workers=0` loads in the calling process, with the same events (for debugging and tests).

Segments travel pickled over the pipes (numpy arrays pickle as one raw buffer); nothing is stored.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import BinaryIO

from gemb2.data.discover import FileEntry
from gemb2.data.limits import limit_address_space, preload_decoders, resident_bytes
from gemb2.data.load import load_file
from gemb2.data.segments import LoadError, LoadSpec, Segment

PREFETCH = 2  # files handed to a worker ahead of time (one loading, one queued)
HASH_BLOCK = 1 << 20
WATCH_INTERVAL_S = 0.2  # how often the memory watchdog reads the workers' resident memory
MAX_PENDING_BYTES = 128 << 20  # default bound on the bytes of loaded segments the parent buffers


@dataclass
class SegmentLoaded:
    file_id: int
    segment: Segment


@dataclass
class FileDone:
    file_id: int
    n_segments: int
    content_hash: str  # blake2b, 32 hex chars, of the file's bytes
    # what the codecs and libraries printed while it loaded (C-level stderr in a worker, Python warnings):
    # never printed by the pool; a CLI shows it with --verbose
    notes: tuple[str, ...] = field(default=(), compare=False)


@dataclass
class FileFailed:
    file_id: int
    reason: str  # without the path
    out_of_memory: bool = field(default=False, compare=False)  # the worker that loaded it is then replaced
    # not about the file's content (a time limit, the memory bound, a worker that died): worth trying again
    transient: bool = field(default=False, compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)  # as FileDone.notes; the likeliest cause is in reason


Event = SegmentLoaded | FileDone | FileFailed


def content_hash(path: str) -> str:
    """blake2b (digest_size=16, 32 hex chars) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def load_file_events(
    file_id: int, path: str, modality: str, spec: LoadSpec, *, stderr_file: BinaryIO | None = None
) -> Iterator[Event]:
    """The events of one file, loaded here: its segments, then FileDone, or FileFailed at the first error.

    What the libraries say while the file's segments are made is captured, never printed: Python warnings
    always, and the C-level stderr too when `stderr_file` (a binary file that fd 2 points at: a worker's)
    is given. It goes on the final event's `notes`; a failure's reason gets its likeliest line.
    """
    n = 0
    notes: list[str] = []
    try:
        segments = load_file(path, modality, spec)
        while True:
            with _captured(notes, stderr_file, path):
                seg = next(segments, None)
            if seg is None:
                break
            yield SegmentLoaded(file_id, seg)
            n += 1
        digest = content_hash(path)
    except Exception as e:  # any loader exception is this file's failure, never the run's
        oom = isinstance(e, MemoryError)
        yield FileFailed(
            file_id, with_note(failure_reason(e, path), notes), out_of_memory=oom, transient=oom, notes=tuple(notes)
        )
        return
    yield FileDone(file_id, n, digest, notes=tuple(notes))


MAX_NOTES = 20  # lines of library output kept per file
NOTE_CHARS = 160  # ... each cut to this length
_NOTE_READ = 64 * 1024  # bytes of captured stderr read per loading step


@contextmanager
def _captured(notes: list[str], stderr_file, path: str) -> Iterator[None]:
    """Record Python warnings (and what fd 2 receives, into `stderr_file`) as lines appended to `notes`."""
    if stderr_file is not None:
        stderr_file.seek(0)
        stderr_file.truncate()
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        lines = [f"{w.category.__name__}: {w.message}" for w in caught]
        if stderr_file is not None:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            stderr_file.seek(0)
            lines = stderr_file.read(_NOTE_READ).decode("utf-8", "replace").splitlines() + lines
        for line in lines:
            line = " ".join(line.replace(path, "<file>").split())[:NOTE_CHARS]
            if line and line not in notes and len(notes) < MAX_NOTES:
                notes.append(line)


def with_note(reason: str, notes: Sequence[str]) -> str:
    """`reason`, with the captured line likeliest to explain it (the last that says error, else the last)."""
    if not notes:
        return reason
    errors = [n for n in notes if "error" in n.lower() or "fail" in n.lower()]
    note = (errors or notes)[-1][:100]
    return reason if note in reason else f"{reason} ({note})"


def failure_reason(e: BaseException, path: str) -> str:
    """A one-line reason for a person, without the path (the caller reports the path itself)."""
    if isinstance(e, LoadError):
        reason = str(e)
    elif isinstance(e, OSError) and e.strerror:
        reason = e.strerror
    elif isinstance(e, MemoryError):  # RLIMIT_AS of a worker (max_worker_memory_mb), or the machine's
        reason = f"out of memory{': ' + str(e) if str(e) else ''}"
    else:  # a decoder's own exception (soundfile's ValueError, ...): its message, never a Python type name
        cause = str(e).strip()
        reason = f"cannot decode: {cause}" if cause else "cannot decode the file"
    return reason.replace(path, "<file>").splitlines()[0] if reason.strip() else "cannot decode the file"


def segment_nbytes(seg: Segment) -> int:
    """Bytes a segment holds (its arrays and text), as the pool counts them against max_pending_bytes."""
    n = len(seg.text or "")
    for p in seg.parts:
        for name in ("text", "pixels", "samples", "frames", "times"):
            v = getattr(p, name, None)
            nbytes = getattr(v, "nbytes", None)
            n += nbytes if isinstance(nbytes, int) else len(v) if isinstance(v, str) else 0
        audio = getattr(p, "audio", None)
        n += audio.samples.nbytes if audio is not None else 0
    return n


def load_parallel(
    entries: Sequence[FileEntry],
    spec: LoadSpec,
    *,
    workers: int,
    max_pending_segments: int = 256,
    max_pending_bytes: int = MAX_PENDING_BYTES,
) -> Iterator[Event]:
    """Load `entries` in `workers` processes (0: in this process) and yield their events as they come.

    Events of one file come in segment order; events of different files may interleave.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    if max_pending_segments < 1:
        raise ValueError(f"max_pending_segments must be >= 1, got {max_pending_segments}")
    if max_pending_bytes < 1:
        raise ValueError(f"max_pending_bytes must be >= 1, got {max_pending_bytes}")
    if workers == 0:
        for i, e in enumerate(entries):
            yield from load_file_events(i, e.path, e.modality, spec)
        return
    if not entries:
        return
    pool = _Pool(entries, spec, min(workers, len(entries)), max_pending_segments, max_pending_bytes)
    try:
        yield from pool.run()
    finally:
        pool.shutdown()


class _Worker:
    def __init__(self, ctx, spec: LoadSpec):
        task_recv, self.tasks = ctx.Pipe(duplex=False)
        self.results, result_send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(
            target=_worker_main, args=(task_recv, result_send, spec), daemon=True, name="gemb2-loader"
        )
        self.proc.start()
        task_recv.close()  # the child holds its ends; closing ours lets a dead child read as EOF
        result_send.close()
        self.assigned: deque[int] = deque()  # file ids given, in order; the first may be started
        self.started: int | None = None
        self.deadline: float | None = None  # monotonic time by which the started file must send something
        self.kill_reason: str | None = None  # set when the pool kills it for a limit: its file's failure reason
        self.retiring = False  # it said it will exit (after running out of memory)
        self.alive = True

    def kill(self, reason: str) -> None:
        """Kill the process for breaking a limit; the main loop reports `reason` for its file."""
        if self.kill_reason is None:
            self.kill_reason = reason
        try:
            self.proc.kill()
        except (OSError, ValueError):
            pass


class _Pool:
    def __init__(
        self, entries: Sequence[FileEntry], spec: LoadSpec, workers: int, max_pending: int, max_pending_bytes: int
    ):
        self.entries = entries
        self.spec = spec
        self.ctx = mp.get_context("spawn")
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.buffered_bytes = 0
        self.todo: deque[int] = deque(range(len(entries)))
        self.buffer: deque[Event] = deque()
        self.buffered_segments = 0
        self.deaths_without_progress = 0
        self.workers = [_Worker(self.ctx, spec) for _ in range(workers)]
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch_memory, daemon=True, name="gemb2-loader-watchdog")
        self._watchdog.start()

    def run(self) -> Iterator[Event]:
        remaining = len(self.entries)
        while remaining:
            self._assign()
            self._receive(block=not self.buffer)
            while self.buffer:
                ev = self.buffer.popleft()
                if isinstance(ev, SegmentLoaded):
                    self.buffered_segments -= 1
                    self.buffered_bytes -= segment_nbytes(ev.segment)
                else:
                    remaining -= 1
                yield ev
                if self._room():
                    break  # go back and read the pipes while there is room

    def _assign(self) -> None:
        for w in list(self.workers):
            while w.alive and self.todo and len(w.assigned) < PREFETCH:
                fid = self.todo.popleft()
                e = self.entries[fid]
                try:
                    w.tasks.send((fid, e.path, e.modality))
                except OSError:  # the worker died (or was killed for a limit) since we last looked
                    self.todo.appendleft(fid)
                    self._read(w, drain=True)
                    if w.alive:
                        self._replace(w)
                    break
                w.assigned.append(fid)

    def _receive(self, block: bool) -> None:
        """Move ready messages from the workers into the buffer while it has room; handle dead workers."""
        if not self._room():
            return
        by_conn = {w.results: w for w in self.workers}
        by_sentinel = {w.proc.sentinel: w for w in self.workers}
        timeout = self._until_next_deadline() if block else 0
        ready = wait(list(by_conn) + list(by_sentinel), timeout=timeout)
        self._enforce_deadlines()
        for obj in ready:
            w = by_conn.get(obj) or by_sentinel.get(obj)
            if w is None or not w.alive:
                continue
            if obj in by_conn:
                self._read(w)
            else:
                self._read(w, drain=True)
                if w.alive:
                    self._replace(w)

    def _read(self, w: _Worker, drain: bool = False) -> None:
        try:
            while w.results.poll() and (drain or self._room()):
                self._handle(w, w.results.recv())
        except (EOFError, OSError):
            if w.alive:
                w.proc.join(timeout=5)
                self._replace(w)

    def _room(self) -> bool:
        """Whether the buffer may take another segment (an empty buffer always may)."""
        return self.buffered_segments == 0 or (
            self.buffered_segments < self.max_pending and self.buffered_bytes < self.max_pending_bytes
        )

    def _until_next_deadline(self) -> float | None:
        """Seconds until the earliest file deadline (None: no file is being loaded)."""
        deadlines = [w.deadline for w in self.workers if w.alive and w.deadline is not None]
        return max(0.0, min(deadlines) - time.monotonic()) + 0.01 if deadlines else None

    def _enforce_deadlines(self) -> None:
        """Kill the workers whose file is past its time limit and that have sent nothing we have not read."""
        now = time.monotonic()
        for w in self.workers:
            if w.alive and w.deadline is not None and now > w.deadline and not w.results.poll():
                w.kill(f"timed out after {self.spec.file_timeout_s:g} s (file_timeout_s)")

    def _watch_memory(self) -> None:
        """Watchdog thread: kill a worker whose resident memory passes spec.max_worker_memory_mb."""
        bound = self.spec.max_worker_memory_mb << 20
        while not self._stop.wait(WATCH_INTERVAL_S):
            for w in list(self.workers):
                rss = resident_bytes(w.proc.pid) if w.alive and w.proc.pid else None
                if rss is not None and rss > bound:
                    w.kill(f"used more than {self.spec.max_worker_memory_mb} MiB of memory (max_worker_memory_mb)")

    def _handle(self, w: _Worker, msg: tuple) -> None:
        kind, fid = msg[0], msg[1]
        if kind == "start":
            w.started = fid
            w.deadline = time.monotonic() + self.spec.file_timeout_s
            self.deaths_without_progress = 0
            return
        if kind == "seg":
            self.buffer.append(SegmentLoaded(fid, msg[2]))
            self.buffered_segments += 1
            self.buffered_bytes += segment_nbytes(msg[2])
            w.deadline = time.monotonic() + self.spec.file_timeout_s - msg[3]  # msg[3]: seconds it took to load
            return
        w.assigned.remove(fid)
        w.started = None
        w.deadline = None
        if kind == "fail" and msg[3]:
            w.retiring = True  # it exits after an out-of-memory failure; its replacement is not a crash
        self.buffer.append(
            FileDone(fid, msg[2], msg[3], notes=msg[4])
            if kind == "done"
            else FileFailed(fid, msg[2], transient=msg[3], notes=msg[4])
        )

    def _replace(self, w: _Worker) -> None:
        """A worker died: fail its started file, requeue the rest, start a replacement."""
        w.alive = False
        if w.proc.is_alive():
            w.proc.kill()
        w.proc.join()
        code = w.proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if w.started is not None:
            reason = w.kill_reason or f"loader worker process died ({how}) while loading"
            self.buffer.append(FileFailed(w.started, reason, transient=True))
            w.assigned.remove(w.started)
        elif not w.retiring:
            self.deaths_without_progress += 1
            if self.deaths_without_progress > 2 * len(self.workers) + 2:
                raise RuntimeError(f"loader worker processes keep dying before loading anything ({how})")
        self.todo.extendleft(reversed(w.assigned))
        _close(w)
        self.workers[self.workers.index(w)] = _Worker(self.ctx, self.spec)

    def shutdown(self) -> None:
        self._stop.set()
        self._watchdog.join()
        for w in self.workers:
            if w.alive and w.proc.is_alive():
                try:
                    w.tasks.send(None)
                except OSError:
                    pass
        for w in self.workers:
            if not w.assigned:
                w.proc.join(timeout=2)  # idle: it exits on None
            if w.proc.is_alive():
                w.proc.terminate()  # busy (the consumer stopped early) or stuck
                w.proc.join(timeout=2)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            _close(w)


def _close(w: _Worker) -> None:
    for conn in (w.tasks, w.results):
        try:
            conn.close()
        except OSError:
            pass


def _worker_main(tasks, results, spec: LoadSpec) -> None:
    """A loader process: (file_id, path, modality) tasks in, ("start"|"seg"|"done"|"fail", file_id, ...) out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    preload_decoders()  # before the cap: the cap is on what loading files adds, not on the libraries
    limit_address_space(2 * spec.max_worker_memory_mb << 20)
    # fd 2 goes to a file: codecs and libraries (libtiff, libmpg123, FFmpeg...) print there, and what they say
    # while a file loads travels on its event (load_file_events); stderr carries the parent's lines only
    stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 (open for the worker's whole life)
    os.dup2(stderr_file.fileno(), 2)
    while True:
        try:
            task = tasks.recv()
        except EOFError:
            return
        if task is None:
            return
        fid, path, modality = task
        results.send(("start", fid))
        since = time.monotonic()  # the end of the previous send: the time limit counts loading, not waiting on us
        for ev in load_file_events(fid, path, modality, spec, stderr_file=stderr_file):
            if isinstance(ev, SegmentLoaded):
                results.send(("seg", fid, ev.segment, time.monotonic() - since))
                since = time.monotonic()
            elif isinstance(ev, FileDone):
                results.send(("done", fid, ev.n_segments, ev.content_hash, ev.notes))
            else:
                results.send(("fail", fid, ev.reason, ev.out_of_memory, ev.notes))
                if ev.out_of_memory:
                    return  # a codec that met a failed allocation may be left corrupt: start afresh
