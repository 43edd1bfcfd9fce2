"""`gemb2 --version`, `-h` on every command, and help text rendered whole: the bracketed parts of the help
strings ("[env: GEMB2_DB; default: ...]", "gemb2[onnx]") reach the screen in narrow and wide terminals,
in-process (CliRunner) and through a real subprocess."""

from __future__ import annotations

import re

import click
import pytest
import typer
from typer.testing import CliRunner

from gemb2.cli.main import app
from tests.cli_run import gemb2

runner = CliRunner()
WIDTHS = ("40", "200")  # a narrow terminal (help text wraps a lot) and a wide one


def _commands() -> list[tuple[list[str], click.Command]]:
    """(argv prefix, click command) for the app and every command and subcommand under it."""
    found = []

    def walk(prefix: list[str], cmd: click.Command) -> None:
        found.append((prefix, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk([*prefix, name], sub)

    walk([], typer.main.get_command(app))
    return found


COMMANDS = _commands()
IDS = [" ".join(p) or "gemb2" for p, _ in COMMANDS]


def _bracketed(cmd: click.Command) -> list[str]:
    """Every [...] in the command's own help text and its parameters' help strings."""
    texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
    return [m for t in texts for m in re.findall(r"\[[^\]\[]*\]", t)]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)  # line wrapping may break a bracket anywhere (even in a long word)


def test_the_commands_under_test_are_all_of_them():
    assert {" ".join(p) for p, _ in COMMANDS} >= {"", "embed", "query", "train", "eval", "index", "init",
                                                   "export", "export model", "export embeddings"}
    assert sum(len(_bracketed(c)) for _, c in COMMANDS) >= 20  # the help strings do use brackets


def test_version_prints_the_package_version():
    from importlib.metadata import version

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output == f"gemb2 {version('gemb2')}\n"
    assert re.fullmatch(r"gemb2 \d+\.\d+\.\d+\S*\n", r.output)


@pytest.mark.parametrize("prefix", [p for p, _ in COMMANDS], ids=IDS)
def test_dash_h_is_help_on_every_command(prefix):
    short, long = runner.invoke(app, [*prefix, "-h"]), runner.invoke(app, [*prefix, "--help"])
    assert short.exit_code == 0 and long.exit_code == 0, short.output
    assert short.output == long.output and "-h, --help" in short.output and "Usage:" in short.output


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("prefix, cmd", COMMANDS, ids=IDS)
def test_rendered_help_keeps_every_bracketed_text(prefix, cmd, columns):
    out = runner.invoke(app, [*prefix, "--help"], env={"COLUMNS": columns}, terminal_width=int(columns)).output
    for text in _bracketed(cmd):
        assert _squash(text) in _squash(out), f"{text!r} is missing from `gemb2 {' '.join(prefix)} --help`:\n{out}"
    if columns == "200":  # wide enough that nothing wraps inside them
        for text in _bracketed(cmd):
            assert text in out


def test_env_and_extras_brackets_render_in_a_wide_terminal():
    def helptext(*argv):
        return runner.invoke(app, [*argv, "--help"], env={"COLUMNS": "200"}, terminal_width=200).output

    for argv in (["embed"], ["query"], ["index"], ["export", "embeddings"]):
        assert "[env: GEMB2_DB" in helptext(*argv), argv
    assert "[env: GEMB2_DB; default: ~/.local/share/gemb2/lancedb]" in helptext("embed")
    assert "pip install 'gemb2[onnx]'" in helptext("export", "model")


@pytest.mark.slow
@pytest.mark.parametrize("columns", WIDTHS)
def test_rendered_help_in_a_real_process(columns):
    """The same through the real entry point (its terminal width comes from COLUMNS; click caps it at 80)."""
    for prefix, cmd in COMMANDS:
        r = gemb2(*prefix, "-h", env={"COLUMNS": columns})
        assert r.returncode == 0 and r.stderr == "", r.stderr
        for text in _bracketed(cmd):
            assert _squash(text) in _squash(r.stdout), f"{text!r} missing from `gemb2 {' '.join(prefix)} -h`"
        if prefix in (["embed"], ["query"], ["index"], ["export", "embeddings"]):
            assert "[env:GEMB2_DB" in _squash(r.stdout)  # click wraps at 78 columns even in a wider terminal
        if prefix == ["export", "model"]:
            assert "gemb2[onnx]" in r.stdout
    v = gemb2("--version")
    assert v.returncode == 0 and re.fullmatch(r"gemb2 \d+\.\d+\.\d+\S*\n", v.stdout)
