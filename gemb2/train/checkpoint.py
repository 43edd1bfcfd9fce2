"""Training checkpoints: a folder per step, written atomically, nothing pickled.

    <stage>/checkpoints/step-000200/
        model/                    the model as `gemb2 embed --model` reads it (save_pretrained; LoRA merged)
        trainable.safetensors     the trainable parameters under their training names (LoRA factors
                                  included): with the stage's starting model, this restores the module
        optimizer.safetensors     optimizer tensors (AdamW moments), see optim_state
        optimizer.json            optimizer hyper-parameters and scalars
        trainer.json              step, data position (the sampler's state), the stage's fingerprint
        rng-<rank>.safetensors    each rank's torch CPU (and CUDA) RNG state

The folder is built as `.step-000200.tmp` and renamed into place, so a run killed while writing leaves
the previous checkpoint as the latest one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch

STEP_DIR = re.compile(r"^step-(\d{6,})$")


def step_dir(root: Path, step: int) -> Path:
    return Path(root) / f"step-{step:06d}"


def latest(root: str | Path) -> Path | None:
    """The complete checkpoint with the highest step under `root`, or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return max(found)[1] if found else None


def tmp_dir(root: Path, step: int) -> Path:
    return Path(root) / f".step-{step:06d}.tmp"


def begin(root: Path, step: int) -> Path:
    """A fresh temporary folder for the checkpoint of `step`."""
    tmp = tmp_dir(root, step)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def commit(root: Path, step: int, keep: int = 0) -> Path:
    """Rename the temporary folder into place; keep the last `keep` checkpoints (0 = all)."""
    final = step_dir(root, step)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp_dir(root, step), final)
    if keep > 0:
        done = sorted(p for p in Path(root).iterdir() if STEP_DIR.match(p.name))
        for old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def save_rng(folder: Path, rank: int) -> None:
    from safetensors.torch import save_file

    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    save_file(state, str(Path(folder) / f"rng-{rank}.safetensors"))


def load_rng(folder: Path, rank: int) -> None:
    from safetensors.torch import load_file

    path = Path(folder) / f"rng-{rank}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no RNG state for rank {rank} (was it written with another world size?)")
    state = load_file(str(path))
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_json(folder: Path, name: str, doc: dict) -> None:
    (Path(folder) / name).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def load_json(folder: Path, name: str) -> dict:
    return json.loads((Path(folder) / name).read_text(encoding="utf-8"))
