"""The README's exit-code table, one class at a time, through the real `gemb2` process: 0 done, 1 fatal, 2 usage,
3 some inputs failed, 4 busy, 130/143 interrupted. Every error is one line `gemb2: error: ...` on stderr and no
traceback, unless GEMB2_DEBUG=1, which shows where it came from."""

import json
import os
import signal
import subprocess

import pytest

from gemb2.errors import FatalError, Gemb2Error, InputError, Interrupted, UsageError
from tests.cli_run import gemb2, gemb2_popen
from tests.media import write_text


def run(*args, env=None, input=None) -> subprocess.CompletedProcess:
    return gemb2(*args, env={"GEMB2_DEBUG": "", **(env or {})}, input=input)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    lines = [line for line in r.stderr.splitlines() if line.startswith("gemb2: error: ")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.fixture
def table(tmp_path):
    write_text(tmp_path / "m" / "a.txt", "a red car")
    db = str(tmp_path / "db")
    r = run("embed", str(tmp_path / "m"), "--model", "tiny", "--db", db, "--quiet")
    assert r.returncode == 0, r.stderr  # 0: done
    return db


@pytest.mark.slow
def test_1_fatal_the_store_cannot_be_written(tmp_path, table):
    (tmp_path / "file").write_text("x")
    r = run("export", "embeddings", str(tmp_path / "file" / "out.parquet"), "--db", table)
    assert r.returncode == 1 and "failed" in one_error_line(r)


@pytest.mark.slow
def test_2_usage_a_bad_value_a_missing_path_an_unknown_model_a_table_of_another_model(tmp_path, table):
    assert run("embed", str(tmp_path / "missing"), "--model", "tiny", "--db", table).returncode == 2
    assert run("query", "x", "--db", table, "--modality", "smell").returncode == 2
    r = run("embed", str(tmp_path / "m"), "--model", "no-such-model", "--db", table)
    assert r.returncode == 2 and "no-such-model" in one_error_line(r)
    r = run("embed", str(tmp_path / "m"), "--model", "gemb2-mini", "--db", table)
    assert r.returncode == 2 and "--rebuild" in one_error_line(r)  # the table holds the vectors of `tiny`
    r = run("query", "x", "--db", table, "--where", "no_such_column = 1")  # LanceDB's own word for a bad filter
    assert r.returncode == 2 and "no_such_column" in one_error_line(r)
    r = run("query", "x", "--db", table, "--hybrid")  # no full-text index yet: a store error, and a usage one
    assert r.returncode == 2 and "gemb2 index" in one_error_line(r)


@pytest.mark.slow
def test_3_some_inputs_failed_and_the_others_were_done(tmp_path):
    write_text(tmp_path / "m" / "ok.txt", "fine")
    (tmp_path / "m" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    r = run("embed", str(tmp_path / "m"), "--model", "tiny", "--db", str(tmp_path / "db"), "--json")
    assert r.returncode == 3, r.stderr
    assert json.loads(r.stdout)["files_added"] == 1 and "gemb2: failed: " in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_4_busy_another_run_holds_the_lock(tmp_path, table):
    from gemb2.store.lock import table_lock

    with table_lock(table, "media"):
        r = run("embed", str(tmp_path / "m"), "--model", "tiny", "--db", table, "--wait", "0")
        i = run("index", "--db", table)
    assert r.returncode == 4 and i.returncode == 4
    one_error_line(r), one_error_line(i)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_130_143_interrupted_with_one_line(sig, code):
    """`gemb2 embed -` waiting for its next line of stdin: a signal ends it with 128 + its number."""
    p = gemb2_popen("embed", "-", "--model", "tiny", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True,
                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background job ignores it
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write("first line\n")
    p.stdin.flush()
    assert json.loads(p.stdout.readline())["line"] == 1  # the model is loaded and waits for more
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert err.startswith("gemb2: error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_gemb2_debug_shows_the_traceback(tmp_path):
    quiet = run("embed", str(tmp_path / "missing"), "--model", "tiny")
    assert quiet.returncode == 2 and one_error_line(quiet) == f"gemb2: error: no such file or folder: {tmp_path / 'missing'}"
    loud = run("embed", str(tmp_path / "missing"), "--model", "tiny", env={"GEMB2_DEBUG": "1"})
    assert loud.returncode != 0 and "Traceback (most recent call last)" in loud.stderr
    assert "gemb2.errors.UsageError: no such file or folder" in loud.stderr and "check_job" in loud.stderr


def test_one_hierarchy():
    """Every error class of gemb2 is a Gemb2Error with its exit code (Interrupted, a KeyboardInterrupt, aside)."""
    import gemb2.data.manifest
    import gemb2.data.manifest_items
    import gemb2.data.segments
    import gemb2.export
    import gemb2.export.embeddings
    import gemb2.export.onnx
    import gemb2.pipeline.query
    import gemb2.pretrained.bert
    import gemb2.pretrained.ct2
    import gemb2.pretrained.sources
    import gemb2.pretrained.weights
    import gemb2.store.index
    import gemb2.store.lock
    import gemb2.store.records
    import gemb2.train.recipe

    assert gemb2.export.onnx.ExportError is gemb2.export.embeddings.ExportError  # one class, not two of one name
    expect = {
        gemb2.store.records.StoreError: 1, gemb2.store.records.WrongModelError: 2, gemb2.store.lock.LockBusy: 4,
        gemb2.store.index.IndexBuildError: 2, gemb2.pipeline.query.QueryError: 2, gemb2.export.ExportError: 2,
        gemb2.train.recipe.RecipeError: 2, gemb2.data.manifest.ManifestError: 2,
        gemb2.data.manifest_items.ItemLoadError: 1, gemb2.data.segments.LoadError: 3,
        gemb2.pretrained.sources.ModelSourceError: 2, gemb2.pretrained.weights.MissingWeightsError: 1,
        gemb2.pretrained.weights.WeightsFileError: 1, gemb2.pretrained.bert.BertImportError: 1,
        gemb2.pretrained.ct2.Ct2FormatError: 1,
    }
    for cls, code in expect.items():
        assert issubclass(cls, Gemb2Error) and cls("x").exit_code == code, cls
    assert issubclass(gemb2.data.manifest.ManifestError, ValueError)  # what older callers caught
    assert issubclass(gemb2.pretrained.weights.MissingWeightsError, FileNotFoundError)
    assert issubclass(Interrupted, KeyboardInterrupt) and Interrupted(signal.SIGTERM).exit_code == 143
    assert (FatalError.exit_code, UsageError.exit_code, InputError.exit_code) == (1, 2, 3)
