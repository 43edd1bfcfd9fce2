"""Gemb2Model: shapes, norms, batching, determinism, Matryoshka, prompts, truncation, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gemb2 import load_model
from gemb2.model import Gemb2Model, truncate
from gemb2.model.config import tiny
from gemb2.parts import SAMPLE_RATE, Audio, Image, Text, Video


def test_every_modality_gives_unit_vectors(model, media):
    items = media.every_modality()
    v = model.encode(items)
    assert v.shape == (len(items), 64) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(v).all()
    # the inputs differ, so must their vectors
    sims = v @ v.T
    assert (sims[~np.eye(len(items), dtype=bool)] < 0.9999).all()


def test_forward_returns_unit_vectors_of_out_dim(model, media):
    batch = model.collate(media.every_modality(), task="query")
    with torch.no_grad():
        out = model(batch)
    assert out.shape == (7, 64)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(7))


def test_collate_lays_out_cls_prompt_parts_sep(model, media):
    tok = model.tokenizer
    batch = model.collate([[Text("red car"), media.image()]], task=None)
    ids = batch.input_ids[0].tolist()
    red_car = tok.encode("red car")
    assert ids[: 1 + len(red_car)] == [tok.cls_id] + red_car
    k = model.config.image_tokens
    assert ids[1 + len(red_car) : -1] == [tok.pad_id] * k  # the image's positions: its tokens go there
    assert ids[-1] == tok.sep_id and batch.mask.all() and len(ids) == 1 + len(red_car) + k + 1
    assert batch.image_slots.tolist() == [list(range(1 + len(red_car), 1 + len(red_car) + k))]


def test_a_batch_equals_its_items_one_by_one(model, media):
    items = media.every_modality() + ["short", "a much longer text that makes this batch padded " * 5]
    together = model.encode(items, batch_size=len(items))
    alone = np.concatenate([model.encode([x]) for x in items])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    in_pairs = model.encode(items, batch_size=2)
    np.testing.assert_allclose(in_pairs, alone, atol=1e-5)


def test_encode_restores_input_order(model):
    texts = ["x " * n for n in (5, 1, 40, 3, 12)]
    forward = model.encode(texts, batch_size=2)
    backward = model.encode(texts[::-1], batch_size=2)
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)


def test_eval_mode_is_deterministic(model, media):
    items = media.every_modality()
    a, b = model.encode(items), model.encode(items)
    assert np.array_equal(a, b)
    other = load_model("tiny")  # a fresh process-independent build: same seed, same weights
    assert np.array_equal(other.encode(items), a)


def test_encode_keeps_training_mode_and_needs_no_grad(media):
    m = load_model("tiny").train()
    m.encode(["hello"])
    assert m.training


def test_matryoshka_prefix_is_the_renormalised_truncation(model, media):
    items = media.every_modality()
    full = model.encode(items)
    for dim in model.config.matryoshka_dims:
        short = model.encode(items, dim=dim)
        assert short.shape == (len(items), dim)
        want = full[:, :dim] / np.linalg.norm(full[:, :dim], axis=1, keepdims=True)
        np.testing.assert_allclose(short, want, atol=1e-6)
        np.testing.assert_allclose(truncate(full, dim), want, atol=1e-6)
        t = truncate(torch.from_numpy(full), dim)
        np.testing.assert_allclose(t.numpy(), want, atol=1e-6)


@pytest.mark.parametrize("dim", [0, 48, 65, 128])
def test_an_invalid_matryoshka_dim_names_the_allowed_ones(model, dim):
    with pytest.raises(ValueError, match=r"\[64, 32, 16\]"):
        model.encode(["x"], dim=dim)
    with pytest.raises(ValueError, match=str(dim)):
        model.truncate(np.ones((1, 64), np.float32), dim)


def test_prompts_change_the_vector_and_none_adds_no_prompt(model):
    q, d, n = (model.encode(["a red car"], task=t)[0] for t in ("query", "document", None))
    assert not np.allclose(q, d) and not np.allclose(q, n) and not np.allclose(d, n)
    tok = model.tokenizer
    plain = model.collate(["a red car"], task=None).input_ids[0].tolist()
    assert plain == [tok.cls_id] + tok.encode("a red car") + [tok.sep_id]
    query = model.collate(["a red car"], task="query").input_ids[0].tolist()
    assert query == [tok.cls_id] + tok.encode(model.config.query_prompt + "a red car") + [tok.sep_id]


def test_an_unknown_task_is_refused(model):
    with pytest.raises(ValueError, match="'search'"):
        model.encode(["x"], task="search")


def test_text_is_cut_to_max_text_tokens(model):
    cfg = model.config
    long_text = "word " * 1000
    batch = model.collate([long_text], task="document")
    assert batch.mask.sum().item() == cfg.max_text_tokens
    assert batch.input_ids[0, cfg.max_text_tokens - 1].item() == model.tokenizer.sep_id
    # the tokens past the budget do not matter
    v1, v2 = model.encode([long_text, "word " * 300])
    np.testing.assert_allclose(v1, v2, atol=1e-6)


def test_the_sequence_is_cut_to_max_positions(model, media):
    cfg = model.config
    many = [media.image() for _ in range(40)]  # 40 x 16 = 640 tokens > 512 positions
    batch = model.collate([many])
    assert batch.input_ids.shape == (1, cfg.max_positions) and batch.mask.all()
    assert batch.input_ids[0, -1].item() == model.tokenizer.sep_id
    assert (batch.image_slots == -1).any() and batch.image_slots.max() < cfg.max_positions - 1
    v = model.encode([many])
    np.testing.assert_allclose(np.linalg.norm(v), 1.0, atol=1e-5)


def test_audio_longer_than_the_window_is_cut_to_its_first_window(media):
    m = Gemb2Model(tiny().replace(audio_window_s=2.0)).eval()
    long = media.audio(seconds=3.0)
    first = Audio(long.samples[: 2 * SAMPLE_RATE])
    np.testing.assert_array_equal(m.encode([long]), m.encode([first]))
    assert m.collate([long]).audio[0].shape == (1, 2 * SAMPLE_RATE)


def test_short_audio_is_padded_to_whole_tokens(model):
    per = model.audio_stem.samples_per_token
    batch = model.collate([Audio(np.zeros(10, np.float32)), Audio(np.ones(per + 1, np.float32) * 0.1)])
    assert sorted(a.shape[1] for a in batch.audio) == [per, 2 * per]


def test_video_keeps_at_most_max_frames_with_time_buckets(model, media):
    cfg = model.config
    frames = np.stack([media.image(36, 64).pixels for _ in range(20)])
    times = np.arange(20, dtype=np.float32) * 2.0
    batch = model.collate([Video(frames, times)])
    assert batch.frames.shape[0] == cfg.max_frames
    assert batch.frame_slots.shape == (cfg.max_frames, cfg.video_tokens_per_frame)
    buckets = model.time_buckets(batch.frame_times)
    assert buckets.tolist()[0] == 0 and buckets.max().item() == cfg.max_time_buckets - 1


def test_frame_times_matter(model, media):
    v = media.video(frames=3, with_audio=False)
    later = Video(v.frames, v.times + 5.0)
    a, b = model.encode([v, later])
    assert not np.allclose(a, b)


def test_gradient_reaches_every_stem_and_embedding(media):
    m = Gemb2Model(tiny()).train()
    batch = m.collate(media.every_modality(), task="query")
    out = m(batch)  # (B, 64)
    (out @ out.T).triu(1).sum().backward()  # a contrastive-like objective touching every vector
    for name in ("image_stem.proj.weight", "image_stem.position", "audio_stem.proj.weight",
                 "audio_stem.position", "time_embeddings.weight", "modality_embeddings.weight",
                 "backbone.embeddings.word_embeddings.weight", "backbone.encoder.layer.1.output.dense.weight",
                 "projection.weight"):
        grad = m.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_empty_input_gives_an_empty_array(model):
    assert model.encode([]).shape == (0, 64)
    assert model.encode([], dim=16).shape == (0, 16)


def test_model_id_names_the_model_and_tracks_the_weights():
    m = load_model("tiny")
    assert m.model_id.startswith("tiny-random@") and m.model_id == load_model("tiny").model_id
    before = m.model_id
    with torch.no_grad():
        m.projection.bias.add_(1e-3)
    assert m.model_id != before
    assert Gemb2Model(tiny().replace(seed=1)).model_id != before


def test_time_buckets_are_the_floor_division_of_float32_times():
    """The bucket is Python's floor division of the float32 time, clamped (as the layout computed it before the
    model took it over); also for bucket widths that are not a power of two, and times on and near bucket edges."""
    rng = np.random.default_rng(0)
    edges = np.arange(40, dtype=np.float32)
    for width in (1.0, 0.5, 0.1, 0.3, 2.0, 1.7):
        m = Gemb2Model(tiny().replace(time_bucket_s=width))
        times = np.concatenate([
            rng.uniform(-3, 40, 2000), edges * np.float32(width), np.nextafter(edges * np.float32(width), -1),
            np.nextafter(edges * np.float32(width), 99), [0.0, -0.0, 1e30],
        ]).astype(np.float32)
        top = m.config.max_time_buckets - 1
        want = [min(max(int(t // width), 0), top) for t in times]
        assert m.time_buckets(torch.from_numpy(times)).tolist() == want, width


def test_a_nonfinite_frame_time_is_refused(model, media):
    v = media.video(frames=2, with_audio=False)
    with pytest.raises(ValueError, match="finite"):
        model.collate([Video(v.frames, np.array([0.0, np.nan], np.float32))])


def test_sequence_gives_the_input_embeddings_embed_gives(model, media):
    """What the export traces (items of one shape laid out by concatenation) equals the collated forward's input."""
    cfg = model.config
    px = media.image(cfg.image_size, cfg.image_size).pixels
    sound = media.audio(seconds=1.0)
    video = media.video(frames=3, with_audio=True)
    many = [media.image(cfg.image_size, cfg.image_size) for _ in range(40)]  # cut to max_positions
    with torch.no_grad():
        for task in ("document", "query", None):
            batch = model.collate([Image(px)], task)
            image = model.image_tokens(torch.from_numpy(px).permute(2, 0, 1)[None].contiguous())
            assert torch.equal(model.sequence([image], task), model.embed(batch))
        batch = model.collate([sound])
        assert torch.equal(model.sequence([model.audio_tokens(batch.audio[0])]), model.embed(batch))
        batch = model.collate([video])
        frames = model.video_tokens(batch.frames, batch.frame_times)[None].flatten(1, 2)
        got = model.sequence([frames, model.audio_tokens(batch.audio[0])])
        assert torch.equal(got, model.embed(batch))
        batch = model.collate([many])
        tokens = model.image_tokens(batch.images).reshape(1, -1, cfg.hidden)
        assert torch.equal(model.sequence([tokens]), model.embed(batch))
