"""The records a store keeps and the protocol every store implements."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np


class StoreError(Exception):
    """A store cannot be opened or written (wrong model for the table, unreadable manifest, disk full...)."""


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
    """What a store remembers of a file it has embedded."""

    path: str  # as stored (see storage_path)
    size: int
    mtime_ns: int
    content_hash: str
    model: str
    n_segments: int

    def matches(self, size: int, mtime_ns: int, model: str) -> bool:
        return self.size == size and self.mtime_ns == mtime_ns and self.model == model


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
    """A place for vectors. `write` and `remove` are idempotent, so a killed run is finished by rerunning it."""

    def known_files(self) -> dict[str, FileRecord]:
        """Every file the store holds rows for, by stored path."""
        ...

    def write(self, files: Sequence[EmbeddedFile]) -> None:
        """Add or replace the rows of these files (a file's old rows beyond its new count are dropped)."""
        ...

    def remove(self, paths: Sequence[str]) -> None:
        """Drop every row of these (stored) paths."""
        ...

    def close(self) -> None: ...
