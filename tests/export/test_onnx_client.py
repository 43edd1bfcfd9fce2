"""ONNX export for every kind of model, all or nothing, and a client following manifest.json alone matches gemb2.

The client (tests/export/client.py) uses numpy, OpenCV, PyAV, tokenizers and onnxruntime only; gemb2's side is its
real loaders (gemb2.data) and model.encode on the same files, made here with real codecs (Pillow/libjpeg,
espeak-ng, ffmpeg) from scikit-image's photos.
"""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from gemb2.cli.main import app
from gemb2.export.graphs import GRAPHS
from gemb2.export.onnx import export_onnx
from gemb2.model import Gemb2Model, tiny
from tests.cli_run import ROOT_DIR, gemb2_popen
from tests.export.client import Client
from tests.media import ffmpeg
from tests.system import need_debian

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
runner = CliRunner()


def _cos(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def _gemb2(model, path, modality):
    """gemb2's own vectors for a file: its loader's segments through model.encode."""
    from gemb2.data.load import load_file
    from gemb2.pipeline.loadspec import load_spec_for

    return model.encode([s.parts for s in load_file(str(path), modality, load_spec_for(model))])


def _photos(d):
    """Real photos as files: JPEGs decoded at 1/2 and 1/4 scale, one EXIF-rotated, a small PNG with alpha."""
    import skimage.data
    from PIL import Image

    os.makedirs(d, exist_ok=True)
    paths = [f"{d}/astronaut.jpg", f"{d}/coffee_big.jpg", f"{d}/chelsea_rot.jpg", f"{d}/coffee_alpha.png"]
    Image.fromarray(skimage.data.astronaut()).save(paths[0], quality=90)  # 512x512: 1/2 scale for 224
    Image.fromarray(skimage.data.coffee()).resize((1800, 1200), Image.LANCZOS).save(paths[1], quality=88)  # 1/4
    cat = Image.fromarray(skimage.data.chelsea())
    exif = cat.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    cat.save(paths[2], exif=exif, quality=92)
    small = np.asarray(Image.fromarray(skimage.data.coffee()).resize((150, 100), Image.LANCZOS))
    alpha = np.tile(np.linspace(40, 255, 150, dtype=np.uint8), (100, 1))[:, :, None]
    Image.fromarray(np.concatenate([small, alpha], axis=2), "RGBA").save(paths[3])  # enlarged (bicubic), on white
    return paths


def _speech(d):
    """espeak-ng speech as a 22.05 kHz mono WAV (libsndfile path) and a 44.1 kHz stereo M4A (FFmpeg path)."""
    os.makedirs(d, exist_ok=True)
    wav = f"{d}/speech.wav"
    need_debian("espeak-ng")
    subprocess.run(["espeak-ng", "-w", wav, "The quick brown fox jumps over the lazy dog near the river bank."],
                   check=True)
    m4a = f"{d}/speech.m4a"
    ffmpeg("-i", wav, "-ac", "2", "-ar", "44100", "-c:a", "aac", "-b:a", "128k", m4a)
    return wav, m4a


def _videos(d, wav, seconds=3.5):
    """H.264 (with B-frames) at 25 fps from a real photo panned over time: one with the speech as AAC, one silent."""
    import skimage.data
    from PIL import Image

    os.makedirs(d, exist_ok=True)
    Image.fromarray(skimage.data.astronaut()).save(f"{d}/still.png")
    scene = ["-loop", "1", "-framerate", "25", "-i", f"{d}/still.png"]
    vf = ["-vf", "crop=320:240:x='96*(1+sin(t*1.7))':y='128*(1+cos(t*1.3))',format=yuv420p"]
    sound, silent = f"{d}/talk.mp4", f"{d}/silent.mp4"
    ffmpeg(*scene, "-i", wav, "-t", seconds, *vf, "-c:v", "libx264", "-bf", "2", "-c:a", "aac", "-shortest", sound)
    ffmpeg(*scene, "-t", seconds, *vf, "-c:v", "libx264", "-bf", "2", "-an", silent)
    return sound, silent


# --- the default model, as a client would use it ----------------------------------------------


@pytest.fixture(scope="module")
def mini_export(tmp_path_factory):
    from gemb2.pretrained import ModelSourceError, load_model

    try:
        model = load_model("gemb2-mini-v1")
    except ModelSourceError as e:
        pytest.skip(f"gemb2-mini's weight packages are not installed: {e}")
    out = tmp_path_factory.mktemp("mini") / "onnx"
    r = runner.invoke(app, ["export", "model", str(out), "--model", "gemb2-mini-v1", "--json"])
    assert r.exit_code == 0, r.output
    return model, str(out), json.loads(r.stdout)


@pytest.mark.slow
def test_default_model_exports_every_graph(mini_export):
    model, out, manifest = mini_export
    assert set(manifest["graphs"]) == set(GRAPHS) and manifest["not_exported"] == {}
    assert sorted(os.listdir(out)) == sorted([f"{g}.onnx" for g in GRAPHS] + ["manifest.json", "tokenizer.json"])
    assert json.load(open(os.path.join(out, "manifest.json"))) == manifest
    for g in manifest["graphs"].values():
        assert g["check"]["checked"] and g["check"]["max_abs_diff"] <= 1e-3
    norm = manifest["preprocessing"]["image"]["normalisation"]  # EfficientNet's stem, not CLIP's
    assert (norm["scale"], norm["mean"], norm["std"]) == (1.0, [127.0] * 3, [128.0] * 3)
    tok = json.load(open(os.path.join(out, "tokenizer.json"), encoding="utf-8"))
    assert tok["padding"] is None and tok["truncation"] is None  # MiniLM's own file pads and cuts to 128


@pytest.mark.slow
def test_client_from_manifest_matches_gemb2(mini_export, tmp_path):
    model, out, manifest = mini_export
    client = Client(out, manifest)

    long = "Search engines rank documents by relevance to a query. " * 40  # > 256 tokens: the model's cut
    texts = ["a red car", "un chat noir dort sur le canapé", long, "Ünïcödé ∑ π 東京 🙂"]
    for task in ("query", "document"):
        assert _cos(client.text(texts, task), model.encode(texts, task=task)).min() >= 0.9999

    photos = _photos(tmp_path / "img")
    want = np.concatenate([_gemb2(model, p, "image") for p in photos])
    assert _cos(client.image(photos), want).min() >= 0.999

    for path in _speech(tmp_path / "audio"):
        assert _cos(client.audio(path), _gemb2(model, path, "audio")).min() >= 0.9999, path

    wav = _speech(tmp_path / "v")[0]
    for path in _videos(tmp_path / "video", wav):
        got, want = client.video(path), _gemb2(model, path, "video")
        assert got.shape == want.shape and _cos(got, want).min() >= 0.999, path


# --- every kind of model: each graph it can have, the others named with their reason -----------


def _tiny_model(**changes) -> Gemb2Model:
    return Gemb2Model(tiny().replace(name="t", **changes)).eval()


@pytest.mark.parametrize("variant", [pytest.param("lite1", marks=pytest.mark.slow), "lite2",
                                     pytest.param("lite3", marks=pytest.mark.slow),
                                     pytest.param("lite4", marks=pytest.mark.slow)])
def test_every_efficientnet_grid_exports_its_video_graph(tmp_path, variant):
    """8x8, 9x9, 9x9, 10x10 feature grids pooled to 2x2 per frame (lite0's 7x7: the default model's test). Random
    EfficientNet weights at each variant's resolution cost seconds per image on a loaded CPU: lite2 (9x9, bins that
    overlap) runs by default, the others with the slow tests."""
    from gemb2.model.config import LITE_SIZES

    model = _tiny_model(image_stem="efficientnet", image_encoder=variant, image_size=LITE_SIZES[variant].resolution)
    manifest = export_onnx(model, tmp_path / "o", modalities=("video_frames",))
    assert manifest["not_exported"] == {}
    check = manifest["graphs"]["video_frames"]["check"]  # onnxruntime against model.encode on 3 frames
    assert check["checked"] and check["max_abs_diff"] <= 1e-3


@pytest.mark.parametrize("stems, graphs", [
    (dict(image_stem="none", audio_stem="mel"), {"text", "audio"}),
    (dict(image_stem="patch", audio_stem="none", video_tokens_per_frame=9, query_prompt="", document_prompt=""),
     {"text", "image", "video_frames"}),
])
def test_each_stem_combination_exports_what_it_can(tmp_path, stems, graphs):
    manifest = export_onnx(_tiny_model(**stems), tmp_path / "o")
    assert set(manifest["graphs"]) == graphs
    assert set(manifest["not_exported"]) == set(GRAPHS) - graphs
    assert all(why.startswith("the model has no ") for why in manifest["not_exported"].values())
    assert sorted(os.listdir(tmp_path / "o")) == sorted([f"{g}.onnx" for g in graphs] + ["manifest.json", "tokenizer.json"])


def test_text_only_preset_tokenizer_is_plain(tmp_path):
    """all-MiniLM-L6-v2's tokenizer.json pads and truncates to 128; the exported one must not."""
    from gemb2.pretrained import ModelSourceError, load_model

    try:
        model = load_model("all-MiniLM-L6-v2")
    except ModelSourceError as e:
        pytest.skip(str(e))
    manifest = export_onnx(model, tmp_path / "o")
    assert set(manifest["graphs"]) == {"text"} and set(manifest["not_exported"]) == set(GRAPHS) - {"text"}
    client = Client(str(tmp_path / "o"), manifest)
    texts = ["a short one", "a long one " * 100]
    assert len(client.tok.encode(texts[0], add_special_tokens=False).ids) == 3
    assert _cos(client.text(texts, "document"), model.encode(texts)).min() >= 0.9999


# --- all or nothing --------------------------------------------------------------------------


def _leftovers(parent, name):
    return [p for p in os.listdir(parent) if p.startswith(f".{name}.")]


def test_existing_folder_refused_or_replaced(tmp_path):
    out = tmp_path / "onnx"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = runner.invoke(app, ["export", "model", str(out), "--model", "tiny"])
    assert r.exit_code == 2 and "--force" in r.output and (out / "keep.txt").read_text() == "mine"
    r = runner.invoke(app, ["export", "model", str(out), "--model", "tiny", "--force", "--json"])
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(out)) == sorted([f"{g}.onnx" for g in GRAPHS] + ["manifest.json", "tokenizer.json"])
    assert _leftovers(tmp_path, "onnx") == []


