"""Commands that only read (query, index, export embeddings, eval) never create the database folder: a missing
one is a usage error (exit 2) naming `gemb2 embed`, and the disk is left as it was."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gemb2.cli.main import app
from tests.media import write_text

runner = CliRunner()

READERS = [
    ["query", "a red car"],
    ["index"],
    ["export", "embeddings", "OUT"],
]


def _argv(cmd, tmp_path):
    return [str(tmp_path / "out.parquet") if a == "OUT" else a for a in cmd]


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("cmd", READERS, ids=lambda c: c[0] + ("-" + c[1] if c[0] == "export" else ""))
@pytest.mark.parametrize("how", ["flag", "file-uri", "env", "default"])
def test_a_reading_command_does_not_create_a_missing_database(cmd, how, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    db = work / "a" / "b" / "c"
    env = {"GEMB2_DB": "", "XDG_DATA_HOME": str(work / "xdg")}
    extra = []
    if how == "flag":
        extra = ["--db", str(db)]
    elif how == "file-uri":
        extra = ["--db", f"file://{db}"]
    elif how == "env":
        env["GEMB2_DB"] = str(db)
    r = runner.invoke(app, [*_argv(cmd, tmp_path), *extra], env=env)
    assert r.exit_code == 2, r.output
    assert "no table 'media'" in r.output and "gemb2 embed" in r.output and "Traceback" not in r.output
    assert _tree(work) == [], f"{cmd[0]} created {_tree(work)}"
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("cmd", READERS, ids=lambda c: c[0] + ("-" + c[1] if c[0] == "export" else ""))
def test_a_reading_command_leaves_an_empty_database_folder_empty(cmd, tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    r = runner.invoke(app, [*_argv(cmd, tmp_path), "--db", str(db), "--table", "t"])
    assert r.exit_code == 2 and "no table 't'" in r.output, r.output
    assert _tree(db) == []


def test_a_database_path_that_is_a_file_is_refused_untouched(tmp_path):
    f = tmp_path / "db"
    f.write_bytes(b"not a database")
    r = runner.invoke(app, ["query", "x", "--db", str(f)])
    assert r.exit_code == 2 and "not a database folder" in r.output, r.output
    assert f.read_bytes() == b"not a database"


def test_eval_touches_no_database(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"task": "t", "query": [{"text": f"q{i}"}], "positive": [{"text": f"d{i}"}]})
                                + "\n" for i in range(4)), encoding="utf-8")
    xdg = tmp_path / "xdg"
    r = runner.invoke(app, ["eval", str(manifest), "--model", "tiny", "--json", "-q"],
                      env={"GEMB2_DB": "", "XDG_DATA_HOME": str(xdg)})
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tasks"]["t"]["queries"] == 4
    assert not xdg.exists()


def test_the_check_sees_creation_embed_makes_the_folder(tmp_path):
    """The positive control: the command that writes does create the default database folder."""
    write_text(tmp_path / "m" / "a.txt", "hello")
    xdg = tmp_path / "xdg"
    r = runner.invoke(app, ["embed", str(tmp_path / "m"), "--model", "tiny", "--workers", "0", "-q"],
                      env={"GEMB2_DB": "", "XDG_DATA_HOME": str(xdg)})
    assert r.exit_code == 0, r.output
    assert (xdg / "gemb2" / "lancedb").is_dir()
    q = runner.invoke(app, ["query", "hello", "--json"], env={"GEMB2_DB": "", "XDG_DATA_HOME": str(xdg)})
    assert q.exit_code == 0 and json.loads(q.stdout)[0]["path"].endswith("a.txt"), q.output
