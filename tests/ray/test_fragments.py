"""Fragments written by pylance and committed by the driver (gemb2/store/fragments.py) make a table that LanceDB
(the version gemb2 pins) and gemb2's own LanceStore read as if LanceStore had written it: same rows, the
primary-key and gemb2 metadata kept, old rows of replaced files gone, later merge_insert writes still working."""

import lancedb
import numpy as np
import pytest

from gemb2.store import EmbeddedFile, FailureRecord, FileRecord, LanceStore, SegmentRow
from gemb2.store.fragments import FragmentWriter, commit_fragments, dataset_uri, rows_of

pytest.importorskip("lance")

DIM = 8


def _file(path: str, n_rows: int, seed: int, size: int = 1) -> EmbeddedFile:
    v = np.random.default_rng(seed).normal(size=(n_rows, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    rows = [SegmentRow(i, "text", float(i), float(i + 1), f"{path} row {i}", v[i]) for i in range(n_rows)]
    return EmbeddedFile(FileRecord(path, size, 1, f"h{seed}", "m@1", n_rows, 2), rows)


def _store(db) -> LanceStore:
    return LanceStore(str(db), "media", model="m@1", dim=DIM, source="tiny")


def _keys(db) -> list[str]:
    t = lancedb.connect(str(db)).open_table("media")
    return sorted(t.to_arrow().column("key").to_pylist())


def test_committed_fragments_read_in_lancedb_and_the_store(tmp_path):
    store = _store(tmp_path)
    store.write([_file("/d/a.txt", 3, 0), _file("/d/b.txt", 2, 1)])  # created by LanceDB, primary key set
    uri = dataset_uri(str(tmp_path), "media")

    writer = FragmentWriter(uri, DIM, "m@1")
    a2, c = _file("/d/a.txt", 1, 5, size=9), _file("/d/c.txt", 2, 6)  # a.txt shrinks from 3 rows to 1; c.txt is new
    frags = writer.write([a2]) + writer.write([c])
    assert len(frags) == 2 and len(_keys(tmp_path)) == 5  # nothing visible before the commit
    commit_fragments(uri, frags, ["/d/a.txt", "/d/c.txt"])

    keys = _keys(tmp_path)
    assert len(keys) == len(set(keys)) == 1 + 2 + 2  # a: 1 (old 3 deleted), b: 2, c: 2
    table = lancedb.connect(str(tmp_path)).open_table("media")
    field = table.schema.field("key")
    assert any(b"unenforced-primary-key" in k for k in (field.metadata or {}))
    assert table.schema.metadata[b"gemb2.model"] == b"m@1"

    reopened = LanceStore(str(tmp_path), "media", model="m@1")
    assert reopened.dim == DIM and reopened.source == "tiny"
    known = reopened.known_files()
    assert (
        known["/d/a.txt"].size == 9
        and known["/d/a.txt"].n_segments == 1
        and set(known)
        == {
            "/d/a.txt",
            "/d/b.txt",
            "/d/c.txt",
        }
    )
    hit = reopened.search(c.rows[1].vector, k=1)[0]
    assert hit["path"] == "/d/c.txt" and hit["segment"] == 1 and hit["score"] == pytest.approx(1.0, abs=1e-5)

    reopened.write([_file("/d/c.txt", 1, 7)])  # LanceDB's merge_insert on top of the committed fragments
    keys = _keys(tmp_path)
    assert len(keys) == len(set(keys)) == 4


def test_store_commit_fragments_records_empty_files_and_failures(tmp_path):
    store = _store(tmp_path)
    store.write([_file("/d/a.txt", 2, 0)], [FailureRecord("/d/bad.png", 3, 3, "m@1", "broken", "0")])
    uri = dataset_uri(str(tmp_path), "media")
    b = _file("/d/b.txt", 2, 1)
    frags = FragmentWriter(uri, DIM, "m@1").write([b])
    empty = FileRecord("/d/a.txt", 0, 2, "h", "m@1", 0, 2)  # a.txt emptied: its rows go, it is recorded as empty
    store.commit_fragments(frags, [b.record, empty], [FailureRecord("/d/worse.png", 1, 1, "m@1", "bad", "0")])

    again = LanceStore(str(tmp_path), "media", model="m@1")
    assert sorted(again.known_files()) == ["/d/a.txt", "/d/b.txt"]
    assert again.known_files()["/d/a.txt"].n_segments == 0
    assert sorted(again.known_failures()) == ["/d/bad.png", "/d/worse.png"]
    assert again.count() == 2 and rows_of(uri, ["/d/a.txt"]) == {}


def test_a_commit_that_replaces_nothing_held_only_adds(tmp_path):
    store = _store(tmp_path)
    store.write([_file("/d/a.txt", 1, 0)])
    uri = dataset_uri(str(tmp_path), "media")
    frags = FragmentWriter(uri, DIM, "m@1").write([_file("/d/n.txt", 2, 1)])
    v0 = store.table.version
    v1 = commit_fragments(uri, frags, ["/d/n.txt"])
    assert v1 == v0 + 1 and len(_keys(tmp_path)) == 3
    assert commit_fragments(uri, [], []) == v1  # nothing to do: no new version
