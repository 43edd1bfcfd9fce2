"""The Whisper audio encoder (tiny, base, small, medium): the network inside the Whisper audio stem.

References:
    Radford et al., "Robust Speech Recognition via Large-Scale Weak Supervision" (arXiv 2212.04356), sec. 2.2.
    openai/whisper ``whisper/model.py`` (``AudioEncoder``); Hugging Face ``WhisperEncoder``, whose
        parameter names this module uses (``gemb2.pretrained.whisper`` loads real weights into it).

Architecture: log-mel (B, 80, 3000) -> conv1d(k3) + GELU -> conv1d(k3, stride 2) + GELU
-> + sinusoidal positions (1500, D) -> pre-LN transformer blocks (self-attention, GELU MLP)
-> final LayerNorm -> (B, 1500, D). Whisper works on 30 s windows: ``pad_or_trim`` the
16 kHz samples to 480,000 and take ``gemb2.model.audio_features.log_mel`` of that.
Shorter inputs (T < 3000 frames) run too and use the first T/2 positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...parts import SAMPLE_RATE
from ..audio_features import HOP_LENGTH
from ..config import WHISPER_WINDOW_S

__all__ = ["WhisperEncoderConfig", "WhisperEncoder", "pad_or_trim", "sinusoids", "N_SAMPLES", "N_FRAMES"]

N_SAMPLES = round(WHISPER_WINDOW_S * SAMPLE_RATE)  # 480,000: Whisper's 30 s window at 16 kHz
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3,000 log-mel frames in a window


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
