"""The model functions that take another form while exporting to ONNX give what they give in PyTorch."""

import numpy as np
import torch

from gemb2.model.audio_features import _dft_power, _power_spectrum


def test_the_exported_power_spectrum_is_the_stft_one():
    """log-mel's |STFT|^2 as the export computes it (a strided convolution) equals torch.stft's, batched or not."""
    g = torch.Generator().manual_seed(0)
    for n in (201, 3200, 16000 + 37):
        x = (0.3 * torch.randn(3, n, generator=g)).clamp(-1, 1)
        want = _power_spectrum(x)
        got = _dft_power(x)
        assert got.shape == want.shape == (3, 201, n // 160)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.max()))
        torch.testing.assert_close(_dft_power(x[0]), want[0], rtol=1e-4, atol=1e-4 * float(want.max()))


def test_log_mel_is_the_same_function_under_export(monkeypatch):
    from gemb2.model import audio_features

    x = torch.from_numpy(np.sin(np.arange(8000, dtype=np.float32) * 0.05) * 0.4)[None]
    want = audio_features.log_mel(x)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    got = audio_features.log_mel(x)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-3)
