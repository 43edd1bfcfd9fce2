"""`gemb2 query`'s combined terms (--plus/--minus), grouping by file, identical-file dedupe, -l, --segments,
--json's file_rank and --interactive, on a real table embedded with the tiny model."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gemb2.cli.main import app
from gemb2.parts import Text
from gemb2.pipeline.open import load_model
from gemb2.pipeline.query import Query, QuerySession, search
from gemb2.pipeline.query_terms import terms_from_options
from tests.cli_run import gemb2
from tests.media import write_text

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("ux")
    write_text(root / "t" / "boats.txt", "sailing boats on the blue sea at dawn")
    write_text(root / "t" / "sub" / "copy.txt", "sailing boats on the blue sea at dawn")  # identical content
    write_text(root / "t" / "pie.txt", "a recipe for apple pie with cinnamon")
    write_text(root / "t" / "long.txt", " ".join(f"word{i} harbour boats" for i in range(400)))  # several segments
    d = str(root / "db")
    r = runner.invoke(app, ["embed", str(root / "t"), "--model", "tiny", "--db", d, "--workers", "0", "--quiet"])
    assert r.exit_code == 0, r.output
    return d


@pytest.fixture(scope="module")
def pie(db):
    return str(Path(db).parent / "t" / "pie.txt")


def _session(db):
    return QuerySession(db, "media", Query(text="x"))


def test_combined_vector_equals_the_hand_computed_one(db, pie):
    s = _session(db)
    m = load_model("tiny", "cpu")
    terms = terms_from_options(plus=["golden retriever"], plus_weight=[2.0], minus=["grass"], minus_file=[pie])
    got = s.vector(Query(text="a dog", terms=terms))

    def enc(text):
        return m.encode([[Text(text)]], task="query")[0]

    doc = m.encode([[Text("a recipe for apple pie with cinnamon")]], task="document")[0]
    want = enc("a dog") + 2 * enc("golden retriever") - enc("grass") - doc
    want = want / np.linalg.norm(want)
    assert float(got @ want) >= 0.9999
    hits = s.run(Query(text="a dog", terms=terms, k=4))
    assert len(hits) == 4 and [h.path for h in search(s.store, want, 4)] == [h.path for h in hits]


def test_ordinary_text_stays_text(db):
    s = _session(db)
    plain = s.vector(Query(text="2:30 pm"))
    as_term = s.vector(Query(terms=terms_from_options(plus=["2:30 pm"])))
    assert float(plain @ as_term) >= 0.9999
    r = runner.invoke(app, ["query", "2:30 pm", "--db", db, "--json"])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "args, says",
    [
        (["x", "--plus-file", "/no/such.jpg"], "no such file"),
        (["x", "--plus-weight", "2"], "--plus-weight"),
        (["x", "--plus", "a", "--plus-weight", "0"], "positive"),
        (["--minus", "x"], "give a query text"),
        (["x", "--minus", "x"], "cancel out"),
    ],
)
def test_bad_terms_are_one_line_usage_errors(db, args, says):
    r = runner.invoke(app, ["query", *args, "--db", db])
    assert r.exit_code == 2 and says in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_grouped_output_dedupes_identical_files_and_shows_snippets(db):
    r = runner.invoke(app, ["query", "sailing boats", "--db", db, "-k", "3"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["rank", "score", "modality", "path"]
    firsts = [line for line in lines[1:] if not line.startswith(" " * 6)]
    paths = [line.split()[3] for line in firsts]
    assert len(paths) == len(set(paths)) == 3  # one line per file, identical files once
    assert sum(p.endswith(("boats.txt", "copy.txt")) for p in paths) == 1
    assert any(line.strip().startswith("also: ") and line.strip().endswith(("copy.txt", "boats.txt")) for line in lines)
    assert any(line.strip() == "sailing boats on the blue sea at dawn" for line in lines)  # the snippet
    assert "matching segments" in r.stdout  # long.txt's segments under one line


def test_paths_only_segments_and_json_file_rank(db):
    r = runner.invoke(app, ["query", "harbour boats", "--db", db, "-l"])
    paths = r.stdout.splitlines()
    assert r.exit_code == 0 and len(paths) == len(set(paths)) == 3  # 4 files, 2 of them identical
    seg = runner.invoke(app, ["query", "harbour boats", "--db", db, "--segments", "-k", "20"])
    rows = [line for line in seg.stdout.splitlines()[1:] if not line.startswith(" " * 6)]
    assert len(rows) > 4  # long.txt's segments each on a line
    hits = json.loads(runner.invoke(app, ["query", "harbour boats", "--db", db, "--json", "-k", "20"]).stdout)
    assert len(hits) > 4 and [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    ranks = [h["file_rank"] for h in hits]
    assert ranks == sorted(ranks) and max(ranks) == 3 and ranks[0] == 1
    same = {h["file_rank"] for h in hits if h["path"].endswith(("boats.txt", "copy.txt"))}
    assert len(same) == 1  # identical files share a file rank


@pytest.mark.slow
def test_interactive_answers_each_line_and_survives_errors(db):
    r = gemb2(
        "query", "--interactive", "--db", db, "-l", "-k", "1", input="sailing boats\n\t\napple pie\n", timeout=300
    )
    assert r.returncode == 0, r.stderr
    assert [p.rsplit("/", 1)[1] for p in r.stdout.splitlines()] in (["boats.txt"], ["copy.txt"])  # blank line ends it
    r = gemb2("query", "--interactive", "--db", db, "-l", "-k", "1", "--dim", "7", input="a\nb\n", timeout=300)
    assert r.returncode == 0 and r.stderr.count("gemb2: error: --dim 7") == 2 and r.stdout == ""
    r = gemb2("query", "--interactive", "--db", db, "-l", "-k", "1", input="apple pie\nsailing boats", timeout=300)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2  # end of input ends it
