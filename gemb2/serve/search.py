"""/v1/search: the table the server was started on, searched as `gemb2 query` searches it.

    {"text": "a red car", "parts": [{"type": "image", "data": "<base64>", "format": "jpg"}], "k": 10,
     "modality": "image", "where": "path LIKE '%/2024/%'", "dim": 256, "hybrid": false,
     "refine_factor": 5, "nprobes": 5, "ef": null, "model": null, "db": null, "table": null}

The text comes first, then the parts, as one interleaved query (`gemb2 query TEXT --image F`); a query with text
gets the query prompt, one of media alone is embedded as a document (gemb2.pipeline.query.query_vector). The
answer is {"object": "list", "data": [row, ...]} with the rows `gemb2 query --json` prints. `db` and `table`, when
given, must name the table served (a client that meant another table hears so and searches elsewhere). The
table is re-read at most once a second, so rows that `gemb2 embed` commits are found without a restart.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from gemb2.parts import Part, Text

from .inputs import ApiError, dim_field, item_parts, model_field

MODALITIES = ("text", "image", "audio", "video", "mixed")
REFRESH_S = 1.0


@dataclass
class SearchRequest:
    parts: list[Part]
    text: str | None
    k: int
    modality: str | None
    where: str | None
    hybrid: bool
    dim: int | None
    tuning: object
    model: str | None


def _int(body: dict, key: str, default: int | None, low: int) -> int | None:
    v = body.get(key, default)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise ApiError(400, f"'{key}' must be an integer >= {low}, not {v!r}")
    return v


def _str(body: dict, key: str) -> str | None:
    v = body.get(key)
    if v is not None and not isinstance(v, str):
        raise ApiError(400, f"'{key}' must be a string")
    return v or None


def search_request(body: object, spec_for, max_k: int) -> SearchRequest:
    from gemb2.store.index import QueryTuning

    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    text = _str(body, "text")
    raw = body.get("parts") or []
    parts: list[Part] = [Text(text)] if text else []
    if raw:
        parts += item_parts(raw, "parts", spec_for)
    if not parts:
        raise ApiError(400, "give a query 'text' and/or 'parts' (images, audio, video)")
    k = _int(body, "k", 10, 1) or 10
    if k > max_k:
        raise ApiError(400, f"'k' is {k}; at most {max_k}")
    modality = _str(body, "modality")
    if modality is not None and modality not in MODALITIES:
        raise ApiError(400, f"'modality' must be text, image, audio, video or mixed, not {modality!r}")
    refine = _int(body, "refine_factor", 5, 0)
    tuning = QueryTuning(
        refine_factor=refine or None, nprobes=_int(body, "nprobes", 5, 1), ef=_int(body, "ef", None, 1)
    )
    hybrid = body.get("hybrid", False)
    if not isinstance(hybrid, bool):
        raise ApiError(400, "'hybrid' must be true or false")
    dim = dim_field(body, "dim")
    return SearchRequest(parts, text, k, modality, _str(body, "where"), hybrid, dim, tuning, model_field(body))


def same_db(a: str, b: str) -> bool:
    """Whether two database URIs name the same database (local folders compared by their real path)."""
    from gemb2.pipeline.open import local_db_path

    pa, pb = local_db_path(a), local_db_path(b)
    if pa is None or pb is None:
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(pa) == os.path.realpath(pb)


class Table:
    """The served table: opened at start, re-read at most every REFRESH_S seconds."""

    def __init__(self, uri: str, name: str):
        from gemb2.pipeline.open import open_table

        self.uri, self.name = uri, name
        self.store = open_table(uri, name)
        self._read_at = time.monotonic()
        self._lock = threading.Lock()

    def check(self, body: dict) -> None:
        """A request that names a db or table must name this one (409: the client meant another)."""
        db, table = body.get("db"), body.get("table")
        if (isinstance(table, str) and table != self.name) or (isinstance(db, str) and not same_db(db, self.uri)):
            raise ApiError(409, f"this server searches table {self.name!r} in {self.uri}", "wrong_table")

    def fresh(self):
        with self._lock:
            if time.monotonic() - self._read_at > REFRESH_S:
                self.store.refresh()
                self._read_at = time.monotonic()
        return self.store

    def search(self, vec, q: SearchRequest) -> list[dict]:
        """The rows `gemb2 query --json` would print for the query vector `vec` (one search, in this thread)."""
        from gemb2.pipeline.query import hybrid_search, search

        store = self.fresh()
        kw = dict(modality=q.modality, where=q.where, tuning=q.tuning, dim=q.dim)
        try:
            if q.hybrid:
                hits = hybrid_search(store, vec, q.text or "", q.k, **kw)  # type: ignore[arg-type]
            else:
                hits = search(store, vec, q.k, **kw)  # type: ignore[arg-type]
        except ValueError as e:  # LanceDB's "Invalid input" for a bad filter
            if q.where is None or not str(e).startswith("Invalid input"):
                raise
            raise ApiError(400, f"query failed: {e}") from None
        return [h.to_dict() for h in hits]
