"""Rows written as Lance fragments by many workers, committed by one driver (the Ray engine's store path).

    frag = write_fragment(dataset_uri(db, table), files, dim, model)   # a worker: data files, no commit
    commit_fragments(dataset_uri(db, table), [frag, ...], replace=paths) # the driver: one transaction

A worker writes its files' rows as new data files of the table (`lance.fragment.write_fragments`) and hands
back the fragment's metadata as JSON; nothing in the table changes until the driver commits. The driver's
commit is one Lance `Update` transaction that adds the new fragments AND marks deleted the old rows of the
files they replace (deletion files on the fragments that held them), so a reader sees a file's old rows or
its new rows, never both, and thousands of workers never race on the table's manifest: only the driver
commits. A fragment never committed (its driver was killed) is a data file no version refers to: invisible
to readers, and removed by Lance's cleanup of old versions (`lancedb`'s `Table.optimize`).

The table itself (its schema, the primary-key metadata gemb2 sets) is created by `LanceStore` through
LanceDB first; pylance and LanceDB write the same format (the table's data storage version is read and
kept). tests/ray/test_fragments.py checks that a table committed this way opens in LanceDB and in
`LanceStore` with its metadata.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from gemb2.store.lance_schema import segment_rows
from gemb2.store.records import EmbeddedFile, StoreError

COMMIT_ATTEMPTS = 8  # a commit that conflicts with another writer's (an index build) is planned again


def dataset_uri(db_uri: str, table: str) -> str:
    """Where LanceDB keeps table `table` of database `db_uri`: `<db>/<table>.lance` (a folder or an object-store prefix)."""
    return db_uri.rstrip("/") + "/" + table + ".lance"


def _lance():
    try:
        import lance
    except ImportError as e:  # pragma: no cover - the `ray` extra installs it
        raise StoreError("the Ray engine writes Lance fragments with pylance: pip install 'gemb2[ray]'") from e
    return lance


class FragmentWriter:
    """Writes files' rows as uncommitted fragments of one table (a worker holds one for its life)."""

    def __init__(self, uri: str, dim: int, model: str):
        self.uri, self.dim, self.model = uri, dim, model
        ds = _lance().dataset(uri)
        self.schema, self.storage_version = ds.schema, ds.data_storage_version

    def write(self, files: Sequence[EmbeddedFile]) -> list[str]:
        """The rows of `files` as new data files; the fragments' metadata as JSON strings ([] if no rows)."""
        from lance.fragment import write_fragments

        with_rows = [f for f in files if f.rows]
        if not with_rows:
            return []
        data = segment_rows(with_rows, self.dim, self.model).replace_schema_metadata(self.schema.metadata)
        data = data.cast(self.schema)  # the table's own schema: its field ids and primary-key metadata
        frags = write_fragments(data, self.uri, schema=self.schema, data_storage_version=self.storage_version)
        return [json.dumps(f.to_json()) for f in frags]


def rows_of(uri: str, paths: Sequence[str], ds=None) -> dict[int, int]:
    """fragment id -> how many live rows of `paths` it holds (a scan of the `path` column, filtered)."""
    from gemb2.store.lance import _in_list

    ds = ds if ds is not None else _lance().dataset(uri)
    found: dict[int, int] = {}
    for i in range(0, len(paths), 512):
        t = ds.to_table(columns=["path"], filter=_in_list(paths[i : i + 512]), with_row_address=True)
        for addr in t.column("_rowaddr").to_pylist():
            found[addr >> 32] = found.get(addr >> 32, 0) + 1
    return found


def commit_fragments(uri: str, fragments: Sequence[str], replace: Sequence[str]) -> int:
    """Add `fragments` (JSON from `FragmentWriter.write`) and delete the rows of the paths in `replace` that the
    table held before, in one transaction; the new version. Retried on a conflicting concurrent commit."""
    lance = _lance()
    from lance.fragment import FragmentMetadata

    new = [FragmentMetadata.from_json(f) for f in fragments]
    for attempt in range(COMMIT_ATTEMPTS):
        ds = lance.dataset(uri)
        removed, updated = [], []
        held = rows_of(uri, list(replace), ds) if replace else {}
        if held:
            where = _paths_predicate(replace)
            for fid in sorted(held):
                frag = ds.get_fragment(fid)
                meta = frag.delete(where) if frag is not None else None
                (removed.append(fid) if meta is None else updated.append(meta))
        if not new and not removed and not updated:
            return ds.version
        op = lance.LanceOperation.Update(removed_fragment_ids=removed, updated_fragments=updated, new_fragments=new)
        try:
            return lance.LanceDataset.commit(uri, op, read_version=ds.version).version
        except OSError as e:  # lance's CommitConflictError derives from OSError
            if "conflict" not in str(e).lower() or attempt == COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _paths_predicate(paths: Sequence[str]) -> str:
    from gemb2.store.lance import _in_list

    return " OR ".join(f"({_in_list(paths[i : i + 512])})" for i in range(0, len(paths), 512))
