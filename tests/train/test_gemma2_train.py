"""Fine-tuning EmbeddingGemma 2 through gemb2's own loop (LoRA, multi-task, GradCache) on a tiny random checkpoint
in the real layout (tests/pretrained/gemma2_folder.py), and the result exported as a Hugging Face /
sentence-transformers folder that SentenceTransformer loads offline with gemb2's vectors."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers.models.embedding_gemma2", reason="pip install 'gemb2[gemma]'")

import torch
from safetensors.torch import load_file

from gemb2.errors import UsageError
from gemb2.eval.retrieval import evaluate
from gemb2.parts import Text
from gemb2.pretrained.sources import load_model
from gemb2.train.loop import TrainSettings, train_stage
from gemb2.train.tasks import TaskSpec
from tests.pretrained.gemma2_folder import PROMPTS, make_folder

TASK = "digits-letters"


def digit_rows(n: int, seed: int) -> list[dict]:
    """Query "3 7 1 9" -> positive "d h b j": no token in common, so a random model ranks at chance and only a
    learned digit -> letter correspondence matches held-out sequences."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        d = [rng.randrange(10) for _ in range(4)]
        q, p = " ".join(map(str, d)), " ".join(chr(ord("a") + x) for x in d)
        rows.append({"task": TASK, "query": [{"text": q}], "positive": [{"text": p}]})
    return rows


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("eg2") / "eg2-text", vision=False, audio=False)


@pytest.fixture(scope="module")
def trained(text_folder, tmp_path_factory):
    """40 LoRA steps on the digits -> letters task; (start folder, final folder, data folder, log lines)."""
    data = tmp_path_factory.mktemp("digits")
    write_manifest(data / "train.jsonl", digit_rows(400, seed=0))
    write_manifest(data / "test.jsonl", digit_rows(64, seed=1))
    s = TrainSettings(steps=40, batch_size=32, lr=5e-3, warmup=2, lora_rank=8, log_every=5, seed=0)
    lines: list[str] = []
    with torch.random.fork_rng(devices=[]):
        final = train_stage(
            str(text_folder), data / "run", {TASK: TaskSpec(TASK)}, [str(data / "train.jsonl")], s, log=lines.append
        )
    return text_folder, final, data, lines


def test_lora_fine_tune_lowers_the_loss_and_raises_held_out_recall(trained):
    start, final, data, lines = trained
    losses = [float(m.group(1)) for m in (re.search(r"loss ([0-9.]+)", x) for x in lines) if m]
    assert len(losses) == 8 and np.mean(losses[-3:]) < np.mean(losses[:2]) - 2.0, losses
    before = evaluate(load_model(str(start)), str(data / "test.jsonl"))[TASK]
    after = evaluate(load_model(str(final)), str(data / "test.jsonl"))[TASK]
    assert after["queries"] == 64
    assert before["recall@1"] < 0.1 and after["recall@1"] > before["recall@1"] + 0.15, (before, after)
    assert after["mrr"] > before["mrr"] + 0.15


def test_only_the_adapted_projections_change_and_the_folder_is_safetensors(trained):
    start, final, _, _ = trained
    assert not list(final.glob("*.bin")) and not list(final.glob("*.pt"))
    a, b = load_file(start / "model.safetensors"), load_file(final / "model.safetensors")
    assert a.keys() == b.keys()
    moved = {k for k in a if not torch.equal(a[k], b[k])}
    adapted = {k for k in a if re.search(r"language_model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight$", k)}
    assert moved and moved <= adapted, sorted(moved - adapted)[:3]
    assert json.loads((final / "config_sentence_transformers.json").read_text())["prompts"] == PROMPTS
    assert load_model(str(final)).model_id != load_model(str(start)).model_id


