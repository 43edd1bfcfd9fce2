"""The Whisper audio stem: 16 kHz samples -> 30 s log-mel window -> Whisper's encoder -> pooled tokens -> projector.

References: Radford et al. 2022 (Whisper, arXiv 2212.04356, sec. 2.2) for the front end and encoder
(whisper_encoder.py, audio_features.py); Qwen-Audio (Chu et al. 2023, sec. 2.1), which also pools Whisper's
encoder output in time before a language model, and LLaVA (Liu et al. 2023) for the linear projector.

    (B, N) samples, N <= 30 s -> zero-padded to 30 s (Whisper was trained on padded 30 s windows)
    -> log-mel (B, 80, 3000) -> encoder (B, 1500, D), 50 positions per second
    -> average pool over audio_frames_per_token / 2 positions (B, 3000 / audio_frames_per_token, D)
    -> the first N / samples_per_token tokens (the audio itself, not its padding)
    -> Linear(D, hidden) -> (B, m, H)

`audio_frames_per_token` (in 10 ms mel frames, as for the mel stem) sets the token rate: 20 = one
token per 0.2 s, 150 tokens per 30 s window. Pretrained weights: `gemb2.pretrained.whisper.load_whisper_stem`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..audio_features import HOP_LENGTH, audio_token_count, log_mel
from ..config import WHISPER_SIZES, ModelConfig
from .whisper_encoder import N_SAMPLES, WhisperEncoder, WhisperEncoderConfig, pad_or_trim


class WhisperStem(nn.Module):
    """(B, N) float32 samples, N a multiple of `samples_per_token` -> (B, N / samples_per_token, H) tokens."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d, heads, layers = WHISPER_SIZES[cfg.audio_encoder]
        self.size = cfg.audio_encoder
        self.encoder = WhisperEncoder(WhisperEncoderConfig(d_model=d, n_heads=heads, n_layers=layers))
        self.pool = cfg.audio_frames_per_token // 2  # encoder positions per token
        self.samples_per_token = HOP_LENGTH * cfg.audio_frames_per_token
        self.max_tokens = cfg.max_audio_tokens
        self.proj = nn.Linear(d, cfg.hidden)
        nn.init.normal_(self.proj.weight, std=d**-0.5)
        nn.init.zeros_(self.proj.bias)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        B, N = samples.shape
        m = audio_token_count(N, self.samples_per_token, self.max_tokens)
        mel = log_mel(pad_or_trim(samples.float(), N_SAMPLES))  # (B, 80, 3000), float32 math
        h = self.encoder(mel.to(self.proj.weight.dtype))  # (B, 1500, D)
        h = F.avg_pool1d(h.transpose(1, 2), self.pool, ceil_mode=True)  # (B, D, 1500 / pool)
        return self.proj(h[:, :, :m].transpose(1, 2))  # (B, m, H)
