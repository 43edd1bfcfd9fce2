"""Model sources: what a `--model` value means (a preset name or a checkpoint folder), and its id.

    load_model("tiny")            a preset: random init with a fixed seed, identical in every process
    load_model("./my-model")      a folder written by save_pretrained (config.json + model.safetensors)
    model_source_id(source)       the model id, without reading weights where possible (folders)

A source that names nothing usable raises ModelSourceError (a ValueError): a user error, one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .config import ModelConfig, tiny

DEFAULT_MODEL = "gemb2-mini"


class ModelSourceError(ValueError):
    """The model source names no preset and no model folder, or a preset that is not installed."""


def _not_installed() -> ModelConfig:
    raise ModelSourceError(
        f"the trained default model {DEFAULT_MODEL!r} is not installed yet; pass `--model tiny` "
        "(random weights, for testing) or `--model PATH` to a model folder (one holding config.json)"
    )


# preset name -> config builder; random-init presets build identical weights in every process (fixed seed)
PRESETS: dict[str, Callable[[], ModelConfig]] = {
    "tiny": tiny,
    DEFAULT_MODEL: _not_installed,
}


def resolve(source: str) -> ModelConfig | Path:
    """A preset's config, or the checkpoint folder the source names."""
    if source in PRESETS:
        return PRESETS[source]()
    path = Path(source).expanduser()
    if (path / "config.json").is_file():
        return path
    if path.exists():
        raise ModelSourceError(f"{source}: not a gemb2 model folder (no config.json)")
    raise ModelSourceError(f"unknown model {source!r}: not a preset ({', '.join(PRESETS)}) nor a model folder")


def load_model(source: str, device=None):
    """A preset name or a checkpoint folder -> the Gemb2Model, in eval mode, on `device` (default CPU)."""
    from .io import load_pretrained
    from .model import Gemb2Model

    what = resolve(str(source))
    model = load_pretrained(what) if isinstance(what, Path) else Gemb2Model(what).eval()
    return model.to(device) if device is not None else model


def model_source_id(source: str) -> str:
    """The id `load_model(source).model_id` would have, cheaply where possible.

    For a folder: the model_id that save_pretrained stored in config.json (no weights read).
    For a preset (or a folder without a stored id): builds the model and hashes it.
    """
    from .io import read_config_json

    what = resolve(str(source))
    if isinstance(what, Path):
        try:
            stored = read_config_json(what).get("model_id")
        except (OSError, ValueError) as e:
            raise ModelSourceError(str(e)) from None
        if isinstance(stored, str) and stored:
            return stored
    return load_model(str(source)).model_id
