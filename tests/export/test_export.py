"""ONNX graphs against PyTorch with onnxruntime on real inputs; embeddings exports round-trip to the table's rows."""

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from gemb2 import load_model
from gemb2.cli.main import app
from gemb2.parts import Audio, Image, Video, fit_image
from tests.media import mixed_tree

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
runner = CliRunner()
TOL = 1e-4  # max abs difference in fp32


def _session(folder, name):
    return ort.InferenceSession(os.path.join(folder, f"{name}.onnx"), providers=["CPUExecutionProvider"])


def _real_inputs(tmp_path, cfg):
    """Decoded by gemb2's own loaders from files written with real codecs."""
    from gemb2.data.load import load_file
    from gemb2.pipeline.loadspec import load_spec_for

    files = mixed_tree(tmp_path / "m")
    spec = load_spec_for(load_model("tiny"))
    seg = {k: next(iter(load_file(files[k], mod, spec))) for k, mod in (("i0", "image"), ("i1", "image"), ("a0", "audio"), ("v0", "video"))}
    return seg


@pytest.mark.parametrize("dim", [None, 32])
def test_onnx_graphs_match_pytorch(tmp_path, tiny, dim):
    out = str(tmp_path / "onnx")
    args = ["export", "model", out, "--model", "tiny", "--json"] + (["--dim", str(dim)] if dim else [])
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    manifest = json.loads(r.stdout)
    assert set(manifest["graphs"]) == {"text", "image", "audio", "video", "video_frames"} and manifest["dim"] == (dim or 64)
    assert json.load(open(os.path.join(out, "manifest.json")))["graphs"]["text"]["inputs"][0]["name"] == "input_ids"
    D = dim or tiny.config.out_dim

    from gemb2.export.onnx_check import text_inputs

    texts = ["a red car", "un chat noir dort sur le canapé", "∑ of π " * 20]
    for task in ("document", "query"):
        ids, mask = text_inputs(tiny, texts, task)
        got = _session(out, "text").run(None, {"input_ids": ids, "attention_mask": mask})[0]
        assert got.shape == (3, D)
        assert np.abs(got - tiny.encode(texts, task=task, dim=dim)).max() <= TOL

    seg = _real_inputs(tmp_path, tiny.config)
    imgs = [seg["i0"].parts[0], seg["i1"].parts[0]]
    px = np.stack([fit_image(p.pixels, tiny.config.image_size) for p in imgs]).transpose(0, 3, 1, 2).copy()
    got = _session(out, "image").run(None, {"pixels": px})[0]
    assert np.abs(got - tiny.encode([Image(p.pixels) for p in imgs], dim=dim)).max() <= TOL

    audio = seg["a0"].parts[0]
    spt = 3200
    samples = np.pad(audio.samples, (0, -len(audio.samples) % spt))[None]  # (1, N)
    got = _session(out, "audio").run(None, {"samples": samples})[0]
    assert np.abs(got - tiny.encode([audio], dim=dim)).max() <= TOL

    video = seg["v0"].parts[0]
    track = Audio(np.zeros(16000, np.float32) + 0.01 * np.sin(np.arange(16000, dtype=np.float32)))
    v = Video(video.frames, video.times, track)
    frames = np.stack([fit_image(f, tiny.config.image_size) for f in v.frames]).transpose(0, 3, 1, 2)[None].copy()
    got = _session(out, "video").run(None, {"frames": frames, "times": v.times[None].astype(np.float32),
                                            "samples": np.pad(track.samples, (0, -16000 % spt))[None]})[0]
    assert np.abs(got - tiny.encode([v], dim=dim)).max() <= TOL


def test_export_model_usage_errors(tmp_path):
    assert runner.invoke(app, ["export", "model", str(tmp_path / "o"), "--model", "tiny", "--dim", "33"]).exit_code == 2
    assert runner.invoke(app, ["export", "model", str(tmp_path / "o"), "--model", "tiny", "--format", "tflite"]).exit_code == 2


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    mixed_tree(root / "m")
    db = str(root / "db")
    assert runner.invoke(app, ["embed", str(root / "m"), "--model", "tiny", "--db", db, "--workers", "0", "--quiet"]).exit_code == 0
    from gemb2.store import LanceStore

    rows = LanceStore(db).table.to_arrow().to_pylist()
    return db, {r["key"]: r for r in rows}


@pytest.mark.parametrize("fmt", ["safetensors", "parquet", "jsonl"])
def test_embeddings_export_round_trips(tmp_path, table, fmt):
    db, rows = table
    out = tmp_path / f"vecs.{fmt}"
    r = runner.invoke(app, ["export", "embeddings", str(out), "--to", fmt, "--db", db, "--batch-rows", "3", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"] == len(rows)
    if fmt == "safetensors":
        from safetensors.numpy import load_file

        vecs = load_file(str(out))["vectors"]
        meta = [json.loads(line) for line in open(tmp_path / "vecs.jsonl", encoding="utf-8")]
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        t = pq.read_table(out).to_pylist()
        vecs, meta = np.array([x["vector"] for x in t], np.float32), t
    else:
        meta = [json.loads(line) for line in open(out, encoding="utf-8")]
        vecs = np.array([m["vector"] for m in meta], np.float32)
    assert sorted(m["key"] for m in meta) == sorted(rows) and len(vecs) == len(rows)
    for m, v in zip(meta, vecs):
        assert m["path"] == rows[m["key"]]["path"]
        np.testing.assert_array_equal(v, np.asarray(rows[m["key"]]["vector"], np.float32))


def test_export_embeddings_usage_errors(tmp_path, table):
    assert runner.invoke(app, ["export", "embeddings", str(tmp_path / "x"), "--to", "csv", "--db", table[0]]).exit_code == 2
    assert runner.invoke(app, ["export", "embeddings", str(tmp_path / "x"), "--db", str(tmp_path / "none")]).exit_code == 2
