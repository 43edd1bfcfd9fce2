"""`gemb2 query`: an interleaved query (text and/or files) -> one vector -> nearest rows of a store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gemb2.data.discover import modality_of
from gemb2.data.segments import LoadError, load_file
from gemb2.parts import Part, Text


class QueryError(Exception):
    """A query input cannot be used (a file that does not load, an unsupported type...)."""


@dataclass
class Hit:
    rank: int
    score: float  # cosine similarity
    path: str
    modality: str
    segment: int
    start: float
    end: float
    text: str | None

    def to_dict(self) -> dict:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "path": self.path,
            "modality": self.modality,
            "segment": self.segment,
            "start": self.start,
            "end": self.end,
            "text": self.text,
        }


def query_parts(text: str | None, files: Sequence[tuple[str, str]], spec) -> list[Part]:
    """The parts of one interleaved query: the text first, then each (expected modality, path) in order.

    A long audio or video file contributes its first window, as `embed` cut it.
    """
    parts: list[Part] = [Text(text)] if text else []
    for expected, path in files:
        modality = modality_of(path)
        if modality != expected:
            raise QueryError(f"{path}: not a supported {expected} file (its extension says {modality or 'unknown'})")
        try:
            first = next(iter(load_file(path, modality, spec)), None)
        except LoadError as e:
            raise QueryError(f"{path}: {e}") from e
        except OSError as e:
            raise QueryError(f"{path}: {e.strerror or e}") from e
        if first is None:
            raise QueryError(f"{path}: nothing to embed in it")
        parts.extend(first.parts)
    if not parts:
        raise QueryError("a query needs some text or a file (--image, --audio, --video)")
    return parts


def query_vector(model, parts: Sequence[Part]) -> np.ndarray:
    """The query's vector. Text queries get the query prompt; a query of files alone is embedded as a document,
    so a file that is in the table finds itself with cosine 1.0."""
    task = "query" if any(isinstance(p, Text) for p in parts) else "document"
    return model.encode([list(parts)], task=task)[0]


def search(store, vector: np.ndarray, k: int, *, modality: str | None = None, where: str | None = None) -> list[Hit]:
    rows = store.search(vector, k, modality=modality, where=where)
    return [
        Hit(i + 1, r["score"], r["path"], r["modality"], r["segment"], r["start"], r["end"], r["text"])
        for i, r in enumerate(rows)
    ]
