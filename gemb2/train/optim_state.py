"""Optimizer state without pickle: tensors to safetensors, everything else to JSON.

`torch.save(optimizer.state_dict())` is a pickle, and gemb2 never unpickles. An optimizer's state
dict is {"state": {param_index: {name: tensor | number}}, "param_groups": [{hyper-parameters,
"params": [param_index, ...]}]}; tensors become "state.<index>.<name>" in a safetensors file, the
rest (numbers, booleans, None, lists) goes to JSON, with each tensor's key in its place.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


def save_optimizer(optimizer: torch.optim.Optimizer, folder: str | Path) -> None:
    """Write optimizer.safetensors and optimizer.json into `folder`."""
    from safetensors.torch import save_file

    folder = Path(folder)
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state: dict[str, dict] = {}
    for index, entries in sd["state"].items():
        state[str(index)] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                key = f"state.{index}.{name}"
                tensors[key] = value.detach().cpu().contiguous()
                state[str(index)][name] = {"tensor": key}
            else:
                state[str(index)][name] = {"value": value}
    save_file(tensors, str(folder / "optimizer.safetensors"))
    doc = {
        "format": "gemb2-optimizer",
        "type": type(optimizer).__name__,
        "state": state,
        "param_groups": sd["param_groups"],
    }
    (folder / "optimizer.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def load_optimizer(optimizer: torch.optim.Optimizer, folder: str | Path) -> None:
    """Restore what save_optimizer wrote; the optimizer must be of the same type over the same parameters."""
    from safetensors.torch import load_file

    folder = Path(folder)
    doc = json.loads((folder / "optimizer.json").read_text(encoding="utf-8"))
    if doc.get("type") != type(optimizer).__name__:
        raise ValueError(f"{folder}: optimizer state is for {doc.get('type')!r}, not {type(optimizer).__name__}")
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state = {
        int(i): {name: tensors[v["tensor"]] if "tensor" in v else v["value"] for name, v in entries.items()}
        for i, entries in doc["state"].items()
    }
    groups = doc["param_groups"]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})
