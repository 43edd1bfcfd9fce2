"""The image stem's CNN once per picture in `encode` (stems/efficientnet.py `reusing`): a model that recognises
classes (recognise.py) classifies each image and some video frames with the stem, then embeds the same pixels;
the feature maps of the first pass serve the second. Tiny random models, real forward passes; the CNN's work is
counted as the rows through its first convolution (a forward hook on the real module)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from gemb2.model import Gemb2Model
from gemb2.model.config import tiny
from gemb2.model.recognise import VIDEO_FRAMES
from gemb2.model.stems.efficientnet import EfficientNetStem
from gemb2.parts import Image, Text, Video

MAP_BYTES = 1280 * 2 * 2 * 4  # one (1280, g, g) float32 map at 64 px (g = 2)


@pytest.fixture(scope="module")
def model() -> Gemb2Model:
    return Gemb2Model(tiny().replace(image_stem="efficientnet", image_size=64, recognise_classes=3)).eval()


@pytest.fixture
def stem(model) -> EfficientNetStem:
    assert isinstance(model.image_stem, EfficientNetStem)
    return model.image_stem


class CNNRows:
    """Rows (pictures) the stem's CNN runs on while the block is open."""

    def __init__(self, stem: EfficientNetStem):
        self.stem, self.n = stem, 0

    def __enter__(self) -> CNNRows:
        self.hook = self.stem.encoder._conv_stem.register_forward_hook(self.count)
        return self

    def count(self, module, inputs, output) -> None:
        self.n += inputs[0].shape[0]

    def __exit__(self, *exc) -> None:
        self.hook.remove()


def _items(seed: int = 0) -> list:
    """11 images of several sizes (12 with the interleaved one), a 12-frame video (more than max_frames 8: the
    layout keeps 8 of them, recognition looks at 4, two of those among the 8) and a 3-frame one."""
    rng = np.random.default_rng(seed)

    def pixels(*shape: int) -> np.ndarray:
        return rng.integers(0, 256, shape, dtype=np.uint8)

    return [
        *[Image(pixels(48 + i, 80, 3)) for i in range(11)],
        Video(pixels(12, 36, 64, 3), np.arange(12, dtype=np.float32)),
        Video(pixels(3, 40, 40, 3), np.arange(3, dtype=np.float32)),
        [Text("a slide:"), Image(pixels(40, 40, 3))],
    ]


def test_encode_runs_the_cnn_once_per_picture_with_the_same_vectors(model, stem):
    items = _items()
    with CNNRows(stem) as once:
        v = model.encode(items)
    with CNNRows(stem) as twice, stem.reusing(max_bytes=0):  # encode's block nests in this one: nothing kept
        ref = model.encode(items)
    layout = 12 + 8 + 3  # what the stem embeds: images, then the frames the layout keeps
    classified = 12 + VIDEO_FRAMES + 3  # what recognition looks at
    assert twice.n == layout + classified
    assert once.n == layout + 2  # the 12-frame video's frames 4 and 7 are classified only, not embedded
    np.testing.assert_allclose(v, ref, rtol=0, atol=1e-6)  # CPU kernels vary with the batch and its memory layout
    assert not stem.reuse.active  # dropped when encode returns


def test_a_bounded_block_keeps_what_fits_and_the_vectors_do_not_move(model, stem):
    items = _items(seed=1)
    ref = model.encode(items)
    with CNNRows(stem) as rows, stem.reusing(max_bytes=5 * MAP_BYTES):
        v = model.encode(items)
        assert stem.reuse.active and len(stem.reuse) == 5 and stem.reuse.kept_bytes == 5 * MAP_BYTES
    assert rows.n == (12 + 8 + 3) + (12 + VIDEO_FRAMES + 3) - 5
    np.testing.assert_allclose(v, ref, atol=1e-6)
    assert not stem.reuse.active


def test_the_same_pixels_twice_in_one_call_are_embedded_without_the_cnn(model, stem):
    image = _items()[0]
    with CNNRows(stem) as rows:
        v = model.encode([image, [Text("again"), Image(image.pixels.copy())]])
    assert rows.n == 2  # both classified (one classifier batch), neither run again to be embedded
    np.testing.assert_allclose(v[0], model.encode([image])[0], atol=1e-6)


def test_other_pixels_grad_mode_train_mode_and_tracing_never_read_what_was_kept(model, stem):
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[1, 0, 0, 0] ^= 1  # one bit of one pixel
    with torch.inference_mode():
        want = stem(y)
    with stem.reusing():
        with torch.inference_mode():
            stem.classify(x)
            with CNNRows(stem) as rows:
                got = stem(y)
        assert rows.n == 1 and torch.equal(got[1], want[1])  # row 0 was kept, row 1 differs by one bit
        with CNNRows(stem) as rows:  # a training step: gradients on, through proj; the CNN runs
            stem.train()
            try:
                stem(x).sum().backward()
            finally:
                stem.eval()
        assert rows.n == 2 and stem.proj.weight.grad is not None
        stem.zero_grad(set_to_none=True)
        with torch.no_grad(), CNNRows(stem) as rows:  # what the ONNX export does: the graph holds the CNN
            traced: Any = torch.jit.trace(stem, x, check_trace=False)
        assert rows.n == 2
        with torch.no_grad():
            torch.testing.assert_close(traced(y), want)
