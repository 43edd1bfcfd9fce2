"""The `gemb2` Typer app: one module per subcommand; this file only wires them."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer

from .common import version
from .embed import embed
from .eval import eval_
from .export import export_app
from .index import index
from .init import init
from .query import query
from .train import train

app = typer.Typer(
    name="gemb2",
    help="Native multimodal embeddings: text, images, audio and video in one vector space.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rich markup ate "[env: GEMB2_DB; default: ...]" and "gemb2[onnx]"
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand's context
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"gemb2 {version()}")
        raise typer.Exit(0)


@app.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version (gemb2 X.Y.Z) and exit."
        ),
    ] = False,
) -> None:
    pass


app.command()(embed)
app.command()(query)
app.command()(train)
app.command(name="eval")(eval_)
app.command()(index)
app.add_typer(export_app, name="export")
app.command()(init)


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the status the shell shows for `seq`, `cat`, `yes` when `head` stops reading


def main() -> None:
    """Run the app; a reader that closed our stdout (`gemb2 ... | head -1`) ends it quietly with 141, as Unix tools."""
    stdout = sys.stdout
    try:
        try:
            app(prog_name="gemb2")  # `python -m gemb2` and torchrun print usage as `gemb2`, like the script
        finally:
            sys.stdout.flush()  # what is still buffered, while a broken pipe can still be caught here
    except BrokenPipeError:
        _stdout_gone(stdout)
    except SystemExit:
        if sys.stdout is not stdout:  # click's EPIPE handler swapped in a quiet stdout: the reader went away
            _stdout_gone(stdout)
        raise


def _stdout_gone(stdout) -> NoReturn:
    """Exit 141 with nothing said: later flushes (at interpreter exit too) write to /dev/null, not to the closed pipe."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.stdout = stdout
    raise SystemExit(EXIT_BROKEN_PIPE)


if __name__ == "__main__":
    main()
