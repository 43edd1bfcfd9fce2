"""`gemb2 embed` on a small mixed tree of pages, data and code, with the folders it must pass over."""

from __future__ import annotations

import json
import os

import pytest

from gemb2.store import LanceStore
from tests.cli_run import gemb2

pytestmark = pytest.mark.slow


def write(path, data: str | bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def test_pages_data_and_code_are_embedded_and_tool_folders_passed_over(tmp_path):
    tree, db = tmp_path / "proj", tmp_path / "db"
    write(tree / "index.html", "<title>Tide tables</title><script>track()</script><p>High water at 6:12 &amp; 18:40</p>")
    write(tree / "data.json", '{"harbour": "Brest", "depth_m": 12}')
    write(tree / "rows.csv", "day,high\nMon,6:12\n")
    write(tree / "tides.py", "def high_water(day):\n    return TABLE[day]\n")
    write(tree / "package.json", '{"name": "tides"}')
    write(tree / "dist" / "bundle.js", "var a=1;")  # build output beside package.json
    write(tree / "node_modules" / "lib" / "index.js", "module.exports = 1;")
    write(tree / "venv" / "pyvenv.cfg", "home = /usr/bin")
    write(tree / "venv" / "lib" / "site.py", "import os")
    write(tree / "drafts" / "old.md", "an old draft")
    write(tree / "secret.txt", "not for the index")
    write(tree / ".gemb2ignore", "drafts/\nsecret.txt\n")
    write(tree / "blob.json", b"\x00\x01\x02binary" * 50)

    r = gemb2("embed", tree, "--model", "tiny", "--db", db, "--json", "--workers", "1")
    assert "Traceback" not in r.stderr, r.stderr
    report = json.loads(r.stdout)
    assert r.returncode == 3  # blob.json failed in this run
    assert report["files_added"] == 5  # index.html data.json rows.csv tides.py package.json
    assert [(os.path.basename(f["path"]), f["reason"]) for f in report["failures"]] == [
        ("blob.json", "content is not text: binary data (extension .json)")]
    assert report["ignored"] == {".gemb2ignore": 2, "build output": 1, "environment": 1, "node_modules": 1}
    assert "5 folders and files passed over by rule (2 .gemb2ignore, 1 build output, 1 environment, 1 node_modules)" in r.stderr

    rows = LanceStore(str(db), "media").table.to_arrow().to_pylist()
    by_name = {os.path.basename(row["path"]): row for row in rows}
    assert sorted(by_name) == ["data.json", "index.html", "package.json", "rows.csv", "tides.py"]
    assert {row["modality"] for row in rows} == {"text"}
    assert by_name["index.html"]["text"] == "Tide tables\n\nHigh water at 6:12 & 18:40"
    assert by_name["tides.py"]["text"] == "def high_water(day):\n    return TABLE[day]"

    again = gemb2("embed", tree, "--model", "tiny", "--db", db, "--json", "--workers", "1")
    second = json.loads(again.stdout)
    assert again.returncode == 0 and second["files_unchanged"] == 5 and second["files_failed_known"] == 1

    write(tree / ".gemb2ignore", "drafts/\nsecret.txt\n*.py\n")  # a new pattern: its files' rows go, as if deleted
    third = json.loads(gemb2("embed", tree, "--model", "tiny", "--db", db, "--json", "--workers", "1").stdout)
    assert (third["files_removed"], third["files_unchanged"]) == (1, 4)
