"""EmbeddingGemma 2 as a gemb2 model family, on a tiny random checkpoint in the real layout (gemma2_folder.py):
parity with transformers' EmbeddingGemma2Model + its tokenizer + mean pooling (sentence-transformers' pipeline),
Matryoshka prefixes, prompts from the folder, long text windowed, sources (folder, HF cache, `hf:`) and the
failure branches (missing or wrong-shape weights, an unknown prompt, a name not in the cache)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("transformers.models.embedding_gemma2", reason="pip install 'gemb2[gemma]'")

import torch
import torch.nn.functional as F

from gemb2.errors import FatalError, UsageError
from gemb2.parts import Text
from gemb2.pretrained.embedding_gemma2 import EmbeddingGemma2Error, PromptError
from gemb2.pretrained.sources import ModelSourceError, load_model, model_source_id, resolve
from tests.pretrained.gemma2_folder import MAX_SEQ_LENGTH, PROMPTS, make_folder

SENTENCES = [
    "a red car on a wet road at night",
    "hello world",
    "the cat sat on the mat; it was happy.",
    "x",
]


@pytest.fixture(scope="session")
def folder(gemma_folder):
    return gemma_folder


@pytest.fixture(scope="session")
def model(folder):
    return load_model(str(folder))


@pytest.fixture(scope="session")
def reference(folder):
    """transformers' model and tokenizer as a user would load them, and sentence-transformers' pooling."""
    from transformers import AutoTokenizer, EmbeddingGemma2Model

    hf = EmbeddingGemma2Model.from_pretrained(str(folder), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))

    def embed(texts: list[str]) -> np.ndarray:
        b = tok(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            h = hf(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        return F.normalize((h * m).sum(1) / m.sum(1), dim=-1).numpy()

    return embed


def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.mark.parametrize("task", ["query", "document", "Clustering", "CodeRetrieval", None])
def test_text_vectors_match_transformers_with_the_folders_prompt(model, reference, task):
    prefix = PROMPTS[task] if task else ""
    ours = model.encode(SENTENCES, task=task)
    ref = reference([prefix + s for s in SENTENCES])
    assert ours.shape == (len(SENTENCES), 768)
    assert cos(ours, ref).min() >= 0.9999


def test_prompts_change_the_vector_and_come_from_the_folder(model):
    q, d = model.encode(["hello world"], task="query"), model.encode(["hello world"], task="document")
    assert cos(q, d)[0] < 0.9999
    assert set(model.config.prompts) == set(PROMPTS)


def test_matryoshka_prefixes_equal_the_reference_truncated_and_renormalised(model, reference):
    ref = reference([PROMPTS["document"] + s for s in SENTENCES])
    assert model.config.matryoshka_dims == (768, 512, 256, 128)
    for d in (512, 256, 128):
        ours = model.encode(SENTENCES, dim=d)
        want = ref[:, :d] / np.linalg.norm(ref[:, :d], axis=1, keepdims=True)
        assert ours.shape == (len(SENTENCES), d)
        assert cos(ours, want).min() >= 0.9999
    with pytest.raises(ValueError, match="Matryoshka dims"):
        model.check_dim(300)


def test_batching_and_order_do_not_change_a_vector(model):
    one = np.stack([model.encode([s])[0] for s in SENTENCES])
    many = model.encode(SENTENCES, batch_size=3)
    assert cos(one, many).min() >= 0.99999
    budget = model.encode(SENTENCES, max_tokens=12)  # a token budget: the long ones alone, the short ones together
    assert cos(one, budget).min() >= 0.99999


def test_images_of_different_shapes_in_one_batch_equal_each_alone_and_the_reference(model, reference_items):
    """The processor pads every image to its patch budget; encode cuts the batch to its largest image's patches."""
    from gemb2.parts import Image

    rng = np.random.default_rng(5)
    pics = [rng.integers(0, 256, size=s, dtype=np.uint8) for s in [(40, 56, 3), (90, 30, 3), (64, 64, 3)]]
    batch = model.encode([Image(p) for p in pics], task="document")
    for p, v in zip(pics, batch):
        assert cos(v, model.encode([Image(p)], task="document")[0]) >= 0.99999
        assert cos(v, reference_items(PROMPTS["document"], p)) >= 0.9999


