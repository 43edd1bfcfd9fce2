"""Whisper's log-mel front end, exactly as openai-whisper computes it.

Reference: openai/whisper `whisper/audio.py` (`log_mel_spectrogram`, `mel_filters`) and
librosa `filters.mel` (Slaney mel scale and normalisation), whose output Whisper ships as
`mel_filters.npz`. Steps: STFT (n_fft 400, hop 160, periodic Hann window, centred with
reflect padding), power spectrum dropping the last frame, mel filterbank, log10 of
clamp(1e-10), floor at (max - 8), then (x + 4) / 4.

One difference, for batches only: Whisper takes the max over its whole input (one clip);
here the max is taken per clip, so a batch of clips equals the clips one by one.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from ..parts import SAMPLE_RATE

N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms: 100 frames per second


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa `hz_to_mel`, htk=False): linear below 1 kHz, logarithmic above."""
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    log_t = f >= min_log_hz
    mels[log_t] = min_log_mel + np.log(f[log_t] / min_log_hz) / logstep
    return mels


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    """Inverse of `_hz_to_mel` (librosa `mel_to_hz`, htk=False)."""
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    log_t = m >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (m[log_t] - min_log_mel))
    return freqs


@cache
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = 80) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) float32, identical to `librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)  # (F,) float64
    edges = np.array([0.0, sr / 2.0])
    lo, hi = _hz_to_mel(edges)
    mel_f = _mel_to_hz(np.linspace(lo, hi, n_mels + 2))  # (n_mels + 2,) band edges in Hz
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)  # (n_mels + 2, F)
    weights = np.zeros((n_mels, len(fftfreqs)), dtype=np.float32)  # librosa fills a float32 array
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])  # Slaney: each triangle has unit area
    weights *= enorm[:, np.newaxis]  # float32 *= float64, as librosa does
    weights.flags.writeable = False
    return weights


def log_mel(samples: torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """Whisper's log-mel spectrogram. (N,) or (B, N) float at 16 kHz -> (n_mels, N // 160) or (B, n_mels, N // 160).

    Needs N > 200 samples (the STFT's reflect padding). Computed in float32 on the samples' device.
    """
    if samples.ndim not in (1, 2):
        raise ValueError(f"log_mel expects (N,) or (B, N) samples, got shape {tuple(samples.shape)}")
    if samples.shape[-1] <= N_FFT // 2:
        raise ValueError(f"log_mel needs more than {N_FFT // 2} samples, got {samples.shape[-1]}")
    power = _power_spectrum(samples.float())  # (..., F, frames)
    filters = torch.from_numpy(mel_filterbank(n_mels=n_mels).copy()).to(power.device)  # (n_mels, F)
    mel = filters @ power  # (..., n_mels, frames)
    logs = torch.clamp(mel, min=1e-10).log10()
    peak = logs.amax(dim=(-2, -1), keepdim=True)  # per clip
    logs = torch.maximum(logs, peak - 8.0)
    return (logs + 4.0) / 4.0


def _power_spectrum(x: torch.Tensor) -> torch.Tensor:
    """|STFT|^2 without its last frame (Whisper drops it): (..., N) float32 -> (..., 1 + N_FFT // 2, N // HOP_LENGTH).

    While exporting to ONNX, the same spectrum as a strided convolution against cos/sin kernels (a DFT of each
    centred, Hann-windowed frame): the TorchScript exporter has no complex STFT. The two agree to float rounding
    (tests/export/test_traceable.py); only the export takes the convolution.
    """
    if torch.onnx.is_in_onnx_export():
        return _dft_power(x)
    window = torch.hann_window(N_FFT, periodic=True, device=x.device)
    stft = torch.stft(
        x, N_FFT, HOP_LENGTH, window=window, center=True, pad_mode="reflect", return_complex=True
    )  # (..., F, frames + 1)
    return stft[..., :-1].abs() ** 2  # (..., F, frames)


def _dft_power(x: torch.Tensor) -> torch.Tensor:
    """`_power_spectrum` as a convolution: (..., N) -> (..., F, N // HOP_LENGTH)."""
    lead = x.shape[:-1]
    x = x.reshape(-1, 1, x.shape[-1])  # (B, 1, N)
    x = F.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")  # centred frames, as torch.stft(center=True)
    n = torch.arange(N_FFT, dtype=torch.float64)
    f = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
    angle = 2 * torch.pi * f[:, None] * n[None, :] / N_FFT  # (F, n_fft)
    kernels = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window]).float().unsqueeze(1)  # (2F, 1, n_fft)
    spec = F.conv1d(x, kernels.to(x.device), stride=HOP_LENGTH)  # (B, 2F, frames + 1)
    re, im = spec.chunk(2, dim=1)  # (B, F, frames + 1) each
    power = (re * re + im * im)[..., :-1]  # (B, F, frames)
    return power.reshape(*lead, *power.shape[1:])


def audio_token_count(n_samples: int, samples_per_token: int, max_tokens: int) -> int:
    """Tokens an audio stem makes of `n_samples`; a ValueError unless it is a whole number in 1..max_tokens."""
    m = n_samples // samples_per_token
    if n_samples % samples_per_token or not 1 <= m <= max_tokens:
        raise ValueError(
            f"audio stem expects a multiple of {samples_per_token} samples, "
            f"at most {max_tokens * samples_per_token}; got {n_samples}"
        )
    return m
