import os

import numpy as np

from gemb2.pipeline.embed import EmbedOptions, run_embed
from gemb2.store import LanceStore, ShardStore, read_shards
from tests.media import mixed_tree, write_image, write_text

OPTS = EmbedOptions(workers=0, batch_size=4)


def _store(tmp_path, tiny):
    return LanceStore(str(tmp_path / "db"), model=tiny.model_id, dim=tiny.config.out_dim)


def _run(root, store, tiny, **kw):
    return run_embed([str(root)], store, model_id=tiny.model_id, get_model=lambda: tiny, options=kw.pop("options", OPTS), **kw)


def _never():
    raise AssertionError("the model was loaded for an unchanged tree")


def test_mixed_tree_gets_one_row_per_segment_of_every_modality(tmp_path, tiny):
    mixed_tree(tmp_path / "m")
    store = _store(tmp_path, tiny)
    r = _run(tmp_path / "m", store, tiny)
    assert r.files_failed == 0, r.failures
    assert r.files_added == 7 and r.rows_added == store.count()
    rows = store.table.to_arrow().to_pylist()
    assert {row["modality"] for row in rows} == {"text", "image", "audio", "video"}
    keys = [row["key"] for row in rows]
    assert len(keys) == len(set(keys))
    vecs = np.array([row["vector"] for row in rows])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert all(row["model"] == tiny.model_id and row["dim"] == tiny.config.out_dim for row in rows)
    text_rows = [row for row in rows if row["modality"] == "text"]
    assert all(row["text"].startswith("note number") for row in text_rows)


def test_incremental_cycle_unchanged_modified_deleted(tmp_path, tiny):
    files = mixed_tree(tmp_path / "m")
    store = _store(tmp_path, tiny)
    first = _run(tmp_path / "m", store, tiny)
    n_rows = store.count()

    again = run_embed([str(tmp_path / "m")], store, model_id=tiny.model_id, get_model=_never, options=OPTS)
    assert (again.files_unchanged, again.files_added, again.files_updated, again.files_removed) == (7, 0, 0, 0)
    assert store.count() == n_rows

    before = {r["path"]: r["vector"] for r in store.table.to_arrow().to_pylist()}
    write_text(files["t0"], "a completely different note, now about boats and the sea")
    os.remove(files["i1"])
    r = _run(tmp_path / "m", store, tiny)
    assert (r.files_updated, r.files_removed, r.files_unchanged, r.files_added) == (1, 1, 5, 0)
    after = {r["path"]: r for r in store.table.to_arrow().to_pylist()}
    assert files["i1"] not in after
    assert after[files["t0"]]["text"].startswith("a completely different note")
    assert not np.allclose(after[files["t0"]]["vector"], before[files["t0"]])
    assert store.count() == n_rows - 1
    assert first.model == tiny.model_id


def test_only_files_under_the_given_roots_are_removed(tmp_path, tiny):
    write_text(tmp_path / "a" / "x.txt", "alpha")
    write_text(tmp_path / "b" / "y.txt", "beta")
    store = _store(tmp_path, tiny)
    _run(tmp_path / "a", store, tiny)
    _run(tmp_path / "b", store, tiny)
    assert len(store.known_files()) == 2  # embedding b did not remove a's rows


def test_a_bad_file_is_a_failure_with_path_and_reason_and_the_rest_is_done(tmp_path, tiny):
    write_image(tmp_path / "m" / "good.png", seed=1)
    write_text(tmp_path / "m" / "good.txt", "hello")
    bad = tmp_path / "m" / "bad.jpg"
    bad.write_bytes(open(write_image(tmp_path / "src.jpg"), "rb").read()[:200])  # a truncated JPEG
    store = _store(tmp_path, tiny)
    r = _run(tmp_path / "m", store, tiny)
    assert r.files_added == 2 and r.files_failed == 1
    assert r.failures[0].path == str(bad) and r.failures[0].reason
    assert set(store.known_files()) == {str(tmp_path / "m" / "good.png"), str(tmp_path / "m" / "good.txt")}


def test_shard_store_gets_the_same_vectors_as_lancedb(tmp_path, tiny):
    mixed_tree(tmp_path / "m", n_text=2, n_image=1)
    lance = _store(tmp_path, tiny)
    _run(tmp_path / "m", lance, tiny)
    shards = ShardStore(str(tmp_path / "out"), model=tiny.model_id, dim=tiny.config.out_dim)
    r = _run(tmp_path / "m", shards, tiny)
    assert r.files_failed == 0
    records, vectors = read_shards(str(tmp_path / "out"))
    by_key = {row["key"]: np.array(row["vector"]) for row in lance.table.to_arrow().to_pylist()}
    assert sorted(by_key) == sorted(rec["key"] for rec in records)
    for rec, v in zip(records, vectors):
        np.testing.assert_allclose(v, by_key[rec["key"]], atol=1e-6)
    again = run_embed([str(tmp_path / "m")], ShardStore(str(tmp_path / "out")), model_id=tiny.model_id, get_model=_never, options=OPTS)
    assert again.files_unchanged == r.files_added


def test_parallel_workers_give_the_same_rows(tmp_path, tiny):
    mixed_tree(tmp_path / "m")
    a, b = LanceStore(str(tmp_path / "a"), model=tiny.model_id, dim=tiny.config.out_dim), LanceStore(str(tmp_path / "b"), model=tiny.model_id, dim=tiny.config.out_dim)
    _run(tmp_path / "m", a, tiny)
    _run(tmp_path / "m", b, tiny, options=EmbedOptions(workers=2, batch_size=3))
    va = {r["key"]: r["vector"] for r in a.table.to_arrow().to_pylist()}
    vb = {r["key"]: r["vector"] for r in b.table.to_arrow().to_pylist()}
    assert va.keys() == vb.keys()
    for k in va:
        np.testing.assert_allclose(va[k], vb[k], atol=1e-5)


def test_a_text_only_model_counts_media_files_as_failures_and_embeds_the_texts(tmp_path, tiny):
    from gemb2.model import Gemb2Model

    text_only = Gemb2Model(tiny.config.replace(image_stem="none", audio_stem="none"), tiny.tokenizer).eval()
    files = mixed_tree(tmp_path / "m", n_text=2, n_image=1)
    store = LanceStore(str(tmp_path / "db"), model=text_only.model_id, dim=text_only.config.out_dim)
    r = run_embed([str(tmp_path / "m")], store, model_id=text_only.model_id, get_model=lambda: text_only, options=OPTS)
    assert r.files_added == 2 and r.files_failed == 3
    assert {f.path for f in r.failures} == {files["i0"], files["a0"], files["v0"]}
    assert all("does not embed" in f.reason for f in r.failures)
