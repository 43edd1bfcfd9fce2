"""The audio stem: 16 kHz samples -> Whisper log-mel -> one token per group of mel frames.

References: Radford et al. 2022 (Whisper) for the log-mel front end (audio_features.py); the
projection is a single strided conv1d (a "mel-frame patch" projection, trained from scratch)
plus a learned position per token within the window, like Whisper's encoder positions.
"""

from __future__ import annotations

import torch
from torch import nn

from ..audio_features import HOP_LENGTH, audio_token_count, log_mel
from ..config import ModelConfig


class MelStem(nn.Module):
    """(B, N) float32 samples, N a multiple of `samples_per_token` -> (B, N / samples_per_token, H) tokens."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_mels = cfg.n_mels
        self.samples_per_token = HOP_LENGTH * cfg.audio_frames_per_token
        self.max_tokens = cfg.max_audio_tokens
        k = cfg.audio_frames_per_token
        self.proj = nn.Conv1d(cfg.n_mels, cfg.hidden, kernel_size=k, stride=k)
        self.position = nn.Parameter(torch.randn(self.max_tokens, cfg.hidden) * 0.02)  # (M, H)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        B, N = samples.shape
        m = audio_token_count(N, self.samples_per_token, self.max_tokens)
        mel = log_mel(samples, self.n_mels).to(self.proj.weight.dtype)  # (B, n_mels, m * k), float32 math
        x = self.proj(mel).transpose(1, 2)  # (B, m, H)
        return x + self.position[:m]
