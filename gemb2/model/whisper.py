"""The Whisper audio encoder (tiny, base, ... inferred from the weights), as an audio stem.

References:
    Radford et al., "Robust Speech Recognition via Large-Scale Weak Supervision" (arXiv 2212.04356), sec. 2.2.
    openai/whisper ``whisper/model.py`` (``AudioEncoder``); Hugging Face ``WhisperEncoder``, whose
        parameter names this module uses; CTranslate2 ``python/ctranslate2/converters/transformers.py``
        (``WhisperLoader``) for the CTranslate2 names mapped in ``from_ct2``.

Architecture: log-mel (B, 80, 3000) -> conv1d(k3) + GELU -> conv1d(k3, stride 2) + GELU
-> + sinusoidal positions (1500, D) -> pre-LN transformer blocks (self-attention, GELU MLP)
-> final LayerNorm -> (B, 1500, D). Whisper works on 30 s windows: ``pad_or_trim`` the
16 kHz samples to 480,000 and take ``gemb2.model.audio_features.log_mel`` of that.
Shorter inputs (T < 3000 frames) run too and use the first T/2 positions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .weights import check_exact_state

__all__ = ["WhisperEncoderConfig", "WhisperEncoder", "pad_or_trim", "sinusoids", "N_SAMPLES", "N_FRAMES"]

N_SAMPLES = 480_000  # 30 s at 16 kHz: Whisper's window
N_FRAMES = 3_000  # log-mel frames in a window (hop 160)
_HEAD_DIM = 64  # every Whisper size uses 64-dim heads


@dataclass(frozen=True)
class WhisperEncoderConfig:
    """Sizes of a Whisper encoder: tiny (384, 6 heads, 4 layers), base (512, 8, 6), small (768, 12, 12), ..."""

    d_model: int = 384
    n_heads: int = 6
    n_layers: int = 4
    n_mels: int = 80
    n_ctx: int = 1500  # positions: 3000 frames after the stride-2 conv


def pad_or_trim(samples: torch.Tensor, length: int = N_SAMPLES) -> torch.Tensor:
    """Zero-pad or cut the last axis to ``length`` samples (Whisper's ``pad_or_trim``)."""
    n = samples.shape[-1]
    if n > length:
        return samples[..., :length]
    return F.pad(samples, (0, length - n)) if n < length else samples


def sinusoids(length: int, channels: int, max_timescale: float = 10_000.0) -> torch.Tensor:
    """Whisper's sinusoidal position table (length, channels): [sin | cos] halves."""
    if channels % 2:
        raise ValueError(f"sinusoidal positions need an even channel count, got {channels}")
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2, dtype=torch.float32))  # (C/2,)
    t = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]  # (L, C/2)
    return torch.cat([t.sin(), t.cos()], dim=1)  # (L, C)


class _Attention(nn.Module):
    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d, bias=False)  # Whisper's key projection has no bias
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = (p(x).view(B, T, self.n_heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        y = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, D/H)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, D))


class _Block(nn.Module):
    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.self_attn = _Attention(d, n_heads)
        self.final_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder: log-mel (B, n_mels, T <= 3000) -> (B, ceil(T / 2), d_model)."""

    def __init__(self, config: WhisperEncoderConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.conv1 = nn.Conv1d(config.n_mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.n_ctx, d)
        self.embed_positions.weight.requires_grad_(False)  # fixed sinusoids, as in Whisper
        with torch.no_grad():
            self.embed_positions.weight.copy_(sinusoids(config.n_ctx, d))
        self.layers = nn.ModuleList(_Block(d, config.n_heads) for _ in range(config.n_layers))
        self.layer_norm = nn.LayerNorm(d)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.dim() != 3 or mel.shape[1] != self.config.n_mels:
            raise ValueError(f"expected log-mel (B, {self.config.n_mels}, T), got shape {tuple(mel.shape)}")
        if mel.shape[2] > 2 * self.config.n_ctx:
            raise ValueError(f"log-mel has {mel.shape[2]} frames, more than this encoder's {2 * self.config.n_ctx}")
        x = F.gelu(self.conv1(mel))  # (B, D, T)
        x = F.gelu(self.conv2(x)).transpose(1, 2)  # (B, T/2, D)
        x = x + self.embed_positions.weight[: x.shape[1]]
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)  # (B, T/2, D)

    # ---- loaders -------------------------------------------------------------------------

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], source: str, n_heads: int | None = None) -> WhisperEncoder:
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
        model = cls(config)
        _load_exact(model, state, source)
        return model.eval()

    @classmethod
    def from_ct2(cls, path, dtype: torch.dtype = torch.float32) -> WhisperEncoder:
        """From a CTranslate2 Whisper ``model.bin`` (a file, its folder, or the ordered parts of a split file)."""
        from gemb2.model.ct2 import read_ct2

        ct2 = read_ct2(path, dtype=dtype)
        source = str(path if isinstance(path, (str, Path)) else list(map(str, path)))
        if ct2.spec != "WhisperSpec":
            raise ValueError(f"{source}: a CTranslate2 {ct2.spec or 'TransformerSpec'!r} model, not Whisper")
        v = {k[len("encoder/") :]: t for k, t in ct2.variables.items() if k.startswith("encoder/")}
        heads = int(v.pop("num_heads").item()) if "num_heads" in v else None
        return cls.from_state_dict(_ct2_to_hf(v, source), source, heads)

    @classmethod
    def from_hf_safetensors(cls, folder: str | Path) -> WhisperEncoder:
        """From a Hugging Face Whisper folder (``model.safetensors`` [+ ``config.json``]) or the file itself.

        Takes ``model.encoder.*`` (WhisperForConditionalGeneration) or ``encoder.*`` (WhisperModel) tensors.
        """
        from safetensors.torch import load_file

        from gemb2.model.weights import require_safetensors

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
        return cls.from_state_dict(enc, str(file), heads)


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
                out[name] = t  # unknown: reported as unexpected by _load_exact
        else:
            out[name] = t
    return out


def _load_exact(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy every tensor, naming the first missing, unexpected or wrongly shaped one."""
    check_exact_state(model.state_dict(), state, source, "Whisper encoder")
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
