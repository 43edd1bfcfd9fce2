"""`gemb2 train` on an EmbeddingGemma 2 folder through the CLI: a SIGKILLed LoRA run resumed with --resume ends on
the uninterrupted run's weights, and `gemb2 export model --format hf` writes the result back."""

from __future__ import annotations

import functools
import json
import signal
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("transformers.models.embedding_gemma2", reason="pip install 'gemb2[gemma]'")

from safetensors.torch import load_file

from tests import cli_run
from tests.pretrained.gemma2_folder import make_folder
from tests.train.test_gemma2_train import digit_rows, write_manifest

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
gemb2 = functools.partial(cli_run.gemb2, env=ONE_THREAD, timeout=None)  # training runs as long as it takes


def recipe(path: Path, model: Path, data: Path, output: Path) -> Path:
    lines = [
        f"# gemb2 train {path}",
        "name: test",
        f"model: {model}",
        f"output: {output}",
        "seed: 3",
        "tasks:",
        "  digits-letters: {symmetric: true}",
        "stages:",
        "  - name: lora",
        f"    data: [{data}]",
        "    steps: 6",
        "    batch_size: 8",
        "    lr: 5.0e-3",
        "    lora_rank: 4",
        "    checkpoint_every: 2",
        "    log_every: 1",
        "    prompt_dropout: 0.3",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_killed_lora_run_resumes_to_the_uninterrupted_weights_and_exports(tmp_path):
    folder = make_folder(tmp_path / "eg2", vision=False, audio=False)
    data = write_manifest(tmp_path / "train.jsonl", digit_rows(48, seed=0))
    full = recipe(tmp_path / "full.yaml", folder, data, tmp_path / "full")
    r = gemb2("train", full)
    assert r.returncode == 0, r.stderr

    killed = recipe(tmp_path / "killed.yaml", folder, data, tmp_path / "killed")
    proc = cli_run.gemb2_popen(
        "train", killed, env=ONE_THREAD, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # kill it right after step 3 (a checkpoint was written at step 2)
        seen.append(line)
        if "step 3/6" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert (tmp_path / "killed/lora/checkpoints/step-000002/trainer.json").is_file()
    assert not (tmp_path / "killed/lora/final").exists()
    r = gemb2("train", "--resume", killed)
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stderr
    a = load_file(tmp_path / "full/lora/final/model.safetensors")
    b = load_file(tmp_path / "killed/lora/final/model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() <= 1e-5, k
    start = load_file(folder / "model.safetensors")
    assert any((a[k] - start[k]).abs().max() > 0 for k in a)  # it trained

    out = tmp_path / "hf"
    r = gemb2("export", "model", out, "--format", "hf", "--model", tmp_path / "killed/lora/final", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["min_cosine"] >= 0.9999 and (out / "modules.json").is_file()
    bad = gemb2("export", "model", tmp_path / "x", "--format", "hf", "--model", "tiny")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
