"""`gemb2 query`'s path answers queries without error or torn result while `gemb2 embed` writes to the same table.

Latency under load is a benchmark (benchmarks/query_under_load.py), not asserted here.
"""


import pytest

from gemb2 import load_model
from gemb2.parts import Text
from gemb2.pipeline.query import query_vector, search
from gemb2.store import LanceStore
from tests.cli_run import gemb2, gemb2_popen
from tests.media import write_text


@pytest.mark.slow
def test_1000_queries_while_embed_writes(tmp_path):
    db = str(tmp_path / "db")
    for i in range(50):
        write_text(tmp_path / "seed" / f"s{i:03d}.txt", f"seed note {i} about rivers and stones")
    for i in range(300):
        write_text(tmp_path / "new" / f"n{i:03d}.txt", f"new note {i} " + "music city night " * (i % 5 + 1))
    embed = ["embed", "--model", "tiny", "--db", db, "--quiet", "--workers", "1"]
    gemb2(*embed, str(tmp_path / "seed"), check=True, timeout=300)
    model = load_model("tiny")
    seed_paths = {str(tmp_path / "seed" / f"s{i:03d}.txt") for i in range(50)}
    new_paths = {str(tmp_path / "new" / f"n{i:03d}.txt") for i in range(300)}

    writer = gemb2_popen(*embed, "--commit-rows", "4", "--batch-size", "4", str(tmp_path / "new"))
    seen_rows, overlapped = 0, False
    try:
        store = LanceStore(db)
        for i in range(1000):
            if i % 25 == 0:
                store = LanceStore(db)  # a fresh handle sees the versions committed meanwhile
                overlapped |= writer.poll() is None
                seen_rows = max(seen_rows, store.count())
            hits = search(store, query_vector(model, [Text(f"note {i} rivers music")]), 10)
            assert len(hits) == 10
            keys = [(h.path, h.segment) for h in hits]
            assert len(set(keys)) == 10, keys  # no row twice: no torn read of a half-applied merge
            assert all(h.path in seed_paths | new_paths for h in hits)
            assert all(-1.0001 <= h.score <= 1.0001 for h in hits)
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    finally:
        assert writer.wait(timeout=300) == 0
    assert overlapped, "the writer finished before the queries started: make the tree bigger"
    final = LanceStore(db)
    keys = final.table.to_arrow().column("key").to_pylist()
    assert len(keys) == len(set(keys)) == 350
