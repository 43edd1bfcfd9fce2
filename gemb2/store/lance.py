"""The LanceDB store: one table of segment rows in an embedded database folder (or an object-store URI).

The table's schema lives here, with its version. Every write is one `merge_insert` on the `key`
primary key that also deletes the rows of the written files that the write does not carry
(`when_not_matched_by_source_delete`), so a file's rows change in one transaction: a reader or a
killed run sees the file's old rows or its new rows, never a mix, and rerunning a write never
duplicates a row.
"""

from __future__ import annotations

import os
import time
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

from gemb2.store.index import QueryTuning
from gemb2.store.records import EmbeddedFile, FileRecord, StoreError, segment_key

os.environ.setdefault("LANCE_LOG", "error")

os.environ.setdefault("LANCEDB_LOG", "error")  # the Rust logger of lancedb (LANCE_LOG is lance's)

SCHEMA_VERSION = 1
DEFAULT_TABLE = "media"
PREFIX_SHORTLIST = 10  # a Matryoshka prefix query re-ranks 10 x k candidates by the true prefix cosine


def default_db_uri() -> str:
    """`$GEMB2_DB`, else `$XDG_DATA_HOME/gemb2/lancedb` (`~/.local/share/gemb2/lancedb`)."""
    if os.environ.get("GEMB2_DB"):
        return os.environ["GEMB2_DB"]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(base, "gemb2", "lancedb")


def segment_schema(dim: int, model: str, source: str = "") -> pa.Schema:
    """The segments table: one row per segment of a file."""
    return pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),  # primary key: hash of path bytes + segment index
            pa.field("path", pa.string(), nullable=False),
            pa.field("modality", pa.string(), nullable=False),  # text | image | audio | video | mixed
            pa.field("segment", pa.int32(), nullable=False),  # 0-based index of the window within the file
            pa.field("n_segments", pa.int32(), nullable=False),
            pa.field("start", pa.float64(), nullable=False),  # seconds (audio, video) or characters (text)
            pa.field("end", pa.float64(), nullable=False),
            pa.field("size", pa.int64(), nullable=False),
            pa.field("mtime_ns", pa.int64(), nullable=False),
            pa.field("content_hash", pa.string(), nullable=False),
            pa.field("model", pa.string(), nullable=False),
            pa.field("dim", pa.int32(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),  # L2-normalised
            pa.field("text", pa.string(), nullable=True),  # the segment's text, where it has text
        ],
        metadata={
            "gemb2.schema_version": str(SCHEMA_VERSION),
            "gemb2.model": model,  # the id of the model every vector comes from
            "gemb2.model_source": source,  # how to load it again: a preset name or a model folder
            "gemb2.dim": str(dim),
        },
    )


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
    except (OSError, RuntimeError, IOError) as e:
        raise StoreError(f"{what} failed: {_one_line(e)}") from e


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _in_list(paths: Sequence[str]) -> str:
    return "path IN (" + ", ".join(sql_str(p) for p in paths) + ")"


