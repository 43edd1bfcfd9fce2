"""SIGKILL `gemb2 embed` at random moments, over and over, then let a run finish: the result equals a clean
single run (same keys, vectors within 1e-5, no duplicate, none missing), and every state a killed run left
behind reads as valid: each LanceDB table version, each shard folder's manifest and the shards it names.

The default is the issue's size: 20 kills per store over a 500-file tree (about 70 s for both stores on this
2-core machine); GEMB2_CRASH_KILLS and GEMB2_CRASH_FILES change it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.cli_run import cli_cmd, cli_env
from tests.robustness._run import run

KILLS = int(os.environ.get("GEMB2_CRASH_KILLS", "20"))
FILES = int(os.environ.get("GEMB2_CRASH_FILES", "500"))


def cheap_tree(root) -> None:
    """FILES small files: 4 in 5 texts, 1 in 5 tiny PNGs, a few a long text of several windows."""
    rng = np.random.default_rng(0)
    for i in range(FILES):
        d = root / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        if i % 5 == 4:
            PILImage.fromarray(rng.integers(0, 256, (12, 10, 3), np.uint8)).save(d / f"f{i:04d}.png")
        else:
            words = 600 if i % 50 == 0 else 6
            (d / f"f{i:04d}.txt").write_text(" ".join(f"w{i}x{j}" for j in range(words)))


def embed_args(tree, target: list[str]) -> list[str]:
    return cli_cmd("embed", str(tree), "--model", "tiny", *target, "--workers", "2", "--commit-rows", "16",
                     "--quiet", "--json")


def killed_run(cmd: list[str], after_s: float) -> None:
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env(), start_new_session=True)
    try:
        p.wait(timeout=after_s)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the CLI and its loader workers, at once, as a crash would
        p.wait()


def lance_rows(db: str) -> dict[str, np.ndarray]:
    import lancedb

    t = lancedb.connect(db).open_table("media").to_arrow()
    keys = t.column("key").to_pylist()
    assert len(keys) == len(set(keys)), "duplicate keys"
    return dict(zip(keys, np.array(t.column("vector").to_pylist(), np.float32)))


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want), f"missing {len(set(want) - set(got))}, extra {len(set(got) - set(want))}"
    diff = max(float(np.abs(got[k] - want[k]).max()) for k in want)
    assert diff <= 1e-5, f"vectors differ by {diff}"


def check_every_version(db: str) -> int:
    """Open and read each version of the table; each has unique keys. Returns how many there are."""
    import lancedb

    table = lancedb.connect(db).open_table("media")
    versions = [v["version"] if isinstance(v, dict) else v.version for v in table.list_versions()]
    for v in versions:
        table.checkout(v)
        t = table.to_arrow()
        keys = t.column("key").to_pylist()
        assert len(keys) == len(set(keys)), f"version {v}: duplicate keys"
        assert t.num_rows == 0 or np.isfinite(np.array(t.column("vector").to_pylist())).all()
    table.checkout_latest()
    return len(versions)


def shard_rows(folder: str) -> dict[str, np.ndarray]:
    from gemb2.store.shards import read_shards

    records, vectors = read_shards(folder)
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) and len(keys) == len(vectors)
    return dict(zip(keys, vectors))


def kill_repeatedly(cmd: list[str], clean_s: float, after_each) -> None:
    rng = random.Random(1234)
    for _ in range(KILLS):
        killed_run(cmd, rng.uniform(0.3, clean_s))
        after_each()


def uninterrupted(tmp_path, store_flag: str, rows):
    """The reference: the tree embedded by one run that nobody kills. -> (tree, its rows, its seconds)."""
    tree = tmp_path / "tree"
    cheap_tree(tree)
    t0 = time.monotonic()
    clean = run(embed_args(tree, [store_flag, str(tmp_path / "clean")]), timeout=600)
    clean_s = time.monotonic() - t0
    assert clean.returncode == 0, clean.stderr[-2000:]
    return tree, rows(str(tmp_path / "clean")), clean_s


@pytest.mark.slow
def test_lancedb_table_survives_repeated_sigkill(tmp_path):
    tree, want, clean_s = uninterrupted(tmp_path, "--db", lance_rows)

    db = str(tmp_path / "db")
    cmd = embed_args(tree, ["--db", db])

    def after_each() -> None:
        if os.path.isdir(os.path.join(db, "media.lance")):
            lance_rows(db)  # the latest version opens, with no duplicate

    kill_repeatedly(cmd, clean_s, after_each)
    final = run(cmd, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    assert_same(lance_rows(db), want)
    assert check_every_version(db) > KILLS // 2  # the kills left many versions, and each one reads


@pytest.mark.slow
def test_shard_folder_survives_repeated_sigkill(tmp_path):
    tree, want, clean_s = uninterrupted(tmp_path, "--out", shard_rows)

    out = str(tmp_path / "out")
    cmd = embed_args(tree, ["--out", out])

    def after_each() -> None:
        if os.path.exists(os.path.join(out, "manifest.json")):
            shard_rows(out)  # the manifest and every shard it names read as valid

    kill_repeatedly(cmd, clean_s, after_each)
    final = run(cmd, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    assert_same(shard_rows(out), want)
    leftovers = [n for n in os.listdir(out) if ".tmp-" in n]
    assert not leftovers, f"temporary files left: {leftovers}"
