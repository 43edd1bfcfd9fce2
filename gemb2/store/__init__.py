"""Where vectors go: LanceDB tables (the default) or safetensors shards, behind one small protocol.

Both stores keep, per file, the (size, mtime_ns, content hash, model) it was embedded from, so a rerun
can tell unchanged files from changed ones without reading them.
"""

from gemb2.store.lance import LanceStore, default_db_uri
from gemb2.store.records import (
    EmbeddedFile,
    FailureRecord,
    FileRecord,
    SegmentRow,
    Store,
    StoreError,
    WrongModelError,
    storage_path,
)
from gemb2.store.shards import ShardStore, read_shards

__all__ = [
    "EmbeddedFile",
    "FailureRecord",
    "FileRecord",
    "LanceStore",
    "SegmentRow",
    "ShardStore",
    "Store",
    "StoreError",
    "WrongModelError",
    "default_db_uri",
    "read_shards",
    "storage_path",
]
