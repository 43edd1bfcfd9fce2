"""The `gemb2` Typer app: one module per subcommand; this file wires them and turns errors into exit codes.

Every error gemb2 reports is a `gemb2.errors.Gemb2Error` carrying its exit code; they are caught here, once,
where every command is invoked (`gemb2`, `python -m gemb2`, and typer's CliRunner alike), and printed as one
line `gemb2: error: <message>`. SIGINT/SIGTERM that end a command (`Interrupted`, a KeyboardInterrupt) exit
130/143. `GEMB2_DEBUG=1` lets them through with their traceback; any other exception is a bug and shows one.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated, NoReturn

import typer
from typer.core import TyperGroup

from gemb2.errors import EXIT_BROKEN_PIPE, Gemb2Error, Interrupted

from . import common
from .common import printable, version
from .data import data_app
from .embed import embed
from .eval import eval_
from .export import export_app
from .index import index
from .init import init
from .pull import pull
from .query import query
from .search import search
from .serve import serve
from .train import train


class _Gemb2Group(TyperGroup):
    """The app's command group: its `invoke` runs every command, so it is the one place errors become exit codes."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (Gemb2Error, KeyboardInterrupt) as e:
            code = e.exit_code if isinstance(e, (Gemb2Error, Interrupted)) else 130  # a bare Ctrl-C: SIGINT
            if os.environ.get("GEMB2_DEBUG", "") not in ("", "0"):
                if isinstance(e, Gemb2Error):
                    raise
                traceback.print_exc()  # (click would turn a KeyboardInterrupt into "Aborted!")
            else:
                typer.echo(f"gemb2: error: {printable(str(e) or 'interrupted')}", err=True)
            raise typer.Exit(code) from None


app = typer.Typer(
    cls=_Gemb2Group,
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
app.command()(search)
app.command()(train)
app.command(name="eval")(eval_)
app.command()(index)
app.add_typer(export_app, name="export")
app.add_typer(data_app, name="data")
app.command()(init)
app.command()(serve)
app.command()(pull)


def main() -> None:
    """Run the app; a reader that closed our stdout (`gemb2 ... | head -1`) ends it quietly with 141, as Unix tools."""
    from gemb2.pipeline.interrupt import interrupt_on_sigterm

    interrupt_on_sigterm()  # SIGTERM ends a command as Ctrl-C does: cleanly, one line, exit 143
    stdout = sys.stdout
    try:
        try:
            app(prog_name="gemb2")  # `python -m gemb2` and torchrun print usage as `gemb2`, like the script
        finally:
            sys.stdout.flush()  # what is still buffered, while a broken pipe can still be caught here
    except BrokenPipeError:
        _stdout_gone(stdout)
    except SystemExit as e:
        if sys.stdout is not stdout:  # click's EPIPE handler swapped in a quiet stdout: the reader went away
            _stdout_gone(stdout)
        if common.quick_exit_requested() and (e.code is None or isinstance(e.code, int)):
            sys.stderr.flush()
            os._exit(e.code or 0)  # stdout is flushed above; skips the teardown of torch and LanceDB (common.py)
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
