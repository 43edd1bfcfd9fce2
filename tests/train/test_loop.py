"""The training loop through the CLI: --check, a killed run resumed exactly, and a tiny recipe that learns."""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from gemb2.cli.main import app
from tests import cli_run

ROOT = Path(__file__).resolve().parents[2]


def build_stdlib(out: Path, limit: int, max_lines: int = 6) -> Path:
    subprocess.run([sys.executable, str(ROOT / "scripts/build_data/stdlib.py"), "--out", str(out),
                    "--limit", str(limit), "--max-lines", str(max_lines)], check=True, capture_output=True)
    return out


def recipe(path: Path, data: Path, output: Path, **stage) -> Path:
    lines = [f"# gemb2 train {path}", "name: test", "model: tiny", f"output: {output}", "seed: 3",
             "tasks:", "  docstring-code: {symmetric: true}", "stages:", "  - name: finetune",
             f"    data: [{data}]"] + [f"    {k}: {v}" for k, v in stage.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


ONE_THREAD = {"OMP_NUM_THREADS": "1"}
gemb2 = functools.partial(cli_run.gemb2, env=ONE_THREAD, cwd=ROOT, timeout=None)  # training runs as long as it takes


@pytest.mark.slow
def test_check_validates_and_names_the_bad_value(tmp_path):
    data = build_stdlib(tmp_path / "d", 40)
    good = recipe(tmp_path / "r.yaml", data / "train.jsonl", tmp_path / "out", steps=2, batch_size=4)
    r = CliRunner().invoke(app, ["train", "--check", str(good)])
    assert r.exit_code == 0, r.output
    assert "ok (1 stage(s): finetune)" in r.output
    bad = recipe(tmp_path / "bad.yaml", data / "train.jsonl", tmp_path / "out", steps=2, batch_size=4, lr="fast")
    r = CliRunner().invoke(app, ["train", "--check", str(bad)])
    assert r.exit_code == 2 and "stages[0] (finetune).lr: must be a number, got 'fast'" in r.output
    missing = recipe(tmp_path / "m.yaml", tmp_path / "nope.jsonl", tmp_path / "out", steps=2, batch_size=4)
    r = CliRunner().invoke(app, ["train", "--check", str(missing)])
    assert r.exit_code == 2 and "manifest not found" in r.output and "nope.jsonl" in r.output


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_weights(tmp_path):
    data = build_stdlib(tmp_path / "d", 60, max_lines=4)
    stage = dict(steps=10, batch_size=8, lr="1e-3", warmup=2, checkpoint_every=3, log_every=1, prompt_dropout=0.3)
    full = recipe(tmp_path / "full.yaml", data / "train.jsonl", tmp_path / "full", **stage)
    r = gemb2("train", str(full))
    assert r.returncode == 0, r.stderr

    killed = recipe(tmp_path / "killed.yaml", data / "train.jsonl", tmp_path / "killed", **stage)
    proc = cli_run.gemb2_popen("train", killed, cwd=ROOT, env=ONE_THREAD, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True)
    seen = []
    for line in proc.stderr:  # kill it right after step 5 (a checkpoint was written at step 3)
        seen.append(line)
        if "step 5/10" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    ckpts = tmp_path / "killed/finetune/checkpoints"
    assert (ckpts / "step-000003/trainer.json").is_file()
    assert not (tmp_path / "killed/finetune/final").exists()
    again = gemb2("train", str(killed))  # without --resume: refused, nothing overwritten
    assert again.returncode == 2 and "--resume" in again.stderr
    r = gemb2("train", "--resume", str(killed))
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stderr
    a = load_file(tmp_path / "full/finetune/final/model.safetensors")
    b = load_file(tmp_path / "killed/finetune/final/model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() <= 1e-5, k


@pytest.mark.slow
def test_a_tiny_recipe_improves_held_out_recall_through_the_cli(tmp_path):
    data = build_stdlib(tmp_path / "d", 400, max_lines=6)
    rec = recipe(tmp_path / "r.yaml", data / "train.jsonl", tmp_path / "out", steps=30, batch_size=16,
                 lr="2e-3", warmup=3, log_every=10, matryoshka_dims="[64, 16]")
    before = gemb2("eval", str(data / "test.jsonl"), "--model", "tiny", "--json")
    assert before.returncode == 0, before.stderr
    t = gemb2("train", str(rec), "--json")
    assert t.returncode == 0, t.stderr
    model = json.loads(t.stdout)["model"]
    after = gemb2("eval", str(data / "test.jsonl"), "--model", model, "--json")
    assert after.returncode == 0, after.stderr
    r0 = json.loads(before.stdout)["tasks"]["docstring-code"]
    r1 = json.loads(after.stdout)["tasks"]["docstring-code"]
    assert r1["queries"] >= 40
    assert r1["recall@1"] > r0["recall@1"] + 0.05, (r0, r1)
    assert r1["ndcg@10"] > r0["ndcg@10"]
    table = gemb2("eval", str(data / "test.jsonl"), "--model", model)
    assert "recall@1" in table.stdout and "docstring-code" in table.stdout


def test_freeze_text_keeps_text_vectors_exact_while_media_learns(tmp_path):
    """An align stage with freeze_text and a frozen backbone/projection: text embeds exactly as before (the
    text row of the modality embeddings gets no gradient); images move."""
    import numpy as np

    from gemb2 import load_model
    from gemb2.train.loop import TrainSettings, train_stage
    from gemb2.train.tasks import TaskSpec
    from tests.media import write_image

    rows = []
    for i in range(12):
        write_image(tmp_path / "img" / f"{i}.png", seed=i, size=(32, 32))
        rows.append({"task": "pic-caption", "query": [{"path": f"img/{i}.png"}], "positive": [{"text": f"picture {i}"}]})
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    settings = TrainSettings(steps=4, batch_size=6, lr=5e-2, freeze=("backbone.", "projection."), freeze_text=True,
                             log_every=100)
    out = train_stage("tiny", tmp_path / "run", {"pic-caption": TaskSpec(name="pic-caption", symmetric=True)},
                      [str(tmp_path / "m.jsonl")], settings)
    before, after = load_model("tiny"), load_model(str(out))
    texts = ["picture 3", "an unseen sentence"]
    np.testing.assert_array_equal(after.encode(texts), before.encode(texts))
    assert after.modality_embeddings.weight[0].abs().max().item() == 0.0
    assert after.modality_embeddings.weight[1].abs().max().item() > 0.0  # the image row trained
    from gemb2.parts import Image
    from PIL import Image as PILImage

    pic = [Image(np.asarray(PILImage.open(tmp_path / "img" / "0.png").convert("RGB")))]
    assert np.abs(after.encode(pic) - before.encode(pic)).max() > 1e-3
