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

`encode` is the front end and encoder alone (B, 1500, D): what Whisper's decoder reads when the model decodes speech
from its own stem (recognise.py, recognise_speech_from "stem"). Inside `reuse.reusing()` (Gemb2Model.encode opens
it) the windows `encode` computed are kept, keyed by their samples without trailing zeros (the stem pads to 30 s
with zeros, so a window and its zero-padded copy are one input), and `forward` takes them instead of running the
encoder again (stems/reuse.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio_features import HOP_LENGTH, audio_token_count, log_mel
from ..config import WHISPER_SIZES, ModelConfig
from .reuse import Reuse, row_keys
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
        self.reuse = Reuse()  # encoder outputs `encode` computed for recognition, for `forward` (stems/reuse.py)
        nn.init.normal_(self.proj.weight, std=d**-0.5)
        nn.init.zeros_(self.proj.bias)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        B, N = samples.shape
        m = audio_token_count(N, self.samples_per_token, self.max_tokens)
        h = self.encoded(samples)  # (B, 1500, D)
        h = F.avg_pool1d(h.transpose(1, 2), self.pool, ceil_mode=True)  # (B, D, 1500 / pool)
        return self.proj(h[:, :, :m].transpose(1, 2))  # (B, m, H)

    def encode(self, samples: torch.Tensor, keep: bool = False) -> torch.Tensor:
        """Whisper's front end and encoder: (B, N) samples, N <= 30 s -> (B, 1500, D). `keep`: keep each window's
        output for `forward` (inside `reuse.reusing()`; what recognition does)."""
        h = self.encoder(log_mel(pad_or_trim(samples.float(), N_SAMPLES)).to(self.proj.weight.dtype))
        if keep and self.reuse.active and not torch.is_grad_enabled():
            self.reuse.keep(self._keys(samples), h)
        return h

    def encoded(self, samples: torch.Tensor) -> torch.Tensor:
        """`encode`, taking the rows kept inside `reuse.reusing()` and running the encoder on the others only."""
        if not self.reuse.active or torch.is_grad_enabled():
            return self.encode(samples)
        rows = self.reuse.take(self._keys(samples))
        todo = [i for i, r in enumerate(rows) if r is None]
        if len(todo) == len(rows):
            return self.encode(samples)
        fresh = dict(zip(todo, self.encode(samples[todo]))) if todo else {}
        return torch.stack([fresh[i] if r is None else r for i, r in enumerate(rows)])

    def _keys(self, samples: torch.Tensor) -> list[bytes]:
        return window_keys(samples.detach().float().cpu().numpy(), self.size)


def window_keys(windows: Sequence[np.ndarray] | np.ndarray, size: str = "") -> list[bytes]:
    """A window's key: its first 30 s without trailing zeros (what Whisper's encoder sees, once padded back to 30 s
    with zeros): a clip and its zero-padded copy in a batch have one key."""
    return [
        row_keys(np.trim_zeros(np.asarray(w[:N_SAMPLES], np.float32), "b")[None], f"whisper:{size}")[0] for w in windows
    ]
