"""`gemb2 search QUERY [PATH...]`: the same rows and scores as `gemb2 embed PATH` + `gemb2 query --where` on it,
incremental indexing on a rerun, the time budget, and the path filter with quotes, % and _ in folder names."""

import json

import pytest
from typer.testing import CliRunner

from gemb2.cli.main import app
from tests.cli_run import gemb2
from tests.media import write_text

runner = CliRunner()
WORDS = ["sailing boats at dawn", "apple pie with cinnamon", "a dog in the park", "rain over the harbour"]


def _tree(root):
    a, b = root / "it's 100%_a", root / "b"
    for i, w in enumerate(WORDS):
        write_text(a / f"{i}.txt", w)
        write_text(b / f"{i}.txt", w + " and more")
    write_text(root / "it's 100%Xa" / "decoy.txt", "sailing boats at dawn")  # `_` must not match any character
    return a, b


def _json(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _pending(path, db):
    """What `gemb2 embed PATH --dry-run` would still do."""
    rep = _json(["embed", str(path), "--model", "tiny", "--db", db, "--dry-run", "--json"])
    return len(rep["would_add"]) + len(rep["would_update"])


def test_search_equals_embed_then_query_where(tmp_path):
    a, _ = _tree(tmp_path / "t")
    db1, db2 = str(tmp_path / "db1"), str(tmp_path / "db2")
    common = ["--model", "tiny", "--json", "-k", "20"]
    got = _json(["search", "boats", str(tmp_path / "t"), "--db", db1, *common])  # index everything ...
    assert {h["path"].split("/")[-2] for h in got} == {"it's 100%_a", "b", "it's 100%Xa"}
    got = _json(["search", "boats", str(a), "--db", db1, *common])  # ... then search one folder of it
    r = runner.invoke(app, ["embed", str(a), "--model", "tiny", "--db", db2, "--workers", "0", "--quiet"])
    assert r.exit_code == 0, r.output
    prefix = str(a).replace("'", "''") + "/%"
    want = _json(["query", "boats", "--db", db2, "--where", f"path LIKE '{prefix}'", *common])
    assert len(got) == len(WORDS) and all(h["path"].startswith(str(a) + "/") for h in got)
    _same_hits(got, want)
    fresh = _json(["search", "boats", str(a), "--db", str(tmp_path / "db3"), *common])  # indexes, then answers
    _same_hits(fresh, want)


def _same_hits(got: list[dict], want: list[dict]) -> None:
    """The same files and segments in the same order, scores to float rounding: loader processes and an in-process
    embed batch texts differently, and CPU kernels round differently with the batch (1e-6 seen in CI)."""
    assert [(h["path"], h["segment"]) for h in got] == [(h["path"], h["segment"]) for h in want]
    assert [h["score"] for h in got] == pytest.approx([h["score"] for h in want], abs=1e-5)


def test_search_indexes_only_what_is_new_within_its_budget(tmp_path):
    a, b = _tree(tmp_path / "t")
    db = str(tmp_path / "db")
    paths = _json(["search", "dog", str(a), "--db", db, "--model", "tiny", "--json"])
    assert len(paths) == len(WORDS) and _pending(a, db) == 0
    write_text(a / "new1.txt", "a dog and a cat")
    write_text(a / "new2.txt", "the dog sleeps")
    (a / "0.txt").write_text("changed: a dog on a boat")
    r = runner.invoke(app, ["search", "dog", str(a), "--db", db, "-l", "--budget", "0"])
    assert r.exit_code == 0, r.output
    assert "indexed 0 of 3 new or changed files in 0 s; the rest next time" in r.output
    assert "gemb2 embed" in r.output and not any(p.endswith(("new1.txt", "new2.txt")) for p in r.stdout.splitlines())
    assert _pending(a, db) == 3
    r = runner.invoke(app, ["search", "dog", str(a), "--db", db, "-l"])  # the default budget (10 s): the rest
    assert r.exit_code == 0 and "the rest next time" not in r.output, r.output
    assert _pending(a, db) == 0 and {p.rsplit("/", 1)[1] for p in r.stdout.splitlines()} >= {"new1.txt", "new2.txt"}
    r = runner.invoke(app, ["search", "dog", str(a), "--db", db, "-l", "--no-index"])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == len(WORDS) + 2


def test_search_with_nothing_indexed_says_so(tmp_path):
    write_text(tmp_path / "t" / "a.txt", "hello")
    r = runner.invoke(
        app, ["search", "x", str(tmp_path / "t"), "--db", str(tmp_path / "db"), "--model", "tiny", "--budget", "0"]
    )
    assert r.exit_code == 0 and "nothing is indexed yet" in r.output and r.stdout == ""


def test_search_usage_errors(tmp_path):
    r = runner.invoke(app, ["search", "x", str(tmp_path / "nope"), "--db", str(tmp_path / "db")])
    assert r.exit_code == 2 and "no such file or folder" in r.output
    r = runner.invoke(app, ["search", "x", str(tmp_path), "--minus-weight", "2", "--db", str(tmp_path / "db")])
    assert r.exit_code == 2 and "--minus-weight" in r.output


@pytest.mark.slow
def test_search_defaults_to_the_current_folder(tmp_path):
    a, _ = _tree(tmp_path / "t")
    db = str(tmp_path / "db")
    r = gemb2("search", "apple pie", "--db", db, "--model", "tiny", "-l", "-k", "1", cwd=a, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(a / "1.txt")]
