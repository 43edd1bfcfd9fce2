"""The feature cache of frozen stem encoders: exact outputs and gradients, hits on a second pass, state untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gemb2.model import Gemb2Model, tiny
from gemb2.parts import Audio, Image, Text
from gemb2.train.feature_cache import FeatureCache


@pytest.fixture(scope="module")
def model():
    # real EfficientNet-Lite0 and Whisper-tiny encoder architectures (random weights: no weight package needed)
    cfg = tiny().replace(image_stem="efficientnet", image_encoder="lite0", image_size=64,
                         audio_stem="whisper", audio_encoder="tiny")
    m = Gemb2Model(cfg)
    for stem in (m.image_stem, m.audio_stem):
        stem.encoder.requires_grad_(False)
    return m.train()


def items():
    rng = np.random.default_rng(0)
    img = [Image(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]
    aud = Audio((0.1 * rng.standard_normal(16000)).astype(np.float32))
    return [(Text("a"), img[0]), (img[1],), (aud, Text("b")), (img[0], aud)]  # img[0] and aud repeat


def loss_and_grads(model, cache=None):
    torch.manual_seed(0)  # the backbone's dropout draws the same masks in both runs
    model.zero_grad(set_to_none=True)
    ctx = cache.attached(model) if cache is not None else torch.enable_grad()
    with ctx:
        v = model(model.collate(items(), None))  # (4, D)
    loss = (v @ v.T).sum()
    loss.backward()
    return v.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_cached_outputs_and_gradients_equal_the_uncached_ones(model, tmp_path):
    ref_v, ref_g = loss_and_grads(model)
    cache = FeatureCache(1 << 30)
    for expect_hits in (False, True):  # first pass fills the cache, the second is served from it
        v, g = loss_and_grads(model, cache)
        torch.testing.assert_close(v, ref_v, rtol=0, atol=1e-6)
        assert g.keys() == ref_g.keys() and "image_stem.proj.weight" in g and "audio_stem.proj.weight" in g
        for n in g:
            torch.testing.assert_close(g[n], ref_g[n], rtol=1e-5, atol=1e-6)
    # 3 images (one repeated) and 2 audio rows per pass; the repeats hit within the first pass already
    assert cache.misses == 3 and cache.hits == 7 and len(cache) == 3
    cache.save(str(tmp_path / "features.safetensors"))  # another process picks the rows up
    other = FeatureCache(1 << 30)
    assert other.load(str(tmp_path / "features.safetensors")) == 3
    v, _ = loss_and_grads(model, other)
    torch.testing.assert_close(v, ref_v, rtol=0, atol=1e-6)
    assert other.misses == 0 and other.hits == 5


def test_attached_leaves_the_model_as_it_was(model):
    keys = list(model.state_dict())
    encoders = (model.image_stem.encoder, model.audio_stem.encoder)
    bn_modes = [m.training for m in model.image_stem.encoder.modules()]
    cache = FeatureCache(1 << 30)
    with cache.attached(model):
        assert model.image_stem.encoder is not encoders[0]
        model(model.collate(items(), None))
    assert list(model.state_dict()) == keys
    assert (model.image_stem.encoder, model.audio_stem.encoder) == encoders
    assert [m.training for m in model.image_stem.encoder.modules()] == bn_modes


def test_a_trainable_encoder_is_not_cached_and_a_full_cache_stores_nothing(model):
    model.image_stem.encoder.requires_grad_(True)
    try:
        cache = FeatureCache(0)  # no room: every row computed, none stored
        with cache.attached(model):
            assert model.image_stem.encoder.__class__.__name__ != "_Cached"  # it trains: passed through
            model(model.collate(items(), None))
        assert len(cache) == 0 and cache.misses == 1 and cache.hits == 1  # the audio rows only (one repeated), not stored
    finally:
        model.image_stem.encoder.requires_grad_(False)
    with pytest.raises(ValueError, match="max_bytes must be >= 0, got -1"):
        FeatureCache(-1)


def test_a_recipe_stage_validates_its_feature_cache_size():
    from pathlib import Path

    from gemb2.train.recipe import RecipeError, parse_recipe

    doc = {"name": "x", "model": "tiny", "tasks": {"t": {}},
           "stages": [{"name": "a", "data": ["m.jsonl"], "steps": 2, "batch_size": 4, "feature_cache_mb": -1}]}
    with pytest.raises(RecipeError, match=r"stages\[0\] \(a\).feature_cache_mb: must be >= 0, got -1"):
        parse_recipe(doc, Path("r.yaml"), check_files=False)
    doc["stages"][0]["feature_cache_mb"] = 512
    assert parse_recipe(doc, Path("r.yaml"), check_files=False).stages[0].settings.feature_cache_mb == 512
