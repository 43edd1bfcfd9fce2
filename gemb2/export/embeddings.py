"""A table's rows out to files other systems read: safetensors, Parquet or JSON lines, streamed in batches.

    export_embeddings(store, "out.parquet", "parquet")   # key, path, modality, segment, start, end, text, vector

Memory stays bounded by `batch_rows` whatever the table's size: the rows are read from one snapshot
(version) of the table in Arrow record batches and written as they come.

- safetensors: `OUT` holds one tensor `vectors` (rows, dim) float32, written header first then row
  batch by row batch (the format is an 8-byte header length, a JSON header, the raw little-endian data:
  huggingface/safetensors, "Format"); a sidecar `OUT` with `.jsonl` in place of its suffix lists each
  row's key, path, modality, segment, start, end and text, in the same order.
- parquet: one file, the columns above plus `vector` as fixed_size_list<float32>[dim].
- jsonl: one JSON object per row, the columns above plus `vector` as a list of floats.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from gemb2.export import ExportError

if TYPE_CHECKING:
    from gemb2.store.lance import LanceStore

FORMATS = ("safetensors", "parquet", "jsonl")
META_COLUMNS = ("key", "path", "modality", "segment", "start", "end", "text")


def sidecar_path(out: str) -> str:
    """The JSON-lines index next to a safetensors export: `vecs.safetensors` -> `vecs.jsonl`."""
    root, _ = os.path.splitext(out)
    return root + ".jsonl"


def export_embeddings(
    store: LanceStore, out: str, fmt: str, *, batch_rows: int = 8192, progress: Callable[[int], None] | None = None
) -> dict:
    """Write every row of a LanceStore's table to `out` in format `fmt`. Returns {"rows", "dim", "files"}."""
    if fmt not in FORMATS:
        raise ExportError(f"--to must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if store.table is None:
        raise ExportError(f"no table {store.table_name!r} in {store.uri}")
    table = store.table
    table.checkout(table.version)  # pin one version: rows committed meanwhile are not half-exported
    rows, dim = table.count_rows(), store.dim
    columns = list(META_COLUMNS) + ["vector"]
    batches = iter(table.search().select(columns).limit(None).to_batches(batch_rows))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    writer = {"safetensors": _safetensors, "parquet": _parquet, "jsonl": _jsonl}[fmt]
    files = writer(out, batches, rows, dim, store.model, progress or (lambda n: None))
    return {"rows": rows, "dim": dim, "format": fmt, "files": files}


def _vectors(batch, dim: int) -> np.ndarray:
    col = batch.column("vector")
    return col.values.to_numpy(zero_copy_only=False).reshape(len(col), dim).astype("<f4", copy=False)  # (n, dim)


def _meta_rows(batch) -> list[dict]:
    return batch.select(list(META_COLUMNS)).to_pylist()


def _safetensors(out, batches, rows, dim, model, progress) -> list[str]:
    header = {
        "__metadata__": {"model": model or "", "dim": str(dim), "format": "gemb2 embeddings export"},
        "vectors": {"dtype": "F32", "shape": [rows, dim], "data_offsets": [0, rows * dim * 4]},
    }
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)  # the data starts 8-byte aligned
    index = sidecar_path(out)
    written = 0
    with open(out + ".tmp", "wb") as fv, open(index + ".tmp", "w", encoding="utf-8") as fi:
        fv.write(struct.pack("<Q", len(h)) + h)
        for batch in batches:
            v = _vectors(batch, dim)
            fv.write(np.ascontiguousarray(v).tobytes())
            fi.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in _meta_rows(batch))
            written += len(v)
            progress(len(v))
    if written != rows:  # the snapshot cannot change under us; this would be a bug
        raise ExportError(f"internal: expected {rows} rows, read {written}")
    os.replace(out + ".tmp", out)
    os.replace(index + ".tmp", index)
    return [out, index]


def _parquet(out, batches, rows, dim, model, progress) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for batch in batches:
            table = pa.Table.from_batches([batch])
            if writer is None:
                schema = table.schema.with_metadata({"gemb2.model": model or "", "gemb2.dim": str(dim)})
                writer = pq.ParquetWriter(out + ".tmp", schema)
            writer.write_table(table.cast(writer.schema))
            progress(batch.num_rows)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ExportError("the table is empty: nothing to export")
    os.replace(out + ".tmp", out)
    return [out]


def _jsonl(out, batches, rows, dim, model, progress) -> list[str]:
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        for batch in batches:
            v = _vectors(batch, dim)
            for r, vec in zip(_meta_rows(batch), v):
                r["vector"] = [float(x) for x in vec]
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            progress(len(v))
    os.replace(out + ".tmp", out)
    return [out]
