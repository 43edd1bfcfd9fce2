"""The LanceDB store: one table of segment rows in an embedded database folder (or an object-store URI).

The table's schema lives here, with its version. Every write is one `merge_insert` on the `key`
primary key that also deletes the rows of the written files that the write does not carry
(`when_not_matched_by_source_delete`), so a file's rows change in one transaction: a reader or a
killed run sees the file's old rows or its new rows, never a mix, and rerunning a write never
duplicates a row.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pyarrow as pa

from gemb2.store.index import QueryTuning
from gemb2.store.lance_schema import SCHEMA_VERSION, norows_records, norows_schema, segment_rows, segment_schema
from gemb2.store.records import EmbeddedFile, FailureRecord, FileRecord, StoreError, StoreUsageError, WrongModelError

if TYPE_CHECKING:
    from lancedb.query import LanceVectorQueryBuilder
    from lancedb.table import Table

# The one place gemb2 quiets LanceDB: its Rust loggers read these when lancedb is first imported (below, in
# LanceStore; every user of lancedb in gemb2 comes through this module). A user's own setting wins.
os.environ.setdefault("LANCE_LOG", "error")  # lance's logger
os.environ.setdefault("LANCEDB_LOG", "error")  # lancedb's logger

DEFAULT_TABLE = "media"
NOROWS_SUFFIX = "__norows"  # the side table of files without rows: empty ones and remembered failures
PREFIX_SHORTLIST = 10  # a Matryoshka prefix query re-ranks 10 x k candidates by the true prefix cosine


def default_db_uri() -> str:
    """`$GEMB2_DB`, else `$XDG_DATA_HOME/gemb2/lancedb` (`~/.local/share/gemb2/lancedb`)."""
    if os.environ.get("GEMB2_DB"):
        return os.environ["GEMB2_DB"]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(base, "gemb2", "lancedb")


def _one_line(e: BaseException) -> str:
    """A LanceDB/Lance error as one line: its innermost cause ("No space left on device (os error 28)") when
    it names one, else its first line, cut to 300 characters."""
    text = str(e)
    m = re.search(r"([A-Z][^:\n]*\(os error \d+\))", text)
    if m:
        return m.group(1)
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return first[:300]


@contextmanager
def _writing(what: str) -> Iterator[None]:
    """Lance I/O failures (disk full, permission denied, a broken object store) -> StoreError with one line."""
    try:
        yield
    except StoreError:
        raise
    except (OSError, RuntimeError) as e:
        raise StoreError(f"{what} failed: {_one_line(e)}") from e


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _in_list(paths: Sequence[str]) -> str:
    return "path IN (" + ", ".join(sql_str(p) for p in paths) + ")"


class LanceStore:
    """Segment rows in a LanceDB table. The table is tied to one model: its id and dimension are in the schema.

    Files without rows (empty texts, remembered failures) are kept in the side table `<table>__norows`.
    """

    def __init__(
        self,
        uri: str,
        table: str = DEFAULT_TABLE,
        *,
        model: str | None = None,
        dim: int | None = None,
        source: str = "",
    ):
        import lancedb

        if not table or not all(c.isalnum() or c in "_-." for c in table) or table.endswith(NOROWS_SUFFIX):
            raise StoreUsageError(
                f"invalid table name {table!r}: use letters, digits, '_', '-' and '.' (not ending in {NOROWS_SUFFIX!r})"
            )
        self.uri, self.table_name = uri, table
        self.where = f"table {table!r} in {uri if '://' in uri else os.path.abspath(uri)}"
        try:
            self._db = lancedb.connect(uri)
        except Exception as e:
            raise StoreError(f"cannot open database {uri}: {e}") from e
        self._table = self._open(table)
        self._norows = self._open(table + NOROWS_SUFFIX)
        self._side: set[str] | None = None  # paths with a side-table record (see _side_paths)
        self._side_cache: tuple[int, list[dict]] | None = None  # (side-table version, its rows)
        self.model, self.dim, self.source = model, dim, source
        if self._table is not None:
            meta = self._table.schema.metadata or {}
            version = self.schema_version
            if version not in (1, SCHEMA_VERSION):
                raise StoreError(
                    f"table {table!r} in {uri} has schema version {version}; this gemb2 reads versions 1 and {SCHEMA_VERSION}"
                )
            stored_model = meta.get(b"gemb2.model", b"").decode()
            if model is not None and stored_model != model:
                raise WrongModelError(
                    f"table {table!r} in {uri} holds vectors of model {stored_model!r}, not {model!r}: "
                    f"pass --table NAME for a table of its own, or --rebuild to drop it and embed again"
                )
            self.model, self.dim = stored_model, int(meta[b"gemb2.dim"])
            self.source = meta.get(b"gemb2.model_source", b"").decode()

    def _open(self, name: str):
        if name not in self._db.list_tables().tables:
            return None
        return self._db.open_table(name)

    @property
    def table(self) -> Table | None:
        """The LanceDB table, or None if nothing was written yet."""
        return self._table

    @property
    def schema_version(self) -> int:
        """The table's schema version: 2 once it has the `segmentation` column (a migrated version-1 table keeps
        "1" in its metadata: LanceDB cannot rewrite it), else what its metadata says."""
        if self._table is None:
            return SCHEMA_VERSION
        if "segmentation" in self._table.schema.names:
            return SCHEMA_VERSION
        return int((self._table.schema.metadata or {}).get(b"gemb2.schema_version", b"0"))

    def drop(self) -> None:
        """Drop the table and its side table (for --rebuild)."""
        for name, t in ((self.table_name, self._table), (self.table_name + NOROWS_SUFFIX, self._norows)):
            if t is not None:
                self._db.drop_table(name)
        self._table = self._norows = None
        self._side = None

    def _create(self, name: str, schema: pa.Schema, key: str):
        """Create table `name` with primary key `key`, or open it when another process created it first."""
        try:
            with _writing(f"creating table {name!r} in {self.uri}"):
                table = self._db.create_table(name, schema=schema)
        except (ValueError, StoreError):  # another process (a concurrent run, another rank) may have created it first
            table = self._open(name)
            if table is None:
                raise
        self._set_primary_key(table, name, key)
        return table

    def _set_primary_key(self, table, name: str, key: str, attempts: int = 8) -> None:
        """Declare `key` the primary key. Two processes creating the table at once both try; one commit may conflict
        with the other's, so retry on the latest version until the key is there."""
        for attempt in range(attempts):
            field = table.schema.field(key)
            if any(b"unenforced-primary-key" in k for k in (field.metadata or {})):
                return
            try:
                table.set_unenforced_primary_key(key)
                return
            except Exception as e:
                if "already set" in str(e):  # the creator (another process) set it: the same key
                    return
                if attempt == attempts - 1:
                    raise StoreError(f"creating table {name!r} in {self.uri} failed: {_one_line(e)}") from e
                time.sleep(0.05 * (attempt + 1))
                table.checkout_latest()

    def _migrate(self, table, attempts: int = 8) -> None:
        """Bring `table` (this store's, of version 1) to version 2: add `segmentation` = 1 to every row (the old
        text windows), so the next run re-embeds the text files those rows came from. Safe when two processes
        try at once."""
        for attempt in range(attempts):
            if self.schema_version == SCHEMA_VERSION:
                return
            try:
                with _writing(f"migrating table {self.table_name!r} in {self.uri} to schema version {SCHEMA_VERSION}"):
                    table.add_columns({"segmentation": "CAST(1 AS INT)"})
                return
            except StoreError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
                table.checkout_latest()

    def count(self) -> int:
        return 0 if self._table is None else self._table.count_rows()

    def refresh(self) -> None:
        """See the latest version: the table another process created, or the rows it committed since we opened."""
        self._side = None
        for attr, name in (("_table", self.table_name), ("_norows", self.table_name + NOROWS_SUFFIX)):
            t = getattr(self, attr)
            if t is None:
                setattr(self, attr, self._open(name))
            else:
                t.checkout_latest()

    def known_files(self) -> dict[str, FileRecord]:
        self.refresh()
        known: dict[str, FileRecord] = {}
        for rec in self._norows_records("empty"):
            known[rec["path"]] = FileRecord(
                rec["path"], rec["size"], rec["mtime_ns"], rec["content_hash"], rec["model"], 0, rec["segmentation"]
            )
        if self._table is None:
            return known
        cols = ["path", "size", "mtime_ns", "content_hash", "model", "n_segments"]
        has_seg = "segmentation" in self._table.schema.names
        t = (
            self._table.search()
            .where("segment = 0")
            .select(cols + (["segmentation"] if has_seg else []))
            .limit(None)
            .to_arrow()
        )
        columns = [t.column(c).to_pylist() for c in cols]
        segs = t.column("segmentation").to_pylist() if has_seg else [1] * t.num_rows
        for rec, seg in zip(zip(*columns), segs):  # rows win over a stale side-table record of the same path
            known[rec[0]] = FileRecord(*rec, segmentation=seg)
        return known

    def known_failures(self) -> dict[str, FailureRecord]:
        self.refresh()
        return {
            r["path"]: FailureRecord(r["path"], r["size"], r["mtime_ns"], r["model"], r["reason"], r["version"])
            for r in self._norows_records("failed")
        }

    def _norows_records(self, status: str) -> list[dict]:
        return [r for r in self._side_records() if r["status"] == status]

    def _side_records(self) -> list[dict]:
        """Every row of the side table, read once per table version (known_files, known_failures and
        _side_paths of one run share one read)."""
        if self._norows is None:
            return []
        version = self._norows.version
        if self._side_cache is None or self._side_cache[0] != version:
            self._side_cache = (version, self._norows.search().limit(None).to_arrow().to_pylist())
        return self._side_cache[1]

    def write(self, files: Sequence[EmbeddedFile], failures: Sequence[FailureRecord] = ()) -> None:
        """Rows first (one merge_insert that also drops the written files' other rows), then the side table (one
        merge_insert that records the files without rows and forgets the side records of the others). A kill
        between the two leaves a stale side record that the rows outrank (`known_files`) or that no longer
        matches the file; nothing is lost and nothing duplicated."""
        if not files and not failures:
            return
        if files:
            table = self.ensure_table()
            paths = [f.record.path for f in files]
            with _writing(f"writing to table {self.table_name!r} in {self.uri}"):
                if any(f.rows for f in files):
                    rows = segment_rows([f for f in files if f.rows], int(self.dim or 0), str(self.model))
                    self._write(table, rows, paths)
                else:  # files with nothing to embed: only their old rows go
                    self._delete(table, paths)
        self._write_norows([f for f in files if not f.rows], [f.record.path for f in files if f.rows], failures)

    def ensure_table(self) -> Table:
        """The segments table, created with this store's model and dimension if it is not there yet (migrated to
        the current schema version if it is older)."""
        # set when the table was opened (from its schema), else by the store's user before this first write
        model, dim = self.model, self.dim
        if model is None or dim is None:
            raise StoreError("the store needs the model id and dimension to create its table")
        table = self._table
        if table is None:
            table = self._table = self._create(self.table_name, segment_schema(dim, model, self.source), "key")
        else:
            self._migrate(table)
        return table

    def commit_fragments(
        self,
        fragments: Sequence[str],
        files: Sequence[FileRecord],
        failures: Sequence[FailureRecord] = (),
        replace: Sequence[str] | None = None,
    ) -> None:
        """The Ray engine's write: fragments its workers wrote (`gemb2.store.fragments`) holding the rows of
        `files`, added in one Lance transaction that also deletes the old rows of `replace` (default: all of
        `files`; a caller that knows which files are new spares their search); then the side table, as `write`
        does. A kill between the two leaves what `write` leaves."""
        from gemb2.store.fragments import commit_fragments, dataset_uri

        if files:
            table = self.ensure_table()
            with _writing(f"writing to table {self.table_name!r} in {self.uri}"):
                old = [f.path for f in files] if replace is None else replace
                commit_fragments(dataset_uri(self.uri, self.table_name), fragments, old)
            table.checkout_latest()
        empty = [EmbeddedFile(f, []) for f in files if f.n_segments == 0]
        self._write_norows(empty, [f.path for f in files if f.n_segments], failures)

    @staticmethod
    def _write(table, data: pa.Table, paths: Sequence[str]) -> None:
        (
            table.merge_insert("key")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(_in_list(paths))
            .execute(data)
        )

    def _write_norows(
        self, empty: Sequence[EmbeddedFile], have_rows: Sequence[str], failures: Sequence[FailureRecord]
    ) -> None:
        """Record `empty` files and `failures` in the side table; forget the records of files that `have_rows` now."""
        records = norows_records(empty, failures)
        name = self.table_name + NOROWS_SUFFIX
        side = self._side_paths()
        forget = [p for p in have_rows if p in side]
        if not records and not forget:
            return  # the usual commit: nothing to record, no side record to drop, no side-table version
        if self._norows is None:
            self._norows = self._create(name, norows_schema(), "path")
        with _writing(f"writing to table {name!r} in {self.uri}"):
            if not records:
                self._delete(self._norows, forget)
            else:
                (
                    self._norows.merge_insert("path")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .when_not_matched_by_source_delete(_in_list([r["path"] for r in records] + forget))
                    .execute(pa.Table.from_pylist(records, schema=norows_schema()))
                )
        side.difference_update(forget)
        side.update(r["path"] for r in records)

    def _side_paths(self) -> set[str]:
        """The paths the side table holds a record of (read once; this process's writes keep it current, and
        other processes writing at the same time, other ranks, only write paths this one does not own)."""
        if self._side is None:
            self._side = {r["path"] for r in self._side_records()}
        return self._side

    @staticmethod
    def _delete(table, paths: Sequence[str]) -> None:
        for i in range(0, len(paths), 512):
            table.delete(_in_list(paths[i : i + 512]))

    def remove(self, paths: Sequence[str]) -> None:
        if not paths:
            return
        with _writing(f"removing rows from table {self.table_name!r} in {self.uri}"):
            for t in (self._table, self._norows):
                if t is not None:
                    self._delete(t, paths)
        if self._side is not None:
            self._side.difference_update(paths)

    def search(
        self,
        vector: np.ndarray,
        k: int = 10,
        *,
        where: str | None = None,
        modality: str | None = None,
        tuning: QueryTuning | None = None,
    ) -> list[dict]:
        """The k nearest rows by cosine similarity, best first: dicts with key, score, path, modality, start, end, text.

        With a vector index (`gemb2 index`), the search is approximate and quantised: `tuning` sets the
        refine step (re-rank `refine_factor` x k candidates with the stored full-precision vectors), the
        IVF partitions probed and HNSW's `ef`. Without one, every vector is scanned (exact).

        A `vector` shorter than the table's (a Matryoshka prefix of `d` dims, unit length) is answered by
        prefix cosine, storing nothing new: the query is zero-padded, so its cosine with a stored vector v is
        q . v[:d], a shortlist of the best `PREFIX_SHORTLIST` x k by that score is fetched through the index,
        and the shortlist is re-ranked by the true prefix cosine q . v[:d] / |v[:d]| (Kusupati et al. 2022,
        "Matryoshka Representation Learning", section 4.2: shortlist, then re-rank).
        """
        if self._table is None:
            return []
        tuning = tuning or QueryTuning()
        vector = np.asarray(vector, dtype=np.float32)
        if vector.ndim != 1 or not 1 <= vector.shape[0] <= self.dim:
            raise StoreError(f"query vector has shape {vector.shape}; the table holds vectors of dimension {self.dim}")
        d = vector.shape[0]
        prefix = d < self.dim
        fetch = k * PREFIX_SHORTLIST if prefix else k
        query = np.pad(vector, (0, self.dim - d)) if prefix else vector
        q = cast("LanceVectorQueryBuilder", self._table.search(query, vector_column_name="vector"))
        q = q.distance_type("cosine").limit(fetch)
        if tuning.refine_factor:
            q = q.refine_factor(tuning.refine_factor)
        if tuning.nprobes:
            q = q.nprobes(tuning.nprobes)
        q = q.ef(tuning.ef_for(fetch))
        filters = self._filters(where, modality)
        if filters:
            q = q.where(filters, prefilter=True)
        cols = ["key", "path", "modality", "segment", "start", "end", "text", "content_hash", "_distance"] + (
            ["vector"] if prefix else []
        )
        rows = q.select(cols).to_arrow().to_pylist()
        for r in rows:
            r["score"] = 1.0 - float(r.pop("_distance"))
        if prefix:
            for r in rows:
                v = np.asarray(r.pop("vector"), dtype=np.float32)[:d]
                r["score"] = float(v @ vector / max(float(np.linalg.norm(v)), 1e-12))
            rows.sort(key=lambda r: -r["score"])
            rows = rows[:k]
        return rows

    def text_search(
        self, text: str, k: int = 10, *, where: str | None = None, modality: str | None = None
    ) -> list[dict]:
        """Full-text (BM25) search of the `text` column, best first; needs the full-text index (`gemb2 index`)."""
        if self._table is None:
            return []
        if not any(list(i.columns) == ["text"] for i in self._table.list_indices()):
            raise StoreUsageError(f"table {self.table_name!r} has no full-text index: run `gemb2 index` first")
        q = self._table.search(text, query_type="fts", fts_columns="text").limit(k)
        filters = self._filters(where, modality)
        if filters:
            q = q.where(filters, prefilter=True)
        rows = (
            q.select(["key", "path", "modality", "segment", "start", "end", "text", "content_hash", "_score"])
            .to_arrow()
            .to_pylist()
        )
        for r in rows:
            r["score"] = float(r.pop("_score", 0.0))
        return rows

    @staticmethod
    def _filters(where: str | None, modality: str | None) -> str:
        filters = [f"({where})"] if where else []
        if modality:
            filters.append(f"modality = {sql_str(modality)}")
        return " AND ".join(filters)

    def iter_batches(self, batch_rows: int = 8192, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The table as Arrow record batches of at most `batch_rows` rows (bounded memory), in storage order."""
        if self._table is None:
            return
        q = self._table.search()
        if columns:
            q = q.select(list(columns))
        yield from q.limit(None).to_batches(batch_rows)

    def close(self) -> None:
        self._table = self._norows = None
        self._side = None
