"""The LanceDB tables' schemas, with their version, and gemb2's records as rows of them.

Two tables per name: `<table>` holds one row per segment of a file (`segment_schema`, `segment_rows`);
`<table>__norows` one row per file that has no segment rows (`norows_schema`, `norows_records`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from gemb2 import __version__
from gemb2.store.records import EmbeddedFile, FailureRecord, StoreError, segment_key

# Version 2 added the `segmentation` column; a version-1 table is migrated on its first write (the column is
# added with 1, the old segmentation, so its text files are re-embedded once) and reads as it is until then.
SCHEMA_VERSION = 2


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
            pa.field("segmentation", pa.int32(), nullable=False),  # the loaders' version that cut the file
        ],
        metadata={
            "gemb2.schema_version": str(SCHEMA_VERSION),
            "gemb2.model": model,  # the id of the model every vector comes from
            "gemb2.model_source": source,  # how to load it again: a preset name or a model folder
            "gemb2.dim": str(dim),
        },
    )


def norows_schema() -> pa.Schema:
    """The side table `<table>__norows`: one row per file that has no segment rows, keyed by path.

    status "empty": the file has nothing to embed (an empty or whitespace-only text) and is up to date;
    status "failed": its content could not be embedded (`reason`); it is not decoded again while its size,
    mtime, the model and the gemb2 `version` stay the same. A file's row here is replaced or deleted in
    the same transaction that records it again.
    """
    return pa.schema(
        [
            pa.field("path", pa.string(), nullable=False),  # primary key
            pa.field("size", pa.int64(), nullable=False),
            pa.field("mtime_ns", pa.int64(), nullable=False),
            pa.field("content_hash", pa.string(), nullable=False),  # "" for a failure
            pa.field("model", pa.string(), nullable=False),
            pa.field("status", pa.string(), nullable=False),  # empty | failed
            pa.field("reason", pa.string(), nullable=False),  # why it failed ("" when empty)
            pa.field("segmentation", pa.int32(), nullable=False),
            pa.field("version", pa.string(), nullable=False),  # the gemb2 version that recorded it
        ],
        metadata={"gemb2.schema_version": "1"},
    )


def segment_rows(files: Sequence[EmbeddedFile], dim: int, model: str) -> pa.Table:
    """The rows of `files` as an Arrow table of the segments schema (vectors of dimension `dim`, of `model`)."""
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
            cols["dim"].append(dim)
            cols["text"].append(r.text)
            cols["segmentation"].append(rec.segmentation)
            vectors.append(r.vector)
    schema = segment_schema(dim, model)
    flat = np.ascontiguousarray(np.stack(vectors).astype(np.float32, copy=False)).reshape(-1)  # (N * dim,)
    if flat.size != len(vectors) * dim:
        raise StoreError(f"vectors of dimension {len(flat) // max(len(vectors), 1)} for a table of dimension {dim}")
    cols["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), dim)
    arrays = [
        cols[n] if isinstance(cols[n], pa.Array) else pa.array(cols[n], schema.field(n).type) for n in schema.names
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def norows_records(files: Sequence[EmbeddedFile], failures: Sequence[FailureRecord]) -> list[dict]:
    """The side-table rows of `files` without rows (status "empty") and of `failures` (status "failed")."""
    return [
        {
            "path": f.record.path,
            "size": f.record.size,
            "mtime_ns": f.record.mtime_ns,
            "content_hash": f.record.content_hash,
            "model": f.record.model,
            "status": "empty",
            "reason": "",
            "segmentation": f.record.segmentation,
            "version": __version__,
        }
        for f in files
        if not f.rows
    ] + [
        {
            "path": r.path,
            "size": r.size,
            "mtime_ns": r.mtime_ns,
            "content_hash": "",
            "model": r.model,
            "status": "failed",
            "reason": r.reason,
            "segmentation": 0,
            "version": r.version,
        }
        for r in failures
    ]
