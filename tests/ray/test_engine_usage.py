"""`gemb2 embed --engine/--ray-address`: what does not go together is a one-line usage error (exit 2) before
anything is opened; an address nothing answers on is a one-line fatal error (exit 1), not minutes of retries."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gemb2.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "spark"], "--engine must be local or ray"),
        (["--ray-address", "auto"], "--ray-address goes with --engine ray"),
        (["--engine", "ray", "--out", "shards"], "--engine ray writes a LanceDB table"),
        (["--engine", "ray", "--rank", "0", "--world-size", "2"], "drop --rank/--world-size"),
    ],
)
def test_options_that_do_not_go_together(tmp_path, extra, message):
    (tmp_path / "a.txt").write_text("hello")
    r = runner.invoke(app, ["embed", str(tmp_path / "a.txt"), "--model", "tiny", "--db", str(tmp_path / "db"), *extra])
    assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "db").exists()


def test_an_address_nothing_answers_on_fails_at_once(tmp_path):
    pytest.importorskip("ray")
    (tmp_path / "a.txt").write_text("hello")
    args = ["embed", str(tmp_path / "a.txt"), "--model", "tiny", "--db", str(tmp_path / "db"), "--engine", "ray"]
    r = runner.invoke(app, [*args, "--ray-address", "127.0.0.1:1"])
    assert r.exit_code == 1 and "cannot connect to the Ray cluster at 127.0.0.1:1" in r.output, r.output
    assert "Traceback" not in r.output
