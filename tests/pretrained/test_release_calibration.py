"""A release with a fitted per-modality calibration (gemb2/train/calibrate.py's write, gemb2/model/calibration.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from gemb2 import load_model
from gemb2.model.layout import KINDS
from gemb2.parts import Image
from gemb2.pretrained.release import load_release_folder, release_folder, release_model_id
from gemb2.train.calibrate import write


@pytest.fixture(scope="module")
def mini():
    if not (release_folder("gemb2-mini") / "adds.safetensors").is_file():
        pytest.skip("gemb2-mini's added weights are not in this checkout")
    return load_model("gemb2-mini")


def test_a_calibrated_release_keeps_text_and_moves_media(mini, tmp_path):
    """gemb2/train/calibrate.py's write: shifts in adds, "calibration" in config.json, a new id in model_id.json."""
    folder = tmp_path / "gemb2-mini"
    shutil.copytree(release_folder("gemb2-mini"), folder)
    shift = torch.zeros(len(KINDS), 384)
    shift[KINDS["image"]] = torch.linspace(-0.5, 0.5, 384)
    model_id = write(folder, shift)
    model = load_release_folder(folder)
    assert model.config.calibration == "centre" and model_id == model.model_id != mini.model_id
    assert release_model_id("gemb2-mini", folder) == model_id
    texts = ["a small domestic cat", "flag: Kiribati"]
    assert np.array_equal(model.encode(texts, task="query"), mini.encode(texts, task="query"))
    pixels = Image(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    before, after = mini.encode([pixels])[0], model.encode([pixels])[0]
    want = before + shift[KINDS["image"]].numpy()
    np.testing.assert_allclose(after, want / np.linalg.norm(want), atol=1e-5)
