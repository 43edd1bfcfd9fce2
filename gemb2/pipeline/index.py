"""`gemb2 index`: under the table's lock (no embed writes meanwhile), optimise a table and build its indexes."""

from __future__ import annotations

from datetime import timedelta

from gemb2.errors import FatalError, UsageError
from gemb2.pipeline.open import open_table
from gemb2.store.index import VECTOR_KINDS, IndexReport, build_indexes


def index_table(
    uri: str, name: str, *, kind: str = "auto", keep_versions_s: float = 600, rebuild: bool = False, wait_s: float = 0
) -> IndexReport:
    """Compact the table, delete versions older than `keep_versions_s`, refresh its indexes and build the ones
    it lacks (see gemb2.store.index.build_indexes). Another run holding the lock past `wait_s`: BusyError."""
    from gemb2.store.lock import table_lock

    if kind not in VECTOR_KINDS:
        raise UsageError(f"--type must be one of {', '.join(VECTOR_KINDS)}, not {kind!r}")
    store = open_table(uri, name)
    try:
        with table_lock(store.uri, store.table_name, wait_s=wait_s):
            store.refresh()
            assert store.table is not None and store.dim is not None  # open_table opened an existing table
            return build_indexes(
                store.table,
                dim=store.dim,
                kind=kind,
                name=name,
                cleanup_older_than=timedelta(seconds=keep_versions_s),
                rebuild=rebuild,
            )
    except (OSError, RuntimeError) as e:  # I/O, and lance's errors from its Rust side
        raise FatalError(f"building the indexes of {name!r} failed: {e}") from e
