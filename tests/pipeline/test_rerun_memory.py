"""What a rerun remembers: files with nothing to embed, content failures, the segmentation rows were cut with,
and shard folders that hold only live rows. In-process `run_embed` with the tiny model, real stores."""

from __future__ import annotations

import glob
import json
import os
import signal

import lancedb
import numpy as np
import pyarrow as pa
import pytest
from safetensors.numpy import load_file

from gemb2.data.pool import FileFailed, load_parallel
from gemb2.data.segments import LoadSpec
from gemb2 import load_model
from gemb2.pipeline.embed import EmbedOptions, run_embed
from gemb2.pipeline.interrupt import StopSignal
from gemb2.store import EmbeddedFile, FileRecord, LanceStore, SegmentRow, ShardStore, read_shards
from gemb2.store.lance import NOROWS_SUFFIX
from tests.media import write_image, write_text
from tests.robustness.test_pool_limits import entries_of, sparse_wav

OPTS = EmbedOptions(workers=0)


@pytest.fixture(scope="module")
def model():
    return load_model("tiny")


def open_store(kind: str, tmp_path, model=None):
    m = None if model is None else model.model_id
    if kind == "lance":
        s = LanceStore(str(tmp_path / "db"), "media", model=m)
    else:
        s = ShardStore(str(tmp_path / "out"), model=m)
    if model is not None and s.dim is None:
        s.model, s.dim = model.model_id, model.config.out_dim
    return s


def embed(kind, tmp_path, model, roots, **opts):
    store = open_store(kind, tmp_path, model)
    try:
        return run_embed([str(r) for r in roots], store, model_id=model.model_id, get_model=lambda: model,
                         options=EmbedOptions(workers=0, **opts))
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["lance", "shards"])
def test_empty_texts_are_recorded_and_a_rerun_reads_nothing(kind, tmp_path, model):
    m = tmp_path / "m"
    write_text(m / "empty.txt", "")
    write_text(m / "blank.txt", "  \n\t\n")
    write_text(m / "good.txt", "a sentence worth embedding")
    (m / "bad.png").write_bytes(b"not a png at all")
    first = embed(kind, tmp_path, model, [m])
    assert (first.files_added, first.files_failed, first.rows_added) == (3, 1, 1)
    known = open_store(kind, tmp_path).known_files()
    assert known[str(m / "empty.txt")].n_segments == 0 and known[str(m / "blank.txt")].n_segments == 0

    again = embed(kind, tmp_path, model, [m])
    assert (again.files_added, again.files_unchanged, again.files_failed, again.files_failed_known) == (0, 3, 0, 1)
    assert again.failures == []


def test_a_file_that_gets_rows_forgets_its_empty_record_and_back(tmp_path):
    s = LanceStore(str(tmp_path / "db"), "media", model="m@1", dim=4)
    empty = EmbeddedFile(FileRecord("/a.txt", 0, 1, "h0", "m@1", 0, 2), [])
    s.write([empty])  # only a file without rows: no vector to stack
    assert s.known_files()["/a.txt"].n_segments == 0 and s.count() == 0
    full = EmbeddedFile(FileRecord("/a.txt", 9, 2, "h1", "m@1", 1, 2),
                        [SegmentRow(0, "text", 0, 9, "some text", np.array([1, 0, 0, 0], np.float32))])
    s.write([full])
    assert s.known_files()["/a.txt"].n_segments == 1 and s.count() == 1
    side = lancedb.connect(str(tmp_path / "db")).open_table("media" + NOROWS_SUFFIX)
    assert side.count_rows() == 0
    s.write([EmbeddedFile(FileRecord("/a.txt", 0, 3, "h0", "m@1", 0, 2), [])])  # emptied again: its rows go
    assert s.known_files()["/a.txt"].n_segments == 0 and s.count() == 0


def test_ordinary_commits_do_not_touch_the_side_table(tmp_path):
    s = LanceStore(str(tmp_path / "db"), "media", model="m@1", dim=4)
    s.write([EmbeddedFile(FileRecord("/empty.txt", 0, 1, "h0", "m@1", 0, 2), [])])
    side = lancedb.connect(str(tmp_path / "db")).open_table("media" + NOROWS_SUFFIX)
    version = side.version
    for i in range(3):  # files with rows and no side record: no side-table write, no new version
        s.write([EmbeddedFile(FileRecord(f"/f{i}.txt", 9, 1, "h", "m@1", 1, 2),
                              [SegmentRow(0, "text", 0, 9, "x", np.array([1, 0, 0, 0], np.float32))])])
    side.checkout_latest()
    assert side.version == version and side.count_rows() == 1


