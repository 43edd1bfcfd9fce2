"""The CLI in-process (CliRunner) and as a real subprocess: exit codes, --json, stdin mode, query."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from gemb2.cli.main import app
from tests.cli_run import gemb2, gemb2_popen
from tests.media import mixed_tree, write_image, write_text

runner = CliRunner()


@pytest.mark.slow
def test_embed_json_summary_then_query_finds_the_file_itself(tmp_path):
    files = mixed_tree(tmp_path / "m")
    db = str(tmp_path / "db")
    r = gemb2("embed", str(tmp_path / "m"), "--model", "tiny", "--db", db, "--json", "--workers", "2")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["files_added"] == 7 and summary["files_failed"] == 0 and summary["failures"] == []
    assert summary["rows_added"] >= 7 and summary["model"].startswith("tiny")
    assert "7 added" in r.stderr  # the human summary goes to stderr

    q = gemb2("query", "--image", files["i1"], "--db", db, "--json", "-k", "3")
    assert q.returncode == 0, q.stderr
    hits = json.loads(q.stdout)
    assert hits[0]["path"] == files["i1"] and hits[0]["rank"] == 1
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert set(hits[0]) >= {"rank", "score", "path", "modality", "start", "end"}

    v = gemb2("query", "--video", files["v0"], "--db", db, "--json", "--modality", "video")
    assert json.loads(v.stdout)[0]["path"] == files["v0"]
    assert json.loads(v.stdout)[0]["score"] == pytest.approx(1.0, abs=1e-4)

    again = gemb2("embed", str(tmp_path / "m"), "--model", "tiny", "--db", db, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["files_unchanged"] == 7


@pytest.mark.slow
def test_exit_code_3_when_some_files_fail_and_the_rest_are_done(tmp_path):
    write_text(tmp_path / "m" / "ok.txt", "fine")
    (tmp_path / "m" / "fake.mp4").write_bytes(os.urandom(4096))
    (tmp_path / "m" / "empty.wav").write_bytes(b"")
    r = gemb2("embed", str(tmp_path / "m"), "--model", "tiny", "--db", str(tmp_path / "db"), "--json")
    assert r.returncode == 3, r.stderr
    s = json.loads(r.stdout)
    assert s["files_added"] == 1 and s["files_failed"] == 2
    assert {os.path.basename(f["path"]) for f in s["failures"]} == {"fake.mp4", "empty.wav"}
    assert all(f["reason"] for f in s["failures"])
    assert "fake.mp4" in r.stderr


def test_usage_errors_exit_2(tmp_path):
    assert runner.invoke(app, ["embed", str(tmp_path / "missing"), "--model", "tiny", "--db", str(tmp_path / "db")]).exit_code == 2
    assert runner.invoke(app, ["embed", "--no-such-flag"]).exit_code == 2
    r = runner.invoke(app, ["embed", str(tmp_path), "--model", "no-such-model", "--db", str(tmp_path / "db")])
    assert r.exit_code == 2 and "no-such-model" in r.output
    r = runner.invoke(app, ["query", "x", "--db", str(tmp_path / "nodb")])
    assert r.exit_code == 2 and "gemb2 embed" in r.output


def test_default_model_is_not_a_silent_random_one(tmp_path):
    from gemb2.pretrained.release import release_folder

    write_text(tmp_path / "m" / "a.txt", "hello")
    r = runner.invoke(app, ["embed", str(tmp_path / "m"), "--db", str(tmp_path / "db"), "--json"],
                      env={"GEMB2_MODEL": ""})
    if not (release_folder("gemb2-mini") / "adds.safetensors").is_file():  # a checkout without the release
        assert r.exit_code == 2 and "gemb2-mini" in r.output and "tiny" in r.output
    else:  # the trained default, assembled from its installed parts: its id says so
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["model"].startswith("gemb2-mini-v2.1@")  # the default is v2.1


@pytest.mark.slow
def test_stdin_lines_to_json_lines_matching_the_python_api(tmp_path):
    from gemb2 import load_model

    lines = ["a red car", "un chat noir", "", "∑ of π"]
    r = gemb2("embed", "-", "--model", "tiny", input="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["line"] for o in out] == [1, 2, 3, 4] and [o["text"] for o in out] == lines
    want = load_model("tiny").encode(lines, task="document")
    np.testing.assert_allclose(np.array([o["vector"] for o in out]), want, atol=1e-5)
    small = gemb2("embed", "-", "--model", "tiny", "--dim", "16", "--task", "query", input="a red car\n")
    v = np.array(json.loads(small.stdout)["vector"])
    assert v.shape == (16,) and abs(np.linalg.norm(v) - 1) < 1e-4
    assert gemb2("embed", "-", "--model", "tiny", "--dim", "17", input="x\n").returncode == 2


def test_shards_out(tmp_path):
    mixed_tree(tmp_path / "m", n_text=1, n_image=1)
    r = runner.invoke(app, ["embed", str(tmp_path / "m"), "--model", "tiny", "--out", str(tmp_path / "out"), "--workers", "0", "--json"])
    assert r.exit_code == 0, r.output
    from gemb2.store import read_shards

    records, vectors = read_shards(str(tmp_path / "out"))
    assert len(records) == len(vectors) >= 4


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_gives_exact_rows_without_duplicates(tmp_path):
    root = tmp_path / "m"
    for i in range(120):
        write_text(root / f"d{i // 20}" / f"f{i:03d}.txt", f"file {i}: " + "words " * (i % 7 + 1))
    for i in range(20):
        write_image(root / "img" / f"p{i:02d}.png", seed=i)
    db = str(tmp_path / "db")
    args = ["embed", str(root), "--model", "tiny", "--db", db, "--commit-rows", "5", "--batch-size", "4", "--workers", "1", "--quiet"]
    proc = gemb2_popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    from gemb2.store import LanceStore

    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # kill once some rows are committed
        time.sleep(0.2)
        try:
            if LanceStore(db).count() >= 10:
                break
        except Exception:
            pass
    assert proc.poll() is None, "the run finished before it could be killed: make the tree bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = LanceStore(db).count()
    assert 0 < partial < 140

    r = gemb2(*args, "--json")
    assert r.returncode == 0, r.stderr
    s = LanceStore(db)
    keys = s.table.to_arrow().column("key").to_pylist()
    assert len(keys) == len(set(keys)) == 140
    assert len(s.known_files()) == 140
    assert json.loads(r.stdout)["files_unchanged"] >= 1
