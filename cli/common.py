"""What every subcommand shares: exit codes, environment defaults, one-line errors, opening models and stores."""

from __future__ import annotations

import os
import sys
import unicodedata
from pathlib import Path
from typing import NoReturn

import typer

# Exit codes (documented in the README):
EXIT_OK = 0  # everything was done
EXIT_FATAL = 1  # nothing more could be done: a model, store or disk error
EXIT_USAGE = 2  # bad flags or arguments (also what Typer uses for its own usage errors)
EXIT_PARTIAL = 3  # some inputs failed (each reported with its path and reason); all the others were done
EXIT_BUSY = 4  # another run holds the table's lock and --wait ran out; nothing was done

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


def die(message: str, code: int = EXIT_FATAL) -> NoReturn:
    """Print one line on stderr (control characters escaped, see printable) and exit with `code`."""
    typer.echo(f"gemb2: error: {printable(message)}", err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """One line on stderr, control characters escaped (see printable)."""
    typer.echo(f"gemb2: {printable(message)}", err=True)


def resolve_device(name: str | None) -> str:
    """'auto' -> cuda when a GPU is there, else cpu; anything else is checked by torch."""
    name = name or os.environ.get(ENV_DEVICE) or "auto"
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        die(f"--device {name!r}: {e}", EXIT_USAGE)
    if dev.type == "cuda" and not torch.cuda.is_available():
        die(f"--device {name}: no CUDA GPU is available here (use --device cpu or auto)", EXIT_USAGE)
    return name


def model_name(model: str | None) -> str:
    """--model, else $GEMB2_MODEL, else the default model (gemb2.pretrained.sources.DEFAULT_MODEL)."""
    from gemb2.pretrained.sources import DEFAULT_MODEL

    return model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL


def model_id_of(source: str) -> str:
    """The id of a model source without loading its weights (so an unchanged tree costs no model load)."""
    from gemb2.pretrained.sources import ModelSourceError, model_source_id

    try:
        return model_source_id(source)
    except ModelSourceError as e:
        die(str(e), EXIT_USAGE)


def load_model(source: str, device: str | None):
    from gemb2.pretrained.sources import ModelSourceError
    from gemb2.pretrained.sources import load_model as _load

    dev = resolve_device(device)
    try:
        return _load(source, device=dev)
    except ModelSourceError as e:
        die(str(e), EXIT_USAGE)
    except (OSError, ValueError) as e:
        die(f"cannot load model {source!r}: {e}")


def check_dim(m, dim: int | None) -> None:
    """`--dim` must be one of the model's Matryoshka dimensions (`Gemb2Model.check_dim`): else a usage error."""
    try:
        m.check_dim(dim)
    except ValueError as e:
        die(f"--dim {dim}: {e}", EXIT_USAGE)


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
    """The existing LanceDB table named by --db/--table (or their environment defaults), as a LanceStore.

    A table that cannot be opened is fatal (exit 1); one that does not exist yet is a usage error (exit 2).
    The commands that call this only read, so a missing local database folder is reported, never created
    (lancedb.connect would create the whole path).
    """
    from gemb2.store import LanceStore, StoreError

    uri, name = db_uri(db), table_name(table)
    local = local_db_path(uri)
    if local is not None and not local.is_dir():
        why = "no such database folder" if not local.exists() else "not a database folder"
        die(f"no table {name!r} in {uri} ({why}): run `gemb2 embed PATH` first", EXIT_USAGE)
    try:
        store = LanceStore(uri, name)
    except StoreError as e:
        die(str(e))
    if store.table is None:
        die(f"no table {name!r} in {uri}: run `gemb2 embed PATH` first", EXIT_USAGE)
    return store


def version() -> str:
    """The installed package's version (its metadata), else the source tree's gemb2.__version__."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("gemb2")
    except PackageNotFoundError:
        from gemb2 import __version__

        return __version__


def local_db_path(uri: str) -> Path | None:
    """The folder of a local database URI (a plain path or file://...), None for an object store (s3://, gs://, ...)."""
    if uri.startswith("file://"):
        return Path(uri[len("file://") :]).expanduser()
    if "://" in uri:
        return None
    return Path(uri).expanduser()
