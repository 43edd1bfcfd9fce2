"""The ONNX export of a model with a per-modality calibration (gemb2/model/calibration.py)."""

import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gemb2.cli.main import app
from gemb2.data.load import load_file
from gemb2.model import Gemb2Model
from gemb2.model.calibration import BUFFER
from gemb2.model.config import tiny
from gemb2.model.io import save_pretrained
from gemb2.parts import Image, fit_image
from gemb2.pipeline.loadspec import load_spec_for
from tests.media import write_image

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
TOL = 1e-4  # max abs difference in fp32


def test_a_calibrated_model_exports_its_calibration(tmp_path):
    """The image graph applies the image shift: it matches the calibrated model, not the same model without it."""
    model = Gemb2Model(tiny().replace(calibration="centre")).eval()
    model.get_buffer(BUFFER).copy_(torch.linspace(-0.4, 0.4, 4 * 64).reshape(4, 64))
    model.get_buffer(BUFFER)[0] = 0
    out = str(tmp_path / "onnx")
    r = CliRunner().invoke(app, ["export", "model", out, "--model", str(save_pretrained(model, tmp_path / "m"))])
    assert r.exit_code == 0, r.output
    path = write_image(tmp_path / "a.png", seed=1)
    img = next(iter(load_file(path, "image", load_spec_for(model)))).parts[0]
    assert isinstance(img, Image)
    px = fit_image(img.pixels, model.config.image_size).transpose(2, 0, 1)[None].copy()
    session = ort.InferenceSession(os.path.join(out, "image.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"pixels": px})[0]
    assert np.abs(got - model.encode([img])).max() <= TOL
    assert np.abs(got - Gemb2Model(tiny()).encode([img])).max() > 10 * TOL  # the shift is in the graph