@pytest.mark.parametrize("kind", ["lance", "shards"])
def test_content_failures_are_remembered_until_the_file_changes(kind, tmp_path, model):
    m = tmp_path / "m"
    write_text(m / "ok.txt", "fine")
    bad = m / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)  # a PNG signature and nothing decodable
    first = embed(kind, tmp_path, model, [m])
    assert first.files_failed == 1 and first.failures[0].path == str(bad)
    assert set(open_store(kind, tmp_path).known_failures()) == {str(bad)}

    second = embed(kind, tmp_path, model, [m])
    assert (second.files_failed, second.files_failed_known, second.failures) == (0, 1, [])

    retried = embed(kind, tmp_path, model, [m], retry_failed=True)
    assert (retried.files_failed, retried.files_failed_known) == (1, 0)

    write_image(bad, seed=3)  # fixed: a new size and mtime
    fixed = embed(kind, tmp_path, model, [m])
    assert (fixed.files_added, fixed.files_failed, fixed.files_failed_known) == (1, 0, 0)
    assert open_store(kind, tmp_path).known_failures() == {}

    os.unlink(bad)
    (m / "gone.png").write_bytes(b"GIF89a broken")
    embed(kind, tmp_path, model, [m])
    os.unlink(m / "gone.png")  # a remembered failure whose file is deleted is forgotten
    embed(kind, tmp_path, model, [m])
    assert open_store(kind, tmp_path).known_failures() == {}


