"""`gemb2 search QUERY [PATH...]`: bring the table up to date with PATH as `gemb2 embed PATH` does (the same
plan: new and changed files embedded, rows of deleted ones removed), within a time budget, then answer the
query among the rows under PATH.

    done = index_paths(["."], source=None, db=uri, table="media", budget=10.0)
    hits = run_query(uri, "media", replace(q, where=under_paths(["."], q.where)))

Paths are matched as `gemb2 embed` stores them: absolute (os.path.abspath, symlinks not resolved) and made
valid UTF-8 (storage_path); the filter is `starts_with`, so a path's quotes, `%` and `_` are literal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gemb2.errors import BusyError, UsageError
from gemb2.pipeline.embed import EmbedReport, Progress
from gemb2.store.lance import sql_str
from gemb2.store.records import storage_path


def under_paths(roots: Sequence[str], where: str | None = None) -> str:
    """A SQL filter for the rows of files at or under `roots` (and `where`, if given)."""
    terms = []
    for r in roots:
        p = storage_path(os.path.abspath(r))
        terms.append(f"path = {sql_str(p)} OR starts_with(path, {sql_str(p.rstrip(os.sep) + os.sep)})")
    scoped = " OR ".join(f"({t})" for t in terms)
    return f"({where}) AND ({scoped})" if where else scoped


class Budget:
    """A progress that also keeps the time: the budget starts when the files to embed are known (`start`) and
    `expired()` says when it is spent. `seconds` None: no limit."""

    def __init__(self, seconds: float | None, progress: Progress | None = None):
        self.seconds, self.progress = seconds, progress
        self.total = self.done = 0
        self.deadline: float | None = None

    def start(self, total: int) -> None:
        self.total = total
        if self.seconds is not None:
            self.deadline = time.monotonic() + self.seconds
        if self.progress:
            self.progress.start(total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.progress:
            self.progress.advance(n)

    def close(self) -> None:
        if self.progress:
            self.progress.close()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


@dataclass
class Indexed:
    """What the indexing step did: `total` files new or changed, `done` of them handled (embedded or failed)."""

    total: int = 0
    done: int = 0
    busy: str = ""  # another run held the table: why nothing was indexed
    report: EmbedReport | None = None
    model: Any = None  # the model, if indexing loaded it (the query can use it)

    @property
    def rest(self) -> int:
        return self.total - self.done


def index_paths(
    roots: Sequence[str],
    *,
    source: str | None,
    default_source: str,
    db: str,
    table: str,
    device: str | None,
    budget: float | None,
    progress: Progress | None = None,
) -> Indexed:
    """Embed what is new or changed under `roots` into `db`/`table`, for at most `budget` seconds of embedding
    (None: all of it). The model: `source`, else the one the table was built with, else `default_source`.
    Another run holding the table is no error here: nothing is indexed and `busy` says so."""
    from gemb2.pipeline.embed_job import EmbedJob, lazy_model, run_job

    for r in roots:
        if not os.path.exists(r):
            raise UsageError(f"no such file or folder: {r}")
    b = Budget(budget, progress)
    job = EmbedJob(list(roots), source or _table_source(db, table) or default_source, db=db, table=table, device=device)
    model = lazy_model(job)
    try:
        report = run_job(job, progress=b, until=b.expired, get_model=model)
    except BusyError as e:
        return Indexed(busy=str(e))
    return Indexed(b.total, b.done, report=report, model=model.model)


def table_exists(db: str, table: str) -> bool:
    return _has_table(db, table)


def _table_source(db: str, table: str) -> str | None:
    """The model source recorded with an existing table (None: no such table yet)."""
    from gemb2.pipeline.open import local_db_path

    local = local_db_path(db)
    if local is not None and not local.is_dir():
        return None
    from gemb2.pipeline.open import table_source
    from gemb2.store import LanceStore

    store = LanceStore(db, table)
    if store.table is None or not store.source:
        return None
    return table_source(store.source, store.model)


def _has_table(db: str, table: str) -> bool:
    from gemb2.pipeline.open import local_db_path
    from gemb2.store import LanceStore

    local = local_db_path(db)
    return (local is None or local.is_dir()) and LanceStore(db, table).table is not None