def test_exported_hf_folder_loads_in_sentence_transformers_with_the_same_vectors(trained, tmp_path):
    from sentence_transformers import SentenceTransformer

    from gemb2.pipeline.export import export_model

    _, final, _, _ = trained
    out = tmp_path / "hf"
    summary = export_model(str(final), out, fmt="hf")
    assert summary["min_cosine"] >= 0.9999 and "model.safetensors" in summary["files"]
    assert {"modules.json", "1_Pooling/config.json", "tokenizer.json"} <= set(summary["files"])
    ours = load_model(str(final))
    st = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    texts = ["3 7 1 9", "d h b j", "the cat sat on the mat; it was happy."]
    for prompt in ("query", "document", "STS"):
        theirs = st.encode(texts, prompt_name=prompt, convert_to_numpy=True)
        cos = (theirs * ours.encode(texts, task=prompt)).sum(1)
        assert cos.min() >= 0.9999, (prompt, cos)
    with pytest.raises(UsageError, match="not an empty folder"):
        export_model(str(final), out, fmt="hf")  # OUT holds the export: refused without --force
    with pytest.raises(UsageError, match="gemb2's own models export as onnx"):
        export_model("tiny", tmp_path / "no", fmt="hf")
    assert not (tmp_path / "no").exists()


def test_training_tokens_are_encodes_tokens_with_its_prompts(text_folder):
    """The loop's batch (prompt as a leading Text part, task=None) embeds exactly as encode(task=...)."""
    from gemb2.train.batches import prompt_text
    from gemb2.train.gemma2 import embed_gemma2

    model = load_model(str(text_folder))
    texts = ["3 7 1 9", "hello world"]
    for side in ("query", "document"):
        p = prompt_text(model.config, side, None)
        assert p == PROMPTS[side]
        with torch.no_grad():
            got = embed_gemma2(model, [(Text(p), Text(t)) for t in texts], torch.device("cpu")).numpy()  # type: ignore[arg-type]
        np.testing.assert_allclose(got, model.encode(texts, task=side), atol=1e-5)
    assert prompt_text(model.config, "query", "STS") == PROMPTS["STS"]  # a name of the folder's prompts
    assert prompt_text(model.config, "query", "find: ") == "find: "  # any other string is the text


def test_multi_task_with_images_through_gradcache(tmp_path):
    """Two tasks (text pairs and image -> caption) in one manifest, GradCache chunks and gradient checkpointing:
    both tasks train and the LoRA'd text encoder moves image vectors too."""
    from tests.media import write_image

    folder = make_folder(tmp_path / "eg2-vision", vision=True, audio=False)
    rows = digit_rows(24, seed=2)
    for i in range(12):
        write_image(tmp_path / "img" / f"{i}.png", seed=i, size=(24 + 4 * i, 32))
        rows.append(
            {
                "task": "image-caption",
                "query": [{"path": f"{tmp_path}/img/{i}.png"}],
                "positive": [{"text": f"picture {i}"}],
            }
        )
    write_manifest(tmp_path / "m.jsonl", rows)
    tasks = {TASK: TaskSpec(TASK), "image-caption": TaskSpec("image-caption", symmetric=True, query_prompt="")}
    s = TrainSettings(
        steps=4, batch_size=6, lr=1e-2, lora_rank=4, cache_chunk=4, gradient_checkpointing=True, log_every=1, seed=1
    )
    lines: list[str] = []
    final = train_stage(str(folder), tmp_path / "run", tasks, [str(tmp_path / "m.jsonl")], s, log=lines.append)
    assert {m.group(1) for m in (re.search(r"task (\S+) loss", x) for x in lines) if m} == set(tasks), lines
    from PIL import Image as PILImage

    from gemb2.parts import Image

    pic = [Image(np.asarray(PILImage.open(tmp_path / "img" / "3.png").convert("RGB")))]
    before, after = load_model(str(folder)).encode(pic), load_model(str(final)).encode(pic)
    assert np.abs(after - before).max() > 1e-4
    assert (final / "preprocessor_config.json").is_file()  # the image processor travels with the weights


def test_settings_only_gemb2_models_have_are_refused(text_folder, tmp_path):
    write_manifest(tmp_path / "m.jsonl", digit_rows(8, seed=3))
    for bad, match in (
        (dict(freeze_text=True), "freeze_text"),
        (dict(feature_cache_mb=8), "feature_cache_mb"),
        (dict(freeze=("nope.",)), "matches no parameter"),
    ):
        s = TrainSettings(steps=1, batch_size=4, **bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=match):
            train_stage(str(text_folder), tmp_path / "run", {TASK: TaskSpec(TASK)}, [str(tmp_path / "m.jsonl")], s)
