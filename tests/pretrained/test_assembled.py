"""`gemb2 init`: a model folder assembled from pretrained parts, its option errors, and the assembled
model end to end (init -> embed a real folder -> query finds each file itself at cosine 1.0)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gemb2 import load_model
from gemb2.cli.main import app
from gemb2.pretrained.weights import efficientnet_lite_file, minilm_folder, whisper_ct2_files
from tests.cli_run import gemb2
from tests.media import write_text, write_video, write_wav
from tests.system import need_weights

runner = CliRunner()


@pytest.mark.parametrize("args, needle", [
    (["--image", "resnet50"], "image part 'resnet50'"),
    (["--audio", "whisper-huge"], "audio part 'whisper-huge'"),
    (["--matryoshka", "384,abc"], "--matryoshka"),
    (["--matryoshka", "256,384"], "descending"),
    (["--dim", "256", "--projection", "identity"], "identity projection needs dim"),
    (["--projection", "eye"], "projection must be"),
    (["--audio", "mel", "--audio-weights", "x.bin"], "no pretrained encoder"),
    (["--audio-tokens", "7"], "must divide 3000"),
    (["--text", "/no/such/folder"], "text part"),
])
def test_init_option_errors_are_usage_errors(tmp_path, args, needle):
    need_weights(minilm_folder)
    r = runner.invoke(app, ["init", str(tmp_path / "m"), "--image", "none", "--audio", "none", *args])
    assert r.exit_code == 2, r.output
    assert needle in r.output and not (tmp_path / "m").exists()


def test_init_refuses_a_non_empty_folder_without_force(tmp_path):
    write_text(tmp_path / "m" / "keep.txt", "x")
    r = runner.invoke(app, ["init", str(tmp_path / "m")])
    assert r.exit_code == 2 and "--force" in r.output
    assert (tmp_path / "m" / "keep.txt").exists()


def test_init_text_only_without_prompts_is_the_backbone_checkpoint(tmp_path):
    folder = need_weights(minilm_folder)
    out = tmp_path / "text-only"
    r = runner.invoke(app, ["init", str(out), "--image", "none", "--audio", "none", "--no-prompts", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["config"]["out_dim"] == 384 and doc["config"]["matryoshka_dims"] == [384, 256, 128, 64]
    m, ref = load_model(str(out)), load_model(str(folder))
    assert m.model_id == doc["model_id"] and torch.equal(m.projection.weight, torch.eye(384))
    texts = ["a cat on a mat", "Ünïcödé ☕ — " * 40]
    assert np.abs(m.encode(texts, task="query") - ref.encode(texts)).max() < 1e-5


def test_init_random_projection_is_seeded(tmp_path):
    need_weights(minilm_folder)
    ids = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        r = runner.invoke(app, ["init", str(tmp_path / name), "--image", "patch", "--audio", "mel", "--dim", "128",
                                "--matryoshka", "128,64", "--seed", str(seed), "--name", "seeded", "--json"])
        assert r.exit_code == 0, r.output
        ids.append(json.loads(r.stdout)["model_id"])
    assert ids[0] == ids[1] != ids[2]
    m = load_model(str(tmp_path / "a"))
    assert m.config.out_dim == 128 and m.config.query_prompt.startswith("task:")


@pytest.fixture(scope="module")
def assembled(tmp_path_factory):
    """init with EfficientNet-Lite0 and Whisper tiny.en (the smaller Whisper carrier) around all-MiniLM-L6-v2."""
    for find, arg in ((minilm_folder, None), (efficientnet_lite_file, "lite0"), (whisper_ct2_files, "tiny.en")):
        need_weights(find, *([arg] if arg else []))
    out = tmp_path_factory.mktemp("assembled") / "model"
    r = runner.invoke(app, ["init", str(out), "--image", "efficientnet-lite0", "--audio", "whisper-tiny.en"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(str(out)) and "efficientnet-lite0-whisper-tiny.en" in r.stdout
    return out


@pytest.mark.slow
def test_assembled_stems_hold_the_reference_weights(assembled):
    from gemb2.model.stems.efficientnet_lite import preprocess
    from gemb2.pretrained.efficientnet import load_efficientnet_lite
    from gemb2.pretrained.whisper import encoder_from_ct2

    m = load_model(str(assembled))
    c = m.config
    assert (c.image_stem, c.image_encoder, c.image_size, c.image_tokens) == ("efficientnet", "lite0", 224, 49)
    assert (c.audio_stem, c.audio_encoder, c.max_audio_tokens) == ("whisper", "tiny.en", 150)
    ref_cnn = load_efficientnet_lite(variant="lite0", num_classes=0)
    x = preprocess(torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8))
    with torch.inference_mode():
        assert torch.allclose(m.image_stem.encoder.forward_features(x), ref_cnn.forward_features(x), atol=1e-5)
    ref_whisper = encoder_from_ct2(whisper_ct2_files("tiny.en"))
    for name, t in ref_whisper.state_dict().items():
        assert torch.equal(m.audio_stem.encoder.state_dict()[name], t), name


@pytest.mark.slow
def test_assembled_model_embeds_a_real_folder_and_each_file_finds_itself(assembled, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    try:
        from PIL import Image as PILImage
        from skimage import data as photos

        PILImage.fromarray(photos.chelsea()).save(media / "chelsea.jpg")
    except ImportError:
        from tests.media import write_image

        write_image(media / "chelsea.jpg", seed=3, size=(300, 450))
    files = {
        "image": str(media / "chelsea.jpg"),
        "audio": write_wav(media / "tone.wav", seconds=2.5, freq=330.0),
        "video": write_video(media / "clip.mp4", seconds=2.0),
        "text": write_text(media / "note.txt", "A tabby cat sits on a wooden floor and looks at the camera."),
    }
    db = str(tmp_path / "db")
    r = gemb2("embed", str(media), "--model", str(assembled), "--db", db, "--json", "--workers", "0")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["files_added"] == 4 and summary["files_failed"] == 0
    assert summary["model"].startswith("all-MiniLM-L6-v2-efficientnet-lite0-whisper-tiny.en-untrained@")
    for modality in ("image", "audio", "video"):
        q = gemb2("query", f"--{modality}", files[modality], "--db", db, "--json", "-k", "4")
        assert q.returncode == 0, q.stderr
        hits = json.loads(q.stdout)
        assert hits[0]["path"] == files[modality] and hits[0]["modality"] == modality
        assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    t = gemb2("query", "a cat sitting on the floor", "--db", db, "--json", "--modality", "text")
    assert t.returncode == 0 and json.loads(t.stdout)[0]["path"] == files["text"]
