"""`gemb2 embed --engine ray` on a real two-node Ray cluster (tests/ray/conftest.py): the table equals a local
run's, reruns are incremental, and a killed driver or a killed Ray worker loses and doubles nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import lancedb
import numpy as np
import pytest

from gemb2.store import LanceStore
from tests.cli_run import gemb2, gemb2_popen
from tests.media import mixed_tree, write_text

pytestmark = pytest.mark.slow


def _rows(db) -> dict[str, np.ndarray]:
    """key -> vector of the table, asserting no key appears twice."""
    t = lancedb.connect(str(db)).open_table("media").to_arrow()
    keys = t.column("key").to_pylist()
    assert len(keys) == len(set(keys)), "duplicate rows"
    return dict(zip(keys, np.asarray(t.column("vector").to_pylist(), dtype=np.float32)))


def _same_table(a, b) -> None:
    ra, rb = _rows(a), _rows(b)
    assert sorted(ra) == sorted(rb)
    for k in ra:
        np.testing.assert_allclose(ra[k], rb[k], atol=1e-5)
    sa, sb = LanceStore(str(a), "media"), LanceStore(str(b), "media")
    assert {p: r.reason for p, r in sa.known_failures().items()} == {
        p: r.reason for p, r in sb.known_failures().items()
    }
    assert {p: (r.n_segments, r.content_hash) for p, r in sa.known_files().items()} == {
        p: (r.n_segments, r.content_hash) for p, r in sb.known_files().items()
    }


def _embed(tree, db, *extra):
    r = gemb2("embed", tree, "--model", "tiny", "--db", db, "--json", "--quiet", *extra, timeout=300)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else r.stderr)


def test_the_ray_table_equals_a_local_one_through_an_edit_delete_add_cycle(tmp_path, ray_cluster):
    tree = tmp_path / "tree"
    files = mixed_tree(tree)
    (tree / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG header, nothing after
    write_text(tree / "text" / "empty.txt", "")
    ray = ("--engine", "ray", "--ray-address", ray_cluster)

    code, local = _embed(tree, tmp_path / "local")
    rcode, remote = _embed(tree, tmp_path / "ray", *ray)
    assert (code, rcode) == (3, 3), remote
    for key in ("files_added", "files_failed", "rows_added", "failures"):
        assert remote[key] == local[key], key
    _same_table(tmp_path / "local", tmp_path / "ray")

    write_text(files["t0"], "an edited note, longer than before, about another topic")
    os.remove(files["i1"])
    write_text(tree / "text" / "new.txt", "a note added later")
    code, local = _embed(tree, tmp_path / "local")
    rcode, remote = _embed(tree, tmp_path / "ray", *ray)
    assert (code, rcode) == (0, 0)
    assert (remote["files_added"], remote["files_updated"], remote["files_removed"]) == (1, 1, 1)
    assert remote["files_failed_known"] == 1 and remote["files_unchanged"] == local["files_unchanged"]
    _same_table(tmp_path / "local", tmp_path / "ray")

    rcode, remote = _embed(tree, tmp_path / "ray", *ray)  # unchanged: nothing to do, no cluster work
    assert rcode == 0 and remote["files_added"] + remote["files_updated"] == 0


def _texts(root, n: int) -> None:
    for i in range(n):
        write_text(
            root / f"d{i % 4}" / f"n{i:03d}.txt", f"note {i}: " + " ".join(f"w{(i * 7 + j) % 97}" for j in range(40))
        )


def _versions(db) -> int:
    path = os.path.join(db, "media.lance", "_versions")
    return len(os.listdir(path)) if os.path.isdir(path) else 0


def test_a_killed_driver_then_a_rerun_loses_and_doubles_nothing(tmp_path, ray_cluster):
    tree, db = tmp_path / "tree", str(tmp_path / "db")
    _texts(tree, 48)
    p = gemb2_popen(
        "embed",
        tree,
        "--model",
        "tiny",
        "--db",
        db,
        "--engine",
        "ray",
        "--ray-address",
        ray_cluster,
        "--commit-rows",
        "1",
        "--quiet",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _versions(db) < 4 and p.poll() is None:  # created, primary key set, then a commit or two
        assert time.monotonic() < deadline
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    before = len({k.split(":")[0] for k in _rows(db)}) if _versions(db) else 0
    code, r = _embed(tree, db, "--engine", "ray", "--ray-address", ray_cluster)
    assert code == 0 and r["files_added"] == 48 - before, (before, r)
    rows = _rows(db)
    assert len(rows) == 48 and len({k.split(":")[0] for k in rows}) == 48


def _ray_workers(name: str) -> list[int]:
    """Pids of this machine's Ray worker processes whose title names `name` (ours: the only cluster here)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if cmd.startswith("ray::") and name in cmd:
            found.append(proc.info["pid"])
    return found


def test_a_killed_ray_worker_is_retried_and_nothing_is_lost_or_doubled(tmp_path, ray_cluster):
    tree, db = tmp_path / "tree", str(tmp_path / "db")
    _texts(tree, 48)
    p = gemb2_popen(
        "embed",
        tree,
        "--model",
        "tiny",
        "--db",
        db,
        "--engine",
        "ray",
        "--ray-address",
        ray_cluster,
        "--commit-rows",
        "1",
        "--json",
        "--quiet",
        stdout=subprocess.PIPE,
        text=True,
        stderr=subprocess.DEVNULL,
    )
    deadline, killed = time.monotonic() + 120, []
    while not killed and p.poll() is None and time.monotonic() < deadline:
        if _versions(db) >= 3:  # the run is under way: kill the actor holding the model
            killed = _ray_workers("Embedder")[:1]
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    out, _ = p.communicate(timeout=300)
    assert killed, "no Ray worker ran the model while the job ran"
    r = json.loads(out)
    assert p.returncode == 0 and r["files_added"] == 48 and r["files_failed"] == 0, r
    rows = _rows(db)
    assert len(rows) == 48 and len({k.split(":")[0] for k in rows}) == 48


def test_a_table_on_s3_served_by_moto_on_loopback(tmp_path, ray_cluster, monkeypatch):
    """--db s3://...: the driver creates the table, Ray workers write fragments there, the driver commits."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    tree = tmp_path / "tree"
    _texts(tree, 6)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = dict(
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1",
            AWS_ENDPOINT=f"http://{host}:{port}",
            AWS_ENDPOINT_URL=f"http://{host}:{port}",
            AWS_ALLOW_HTTP="true",
        )
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        boto3.client("s3").create_bucket(Bucket="vectors")
        code, r = _embed(tree, "s3://vectors/db", "--engine", "ray", "--ray-address", ray_cluster)
        assert code == 0 and r["files_added"] == 6, r
        rows = _rows("s3://vectors/db")
        assert len(rows) == 6
        code, r = _embed(tree, "s3://vectors/db", "--engine", "ray", "--ray-address", ray_cluster)
        assert code == 0 and r["files_unchanged"] == 6
    finally:
        server.stop()