def test_an_unknown_prompt_is_a_usage_error_listing_the_folders_names(model):
    with pytest.raises(PromptError, match="Clustering, CodeRetrieval, STS, document, query") as e:
        model.encode(["x"], task="Bogus")
    assert isinstance(e.value, UsageError)


def test_long_text_is_windowed_to_the_context_never_cut(model, tmp_path):
    from gemb2.data.load import load_file
    from gemb2.pipeline.loadspec import load_spec_for

    spec = load_spec_for(model)
    text = " ".join(f"sentence {i} is about the red car and the cat." for i in range(40))
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    segments = list(load_file(str(tmp_path / "long.txt"), "text", spec))
    assert len(segments) > 3
    spans = [(int(s.start), int(s.end)) for s in segments]
    assert spans[0][0] == 0 and spans[-1][1] == len(text)  # the windows cover the whole text
    assert all(b[0] <= a[1] for a, b in zip(spans, spans[1:]))  # with no gap between them
    longest_prompt = max(PROMPTS.values(), key=lambda p: len(model.token_ids([p], None)[0]))
    for s in segments:
        ids = model.token_ids([text[int(s.start) : int(s.end)]], None)[0]
        with_prompt = model.token_ids([longest_prompt + text[int(s.start) : int(s.end)]], None)[0]
        assert len(with_prompt) <= MAX_SEQ_LENGTH and len(ids) < MAX_SEQ_LENGTH


def test_the_model_id_is_read_from_the_folder_without_loading_it(folder, model):
    assert model_source_id(str(folder)) == model.model_id
    assert model.model_id.startswith("embeddinggemma-2@")


def test_images_and_video_need_the_vision_tower(model, tmp_path):
    from gemb2.parts import Image, Video

    assert model.config.modalities == ("text", "image", "audio", "video")
    text_only = load_model(str(make_folder(tmp_path / "no-vision", vision=False)))
    assert text_only.config.modalities == ("text", "audio")
    with pytest.raises(ValueError, match="does not embed image parts"):
        text_only.encode([Image(np.zeros((8, 8, 3), np.uint8))])
    with pytest.raises(ValueError, match="does not embed video parts"):
        text_only.encode([Video(np.zeros((1, 8, 8, 3), np.uint8), np.zeros(1, np.float32))])


