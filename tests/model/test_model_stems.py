"""Stems chosen by the config (patch | efficientnet | none, mel | whisper | none) with random weights,
gradient checkpointing, and the identity projection. Real pretrained weights: tests/pretrained/test_assembled.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gemb2.model import Gemb2Model, load_pretrained, save_pretrained, tiny
from gemb2.model.model import identity_projection_
from gemb2.model.stems.efficientnet import EfficientNetStem
from gemb2.model.stems.whisper import WhisperStem
from gemb2.parts import SAMPLE_RATE, Audio, Text

PRETRAINED_STEMS = dict(image_stem="efficientnet", image_size=64, audio_stem="whisper", audio_encoder="tiny")


@pytest.fixture(scope="module")
def stem_model() -> Gemb2Model:
    return Gemb2Model(tiny().replace(name="tiny-stems", **PRETRAINED_STEMS)).eval()


def test_config_sizes_follow_the_stems():
    cfg = tiny().replace(**PRETRAINED_STEMS)
    assert cfg.image_grid == 2 and cfg.image_tokens == 4  # 64 px / 32
    assert tiny().replace(image_stem="efficientnet", image_size=240).image_grid == 8  # "SAME" padding: ceil
    assert cfg.max_audio_tokens == 150 and cfg.modalities == ("text", "image", "audio", "video")
    assert tiny().replace(image_stem="none", audio_stem="none", video_tokens_per_frame=1).modalities == ("text",)
    assert tiny().replace(audio_stem="none").modalities == ("text", "image", "video")


def test_efficientnet_stem_tokens_and_frozen_batchnorm():
    stem = EfficientNetStem(tiny().replace(image_stem="efficientnet", image_size=96))
    x = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    assert stem(x).shape == (2, 9, 64)  # 3x3 grid, hidden 64
    stem.train()
    assert stem.training and stem.proj.training
    assert not any(m.training for m in stem.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = stem.encoder._bn0.running_mean.clone()
    stem(x)
    assert torch.equal(before, stem.encoder._bn0.running_mean)  # running statistics untouched in training
    with pytest.raises(ValueError, match=r"\(B, 3, 96, 96\)"):
        stem(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_whisper_stem_tokens_follow_the_audio_length():
    stem = WhisperStem(tiny().replace(audio_stem="whisper", audio_encoder="tiny", audio_frames_per_token=50)).eval()
    per = stem.samples_per_token
    assert per == 8000 and stem.pool == 25  # one token per 0.5 s: 60 per 30 s window
    with torch.inference_mode():
        out = stem(torch.randn(2, 3 * per) * 0.1)
    assert out.shape == (2, 3, 64)
    with pytest.raises(ValueError, match="multiple of 8000"):
        stem(torch.zeros(1, per + 1))
    with pytest.raises(ValueError, match="at most"):
        stem(torch.zeros(1, 61 * per))


def test_whisper_stem_refuses_weights_of_another_size(tmp_path):
    from safetensors.torch import save_file

    from gemb2.model.stems.whisper_encoder import WhisperEncoder, WhisperEncoderConfig
    from gemb2.pretrained.whisper import load_whisper_stem

    base = WhisperEncoder(WhisperEncoderConfig(d_model=128, n_heads=2, n_layers=1))
    save_file({f"model.encoder.{k}": v.contiguous() for k, v in base.state_dict().items()}, str(tmp_path / "model.safetensors"))
    stem = WhisperStem(tiny().replace(audio_stem="whisper", audio_encoder="tiny"))
    with pytest.raises(ValueError, match="d_model=128.*Whisper tiny"):
        load_whisper_stem(stem, tmp_path)


def test_every_modality_through_the_pretrained_stem_architectures(stem_model, media):
    items = media.every_modality()
    v = stem_model.encode(items)
    assert v.shape == (len(items), 64) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    # batch composition does not change an item's vector (checked on an image and an interleaved item)
    for i in (1, 5):
        assert np.abs(stem_model.encode([items[i]])[0] - v[i]).max() < 1e-4


def test_a_model_with_pretrained_stem_architectures_round_trips(stem_model, tmp_path, media):
    saved = save_pretrained(stem_model, tmp_path / "m")
    loaded = load_pretrained(saved)
    assert loaded.model_id == stem_model.model_id
    assert any(k.startswith("image_stem.encoder._blocks.") for k in loaded.state_dict())
    assert any(k.startswith("audio_stem.encoder.layers.") for k in loaded.state_dict())
    items = [media.image(), media.audio(2.0)]
    assert np.abs(loaded.encode(items) - stem_model.encode(items)).max() < 1e-5


def test_no_audio_stem_embeds_a_video_from_its_frames(media):
    m = Gemb2Model(tiny().replace(audio_stem="none")).eval()
    with_track, without = media.video(frames=3), media.video(frames=3, with_audio=False)
    without = type(without)(with_track.frames, with_track.times, None)
    assert np.allclose(m.encode([with_track]), m.encode([without]), atol=1e-6)
    with pytest.raises(ValueError, match="no audio stem"):
        m.encode([Audio(np.zeros(SAMPLE_RATE, np.float32))])


def test_no_image_stem_refuses_images_and_video(media):
    m = Gemb2Model(tiny().replace(image_stem="none", video_tokens_per_frame=1)).eval()
    assert m.image_stem is None and not any(k.startswith("image_stem.") for k in m.state_dict())
    for item in (media.image(), media.video(), [Text("a"), media.image()]):
        with pytest.raises(ValueError, match="no image stem"):
            m.encode([item])


def test_gradient_checkpointing_gives_the_same_gradients(media):
    items = ["a red car", [Text("a slide"), media.image()], media.audio(0.5)]
    grads = []
    for flag in (False, True):
        m = Gemb2Model(tiny().replace(dropout=0.0)).train()
        m.backbone.gradient_checkpointing = flag
        batch = m.collate(items)
        loss = m(batch).square().sum() + m(batch)[:, 0].sum()
        loss.backward()
        grads.append({k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        assert torch.allclose(grads[0][k], grads[1][k], atol=1e-6), k


def test_gradient_checkpointing_is_off_in_eval_and_inference(media):
    m = Gemb2Model(tiny()).eval()
    m.backbone.gradient_checkpointing = True
    ref = Gemb2Model(tiny()).eval()
    assert np.array_equal(m.encode(["same"]), ref.encode(["same"]))


def test_identity_projection_needs_out_dim_equal_to_hidden():
    m = identity_projection_(Gemb2Model(tiny()))
    assert torch.equal(m.projection.weight, torch.eye(64))
    with pytest.raises(ValueError, match="out_dim 32 and hidden 64"):
        identity_projection_(Gemb2Model(tiny().replace(out_dim=32, matryoshka_dims=(32,))))


def test_unpadded_batches_take_the_maskless_path_with_the_same_result():
    m = Gemb2Model(tiny()).eval()
    same_len = ["one two three", "four five six"]  # equal token counts: no padding, no mask
    padded = same_len + ["a much longer sentence than the others here"]
    assert np.abs(m.encode(same_len, batch_size=2) - m.encode(padded, batch_size=3)[:2]).max() < 1e-5