class LanceStore:
    """Segment rows in a LanceDB table. The table is tied to one model: its id and dimension are in the schema."""

    def __init__(self, uri: str, table: str = DEFAULT_TABLE, *, model: str | None = None, dim: int | None = None, source: str = ""):
        import lancedb

        if not table or not all(c.isalnum() or c in "_-." for c in table):
            raise StoreError(f"invalid table name {table!r}: use letters, digits, '_', '-' and '.'")
        self.uri, self.table_name = uri, table
        try:
            self._db = lancedb.connect(uri)
        except Exception as e:  # noqa: BLE001 - lancedb raises several types; the message is what matters
            raise StoreError(f"cannot open database {uri}: {e}") from e
        self._table = self._open()
        self.model, self.dim, self.source = model, dim, source
        if self._table is not None:
            meta = self._table.schema.metadata or {}
            version = int(meta.get(b"gemb2.schema_version", b"0"))
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"table {table!r} in {uri} has schema version {version}; this gemb2 reads version {SCHEMA_VERSION}"
                )
            stored_model = meta.get(b"gemb2.model", b"").decode()
            if model is not None and stored_model != model:
                raise StoreError(
                    f"table {table!r} in {uri} holds vectors of model {stored_model!r}, not {model!r}: "
                    f"pass --table NAME for a table of its own, or --rebuild to drop it and embed again"
                )
            self.model, self.dim = stored_model, int(meta[b"gemb2.dim"])
            self.source = meta.get(b"gemb2.model_source", b"").decode()

    def _open(self):
        if self.table_name not in self._db.list_tables().tables:
            return None
        return self._db.open_table(self.table_name)

    @property
    def table(self):
        """The LanceDB table, or None if nothing was written yet."""
        return self._table

    def drop(self) -> None:
        """Drop the table (for --rebuild)."""
        if self._table is not None:
            self._db.drop_table(self.table_name)
            self._table = None

    def _create(self) -> None:
        if self.model is None or self.dim is None:
            raise StoreError("the store needs the model id and dimension to create its table")
        try:
            with _writing(f"creating table {self.table_name!r} in {self.uri}"):
                self._table = self._db.create_table(self.table_name, schema=segment_schema(self.dim, self.model, self.source))
        except (ValueError, StoreError):  # another process (a concurrent run, another rank) may have created it first
            self._table = self._open()
            if self._table is None:
                raise
        self._set_primary_key()

    def _set_primary_key(self, attempts: int = 8) -> None:
        """Declare `key` the primary key. Two processes creating the table at once both try; one commit may conflict
        with the other's, so retry on the latest version until the key is there."""
        for attempt in range(attempts):
            field = self._table.schema.field("key")
            if any(b"unenforced-primary-key" in k for k in (field.metadata or {})):
                return
            try:
                self._table.set_unenforced_primary_key("key")
                return
            except Exception as e:  # noqa: BLE001 - lancedb raises a plain runtime error type
                if "already set" in str(e):  # the creator (another process) set it: the same key
                    return
                if attempt == attempts - 1:
                    raise StoreError(f"creating table {self.table_name!r} in {self.uri} failed: {_one_line(e)}") from e
                time.sleep(0.05 * (attempt + 1))
                self._table.checkout_latest()

    def count(self) -> int:
        return 0 if self._table is None else self._table.count_rows()

    def refresh(self) -> None:
        """See the latest version: the table another process created, or the rows it committed since we opened."""
        if self._table is None:
            self._table = self._open()
        else:
            self._table.checkout_latest()

    def known_files(self) -> dict[str, FileRecord]:
        self.refresh()
        if self._table is None:
            return {}
        cols = ["path", "size", "mtime_ns", "content_hash", "model", "n_segments"]
        t = self._table.search().where("segment = 0").select(cols).limit(None).to_arrow()
        columns = [t.column(c).to_pylist() for c in cols]
        return {rec[0]: FileRecord(*rec) for rec in zip(*columns)}

    def write(self, files: Sequence[EmbeddedFile]) -> None:
        if not files:
            return
        if self._table is None:
            self._create()
        data = self._to_arrow(files)
        with _writing(f"writing to table {self.table_name!r} in {self.uri}"):
            self._write(data, files)

    def _write(self, data: pa.Table, files: Sequence[EmbeddedFile]) -> None:
        (
            self._table.merge_insert("key")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(_in_list([f.record.path for f in files]))
            .execute(data)
        )

    def _to_arrow(self, files: Sequence[EmbeddedFile]) -> pa.Table:
        cols: dict[str, list] = {name: [] for name in segment_schema(1, "").names}
        vectors = []
        for f in files:
            rec = f.record
            for r in f.rows:
                cols["key"].append(segment_key(rec.path, r.segment))
                cols["path"].append(rec.path)
                cols["modality"].append(r.modality)
                cols["segment"].append(r.segment)
                cols["n_segments"].append(rec.n_segments)
                cols["start"].append(float(r.start))
                cols["end"].append(float(r.end))
                cols["size"].append(rec.size)
                cols["mtime_ns"].append(rec.mtime_ns)
                cols["content_hash"].append(rec.content_hash)
                cols["model"].append(rec.model)
                cols["dim"].append(self.dim)
                cols["text"].append(r.text)
                vectors.append(r.vector)
        schema = segment_schema(self.dim, self.model)
        flat = np.ascontiguousarray(np.stack(vectors).astype(np.float32, copy=False)).reshape(-1)  # (N * dim,)
        if flat.size != len(vectors) * self.dim:
            raise StoreError(f"vectors of dimension {len(flat) // max(len(vectors), 1)} for a table of dimension {self.dim}")
        cols["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), self.dim)
        arrays = [cols[n] if isinstance(cols[n], pa.Array) else pa.array(cols[n], schema.field(n).type) for n in schema.names]
        return pa.Table.from_arrays(arrays, schema=schema)

    def remove(self, paths: Sequence[str]) -> None:
        if self._table is None or not paths:
            return
        with _writing(f"removing rows from table {self.table_name!r} in {self.uri}"):
            for i in range(0, len(paths), 512):
                self._table.delete(_in_list(paths[i : i + 512]))

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
        q = self._table.search(query, vector_column_name="vector").distance_type("cosine").limit(fetch)
        if tuning.refine_factor:
            q = q.refine_factor(tuning.refine_factor)
        if tuning.nprobes:
            q = q.nprobes(tuning.nprobes)
        q = q.ef(tuning.ef_for(fetch))
        filters = self._filters(where, modality)
        if filters:
            q = q.where(filters, prefilter=True)
        cols = ["key", "path", "modality", "segment", "start", "end", "text", "_distance"] + (["vector"] if prefix else [])
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

    def text_search(self, text: str, k: int = 10, *, where: str | None = None, modality: str | None = None) -> list[dict]:
        """Full-text (BM25) search of the `text` column, best first; needs the full-text index (`gemb2 index`)."""
        if self._table is None:
            return []
        if not any(list(i.columns) == ["text"] for i in self._table.list_indices()):
            raise StoreError(f"table {self.table_name!r} has no full-text index: run `gemb2 index` first")
        q = self._table.search(text, query_type="fts", fts_columns="text").limit(k)
        filters = self._filters(where, modality)
        if filters:
            q = q.where(filters, prefilter=True)
        rows = q.select(["key", "path", "modality", "segment", "start", "end", "text", "_score"]).to_arrow().to_pylist()
        for r in rows:
            r["score"] = float(r.pop("_score", 0.0))
        return rows

    @staticmethod
    def _filters(where: str | None, modality: str | None) -> str:
        filters = [f"({where})"] if where else []
        if modality:
            filters.append(f"modality = {sql_str(modality)}")
        return " AND ".join(filters)

    def iter_batches(self, batch_rows: int = 8192, columns: Sequence[str] | None = None):
        """The table as Arrow record batches of at most `batch_rows` rows (bounded memory), in storage order."""
        if self._table is None:
            return
        q = self._table.search()
        if columns:
            q = q.select(list(columns))
        yield from q.limit(None).to_batches(batch_rows)

    def close(self) -> None:
        self._table = None
