"""72 hostile and broken inputs through the real `gemb2 embed`: each reported or skipped by rule, none crashes
or hangs the run, memory stays under a stated bound, and every good file beside them is embedded exactly."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from gemb2.store.records import segment_key, storage_path
from tests.cli_run import cli_cmd
from tests.robustness import corpus
from tests.robustness._run import run, without_root_read_override

PEAK_RSS_BOUND = 2 * 1024**3  # the CLI + 2 loader workers, tiny model (measured ~1.3 GB: the 64 MP bomb decoding)
TIMEOUT_S = 300  # the run takes ~10 s here; a hang would end here


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("setpriv") is None and os.geteuid() == 0, reason="needs setpriv to drop root's read override")
def test_hostile_corpus_through_gemb2_embed(tmp_path):
    root = str(tmp_path / "corpus")
    c = corpus.build(root, str(tmp_path))
    db = str(tmp_path / "db")
    try:
        cmd = without_root_read_override(cli_cmd("embed", root, "--model", "tiny", "--db", db, "--json",
                                                   "--workers", "2", "--quiet"))
        r = run(cmd, timeout=TIMEOUT_S)
    finally:
        corpus.unlock(root)
    assert r.returncode == 3, r.stderr[-3000:]  # some inputs failed, the rest was done
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.peak_rss < PEAK_RSS_BOUND, f"peak RSS {r.peak_rss >> 20} MiB"
    summary = json.loads(r.stdout)
    failures = {f["path"]: f["reason"] for f in summary["failures"]}
    assert all(reason and "\n" not in reason for reason in failures.values())

    import lancedb

    rows = lancedb.connect(db).open_table("media").to_arrow().to_pylist()
    by_path: dict[str, list[dict]] = {}
    for row in rows:
        by_path.setdefault(row["path"], []).append(row)
    assert len({row["key"] for row in rows}) == len(rows)  # no duplicate row

    too_deep = storage_path(os.path.join(root, "bad/too-deep"))
    accounted = {p for p in failures if p.startswith(too_deep + os.sep)}
    assert accounted, "the branch deeper than PATH_MAX is reported"
    for rel, expect in c.expect.items():
        path = storage_path(os.path.join(root, rel))
        if rel == "bad/too-deep":
            continue
        failed, embedded = path in failures, path in by_path
        note = f"{rel!r} ({c.notes[rel]}): failed={failures.get(path)!r}, rows={len(by_path.get(path, []))}"
        if expect == "fail":
            assert failed and not embedded, note
        elif expect == "skip":
            assert not failed and not embedded, note
        elif expect == "any":
            assert not (failed and embedded), note
        else:
            assert not failed and embedded, note
            got = sorted(by_path[path], key=lambda row: row["segment"])
            assert [row["segment"] for row in got] == list(range(c.good_rows[rel])), note
            assert all(row["key"] == segment_key(path, row["segment"]) for row in got), note
        accounted.add(path)
    assert set(failures) <= accounted, f"unexpected failures: {set(failures) - accounted}"
    assert set(by_path) <= accounted, f"unexpected rows: {set(by_path) - accounted}"
    vectors = np.array([row["vector"] for row in rows], np.float32)
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert len(c.expect) >= 30 and sum(e == "fail" for e in c.expect.values()) >= 30