def test_a_missing_weight_is_a_one_line_fatal_error(folder, tmp_path):
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "missing"
    shutil.copytree(folder, bad)
    state = load_file(bad / "model.safetensors")
    del state[next(k for k in state if "vision_tower" in k)]
    save_file(state, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(EmbeddingGemma2Error, match=r"1 weight\(s\) missing, e.g. vision_tower") as e:
        load_model(str(bad))
    assert isinstance(e.value, FatalError) and "\n" not in str(e.value)


def test_a_wrong_shape_weight_is_a_one_line_fatal_error(folder, tmp_path):
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "shape"
    shutil.copytree(folder, bad)
    state = load_file(bad / "model.safetensors")
    key = next(k for k in state if k.endswith("q_proj.weight"))
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    save_file(state, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(EmbeddingGemma2Error) as e:
        load_model(str(bad))
    assert key.split(".")[-2] in str(e.value) or "shape" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_folder_without_the_vision_tower_loads_and_embeds_text(tmp_path):
    folder = make_folder(tmp_path / "text-only", vision=False, audio=False)
    m = load_model(str(folder))
    assert m.hf.vision_tower is None and m.encode(["hello"]).shape == (1, 768)


def test_the_name_resolves_from_the_hf_cache_offline(folder, tmp_path, monkeypatch):
    """A prepared cache (huggingface_hub's layout: models--ORG--NAME/snapshots/REV, refs/main) stands in for
    a download; HF_HUB_OFFLINE=1 as in every test."""
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    with pytest.raises(ModelSourceError, match="run `gemb2 pull embeddinggemma-2`"):
        resolve("embeddinggemma-2")
    repo = cache / "models--google--embeddinggemma-2"
    shutil.copytree(folder, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    kind, path = resolve("embeddinggemma-2")
    assert kind == "gemma2" and json.loads((path / "config.json").read_text())["model_type"] == "embedding_gemma2"
    kind, path = resolve("hf:google/embeddinggemma-2")
    assert kind == "gemma2"


@pytest.fixture(scope="session")
def reference_items(folder):
    """transformers' model fed by its own image processor (Gemma4ImageProcessorPil) and tokenizer, the image
    slots laid out as EmbeddingGemma2Processor lays them (<|image> + soft tokens + <image|>)."""
    from transformers import AutoTokenizer, EmbeddingGemma2Model
    from transformers.models.gemma4 import Gemma4ImageProcessorPil

    hf = EmbeddingGemma2Model.from_pretrained(str(folder), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    proc = Gemma4ImageProcessorPil.from_pretrained(str(folder))

    def embed(text_before: str, pixels: np.ndarray, text_after: str = "") -> np.ndarray:
        got = proc(images=[pixels], return_tensors="pt")
        n = int(got["num_soft_tokens_per_image"][0])
        slots = tok.boi_token + tok.image_token * n + tok.eoi_token
        b = tok([text_before + slots + text_after], return_tensors="pt")
        with torch.no_grad():
            h = hf(
                **b, pixel_values=got["pixel_values"], image_position_ids=got["image_position_ids"]
            ).last_hidden_state
        return F.normalize(h.mean(1), dim=-1).numpy()[0]

    return embed


@pytest.mark.parametrize("size", [(48, 64), (300, 90), (20, 20)])
def test_image_files_match_the_reference_processor_and_model(model, reference_items, tmp_path, size):
    from PIL import Image as PILImage

    from gemb2.data.load import load_file
    from gemb2.pipeline.loadspec import load_spec_for
    from tests.media import write_image

    path = write_image(tmp_path / f"pic-{size[0]}x{size[1]}.png", seed=size[0], size=size)
    [seg] = load_file(path, "image", load_spec_for(model))
    ours = model.encode([seg.parts], task="document")[0]
    decoded = np.asarray(PILImage.open(path).convert("RGB"))  # the original pixels, resized by the processor
    assert cos(ours, reference_items(PROMPTS["document"], decoded)) >= 0.9999


def test_interleaved_text_and_image_match_the_reference(model, reference_items):
    from gemb2.parts import Image

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    ours = model.encode([[Text("a red car "), Image(pixels), Text(" on a road")]], task="query")[0]
    want = reference_items(PROMPTS["query"] + "a red car ", pixels, " on a road")
    assert cos(ours, want) >= 0.9999
    assert cos(ours, model.encode([[Text("a red car  on a road")]], task="query")[0]) < 0.999


@pytest.fixture(scope="session")
def reference_audio(folder):
    """transformers' model fed by Gemma4AudioFeatureExtractor (128 mel, 16 kHz) with the audio slots laid out as
    EmbeddingGemma2Processor.replace_audio_token lays them (<|audio> + compute_sscp(mask) x <|audio|> + <audio|>)."""
    from transformers import AutoTokenizer, EmbeddingGemma2Model, EmbeddingGemma2Processor
    from transformers.models.gemma4 import Gemma4AudioFeatureExtractor

    hf = EmbeddingGemma2Model.from_pretrained(str(folder), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    fe = Gemma4AudioFeatureExtractor()

    def embed(text_before: str, samples: np.ndarray) -> np.ndarray:
        got = fe([samples], sampling_rate=16000, return_tensors="pt")
        n = EmbeddingGemma2Processor.compute_sscp(got["input_features_mask"][0].numpy())
        b = tok([text_before + tok.boa_token + tok.audio_token * n + tok.eoa_token], return_tensors="pt")
        with torch.no_grad():
            h = hf(**b, **got).last_hidden_state
        return F.normalize(h.mean(1), dim=-1).numpy()[0]

    return embed


def test_audio_files_and_text_with_audio_match_the_reference(model, reference_audio, tmp_path):
    import soundfile as sf

    from gemb2.data.load import load_file
    from gemb2.parts import Audio
    from gemb2.pipeline.loadspec import load_spec_for

    rng = np.random.default_rng(5)
    t = np.arange(int(2.5 * 16000)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    sf.write(tmp_path / "tone.wav", wave, 16000, subtype="FLOAT")
    [seg] = load_file(str(tmp_path / "tone.wav"), "audio", load_spec_for(model))
    decoded, _ = sf.read(tmp_path / "tone.wav", dtype="float32")
    ours = model.encode([seg.parts], task="document")[0]
    assert cos(ours, reference_audio(PROMPTS["document"], decoded)) >= 0.9999
    mixed = model.encode([[Text("a low hum "), Audio(wave)]], task="query")[0]
    assert cos(mixed, reference_audio(PROMPTS["query"] + "a low hum ", wave)) >= 0.9999