def test_timeouts_are_transient_and_content_failures_are_not(tmp_path):
    sparse_wav(tmp_path / "hours.wav", 2_000_000_000)  # far more than 1 s to decode one 4-hour window
    (tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    entries = entries_of(tmp_path)
    spec = LoadSpec(audio_window_s=4 * 3600.0, file_timeout_s=1.0)
    ends = {ev.file_id: ev for ev in load_parallel(entries, spec, workers=1) if isinstance(ev, FileFailed)}
    by_name = {os.path.basename(entries[i].path): ev for i, ev in ends.items()}
    assert by_name["hours.wav"].transient and "timed out" in by_name["hours.wav"].reason
    assert not by_name["fake.png"].transient


def test_a_timed_out_file_is_not_remembered_and_is_tried_again(tmp_path, model, monkeypatch):
    import gemb2.pipeline.loadspec as spec_mod

    real = spec_mod.load_spec_for
    monkeypatch.setattr(spec_mod, "load_spec_for",  # this model's spec, with a 1 s time limit and 4 h windows
                        lambda m: LoadSpec(**{**real(m).__dict__, "file_timeout_s": 1.0, "audio_window_s": 14400.0}))
    (tmp_path / "m").mkdir()
    sparse_wav(tmp_path / "m" / "hours.wav", 2_000_000_000)
    store = open_store("lance", tmp_path, model)
    opts = EmbedOptions(workers=1)
    r = run_embed([str(tmp_path / "m")], store, model_id=model.model_id, get_model=lambda: model, options=opts)
    assert r.files_failed == 1 and "timed out" in r.failures[0].reason
    assert store.known_failures() == {}
    again = run_embed([str(tmp_path / "m")], store, model_id=model.model_id, get_model=lambda: model, options=opts)
    assert (again.files_failed, again.files_failed_known) == (1, 0)


def _v1_table(db: str, rows: pa.Table) -> None:
    """A table as gemb2 0.1 wrote it: no `segmentation` column, schema version 1 in its metadata."""
    rows = rows.drop_columns(["segmentation"])
    meta = dict(rows.schema.metadata)
    meta[b"gemb2.schema_version"] = b"1"
    fields = [pa.field(f.name, f.type, nullable=f.nullable) for f in rows.schema]
    conn = lancedb.connect(db)
    t = conn.create_table("media", schema=pa.schema(fields, metadata=meta))
    t.set_unenforced_primary_key("key")
    t.add(rows.cast(pa.schema(fields, metadata=meta)))


def test_a_version_1_table_is_migrated_and_its_cut_text_re_embedded(tmp_path, model):
    m = tmp_path / "m"
    write_text(m / "long.txt", "words " * 50)
    write_image(m / "pic.png", seed=1)
    embed("lance", tmp_path, model, [m])
    rows = lancedb.connect(str(tmp_path / "db")).open_table("media").to_arrow()
    _v1_table(str(tmp_path / "old"), rows)

    old = LanceStore(str(tmp_path / "old"), "media")
    assert old.schema_version == 1 and all(r.segmentation == 1 for r in old.known_files().values())
    r = run_embed([str(m)], LanceStore(str(tmp_path / "old"), "media", model=model.model_id), model_id=model.model_id,
                  get_model=lambda: model, options=OPTS)
    assert (r.files_updated, r.files_unchanged) == (1, 1)  # the text again; the image is not cut by windows of text
    migrated = LanceStore(str(tmp_path / "old"), "media")
    assert migrated.schema_version == 2 and migrated.known_files()[str(m / "long.txt")].segmentation == 2
    again = run_embed([str(m)], migrated, model_id=model.model_id, get_model=lambda: model, options=OPTS)
    assert again.files_unchanged == 2


def test_a_version_1_shard_folder_is_read_and_its_text_re_embedded(tmp_path, model):
    m = tmp_path / "m"
    write_text(m / "long.txt", "words " * 50)
    write_image(m / "pic.png", seed=1)
    embed("shards", tmp_path, model, [m])
    path = tmp_path / "out" / "manifest.json"
    man = json.loads(path.read_text())
    man["schema_version"] = 1
    del man["failed"]
    for f in man["files"].values():
        del f["segmentation"]
    path.write_text(json.dumps(man))
    r = embed("shards", tmp_path, model, [m])
    assert (r.files_updated, r.files_unchanged) == (1, 1)
    assert json.loads(path.read_text())["schema_version"] == 2


def _every_shard_row(folder) -> tuple[list[dict], np.ndarray]:
    """Every row of every shard file in the folder, read naively (no manifest)."""
    records, vectors = [], []
    for jsonl in sorted(glob.glob(os.path.join(folder, "shard-*.jsonl"))):
        records += [json.loads(line) for line in open(jsonl, encoding="utf-8").read().splitlines()]
        vectors.append(load_file(jsonl[: -len(".jsonl")] + ".safetensors")["vectors"])
    return records, np.concatenate(vectors)


def test_shard_files_hold_no_dead_row_after_an_edit_and_a_delete(tmp_path, model):
    m = tmp_path / "m"
    for i in range(4):
        write_text(m / f"t{i}.txt", f"note number {i}")
    write_image(m / "pic.png", seed=2)
    embed("shards", tmp_path, model, [m])
    write_text(m / "t1.txt", "an edited note, longer than it was")
    os.unlink(m / "t2.txt")
    r = embed("shards", tmp_path, model, [m])
    assert (r.files_updated, r.files_removed, r.files_unchanged) == (1, 1, 3)

    naive, vecs = _every_shard_row(tmp_path / "out")
    live = {str(m / n) for n in ("t0.txt", "t1.txt", "t3.txt", "pic.png")}
    assert sorted(x["path"] for x in naive) == sorted(live)  # each live file once, no dead row anywhere
    assert next(x for x in naive if x["path"].endswith("t1.txt"))["text"].startswith("an edited note")
    records, vectors = read_shards(str(tmp_path / "out"))
    order = {x["key"]: i for i, x in enumerate(naive)}
    assert len(records) == len(naive)
    np.testing.assert_array_equal(vectors, vecs[[order[x["key"]] for x in records]])
    os.unlink(m / "t0.txt")
    embed("shards", tmp_path, model, [m])  # a delete alone compacts too
    assert sorted(x["path"] for x in _every_shard_row(tmp_path / "out")[0]) == sorted(live - {str(m / "t0.txt")})


class _CountAtAdvance:
    """A progress display that notes how many rows the store had committed at each file it was told about."""

    def __init__(self, store):
        self.store, self.seen = store, []

    def start(self, total: int) -> None: ...

    def advance(self, n: int = 1) -> None:
        self.seen.append(self.store.count())

    def close(self) -> None: ...


def test_progress_counts_a_file_when_it_is_embedded_not_when_committed(tmp_path, model):
    m = tmp_path / "m"
    for i in range(6):
        write_text(m / f"t{i}.txt", f"note number {i}")
    store = open_store("lance", tmp_path, model)
    progress = _CountAtAdvance(store)
    opts = EmbedOptions(workers=0, batch_size=1, commit_rows=10_000, commit_seconds=3600)
    run_embed([str(m)], store, model_id=model.model_id, get_model=lambda: model, options=opts, progress=progress)
    assert progress.seen == [0] * 6 and store.count() == 6  # all counted before the one commit at the end


def test_sigint_commits_the_files_embedded_so_far_and_a_rerun_finishes(tmp_path, model):
    m = tmp_path / "m"
    for i in range(8):
        write_text(m / f"t{i}.txt", f"note number {i}")
    store = open_store("lance", tmp_path, model)

    class SignalAfterThree(_CountAtAdvance):
        def advance(self, n: int = 1) -> None:
            super().advance(n)
            if len(self.seen) == 3:
                signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, delivered to the real handler

    opts = EmbedOptions(workers=0, batch_size=1, commit_rows=10_000, commit_seconds=3600)
    with StopSignal() as stop:
        r = run_embed([str(m)], store, model_id=model.model_id, get_model=lambda: model, options=opts,
                      progress=SignalAfterThree(store), stop=stop)
    assert r.interrupted == "SIGINT" and stop.exit_code == 130
    assert r.files_added == 3 and store.count() == 3  # the three embedded files were committed, nothing more
    rest = run_embed([str(m)], store, model_id=model.model_id, get_model=lambda: model, options=OPTS)
    assert (rest.files_added, rest.files_unchanged) == (5, 3) and store.count() == 8
