"""EmbeddingGemma 2 as ONNX graphs (`gemb2 export model OUT --model FOLDER`): the text, image and audio graphs run
in onnxruntime match `encode` on batch sizes and lengths the export never used (texts with padding and a named
prompt; real image and sound files decoded by gemb2's loaders, beside text and text-only rows), the Matryoshka
--dim is baked in, the manifest says what a client needs, and what is not supported is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gemb2.data.load import load_file
from gemb2.export.gemma2 import CHECK_TOL, feeds
from gemb2.parts import Text
from gemb2.pretrained.sources import load_model
from tests.cli_run import gemb2
from tests.media import write_image, write_wav
from tests.pretrained.gemma2_folder import PROMPTS, make_folder

pytest.importorskip("transformers.models.embedding_gemma2", reason="pip install 'gemb2[gemma]'")
ort = pytest.importorskip("onnxruntime")

DIM = 256  # a Matryoshka prefix: the graphs must bake in the cut and the re-normalisation


@pytest.fixture(scope="module")
def model(gemma_folder):
    return load_model(str(gemma_folder))


@pytest.fixture(scope="module")
def exported(gemma_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("eg2onnx") / "onnx"
    r = gemb2("export", "model", out, "--model", gemma_folder, "--dim", DIM, "--json")
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def _run(out, name, feed):
    return ort.InferenceSession(str(out / f"{name}.onnx"), providers=["CPUExecutionProvider"]).run(None, feed)[0]


@pytest.mark.slow
def test_the_text_graph_matches_encode_on_new_batch_sizes_lengths_and_prompts(exported, model):
    out, _ = exported
    texts = ["a", "the quick brown fox jumps over the lazy dog " * 3, "hello world", "x y z", "a red car on a road"]
    for task in ("document", "STS"):
        got = _run(out, "text", feeds(model, texts, task))
        assert got.shape == (5, DIM)
        assert np.abs(got - model.encode(texts, task=task, dim=DIM, precision="fp32")).max() <= 1e-4


@pytest.mark.slow
def test_the_image_graph_matches_encode_on_real_image_files(exported, model, tmp_path):
    out, _ = exported
    spec = model.load_spec()
    photos = [
        next(iter(load_file(write_image(tmp_path / f"p{i}.png", seed=i, size=s), "image", spec))).parts[0]
        for i, s in enumerate([(48, 64), (90, 40), (120, 120)])
    ]
    batches = [
        [[photos[2]]],
        [[photos[0]], [Text("a photo: "), photos[1], Text(" and another "), photos[2]], "only text", [photos[1]]],
    ]
    for items in batches:
        got = _run(out, "image", feeds(model, items, "query"))
        assert got.shape == (len(items), DIM)
        assert np.abs(got - model.encode(items, task="query", dim=DIM, precision="fp32")).max() <= 1e-4


@pytest.mark.slow
def test_the_audio_graph_matches_encode_on_real_sound_files(exported, model, tmp_path):
    out, _ = exported
    spec = model.load_spec()
    clips = [
        next(iter(load_file(write_wav(tmp_path / f"a{i}.wav", seconds=s, freq=f, sr=sr), "audio", spec))).parts[0]
        for i, (s, f, sr) in enumerate([(1.5, 440.0, 16000), (2.6, 300.0, 44100), (0.4, 1000.0, 8000)])
    ]
    batches = [
        [[clips[1]]],
        [[clips[0]], [Text("a tone: "), clips[2], Text(" then "), clips[1]], "silence", [clips[2]]],
    ]
    for items in batches:
        got = _run(out, "audio", feeds(model, items, "document"))
        assert got.shape == (len(items), DIM)
        assert np.abs(got - model.encode(items, task="document", dim=DIM, precision="fp32")).max() <= 1e-4


@pytest.mark.slow
def test_the_manifest_says_what_was_exported_and_how_to_feed_it(exported, model):
    out, manifest = exported
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["family"] == "embeddinggemma-2" and manifest["model"] == model.model_id
    assert (manifest["opset"], manifest["dim"], manifest["out_dim"], manifest["matryoshka"]) == (17, DIM, 768, True)
    assert manifest["matryoshka_dims"] == [256, 128]
    assert set(manifest["graphs"]) == {"text", "image", "audio"} and set(manifest["not_exported"]) == {"video"}
    text, image = manifest["graphs"]["text"], manifest["graphs"]["image"]
    assert [(i["name"], i["shape"]) for i in text["inputs"]] == [
        ("input_ids", ["batch", "length"]),
        ("attention_mask", ["batch", "length"]),
    ]
    assert [(i["name"], i["dtype"], i["shape"][0]) for i in image["inputs"][2:]] == [
        ("pixel_values", "float32", "images"),
        ("image_position_ids", "int64", "images"),
    ]
    assert image["inputs"][2]["shape"][1] == manifest["image"]["max_patches"] == 280
    audio = manifest["graphs"]["audio"]
    assert [(i["name"], i["dtype"], i["shape"]) for i in audio["inputs"][2:]] == [
        ("input_features", "float32", ["clips", "frames", 128]),
        ("input_features_mask", "bool", ["clips", "frames"]),
    ]
    assert (manifest["audio"]["sample_rate"], manifest["audio"]["max_soft_tokens"]) == (16000, 750)
    for g in (text, image, audio):
        assert g["check"]["checked"] and g["check"]["max_abs_diff"] <= CHECK_TOL == 1e-4
        assert g["output"]["shape"] == ["batch", DIM]
    assert manifest["text"]["prompts"] == PROMPTS and manifest["text"]["pad_id"] == model.pad_id
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", "text.onnx", "image.onnx", "audio.onnx", *manifest["files"]]
    )
    assert "preprocessor_config.json" in manifest["files"]
    tok = json.loads((out / "tokenizer.json").read_text())
    assert tok["padding"] is None and tok["truncation"] is None


def test_without_a_vision_tower_only_the_text_graph_and_the_reason(tmp_path):
    from gemb2.pipeline.export import export_model

    folder = make_folder(tmp_path / "eg2-text", vision=False, audio=False)
    manifest = export_model(str(folder), tmp_path / "o")
    assert sorted(p.name for p in (tmp_path / "o").glob("*.onnx")) == ["text.onnx"] and manifest["image"] is None
    assert manifest["not_exported"]["image"].startswith("this folder has no vision tower")
    assert manifest["not_exported"]["audio"] == "this folder has no audio tower" and manifest["audio"] is None


@pytest.mark.slow
def test_a_dim_that_is_not_a_matryoshka_prefix_is_refused_in_one_line(gemma_folder, tmp_path):
    r = gemb2("export", "model", tmp_path / "o", "--model", gemma_folder, "--dim", "100")
    assert r.returncode == 2 and r.stderr.startswith("gemb2: error: --dim 100: ")
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_graph_past_the_tolerance_fails_the_export_and_writes_nothing(model, tmp_path, monkeypatch):
    from gemb2.export import gemma2

    monkeypatch.setattr(gemma2, "CHECK_TOL", -1.0)  # no difference passes: the failure branch, on a real export
    with pytest.raises(
        gemma2.ExportCheckError, match=r"^the text graph does not reproduce the model: .*nothing written"
    ):
        gemma2.export_gemma2(model, tmp_path / "o")
    assert list(tmp_path.iterdir()) == []
