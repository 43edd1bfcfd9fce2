"""Human-readable output escapes control characters: a file named with a newline, a tab or bytes that are not
UTF-8 stays on one line of `gemb2 query` (and of every error or warning line); `--json` keeps the exact path."""

from __future__ import annotations

import json
import os
import re

import pytest
from typer.testing import CliRunner

from gemb2.cli.common import printable
from gemb2.cli.main import app
from tests.cli_run import gemb2

runner = CliRunner()


@pytest.mark.parametrize("raw, shown", [
    ("plain name.txt", "plain name.txt"),
    ("Grüße 東京 😀.txt", "Grüße 東京 😀.txt"),
    ("new\nline.txt", "new\\nline.txt"),
    ("tab\there\r.txt", "tab\\there\\r.txt"),
    ("esc\x1b[31mred\x7f\x85.txt", "esc\\x1b[31mred\\x7f\\x85.txt"),
    ("sep\u2028par\u2029.txt", "sep\\u2028par\\u2029.txt"),
    (os.fsdecode(b"bad\xff\xfe.txt"), "bad\\xff\\xfe.txt"),  # as the stores keep such a name
])
def test_printable_escapes_control_characters_only(raw, shown):
    assert printable(raw) == shown
    assert printable(raw).isprintable() or " " in printable(raw)


def _tree(root):
    """Files whose names hold a newline, a tab and bytes that are not UTF-8, each with its own text."""
    root.mkdir()
    names = {"newline": b"two\nlines.txt", "tab": b"a\ttab.txt", "bytes": b"latin\xe9\xff.txt", "plain": b"plain.txt"}
    for key, name in names.items():
        with open(os.path.join(os.fsencode(root), name), "wb") as f:
            f.write(f"the {key} file says {key} {key} {key}".encode())
    return {k: os.fsdecode(os.path.join(os.fsencode(root), n)) for k, n in names.items()}


@pytest.mark.slow
def test_query_output_stays_one_line_per_hit_with_odd_file_names(tmp_path):
    paths = _tree(tmp_path / "m")
    db = str(tmp_path / "db")
    r = gemb2("embed", str(tmp_path / "m"), "--model", "tiny", "--db", db, "--workers", "0", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files_added"] == 4

    plain = gemb2("query", "the file says", "--db", db, "-k", "10")
    assert plain.returncode == 0, plain.stderr
    header, *lines = plain.stdout.splitlines()
    assert header.split() == ["rank", "score", "modality", "path"], plain.stdout
    hits = [line for line in lines if not line.startswith(" " * 6)]  # under each hit: its text, indented
    assert len(hits) == 4 and len(lines) == 8, plain.stdout  # a line per hit and one of text: no name broke a line
    shown = {re.fullmatch(r"\s*\d+\s+\S+\s+\S+\s+(.*)", line).group(1) for line in hits}  # rank score modality path
    root = str(tmp_path / "m")
    assert shown == {f"{root}/two\\nlines.txt", f"{root}/a\\ttab.txt", f"{root}/latin\\xe9\\xff.txt",
                     f"{root}/plain.txt"}
    assert all("\t" not in line for line in lines)

    exact = gemb2("query", "the file says", "--db", db, "-k", "10", "--json")
    got = {h["path"] for h in json.loads(exact.stdout)}
    assert got == {paths["newline"], paths["tab"], f"{root}/latin\\xe9\\xff.txt", paths["plain"]}


def test_errors_and_failure_lines_stay_one_line(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    (root / "ok.txt").write_text("fine")
    (root / "broken\nvideo.mp4").write_bytes(os.urandom(2048))  # not a video: a counted failure, named on stderr
    r = runner.invoke(app, ["embed", str(root), "--model", "tiny", "--db", str(tmp_path / "db"), "--workers", "0"])
    assert r.exit_code == 3, r.output
    failed = [line for line in r.stderr.splitlines() if line.startswith("gemb2: failed:")]
    assert len(failed) == 1 and "broken\\nvideo.mp4" in failed[0]
    assert "video.mp4" not in r.stderr.replace("broken\\nvideo.mp4", "")  # no second line holding the rest

    q = runner.invoke(app, ["query", "--image", str(tmp_path / "no\nsuch.png"), "--db", str(tmp_path / "db")])
    assert q.exit_code == 2 and q.stderr.count("\n") == 1 and "no\\nsuch.png" in q.stderr
