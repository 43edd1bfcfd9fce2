"""Per-modality calibration (gemb2/model/calibration.py): media moved onto the text centre, text untouched, fitted
deterministically, absent at the defaults (same config, state and id as before it existed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gemb2.model import Gemb2Model
from gemb2.model.calibration import BUFFER, fit_shift, item_kinds
from gemb2.model.config import ModelConfig, tiny
from gemb2.model.io import load_pretrained, save_pretrained
from gemb2.model.layout import KINDS
from gemb2.parts import Text
from gemb2.train import calibrate
from tests.media import write_image, write_wav


def _calibrated(seed: int = 3) -> Gemb2Model:
    model = Gemb2Model(tiny().replace(calibration="centre"))
    g = torch.Generator().manual_seed(seed)
    shift = torch.randn(len(KINDS), model.config.out_dim, generator=g) * 0.3
    shift[KINDS["text"]] = 0
    model.get_buffer(BUFFER).copy_(shift)
    return model


def test_absent_at_the_default_config_state_and_id_are_unchanged():
    cfg = tiny()
    assert "calibration" not in cfg.to_dict()
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg  # a config.json written before the field reads back
    plain = Gemb2Model(cfg)
    assert BUFFER not in plain.state_dict()
    assert Gemb2Model(cfg.replace(calibration="none")).model_id == plain.model_id
    on = _calibrated()
    assert on.config.to_dict()["calibration"] == "centre" and on.model_id != plain.model_id
    with pytest.raises(ValueError, match="calibration must be one of"):
        tiny().replace(calibration="whiten")


def test_text_vectors_stay_bit_identical_and_media_move_by_their_shift(media):
    plain, on = Gemb2Model(tiny()), _calibrated()
    items = ["a red car parked by the sea", [Text("two words")], media.image(), media.audio(), media.video()]
    before, after = plain.encode(items), on.encode(items)
    assert np.array_equal(before[:2], after[:2])  # text: bit for bit
    shift = on.get_buffer(BUFFER).numpy()
    for i, kind in ((2, "image"), (3, "audio"), (4, "video")):
        want = before[i] + shift[KINDS[kind]]
        np.testing.assert_allclose(after[i], want / np.linalg.norm(want), atol=1e-5)
        assert not np.allclose(after[i], before[i], atol=1e-3)


def test_an_items_kind_is_its_media_video_then_image_then_audio(model, media):
    items = [
        "text",
        [Text("words:"), media.image()],  # recognised words before an image: an image
        media.audio(),
        media.video(),  # frames and a track: a video
        [media.audio(0.5), media.image()],
    ]
    kinds = item_kinds(model.collate(items)).tolist()
    assert kinds == [KINDS[k] for k in ("text", "image", "audio", "video", "image")]


def test_fit_shift_is_the_difference_of_means_and_deterministic():
    rng = np.random.default_rng(0)
    text, img = rng.standard_normal((50, 8)), rng.standard_normal((30, 8)) + 2.0
    a, b = fit_shift({"image": img}, text), fit_shift({"image": img.copy()}, text.copy())
    assert a.numpy().tobytes() == b.numpy().tobytes()
    np.testing.assert_allclose(a[KINDS["image"]].numpy(), text.mean(0) - img.mean(0), rtol=1e-6)
    assert not a[KINDS["text"]].any() and not a[KINDS["audio"]].any()  # no data: no shift
    with pytest.raises(ValueError, match="not 'text'"):
        fit_shift({"text": text}, text)


def test_fitting_on_manifests_is_deterministic_and_round_trips(tmp_path):
    images = [write_image(tmp_path / f"im{i}.png", seed=i) for i in range(3)]
    wav = write_wav(tmp_path / "a.wav", seconds=0.5)
    rows = [{"query": [{"path": p}], "positive": [{"text": f"picture number {i}"}]} for i, p in enumerate(images)]
    rows.append({"query": [{"path": wav}], "positive": [{"text": "a tone"}]})
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    media, texts = calibrate.training_parts([manifest], per_kind=2, n_texts=10)
    assert [len(media[k]) for k in ("image", "audio", "video")] == [2, 1, 0] and len(texts) == 4
    model = _calibrated()
    shifts = [calibrate.fit(model, media, texts) for _ in range(2)]
    assert shifts[0].numpy().tobytes() == shifts[1].numpy().tobytes()
    assert shifts[0][KINDS["image"]].any() and not shifts[0][KINDS["video"]].any()
    model.get_buffer(BUFFER).copy_(shifts[0])
    loaded = load_pretrained(save_pretrained(model, tmp_path / "m"))
    assert torch.equal(loaded.get_buffer(BUFFER), shifts[0]) and loaded.model_id == model.model_id
