"""The fixed real-media evaluation set (benchmarks/realmedia): pinned, split by hash, built with its sources'
hashes checked, and a missing package skipped with the line that installs it."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter

import pytest

from benchmarks.realmedia import build as rm


def test_the_set_is_pinned_by_its_hash():
    """queries.json is fixed once scored: editing it must come with a new SHA256 (and new numbers)."""
    pinned = (rm.HERE / "SHA256").read_text().strip()
    assert hashlib.sha256(rm.QUERIES.read_bytes()).hexdigest() == pinned == rm.set_sha256()


def test_every_item_has_a_recipe_and_descriptions():
    items = rm.load_items()
    ids = [it["id"] for it in items]
    assert len(ids) == len(set(ids))
    for it in items:
        assert len(it["descriptions"]) >= 2 and all(d.strip() for d in it["descriptions"]), it["id"]
        recipes = [k for k in ("source", "espeak", "video", "text") if k in it]
        assert len(recipes) == 1, it["id"]
        for src in [it["source"]] if "source" in it else it.get("video", {}).get("frames", []):
            assert len(src["sha256"]) == 64 and ("debian" in src) != ("pypi" in src), it["id"]
    queries = Counter()
    for it in items:
        queries[it["modality"]] += len(it["descriptions"])
    assert sum(queries.values()) >= 150 and all(queries[m] >= 30 for m in ("image", "audio", "video")), queries


def test_split_is_deterministic_and_halves_each_kind():
    items = rm.load_items()
    split = rm.splits(items)
    assert split == rm.splits(list(reversed(items)))  # by hash, not by file order
    for kind in {it["id"].split("/")[0] for it in items}:
        got = Counter(split[it["id"]] for it in items if it["id"].startswith(kind + "/"))
        assert abs(got["dev"] - got["test"]) <= 1, (kind, got)


def test_build_checks_hashes_and_names_the_missing_package(tmp_path, monkeypatch):
    share = tmp_path / "share"
    monkeypatch.setenv("GEMB2_DEBIAN_SHARE", str(share))
    manifest = rm.build(tmp_path / "out", kinds={"doc", "icon"})
    docs = [r for r in manifest["items"] if r["id"].startswith("doc/")]
    assert len(docs) == 12 and {r["split"] for r in docs} == {"dev", "test"}
    text = (tmp_path / "out" / docs[0]["path"]).read_text()
    assert text.strip() == next(it["text"] for it in rm.load_items() if it["id"] == docs[0]["id"])
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["set_sha256"] == rm.set_sha256()
    assert len(manifest["skipped"]) == 16  # every icon: adwaita-icon-theme is not under the empty share
    assert all(
        "apt-get install -y --no-install-recommends adwaita-icon-theme" in s["reason"] for s in manifest["skipped"]
    )
    # a file of the right name but other bytes (another package version) is refused, naming both hashes
    icon = next(it for it in rm.load_items() if it["id"] == "icon/calculator")
    os.makedirs(share / os.path.dirname(icon["source"]["path"]))
    (share / icon["source"]["path"]).write_bytes(b"not the pinned icon")
    with pytest.raises(ValueError, match=icon["source"]["sha256"]):
        rm.build(tmp_path / "out", kinds={"icon"})


def test_hubness_counts_top_hits_on_other_items_queries():
    """3 documents, 4 queries: document 0 is the top hit of its own query and of two queries of others."""
    import numpy as np

    from benchmarks.realmedia.score import chance, metrics, ranks

    dv = np.eye(3, dtype=np.float32)
    qv = np.array([[1, 0, 0], [0.9, 0.1, 0], [0.8, 0, 0.2], [0, 0, 1]], dtype=np.float32)
    targets = [0, 1, 2, 2]
    rank, top = ranks(qv, dv, targets)
    assert rank.tolist() == [0, 1, 1, 0] and top.tolist() == [0, 0, 0, 2]
    m = metrics(rank, top, targets, 3, hub=True)
    assert m["recall@1"] == 0.5 and m["recall@5"] == 1.0 and m["mrr"] == 0.75
    assert m["hub_max"] == 2 / 3  # document 0: top hit of 2 of the 3 queries that are not its own
    assert m["hub_items_over_2pct"] == 1 / 3
    assert chance(4, 3)["recall@1"] == 1 / 3 and chance(4, 10)["recall@5"] == 0.5
