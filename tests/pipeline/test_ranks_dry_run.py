"""Ranks share a tree without overlap and give the rows of a single run; --dry-run plans without writing."""

import numpy as np

from gemb2.pipeline.embed import EmbedOptions, run_embed
from gemb2.store import LanceStore
from tests.media import mixed_tree, write_text


def _rows(store):
    return {r["key"]: r for r in store.table.to_arrow().to_pylist()}


def test_two_ranks_write_the_rows_of_one_run(tmp_path, tiny):
    mixed_tree(tmp_path / "m")
    for i in range(6):
        write_text(tmp_path / "m" / "more" / f"x{i}.txt", f"extra note {i}")
    one = LanceStore(str(tmp_path / "one"), model=tiny.model_id, dim=tiny.config.out_dim)
    run_embed([str(tmp_path / "m")], one, model_id=tiny.model_id, get_model=lambda: tiny, options=EmbedOptions(workers=0))
    two = LanceStore(str(tmp_path / "two"), model=tiny.model_id, dim=tiny.config.out_dim)
    reports = [run_embed([str(tmp_path / "m")], two, model_id=tiny.model_id, get_model=lambda: tiny,
                         options=EmbedOptions(workers=0, rank=r, world_size=2)) for r in (0, 1)]
    assert all(r.files_added > 0 for r in reports)  # both ranks had work
    assert sum(r.files_added for r in reports) == 13
    a, b = _rows(one), _rows(two)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k]["vector"], b[k]["vector"], atol=1e-5)
    # deletions: each rank removes only the files it owns
    (tmp_path / "m" / "more" / "x0.txt").unlink()
    (tmp_path / "m" / "more" / "x1.txt").unlink()
    removed = [run_embed([str(tmp_path / "m")], two, model_id=tiny.model_id, get_model=lambda: tiny,
                         options=EmbedOptions(workers=0, rank=r, world_size=2)).files_removed for r in (0, 1)]
    assert sum(removed) == 2 and len(two.known_files()) == 11


def test_dry_run_lists_changes_and_writes_nothing(tmp_path, tiny):
    files = mixed_tree(tmp_path / "m")
    store = LanceStore(str(tmp_path / "db"), model=tiny.model_id, dim=tiny.config.out_dim)

    def never():
        raise AssertionError("a dry run loaded the model")

    first = run_embed([str(tmp_path / "m")], store, model_id=tiny.model_id, get_model=never, dry_run=True)
    assert store.table is None and len(first.would_add) == 7 and first.files_added == 0
    run_embed([str(tmp_path / "m")], store, model_id=tiny.model_id, get_model=lambda: tiny, options=EmbedOptions(workers=0))
    version, rows = store.table.version, _rows(store)
    write_text(files["t0"], "changed text")
    (tmp_path / "m" / "img" / "pic1.png").unlink()
    write_text(tmp_path / "m" / "new.txt", "a new file")
    r = run_embed([str(tmp_path / "m")], store, model_id=tiny.model_id, get_model=never, dry_run=True)
    assert r.would_add == [str(tmp_path / "m" / "new.txt")] and r.would_update == [files["t0"]]
    assert r.would_remove == [files["i1"]] and r.files_unchanged == 5
    assert r.to_dict()["dry_run"] is True and "would_add" in r.to_dict()
    store.refresh()
    assert store.table.version == version and _rows(store).keys() == rows.keys()
