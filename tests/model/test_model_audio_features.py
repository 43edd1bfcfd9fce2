"""Whisper's log-mel front end, checked against a reference written here from the formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gemb2.model.audio_features import log_mel, mel_filterbank

SR, N_FFT, HOP = 16_000, 400, 160


def slaney_mel(f: float) -> float:
    """Slaney's mel scale: linear (3 mels per 200 Hz) below 1 kHz, logarithmic above (27 mels per factor 6.4)."""
    return 3.0 * f / 200.0 if f < 1000.0 else 15.0 + 27.0 * math.log(f / 1000.0) / math.log(6.4)


def slaney_hz(m: float) -> float:
    return 200.0 * m / 3.0 if m < 15.0 else 1000.0 * math.exp((m - 15.0) * math.log(6.4) / 27.0)


def reference_filterbank(n_mels: int = 80) -> np.ndarray:
    """Triangles between n_mels + 2 mel-spaced edges, each scaled to unit area (2 / bandwidth)."""
    top = slaney_mel(SR / 2)
    edges = [slaney_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    bins = [k * SR / N_FFT for k in range(N_FFT // 2 + 1)]
    fb = np.zeros((n_mels, len(bins)))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        for k, f in enumerate(bins):
            fb[i, k] = max(0.0, min((f - lo) / (mid - lo), (hi - f) / (hi - mid))) * 2.0 / (hi - lo)
    return fb


def reference_log_mel(x: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Direct float64 evaluation: reflect-padded frames x periodic Hann -> |rfft|^2 -> mel -> Whisper's log."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    n_frames = len(x) // HOP  # 1 + len // hop STFT frames, the last one dropped
    power = np.stack([np.abs(np.fft.rfft(padded[i * HOP : i * HOP + N_FFT] * window)) ** 2
                      for i in range(n_frames)], axis=1)  # (201, frames)
    logs = np.log10(np.maximum(reference_filterbank(n_mels) @ power, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return (logs + 4.0) / 4.0


def test_filterbank_matches_the_formula_and_whispers_shipped_values():
    fb = mel_filterbank(n_mels=80)
    assert fb.shape == (80, 201) and fb.dtype == np.float32
    np.testing.assert_allclose(fb, reference_filterbank(80), rtol=1e-5, atol=1e-9)
    # exact entries of openai-whisper's assets/mel_filters.npz ("mel_80", saved from librosa.filters.mel)
    assert fb[0, 1] == np.float32(0.02486259490251541)
    assert fb[10, 10] == np.float32(0.01990821771323681)
    assert fb[40, 43] == np.float32(0.014735566452145576)
    assert fb[79, 190] == np.float32(0.0022320549469441175)
    assert fb[79, 199] == np.float32(0.0004487590049393475)
    assert list(np.nonzero(fb[79])[0]) == list(range(186, 200))


def test_log_mel_matches_the_reference():
    rng = np.random.default_rng(0)
    t = np.arange(int(1.5 * SR)) / SR
    x = (0.4 * np.sin(2 * np.pi * (200 + 1500 * t) * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    got = log_mel(torch.from_numpy(x)).numpy()
    want = reference_log_mel(x)
    assert got.shape == want.shape == (80, 150)
    np.testing.assert_allclose(got, want, atol=2e-4)


@pytest.mark.parametrize("seconds, frames", [(1.0, 100), (30.0, 3000), (0.5, 50)])
def test_shape_is_80_by_100_frames_per_second(seconds, frames):
    x = torch.zeros(int(seconds * SR))
    assert log_mel(x).shape == (80, frames)


def test_silence_is_floored_not_minus_infinity():
    out = log_mel(torch.zeros(SR))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.full_like(out, (-10.0 + 4.0) / 4.0))  # log10(1e-10) everywhere


def test_batch_takes_the_floor_per_clip():
    rng = np.random.default_rng(1)
    loud = torch.from_numpy(rng.standard_normal(SR).astype(np.float32))
    quiet = loud * 1e-4
    both = log_mel(torch.stack([loud, quiet]))  # (2, 80, 100)
    assert torch.equal(both[0], log_mel(loud))
    assert torch.equal(both[1], log_mel(quiet))


def test_refuses_too_short_or_badly_shaped_input():
    with pytest.raises(ValueError, match="more than 200 samples"):
        log_mel(torch.zeros(200))
    with pytest.raises(ValueError, match="shape"):
        log_mel(torch.zeros(2, 2, 1000))
