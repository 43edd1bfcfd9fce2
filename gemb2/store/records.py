"""The records a store keeps and the protocol every store implements."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from gemb2.errors import FatalError, UsageError


class StoreError(FatalError):
    """A store cannot be opened or written (unreadable manifest, disk full...)."""


class WrongModelError(UsageError, StoreError):
    """The table or shard folder holds vectors of another model: a usage error (another --table, or --rebuild)."""


class StoreUsageError(UsageError, StoreError):
    """A store cannot do what was asked as asked (an invalid table name, no full-text index yet): exit 2."""


def storage_path(path: str) -> str:
    """A path as stored: valid UTF-8 text. Bytes that are not UTF-8 (surrogate-escaped by Python) become \\xNN."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def segment_key(path: str, segment: int) -> str:
    """The stable primary key of a row: a hash of the file's raw path bytes and the segment index."""
    raw = path.encode("utf-8", "surrogateescape")
    return f"{hashlib.blake2b(raw, digest_size=12).hexdigest()}:{segment:06d}"


@dataclass(frozen=True)
class FileRecord:
    """What a store remembers of a file it has embedded (n_segments 0: a file with nothing to embed)."""

    path: str  # as stored (see storage_path)
    size: int
    mtime_ns: int
    content_hash: str
    model: str
    n_segments: int
    segmentation: int = 1  # the loaders' segmentation version its rows were cut with (see data/segments.py)

    def matches(self, size: int, mtime_ns: int, model: str, segmentation: int = 1) -> bool:
        """Whether rows made from this record still stand for a file of `size` and `mtime_ns`: same file,
        same model, and cut by the current segmentation (rows cut by an older one are re-embedded)."""
        return (
            self.size == size
            and self.mtime_ns == mtime_ns
            and self.model == model
            and self.segmentation >= segmentation
        )


@dataclass(frozen=True)
class FailureRecord:
    """A file whose content could not be embedded, remembered so that an unchanged rerun does not decode it
    again. Only content failures are remembered (not a time limit, the memory bound or a dead worker), and
    only until the file, the model or the gemb2 version changes."""

    path: str  # as stored
    size: int
    mtime_ns: int
    model: str
    reason: str
    version: str  # the gemb2 version that failed on it: a newer gemb2 tries again

    def matches(self, size: int, mtime_ns: int, model: str, version: str) -> bool:
        return self.size == size and self.mtime_ns == mtime_ns and self.model == model and self.version == version


@dataclass
class SegmentRow:
    """One embedded segment of a file: one row."""

    segment: int
    modality: str
    start: float
    end: float
    text: str | None
    vector: np.ndarray  # (dim,) float32, L2-normalised


@dataclass
class EmbeddedFile:
    """All the rows of one file, written together."""

    record: FileRecord
    rows: list[SegmentRow] = field(default_factory=list)


class Store(Protocol):
    """A place for vectors: what the embed pipeline and the CLI use of a LanceStore or a ShardStore, and no more
    (search, indexes and export are LanceStore's own). `write` and `remove` are idempotent, so a killed run is
    finished by rerunning it.

    `model`, `dim` and `source` are read from what the store holds when it is opened; a new (or dropped) store
    has them None / None / "" until its user sets them, before the first `write`.
    """

    model: str | None  # the id of the model whose vectors it holds (None: nothing written yet)
    dim: int | None  # the vectors' dimension (None: nothing written yet)
    source: str  # how to load that model again: a preset name or a model folder
    where: str  # for a person: "table 'media' in /data/gemb2/lancedb", "shards in ./out"

    def known_files(self) -> dict[str, FileRecord]:
        """Every file the store holds a record for (rows, or none for a file with nothing to embed), by path."""
        ...

    def known_failures(self) -> dict[str, FailureRecord]:
        """The remembered content failures, by stored path."""
        ...

    def write(self, files: Sequence[EmbeddedFile], failures: Sequence[FailureRecord] = ()) -> None:
        """Add or replace the rows of these files (a file's old rows beyond its new count are dropped; a file
        with no rows is recorded as such) and remember these failures. A file written forgets its failure."""
        ...

    def remove(self, paths: Sequence[str]) -> None:
        """Drop every row, record and remembered failure of these (stored) paths."""
        ...

    def drop(self) -> None:
        """Drop everything (for --rebuild)."""
        ...

    def close(self) -> None:
        """Let go of the files or tables; the store is not used after this."""
        ...
