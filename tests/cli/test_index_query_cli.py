"""`gemb2 index` and `gemb2 query --hybrid / --dim / tuning flags` through the CLI, on a real embedded table."""

import json

import pytest
from typer.testing import CliRunner

from gemb2.cli.main import app
from tests.media import mixed_tree, write_text

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("idx")
    mixed_tree(root / "m")
    write_text(root / "m" / "text" / "boats.txt", "sailing boats on the blue sea at dawn")
    d = str(root / "db")
    r = runner.invoke(app, ["embed", str(root / "m"), "--model", "tiny", "--db", d, "--workers", "0", "--quiet"])
    assert r.exit_code == 0, r.output
    return d


def test_index_json_reports_what_it_built(db):
    r = runner.invoke(app, ["index", "--db", db, "--json", "--keep-versions", "0"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["rows"] >= 8 and rep["vector"]["kind"] == "none" and rep["vector"]["built"] is False
    assert rep["scalar"] == ["path", "modality"] and rep["fts"] == ["text"]
    assert rep["versions_after"] >= 1 and rep["size_bytes"] > 0
    human = runner.invoke(app, ["index", "--db", db])
    assert human.exit_code == 0 and "vector index: none" in human.stdout and "rows:" in human.stdout


def test_index_usage_errors(db, tmp_path):
    r = runner.invoke(app, ["index", "--db", db, "--type", "flat"])
    assert r.exit_code == 2 and "flat" in r.output
    r = runner.invoke(app, ["index", "--db", db, "--type", "hnsw"])  # 9 rows cannot train an index
    assert r.exit_code == 2 and "needs at least" in r.output
    r = runner.invoke(app, ["index", "--db", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "gemb2 embed" in r.output


def test_hybrid_query_fuses_text_and_vector_ranks(db):
    runner.invoke(app, ["index", "--db", db])
    r = runner.invoke(app, ["query", "sailing boats", "--db", db, "--hybrid", "--json", "-k", "5"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    assert hits[0]["path"].endswith("boats.txt") and hits[0]["text_rank"] == 1
    assert all("vector_rank" in h for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert runner.invoke(app, ["query", "--image", __file__, "--db", db, "--hybrid"]).exit_code == 2


def test_prefix_query_and_tuning_flags(db):
    r = runner.invoke(app, ["query", "boats", "--db", db, "--json", "--dim", "32", "--refine-factor", "2", "--ef", "80"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)) >= 5
    assert runner.invoke(app, ["query", "boats", "--db", db, "--dim", "33"]).exit_code == 2
