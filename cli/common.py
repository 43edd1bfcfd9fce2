"""What every subcommand shares: exit codes, environment defaults, one-line errors, opening models and stores."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

# Exit codes (documented in the README):
EXIT_OK = 0  # everything was done
EXIT_FATAL = 1  # nothing more could be done: a model, store or disk error
EXIT_USAGE = 2  # bad flags or arguments (also what Typer uses for its own usage errors)
EXIT_PARTIAL = 3  # some inputs failed (each reported with its path and reason); all the others were done
EXIT_BUSY = 4  # another run holds the table's lock and --wait ran out; nothing was done

ENV_DB, ENV_TABLE, ENV_MODEL, ENV_DEVICE = "GEMB2_DB", "GEMB2_TABLE", "GEMB2_MODEL", "GEMB2_DEVICE"
DEFAULT_MODEL = "gemb2-mini"


def die(message: str, code: int = EXIT_FATAL) -> NoReturn:
    """Print one line on stderr and exit with `code`."""
    typer.echo(f"gemb2: error: {message}", err=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    typer.echo(f"gemb2: {message}", err=True)


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
    return model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL


def model_id_of(source: str) -> str:
    """The id of a model source without loading its weights (so an unchanged tree costs no model load)."""
    from gemb2.model.sources import ModelSourceError, model_source_id

    try:
        return model_source_id(source)
    except ModelSourceError as e:
        die(str(e), EXIT_USAGE)


def load_model(source: str, device: str | None):
    from gemb2.model.sources import ModelSourceError, load_model as _load

    dev = resolve_device(device)
    try:
        return _load(source, device=dev)
    except ModelSourceError as e:
        die(str(e), EXIT_USAGE)
    except (OSError, ValueError) as e:
        die(f"cannot load model {source!r}: {e}")


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
    """
    from gemb2.store import LanceStore, StoreError

    uri, name = db_uri(db), table_name(table)
    try:
        store = LanceStore(uri, name)
    except StoreError as e:
        die(str(e))
    if store.table is None:
        die(f"no table {name!r} in {uri}: run `gemb2 embed PATH` first", EXIT_USAGE)
    return store