def test_unwritable_target_is_one_line_and_leaves_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    r = runner.invoke(app, ["export", "model", str(tmp_path / "file" / "onnx"), "--model", "tiny"])
    assert r.exit_code == 1 and r.output.startswith("gemb2: error: ") and r.output.count("\n") == 1
    assert "Traceback" not in r.output and os.listdir(tmp_path) == ["file"]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_export_leaves_nothing(tmp_path, sig, code):
    out = tmp_path / "onnx"
    p = gemb2_popen("export", "model", str(out), "--model", "tiny", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background job ignores it
                    cwd=ROOT_DIR)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:  # wait until the first graph is being written
        tmp = _leftovers(tmp_path, "onnx")
        if (tmp and os.listdir(tmp_path / tmp[0])) or out.exists():
            break
        time.sleep(0.05)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    assert "Traceback" not in err and err.startswith("gemb2: error: ")
    assert not out.exists() and _leftovers(tmp_path, "onnx") == []


def test_pooling_bins_equal_adaptive_pooling():
    """The exported frame pooling (two matmuls with constant bins) is PyTorch's adaptive average pooling."""
    import torch
    import torch.nn.functional as F

    from gemb2.model.model import grid_bins

    f = torch.randn(3, 5, 12, 12)
    for g in range(1, 13):
        for side in range(1, g + 1):
            x, bins = f[:, :, :g, :g], grid_bins(g, side)
            torch.testing.assert_close(bins @ x @ bins.T, F.adaptive_avg_pool2d(x, side), rtol=1e-5, atol=1e-6)
