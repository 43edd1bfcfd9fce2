"""Index planning and building on real LanceDB tables; prefix (Matryoshka) and full-text search; the rank split and lock."""

import numpy as np
import pytest

from gemb2.store import EmbeddedFile, FileRecord, LanceStore, SegmentRow
from gemb2.store.index import (
    MIN_INDEX_ROWS, IndexBuildError, QueryTuning, brute_force_max_rows, build_indexes, plan_vector_index, vector_index_kind,
)
from gemb2.store.lock import SPACE, owner, path_hash, rank_interval


def _files(n_files, rows_per_file, dim, seed=0, words=("alpha", "beta", "gamma")):
    rng = np.random.default_rng(seed)
    out = []
    for f in range(n_files):
        v = rng.normal(size=(rows_per_file, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        rows = [SegmentRow(i, "text", float(i), float(i + 1), f"{words[(f + i) % len(words)]} file {f} row {i}", v[i])
                for i in range(rows_per_file)]
        out.append(EmbeddedFile(FileRecord(f"/d/f{f:05d}.txt", 1, 1, "h", "m@1", rows_per_file), rows))
    return out


def test_auto_plans_none_below_the_threshold_and_hnsw_above():
    limit = brute_force_max_rows(768)
    assert plan_vector_index(limit - 1, 768).kind == "none"
    big = plan_vector_index(limit, 768)
    assert big.kind == "hnsw" and big.num_partitions >= 1 and big.m > 0 and big.ef_construction > 0
    assert plan_vector_index(2_000_000, 768).num_partitions > plan_vector_index(100_000, 768).num_partitions
    assert brute_force_max_rows(64) > brute_force_max_rows(768)  # the scan's cost is rows x dim
    pq = plan_vector_index(100_000, 768, "ivf_pq")
    assert pq.kind == "ivf_pq" and 768 % pq.num_sub_vectors == 0 and pq.num_partitions > 1
    assert plan_vector_index(10, 768, "none").kind == "none"


def test_explicit_index_on_a_too_small_table_is_a_clear_error():
    with pytest.raises(IndexBuildError, match=f"needs at least {MIN_INDEX_ROWS}"):
        plan_vector_index(MIN_INDEX_ROWS - 1, 8, "hnsw")
    with pytest.raises(IndexBuildError, match="'flat'"):
        plan_vector_index(1000, 8, "flat")


def test_small_table_gets_scalar_and_fts_but_no_vector_index(tmp_path):
    s = LanceStore(str(tmp_path / "db"), model="m@1", dim=8)
    for f in _files(6, 5, 8):
        s.write([f])  # one version per write
    rep = build_indexes(s.table, dim=8, kind="auto", name="media", cleanup_older_than=__import__("datetime").timedelta(0))
    assert rep.rows == 30 and not rep.vector["built"] and rep.vector["kind"] == "none"
    assert rep.scalar == ["path", "modality"] and rep.fts == ["text"]
    assert rep.versions_after < rep.versions_before and rep.size_bytes > 0
    assert vector_index_kind(s.table) is None
    assert {tuple(i["columns"]) for i in rep.indexes} == {("path",), ("modality",), ("text",)}
    assert any("exact scan" in m for m in rep.messages)
    hits = s.text_search("gamma", 5)
    assert hits and all("gamma" in h["text"] for h in hits)
    assert s.search(s.table.to_arrow().column("vector")[7].values.to_numpy(), 1)[0]["score"] == pytest.approx(1, abs=1e-5)


def test_big_table_gets_hnsw_and_queries_stay_exact_at_the_top(tmp_path):
    dim = 768
    n_files = brute_force_max_rows(dim) // 50 + 2
    s = LanceStore(str(tmp_path / "db"), model="m@1", dim=dim)
    files = _files(n_files, 50, dim, seed=3)
    s.write(files)
    rep = build_indexes(s.table, dim=dim, kind="auto")
    assert rep.vector["built"] and rep.vector["kind"] == "hnsw"
    assert vector_index_kind(s.table) == "IvfHnswSq"
    again = build_indexes(s.table, dim=dim, kind="auto")  # a refresh: nothing new, nothing rebuilt
    assert again.vector["present"] and not again.vector["built"] and "vector" not in again.seconds
    for f in files[:: max(1, n_files // 5)]:
        target = f.rows[7]
        hit = s.search(target.vector, 3, tuning=QueryTuning(refine_factor=5))[0]
        assert (hit["path"], hit["segment"]) == (f.record.path, 7) and hit["score"] == pytest.approx(1, abs=1e-4)
    only = s.search(files[3].rows[0].vector, 5, where=f"path = '{files[4].record.path}'")
    assert {h["path"] for h in only} == {files[4].record.path}


def test_prefix_query_ranks_by_prefix_cosine(tmp_path):
    s = LanceStore(str(tmp_path / "db"), model="m@1", dim=16)
    files = _files(20, 5, 16, seed=9)
    s.write(files)
    all_v = np.stack([r.vector for f in files for r in f.rows])  # (100, 16)
    q = np.random.default_rng(1).normal(size=8).astype(np.float32)
    q /= np.linalg.norm(q)
    pre = all_v[:, :8] / np.linalg.norm(all_v[:, :8], axis=1, keepdims=True)
    want = np.sort(pre @ q)[::-1][:5]
    got = [h["score"] for h in s.search(q, 5)]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_rank_intervals_split_the_hash_space_and_match_owner():
    for w in (1, 2, 3, 7):
        spans = [rank_interval(r, w) for r in range(w)]
        assert spans[0][0] == 0 and spans[-1][1] == SPACE
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        for i in range(200):
            p = f"/media/file-{i}.jpg"
            lo, hi = spans[owner(p, w)]
            assert lo <= path_hash(p) < hi
    counts = np.bincount([owner(f"/x/{i}", 4) for i in range(4000)], minlength=4)
    assert counts.min() > 800  # roughly even
