import numpy as np
import pytest

from gemb2.store import EmbeddedFile, FileRecord, LanceStore, SegmentRow, StoreError


def _file(path, n, *, mtime=1, model="m@1", dim=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        v = rng.normal(size=dim).astype(np.float32)
        rows.append(SegmentRow(i, "text", float(i), float(i + 1), f"{path} part {i}", v / np.linalg.norm(v)))
    return EmbeddedFile(FileRecord(path, 100, mtime, "h", model, n), rows)


def _keys(store):
    return store.table.to_arrow().column("key").to_pylist()


def test_write_then_known_files_and_count(tmp_path):
    s = LanceStore(str(tmp_path / "db"), model="m@1", dim=8)
    s.write([_file("/a.txt", 3), _file("/b.txt", 1)])
    known = s.known_files()
    assert set(known) == {"/a.txt", "/b.txt"}
    assert known["/a.txt"].n_segments == 3 and known["/a.txt"].mtime_ns == 1
    assert s.count() == 4


def test_rewrite_replaces_rows_and_drops_surplus_segments(tmp_path):
    s = LanceStore(str(tmp_path / "db"), model="m@1", dim=8)
    s.write([_file("/a.txt", 3)])
    s.write([_file("/a.txt", 1, mtime=2, seed=5)])
    keys = _keys(s)
    assert len(keys) == 1 == len(set(keys))
    assert s.known_files()["/a.txt"].mtime_ns == 2


def test_same_write_twice_never_duplicates(tmp_path):
    s = LanceStore(str(tmp_path / "db"), model="m@1", dim=8)
    for _ in range(3):
        s.write([_file("/a.txt", 2), _file("/b.txt", 2)])
    keys = _keys(s)
    assert len(keys) == 4 == len(set(keys))


def test_remove_and_quotes_in_paths(tmp_path):
    s = LanceStore(str(tmp_path / "db"), model="m@1", dim=8)
    s.write([_file("/it's here.txt", 2), _file("/b.txt", 1)])
    s.remove(["/it's here.txt"])
    assert set(s.known_files()) == {"/b.txt"}


def test_search_finds_exact_vector_first_with_cosine_one(tmp_path):
    s = LanceStore(str(tmp_path / "db"), model="m@1", dim=8)
    files = [_file(f"/f{i}.txt", 2, seed=i) for i in range(10)]
    s.write(files)
    target = files[4].rows[1].vector
    hits = s.search(target, 3)
    assert hits[0]["path"] == "/f4.txt" and hits[0]["segment"] == 1
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    only = s.search(target, 5, where="path = '/f7.txt'")
    assert {h["path"] for h in only} == {"/f7.txt"}


def test_table_is_tied_to_its_model(tmp_path):
    s = LanceStore(str(tmp_path / "db"), model="m@1", dim=8, source="tiny")
    s.write([_file("/a.txt", 1)])
    reopened = LanceStore(str(tmp_path / "db"))
    assert (reopened.model, reopened.dim, reopened.source) == ("m@1", 8, "tiny")
    with pytest.raises(StoreError, match="holds vectors of model 'm@1'"):
        LanceStore(str(tmp_path / "db"), model="other@2", dim=8)


def test_wrong_dimension_is_refused(tmp_path):
    s = LanceStore(str(tmp_path / "db"), model="m@1", dim=8)
    with pytest.raises(StoreError, match="dimension"):
        s.write([_file("/a.txt", 1, dim=4)])


def test_bad_table_name(tmp_path):
    with pytest.raises(StoreError, match="invalid table name"):
        LanceStore(str(tmp_path / "db"), "../x")
