import json
import os

import numpy as np
import pytest

from gemb2.store import EmbeddedFile, FileRecord, SegmentRow, ShardStore, StoreError, read_shards


def _file(path, n, *, mtime=1, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    rows = [SegmentRow(i, "audio", i * 30.0, (i + 1) * 30.0, None, rng.normal(size=dim).astype(np.float32)) for i in range(n)]
    return EmbeddedFile(FileRecord(path, 10, mtime, "h", "m@1", n), rows)


def test_write_read_round_trip(tmp_path):
    s = ShardStore(str(tmp_path / "out"), model="m@1", dim=4)
    a, b = _file("/a.wav", 2, seed=1), _file("/b.wav", 3, seed=2)
    s.write([a, b])
    records, vectors = read_shards(str(tmp_path / "out"))
    assert [r["path"] for r in records] == ["/a.wav"] * 2 + ["/b.wav"] * 3
    np.testing.assert_array_equal(vectors, np.stack([r.vector for r in a.rows + b.rows]))
    assert records[3]["start"] == 30.0 and records[3]["segment"] == 1
    assert len({r["key"] for r in records}) == 5


def test_replace_and_remove_keep_only_live_rows_and_delete_dead_shards(tmp_path):
    out = tmp_path / "out"
    s = ShardStore(str(out), model="m@1", dim=4)
    s.write([_file("/a.wav", 2)])
    s.write([_file("/a.wav", 1, mtime=2, seed=9)])  # a's first shard is now all dead
    assert not (out / "shard-000001.safetensors").exists()
    s.remove(["/a.wav"])
    records, vectors = read_shards(str(out))
    assert records == [] and vectors.shape == (0, 4)
    assert not [n for n in os.listdir(out) if n.startswith("shard-")]


def test_reopen_keeps_known_files_and_refuses_other_model(tmp_path):
    out = str(tmp_path / "out")
    ShardStore(out, model="m@1", dim=4).write([_file("/a.wav", 2)])
    assert ShardStore(out).known_files()["/a.wav"].n_segments == 2
    with pytest.raises(StoreError, match="holds vectors of model"):
        ShardStore(out, model="x@2", dim=4)


def test_an_orphan_shard_from_a_killed_run_is_never_read_and_gets_cleaned(tmp_path):
    out = tmp_path / "out"
    s = ShardStore(str(out), model="m@1", dim=4)
    s.write([_file("/a.wav", 1)])
    (out / "shard-000007.safetensors").write_bytes(b"torn")  # as if killed before the manifest was replaced
    (out / "shard-000007.jsonl").write_text("{")
    records, _ = read_shards(str(out))
    assert [r["path"] for r in records] == ["/a.wav"]
    ShardStore(str(out)).write([_file("/b.wav", 1)])
    assert not (out / "shard-000007.safetensors").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {"/a.wav", "/b.wav"}


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="cannot read"):
        ShardStore(str(out))
