"""What every subcommand shares: environment defaults, lines on stderr with control characters escaped."""

from __future__ import annotations

import os
import sys
import unicodedata

import typer

ENV_DB, ENV_TABLE, ENV_MODEL, ENV_DEVICE = "GEMB2_DB", "GEMB2_TABLE", "GEMB2_MODEL", "GEMB2_DEVICE"


def printable(text: str) -> str:
    r"""`text` for a human-readable line: control characters escaped, so a file name holding a newline, a tab or
    a carriage return cannot break a line in two or overwrite it (--json output stays exact).

    \n \t \r are written so; other control characters (C0, DEL, C1) and the line and paragraph separators as
    \xNN or \uNNNN; a byte that was not UTF-8 (Python's surrogate escape) as \xNN, as the stores keep it.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        o = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0xDC80 <= o <= 0xDCFF:  # os.fsdecode's surrogate for the byte o - 0xDC00
            out.append(f"\\x{o - 0xDC00:02x}")
        elif unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs"):
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def warn(message: str) -> None:
    """One line on stderr, control characters escaped (see printable)."""
    typer.echo(f"gemb2: {printable(message)}", err=True)


def device_name(device: str | None) -> str | None:
    """--device, else $GEMB2_DEVICE (None: auto)."""
    return device or os.environ.get(ENV_DEVICE)


def model_name(model: str | None) -> str:
    """--model, else $GEMB2_MODEL, else the default model (gemb2.pretrained.sources.DEFAULT_MODEL)."""
    from gemb2.pretrained.sources import DEFAULT_MODEL

    return model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL


def db_uri(db: str | None) -> str:
    from gemb2.store.lance import default_db_uri

    return db or default_db_uri()


def table_name(table: str | None) -> str:
    from gemb2.store.lance import DEFAULT_TABLE

    return table or os.environ.get(ENV_TABLE) or DEFAULT_TABLE


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def open_table(db: str | None, table: str | None):
    """The existing table named by --db/--table (or their environment defaults); see gemb2.pipeline.open."""
    from gemb2.pipeline.open import open_table as _open

    return _open(db_uri(db), table_name(table))


def version() -> str:
    """The installed package's version (its metadata), else the source tree's gemb2.__version__."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("gemb2")
    except PackageNotFoundError:
        from gemb2 import __version__

        return __version__


_quick_exit = {"requested": False}


def exit_quickly_when_done() -> None:
    """Let `main` end the process as soon as this command returns: stdout and stderr flushed, then os._exit with
    the command's exit code, skipping the interpreter's teardown of torch and LanceDB (0.4-0.5 s on a 2-core CPU,
    most of a cold `gemb2 query`'s time after its answer: BENCHMARKS.md, "Query latency"). Only for commands that
    leave nothing to finish at exit (no child process, no write in flight); typer's CliRunner never exits."""
    _quick_exit["requested"] = True


def quick_exit_requested() -> bool:
    return _quick_exit["requested"]
