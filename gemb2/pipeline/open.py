"""Opening what a command works on: the device, the model (by preset name or folder), an existing table.

Each failure is a `gemb2.errors` error with one line: a device, model or table that does not exist is a
UsageError (exit 2); one that exists and cannot be read is a FatalError (exit 1).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from gemb2.errors import FatalError, UsageError


def resolve_device(name: str | None) -> str:
    """'auto' (or None) -> cuda when a GPU is there, else cpu; anything else is checked by torch."""
    import torch

    name = name or "auto"
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise UsageError(f"--device {name!r}: {e}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA GPU is available here (use --device cpu or auto)")
    return name


def rank_device(name: str | None) -> str | None:
    """Under torchrun (LOCAL_RANK set) with GPUs, `auto` means this rank's GPU: cuda:LOCAL_RANK."""
    local = os.environ.get("LOCAL_RANK")
    if (name or "auto") != "auto" or not local or not local.isdigit():
        return name
    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(local) % torch.cuda.device_count()}"
    return name


def model_id_of(source: str) -> str:
    """The id of a model source without loading its weights (so an unchanged tree costs no model load)."""
    from gemb2.pretrained.sources import model_source_id

    return model_source_id(source)  # an unknown model: ModelSourceError, a UsageError


def load_model(source: str, device: str | None, modalities: Collection[str] | None = None):
    """The model `source` names (a preset, a gemb2 model folder, a Hugging Face BERT folder) on `device`.
    `modalities`: only what embedding these needs (a text query: no media stems), else the whole model."""
    from gemb2.model.model import stems_for
    from gemb2.pretrained.sources import load_model as _load

    dev = resolve_device(device)
    stems = None if modalities is None else stems_for(modalities)
    try:
        return _load(source, device=dev, stems=stems)
    except UsageError:  # an unknown model (ModelSourceError)
        raise
    except (OSError, ValueError) as e:  # missing weights, a damaged folder: torch, safetensors, json say what
        raise FatalError(f"cannot load model {source!r}: {e}") from e


def check_dim(model, dim: int | None) -> None:
    """`--dim` must be one of the model's Matryoshka dimensions (`Gemb2Model.check_dim`)."""
    try:
        model.check_dim(dim)
    except ValueError as e:
        raise UsageError(f"--dim {dim}: {e}") from e


def prompt_task(model, name: str) -> str | None:
    """A --task / --prompt value -> the `task` that model.encode takes (None: no prompt). gemb2's own models know
    document and query; a family with named prompts (EmbeddingGemma 2) checks the name itself. UsageError lists
    the known names."""
    if name == "none":
        return None
    check = getattr(model, "prompt_name", None)
    if callable(check):
        try:
            check(name)
        except ValueError as e:
            raise UsageError(str(e)) from None
        return name
    if name not in ("document", "query"):
        raise UsageError(f"unknown prompt {name!r}: this model's prompts are document, query (or none)")
    return name


def source_path(source: str) -> str:
    """A model source as recorded with a table: presets by name, folders by absolute path, a release by its version
    ("gemb2-mini" is recorded as the "gemb2-mini-v2.1" it names now, so the table keeps naming it when the default
    moves on)."""
    if Path(source).is_dir():
        return str(Path(source).resolve())
    from gemb2.pretrained.release import ALIASES, versioned

    return versioned(source) if source in ALIASES else source


def table_source(source: str, model_id: str | None) -> str:
    """The model source a table's queries and reruns use: its recorded `source`, unless that is a release name that
    has moved on since (a table made when "gemb2-mini" named v1 records v1's id): then the release version its
    recorded `model_id` belongs to (gemb2-mini-v1). Never another model: the caller still checks the id."""
    from gemb2.pipeline.prompts import split_prompt
    from gemb2.pretrained.release import RELEASES, release_model_id, release_of_id

    if source not in RELEASES or model_id is None:
        return source
    base = split_prompt(model_id)[0]  # a table embedded with --prompt NAME records "<id>+prompt=NAME"
    return source if release_model_id(source) == base else release_of_id(base) or source


def wrong_model_hint(model_id: str) -> str:
    """For the error of embedding into a table of another model: how to name the table's model, if it is a release
    ("; embed into it with its own model: --model gemb2-mini-v1"), else ""."""
    from gemb2.pipeline.prompts import split_prompt
    from gemb2.pretrained.release import release_of_id

    name = release_of_id(split_prompt(model_id)[0])
    return f"; embed into it with its own model: --model {name}" if name else ""


def local_db_path(uri: str) -> Path | None:
    """The folder of a local database URI (a plain path or file://...), None for an object store (s3://, gs://, ...)."""
    if uri.startswith("file://"):
        return Path(uri[len("file://") :]).expanduser()
    if "://" in uri:
        return None
    return Path(uri).expanduser()


def open_table(uri: str, name: str):
    """The existing LanceDB table `name` in `uri`, as a LanceStore, for commands that only read it.

    A table that does not exist is a UsageError; one that cannot be opened a StoreError (fatal). A missing
    local database folder is reported, never created (lancedb.connect would create the whole path).
    """
    from gemb2.store import LanceStore

    local = local_db_path(uri)
    if local is not None and not local.is_dir():
        why = "no such database folder" if not local.exists() else "not a database folder"
        raise UsageError(f"no table {name!r} in {uri} ({why}): run `gemb2 embed PATH` first")
    store = LanceStore(uri, name)
    if store.table is None:
        raise UsageError(f"no table {name!r} in {uri}: run `gemb2 embed PATH` first")
    return store
