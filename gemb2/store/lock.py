"""Who may write which part of a table: a deterministic split of files over ranks, and a lock per split.

Files are split over the ranks of a job by a hash of their stored path: h = the first 8 bytes of
BLAKE2b(path), shifted into [0, 2^62); rank r of W owns the h with floor(h * W / 2^62) = r, a
contiguous interval of the hash space. The split needs no coordination (every rank computes it),
is stable across runs, and a file's rows (writes *and* deletions) only ever come from its owner.

The lock is a record lock on that interval of one lock file per table: an open-file-description lock
(Linux F_OFD_SETLK: owned by the open file, so two runs in one process contend too, and closing another
descriptor of the file releases nothing), or a classic POSIX `lockf` where OFD locks do not exist:

- two runs whose files could overlap contend: a 1-rank run locks the whole space, rank r of W its
  interval, `gemb2 index` the whole space; the ranks of one job lock disjoint intervals and never
  wait for each other; two jobs of different sizes wait where their intervals overlap.
- a process that dies (even SIGKILL) loses its locks: no stale lock files to clean up.
- local only: the lock file lives next to the table for a local database or a shard folder; for an
  object-store URI (s3://, gs://, az://) it lives in ~/.cache/gemb2/locks, so it only serialises runs
  on one machine (runs on several machines must be ranks of one job, whose writes are disjoint and
  whose concurrent commits LanceDB retries).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

from gemb2.errors import BusyError
from gemb2.store.records import StoreError

SPACE = 1 << 62  # the hash space; byte offsets of the lock file (fits a signed 64-bit off_t)
POLL_S = 0.2


class LockBusy(BusyError, StoreError):
    """Another run holds (part of) the lock for longer than we were willing to wait."""


def path_hash(path: str) -> int:
    """A stored path's position in [0, SPACE): the same on every machine and every run."""
    raw = path.encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") >> 2


def owner(path: str, world_size: int) -> int:
    """The rank (0 .. world_size - 1) that embeds, updates and removes `path`."""
    return path_hash(path) * world_size // SPACE


def rank_interval(rank: int, world_size: int) -> tuple[int, int]:
    """[lo, hi) of the hash space that `rank` owns: exactly the h with owner == rank."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"rank must be in [0, world_size) and world_size >= 1; got rank {rank}, world_size {world_size}"
        )
    lo = -(-rank * SPACE // world_size)
    hi = -(-(rank + 1) * SPACE // world_size)
    return lo, hi


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def lock_file_for(uri: str, table: str) -> str:
    """Where the lock of table `table` in database (or shard folder, table "") `uri` lives."""
    if _is_local(uri):
        folder = uri[len("file://") :] if uri.startswith("file://") else uri
        return os.path.join(folder, f".{table or 'shards'}.gemb2-lock")
    digest = hashlib.sha256(f"{uri}\0{table}".encode()).hexdigest()[:24]
    return os.path.join(os.path.expanduser("~"), ".cache", "gemb2", "locks", f"{digest}.lock")


def _try_lock(fd: int, lo: int, hi: int) -> None:
    """Take an exclusive lock on bytes [lo, hi) of `fd` without blocking; OSError(EAGAIN/EACCES) if held."""
    ofd = getattr(fcntl, "F_OFD_SETLK", None)
    if ofd is None:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, hi - lo, lo, os.SEEK_SET)
        return
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks), padded to 32 bytes
    fcntl.fcntl(fd, ofd, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, lo, hi - lo, 0))


@contextmanager
def table_lock(uri: str, table: str, *, wait_s: float = 0.0, rank: int = 0, world_size: int = 1) -> Iterator[str]:
    """Hold the lock on `rank`'s share of the table for the duration of the block.

    Waits up to `wait_s` seconds for another run to let go, then raises LockBusy. Yields the lock file's path.
    """
    lo, hi = rank_interval(rank, world_size)
    path = lock_file_for(uri, table)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                _try_lock(fd, lo, hi)
                break
            except OSError as e:
                if e.errno not in (errno.EACCES, errno.EAGAIN):
                    raise
                if time.monotonic() >= deadline:
                    share = "the table" if world_size == 1 else f"rank {rank}/{world_size}'s share of the table"
                    raise LockBusy(
                        f"another gemb2 run is writing {share} {table!r} (lock {path}); "
                        f"gave up after waiting {wait_s:g}s (--wait)"
                    ) from None
                time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())) or POLL_S)
        yield path
    finally:
        os.close(fd)  # releases the lock (the last descriptor of its open file description)
