"""ModelConfig: validation, JSON round trip, and refusal of unknown keys and wrong types."""

from __future__ import annotations

import json

import pytest

from gemb2.model.config import ModelConfig, base, mini, tiny


@pytest.mark.parametrize("build", [tiny, mini, base])
def test_builders_round_trip_through_json(build):
    cfg = build()
    d = json.loads(json.dumps(cfg.to_dict()))
    assert ModelConfig.from_dict(d) == cfg
    assert cfg.matryoshka_dims[0] == cfg.out_dim


def test_tiny_is_small_and_says_it_is_random():
    cfg = tiny()
    assert cfg.name == "tiny-random"
    assert (cfg.hidden, cfg.layers, cfg.out_dim, cfg.vocab_size) == (64, 2, 64, 30522)
    assert cfg.image_tokens == 16


def test_from_dict_refuses_an_unknown_key():
    d = tiny().to_dict() | {"hiden": 64}
    with pytest.raises(ValueError, match="hiden"):
        ModelConfig.from_dict(d)


def test_from_dict_refuses_a_missing_key():
    d = tiny().to_dict()
    del d["heads"]
    with pytest.raises(ValueError, match="heads"):
        ModelConfig.from_dict(d)


@pytest.mark.parametrize("key, value", [
    ("hidden", "64"), ("hidden", 64.0), ("layers", True), ("dropout", "0.1"),
    ("name", 3), ("matryoshka_dims", [64, "32"]), ("matryoshka_dims", 64),
])
def test_from_dict_refuses_a_wrong_type_naming_the_key(key, value):
    d = tiny().to_dict() | {key: value}
    with pytest.raises(TypeError, match=key):
        ModelConfig.from_dict(d)


def test_from_dict_accepts_an_int_for_a_float():
    cfg = ModelConfig.from_dict(tiny().to_dict() | {"audio_window_s": 10})
    assert cfg.audio_window_s == 10.0 and isinstance(cfg.audio_window_s, float)


@pytest.mark.parametrize("changes, needle", [
    ({"heads": 3}, "divisible"),
    ({"matryoshka_dims": (32, 16)}, "start with out_dim"),
    ({"matryoshka_dims": (64, 64)}, "descending"),
    ({"patch_size": 15}, "multiple of patch_size"),
    ({"video_tokens_per_frame": 3}, "square"),
    ({"image_stem": "vit"}, "image_stem"),
    ({"audio_stem": "wav2vec"}, "audio_stem"),
    ({"image_stem": "efficientnet", "image_encoder": "b0"}, "image_encoder"),
    ({"image_stem": "efficientnet", "image_size": 16}, "image_size"),
    ({"audio_stem": "whisper", "audio_encoder": "huge"}, "audio_encoder"),
    ({"audio_stem": "whisper", "audio_frames_per_token": 5}, "even"),
    ({"audio_stem": "whisper", "audio_window_s": 40.0}, "audio_window_s"),
    ({"audio_stem": "whisper", "n_mels": 128}, "n_mels"),
    ({"max_text_tokens": 600}, "max_text_tokens"),
    ({"name": "a@b"}, "name"),
    ({"hidden_act": "relu"}, "hidden_act"),
])
def test_invalid_values_are_refused(changes, needle):
    with pytest.raises(ValueError, match=needle):
        tiny().replace(**changes)
