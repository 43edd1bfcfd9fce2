"""Checkpoint folders: config.json + model.safetensors + tokenizer.json + README.md.

Only safetensors and JSON are ever read (no pickle). Loading checks every tensor's name, shape and
dtype against a freshly built module, as nanoGPT's `from_pretrained` does, and names the first problem it
finds (`check_exact_state`, which the importers of pretrained parts use too). Saving writes a temporary
folder and renames it into place, so a reader never sees a half-written checkpoint.

config.json:  {"format": "gemb2", "format_version": 1, "model_id": "<name>@<digest>", "config": {...}}
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig
from .model import Gemb2Model
from .tokenizer import TextTokenizer

FORMAT_VERSION = 1
FILES = ("config.json", "model.safetensors", "tokenizer.json", "README.md")


def read_config_json(folder: str | Path) -> dict[str, Any]:
    """The parsed config.json of a checkpoint folder, checked for our format marker."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"not a gemb2 model folder (no config.json): {folder}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != "gemb2":
        raise ValueError(f'{path}: not a gemb2 config (expected "format": "gemb2")')
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {doc.get('format_version')!r} is not supported "
            f"(this gemb2 reads version {FORMAT_VERSION})"
        )
    unknown = sorted(set(doc) - {"format", "format_version", "model_id", "config"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}")
    return doc


def save_pretrained(model: Gemb2Model, folder: str | Path) -> Path:
    """Write the model as a checkpoint folder (replacing one already there). Returns the folder."""
    from safetensors.torch import save_file

    model_id = model.model_id

    def write(tmp: Path) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt", "model_id": model_id})
        doc = {
            "format": "gemb2",
            "format_version": FORMAT_VERSION,
            "model_id": model_id,
            "config": model.config.to_dict(),
        }
        (tmp / "config.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        model.tokenizer.save(tmp / "tokenizer.json")
        (tmp / "README.md").write_text(_model_card(model, model_id), encoding="utf-8")

    return replace_folder(folder, write)


def replace_folder(folder: str | Path, write: Callable[[Path], object]) -> Path:
    """Run `write(tmp)` into a temporary folder beside `folder`, then put it in `folder`'s place: an old folder is
    removed only once the new one is complete, and an error leaves nothing half-written. Returns the folder."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write(tmp)
        if folder.exists():  # swap: the old folder is removed only once the new one is complete
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def check_exact_state(
    expected: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    source: str,
    what: str = "",
    error: type[Exception] = ValueError,
    dtypes: bool = False,
) -> None:
    """Raise `error` naming the first tensor of `state` that is missing, unexpected, wrongly shaped (or, with
    `dtypes`, of another dtype) against `expected` (a module's state_dict): checkpoints and importers of
    pretrained parts load exactly or not at all. `what` names the part in the message ("BERT", ...)."""
    label = f"{what} tensor" if what else "tensor"
    missing = [k for k in expected if k not in state]
    if missing:
        raise error(f"{source}: {label} {missing[0]!r} is missing ({len(missing)} missing)")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise error(f"{source}: unexpected {label} {unexpected[0]!r} ({len(unexpected)} unexpected)")
    for name, want in expected.items():
        got = state[name]
        if tuple(got.shape) != tuple(want.shape):
            raise error(f"{source}: {label} {name!r} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        if dtypes and got.dtype != want.dtype:
            raise error(f"{source}: {label} {name!r} has dtype {got.dtype}, expected {want.dtype}")


PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})


def load_pretrained(
    folder: str | Path, device: torch.device | str | None = None, stems: Collection[str] | None = None
) -> Gemb2Model:
    """Build the model from a checkpoint folder; every tensor is checked by name, shape and dtype.

    `stems`: build only these media stems ("image", "audio"; None: all) and read only their tensors (a
    query's encoder): the model is partial (Gemb2Model), so the weights are not checked against the stored id.
    """
    from safetensors import safe_open

    folder = Path(folder)
    doc = read_config_json(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{folder}: no model.safetensors (gemb2 loads weights only from safetensors)")
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in PICKLE_SUFFIXES:  # refused, never opened: a model folder is safetensors + JSON
            raise ValueError(
                f"{folder}: holds {path.name}, a pickle; gemb2 loads only safetensors and JSON "
                "(remove the file to load this folder)"
            )
    config = ModelConfig.from_dict(doc.get("config"))
    tok_path = folder / "tokenizer.json"
    model = Gemb2Model(config, TextTokenizer.from_file(tok_path) if tok_path.is_file() else None, stems=stems)
    skipped = () if stems is None else tuple(f"{s}_stem." for s in ("image", "audio") if s not in stems)
    with safe_open(str(weights), framework="pt") as f:
        names = [k for k in f.keys() if not k.startswith(skipped)]  # noqa: SIM118 (safe_open is not a dict)
        state = {k: f.get_tensor(k) for k in names}
    check_exact_state(model.state_dict(), state, str(weights), dtypes=True)
    model.load_state_dict(state, strict=True, assign=model.partial)  # partial: no second copy (Gemb2Model)
    stored = doc.get("model_id")
    if stored is not None and not model.partial and stored != model.model_id:
        raise ValueError(
            f"{folder}: config.json says model_id {stored} but the files give {model.model_id}; "
            "the folder was edited after saving (re-save it, or delete the model_id key)"
        )
    model.eval()
    return model.to(device) if device is not None else model


def _stem(kind: str, encoder: str) -> str:
    return {"efficientnet": f"efficientnet-{encoder}", "whisper": f"whisper-{encoder}"}.get(kind, kind)


def _model_card(model: Gemb2Model, model_id: str) -> str:
    c = model.config
    n = sum(p.numel() for p in model.parameters())
    return f"""# {c.name}

A gemb2 native multimodal embedding model: text, images, audio, video and interleaved mixes
in one L2-normalised vector space.

- model id: `{model_id}`
- parameters: {n:,} (backbone {c.layers} layers x {c.hidden} hidden, {c.heads} heads)
- output: {c.out_dim} dimensions; Matryoshka prefixes {list(c.matryoshka_dims)} (re-normalise after truncating)
- embeds: {", ".join(c.modalities)}; image stem `{_stem(c.image_stem, c.image_encoder)}`, audio stem `{_stem(c.audio_stem, c.audio_encoder)}`
- inputs: text up to {c.max_text_tokens} tokens; images {c.image_size}x{c.image_size} ({c.image_tokens} tokens);
  audio 16 kHz windows of {c.audio_window_s:g} s ({c.max_audio_tokens} tokens); video up to {c.max_frames} frames + audio track
- prompts: queries `{c.query_prompt}`, documents `{c.document_prompt}`

Files: `config.json` (the config and model id), `model.safetensors` (weights), `tokenizer.json`
(WordPiece). Load with `gemb2.load_model("<this folder>")`.
""" + (
        "\nThis model is randomly initialised (untrained): for testing only.\n"
        if "random" in c.name
        else "\nParts of this model (its new projectors) are untrained: a starting point for `gemb2 train`.\n"
        if "untrained" in c.name
        else ""
    )
