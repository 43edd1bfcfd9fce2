"""Cron-grade `gemb2 embed` as real subprocesses: the table lock, --dry-run, environment defaults, ranks."""

import functools
import json
import subprocess

import pytest
from typer.testing import CliRunner

from gemb2.cli.main import app
from gemb2.store import LanceStore
from gemb2.store.lock import table_lock
from tests.cli_run import gemb2, gemb2_popen
from tests.media import mixed_tree, write_image, write_text

runner = CliRunner()


_popen = functools.partial(gemb2_popen, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _tree(root, n_text=30, n_image=6):
    for i in range(n_text):
        write_text(root / f"t{i // 10}" / f"n{i:02d}.txt", f"note {i}: " + "words " * (i % 5 + 1))
    for i in range(n_image):
        write_image(root / "img" / f"p{i}.png", seed=i)


def _keys(db, table="media"):
    return LanceStore(db, table).table.to_arrow().column("key").to_pylist()


def test_busy_table_exits_4_and_dry_run_needs_no_lock(tmp_path):
    mixed_tree(tmp_path / "m", n_text=1, n_image=1)
    db = str(tmp_path / "db")
    with table_lock(db, "media"):  # another run is writing
        r = runner.invoke(app, ["embed", str(tmp_path / "m"), "--model", "tiny", "--db", db, "--wait", "0.3"])
        assert r.exit_code == 4 and "another gemb2 run" in r.output
        r = runner.invoke(app, ["index", "--db", db])
        assert r.exit_code == 2  # no table yet: a usage error comes first
        dry = runner.invoke(app, ["embed", str(tmp_path / "m"), "--model", "tiny", "--db", db, "--dry-run", "--json"])
        assert dry.exit_code == 0 and len(json.loads(dry.stdout)["would_add"]) == 4
    assert LanceStore(db).table is None  # the dry run wrote nothing
    human = runner.invoke(app, ["embed", str(tmp_path / "m"), "--model", "tiny", "--db", db, "--dry-run"])
    assert human.exit_code == 0 and sum(line.startswith("add\t") for line in human.stdout.splitlines()) == 4


def test_env_defaults_and_shell_completion(tmp_path):
    write_text(tmp_path / "m" / "a.txt", "hello")
    env = {"GEMB2_DB": str(tmp_path / "envdb"), "GEMB2_TABLE": "notes", "GEMB2_MODEL": "tiny", "GEMB2_DEVICE": "cpu"}
    r = runner.invoke(app, ["embed", str(tmp_path / "m"), "--workers", "0", "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert len(_keys(str(tmp_path / "envdb"), "notes")) == 1
    q = runner.invoke(app, ["query", "hello", "--json"], env=env)
    assert q.exit_code == 0 and json.loads(q.stdout)[0]["path"].endswith("a.txt")
    write_text(tmp_path / "m" / "b.txt", "a new file: the model must load, on $GEMB2_DEVICE")
    assert runner.invoke(app, ["embed", str(tmp_path / "m")], env=env | {"GEMB2_DEVICE": "cuda:7"}).exit_code == 2
    c = runner.invoke(app, ["--show-completion", "bash"])
    assert c.exit_code == 0 and "_GEMB2_COMPLETE" in c.output
    assert "--install-completion" in runner.invoke(app, ["--help"]).output


def test_rank_flags_are_validated(tmp_path):
    write_text(tmp_path / "m" / "a.txt", "hello")
    base = ["embed", str(tmp_path / "m"), "--model", "tiny", "--db", str(tmp_path / "db")]
    assert runner.invoke(app, base + ["--rank", "2", "--world-size", "2"]).exit_code == 2
    assert runner.invoke(app, base + ["--world-size", "2", "--out", str(tmp_path / "o")]).exit_code == 2
    assert runner.invoke(app, base, env={"RANK": "x", "WORLD_SIZE": "2"}).exit_code == 2


@pytest.mark.slow
def test_two_concurrent_runs_end_with_one_row_per_segment(tmp_path):
    _tree(tmp_path / "m")
    db = str(tmp_path / "db")
    args = ["embed", str(tmp_path / "m"), "--model", "tiny", "--db", db, "--commit-rows", "4", "--workers", "1",
            "--wait", "240", "--json", "--quiet"]
    procs = [_popen(*args), _popen(*args)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    reports = [json.loads(o) for o, _ in outs]
    assert sorted(r["files_added"] for r in reports) == [0, 36]  # the second waited, then found nothing to do
    keys = _keys(db)
    assert len(keys) == len(set(keys)) == 36


@pytest.mark.slow
def test_two_ranks_as_processes_give_the_rows_of_one(tmp_path):
    _tree(tmp_path / "m", n_text=20, n_image=4)
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    r = gemb2("embed", str(tmp_path / "m"), "--model", "tiny", "--db", one, "--workers", "0", "--quiet", timeout=300)
    assert r.returncode == 0, r.stderr
    common = ["embed", str(tmp_path / "m"), "--model", "tiny", "--db", two, "--workers", "0", "--json", "--quiet"]
    procs = [_popen(*common, "--rank", "0", "--world-size", "2"),
             _popen(*common, env={"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})]  # as torchrun sets it
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    reports = [json.loads(o) for o, _ in outs]
    assert [(r["rank"], r["world_size"]) for r in reports] == [(0, 2), (1, 2)]
    assert all(r["files_added"] > 0 for r in reports) and sum(r["files_added"] for r in reports) == 24
    a = {r["key"]: r["vector"] for r in LanceStore(one).table.to_arrow().to_pylist()}
    b = {r["key"]: r["vector"] for r in LanceStore(two).table.to_arrow().to_pylist()}
    assert a.keys() == b.keys() and len(b) == len(_keys(two))
    import numpy as np

    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-5)
