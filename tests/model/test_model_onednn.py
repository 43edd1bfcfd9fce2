"""gemb2.model.onednn: the oneDNN inference path gives the vectors of the ordinary path and never leaks into
training, LoRA, or export; a weight changed in place is seen at once (no stale packed copy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gemb2 import load_model
from gemb2.model import onednn
from gemb2.pretrained.weights import minilm_folder
from gemb2.train.lora import apply_lora
from tests.pretrained.sentences import varied_sentences
from tests.system import need_weights

needs_fast = pytest.mark.skipif(not onednn.enabled(), reason="no oneDNN fast path on this build / CPU")


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _taken(model, fn) -> int:
    """How many oneDNN linear calls `fn` makes (profiler op names)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key == "mkldnn::_linear_pointwise")


@needs_fast
def test_fast_path_gives_the_ordinary_paths_vectors_for_every_modality(model, media):
    items = media.every_modality() + ["a short text", "a much longer text " * 40]
    assert _taken(model, lambda: model.encode(items)) > 0  # the fast path really ran
    fast_v = model.encode(items)
    with onednn.disabled():
        assert _taken(model, lambda: model.encode(items)) == 0
        slow_v = model.encode(items)
    assert _cos(fast_v, slow_v).min() >= 0.9999
    np.testing.assert_allclose(fast_v, slow_v, atol=1e-5)


@needs_fast
def test_a_weight_changed_in_place_is_used_at_once():
    m = load_model("tiny")
    before = m.encode(["the packed weights must follow the module"])
    with torch.no_grad():
        for layer in m.backbone.encoder.layer:
            layer.intermediate.dense.weight.mul_(-1.5)
            layer.attention.self.value.weight.add_(0.05)
    after = m.encode(["the packed weights must follow the module"])
    with onednn.disabled():
        reference = m.encode(["the packed weights must follow the module"])
    assert _cos(before, after).min() < 0.999  # the change shows ...
    np.testing.assert_allclose(after, reference, atol=1e-5)  # ... exactly as the ordinary path computes it


@needs_fast
def test_training_lora_and_grad_mode_take_the_ordinary_path():
    m = load_model("tiny")
    batch = m.collate(["gradients must flow"], task=None)
    m.train()
    assert _taken(m, lambda: m(batch).sum().backward()) == 0  # autograd on: never the fast path
    assert m.backbone.encoder.layer[0].intermediate.dense.weight.grad is not None
    m.eval()
    apply_lora(m.backbone, rank=2, alpha=4.0, targets=("query", "key", "value", "dense"))
    x = torch.randn(1, 3, m.config.hidden)
    lora_q = m.backbone.encoder.layer[0].attention.self.query
    assert type(lora_q) is not nn.Linear
    assert not onednn.eligible(x, (lora_q,))
    with torch.no_grad():
        assert _taken(m, lambda: m(batch)) == 0  # every backbone Linear is wrapped: all ordinary


@needs_fast
def test_fast_path_only_for_float32_cpu_inference():
    lin = nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with torch.no_grad():
        assert onednn.eligible(x, (lin,))
        assert not onednn.eligible(x.double(), (lin,))
        assert not onednn.eligible(x.bfloat16(), (lin,))
        with onednn.disabled():
            assert not onednn.eligible(x, (lin,))
    assert not onednn.eligible(x, (lin,))  # grad mode on
    with torch.no_grad():
        y = onednn.linear(lin, (lin,), x, gelu=True)
        torch.testing.assert_close(y, torch.nn.functional.gelu(lin(x)), atol=1e-6, rtol=1e-5)


@pytest.mark.slow
@needs_fast
def test_minilm_fast_path_matches_the_ordinary_path_on_varied_sentences():
    m = load_model(str(need_weights(minilm_folder)))
    texts = varied_sentences(300, seed=7)  # short, long (past 256 tokens), non-ASCII
    fast_v = m.encode(texts, task=None)
    with onednn.disabled():
        slow_v = m.encode(texts, task=None)
    assert _cos(fast_v, slow_v).min() >= 0.9999


def test_length_batches_respect_items_and_padded_tokens():
    from gemb2.model.model import length_batches

    lengths = [300, 120, 100, 100, 40, 30, 30, 10, 10, 10, 10, 2]
    b = length_batches(lengths, batch_size=4, max_tokens=250)
    assert [i for chunk in b for i in chunk] == list(range(len(lengths)))  # every item once, in order
    for chunk in b:
        assert len(chunk) <= 4
        assert len(chunk) == 1 or len(chunk) * lengths[chunk[0]] <= 250  # padded to the chunk's longest
    assert b[0] == [0]  # longer than the budget: alone
    assert length_batches(lengths, batch_size=5) == [list(range(0, 5)), list(range(5, 10)), [10, 11]]
    assert length_batches([], batch_size=3) == []


def test_encode_batching_and_precision_choices_keep_the_vectors(model):
    texts = [f"sentence number {i} " + "word " * (i % 37) for i in range(90)]
    ref = model.encode(texts)
    np.testing.assert_allclose(model.encode(texts, batch_size=7, max_tokens=300), ref, atol=1e-5)
    np.testing.assert_allclose(model.encode(texts, precision="fp32", batch_size=1), ref, atol=1e-5)
    bf16 = model.encode(texts, precision="bf16")
    assert bf16.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)  # re-normalised in fp32
    assert _cos(bf16, ref).min() > 0.999
    with pytest.raises(ValueError, match="precision"):
        model.encode(texts, precision="int4")
    with pytest.raises(ValueError, match="needs a GPU"):
        model.encode(texts, precision="fp16")
    with pytest.raises(ValueError, match="batch_size"):
        model.encode(texts, batch_size=0)


def test_onednn_matmul_for_training_is_fp32_exact_and_restores_the_setting():
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Linear(384, 1536), nn.GELU(), nn.Linear(1536, 384))
    x = torch.randn(64, 384)

    def run():
        lin.zero_grad()
        y = lin(x)
        y.pow(2).sum().backward()
        return y.detach(), [p.grad.clone() for p in lin.parameters()]

    before = torch.backends.mkldnn.matmul.fp32_precision
    y0, g0 = run()
    with onednn.onednn_matmul() as on:
        assert on == (torch.backends.mkldnn.matmul.fp32_precision == "bf16")
        y1, g1 = run()
    assert torch.backends.mkldnn.matmul.fp32_precision == before
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)  # sums over 64 rows: fp32 rounding only
    with onednn.disabled(), onednn.onednn_matmul() as on:
        assert on is False and torch.backends.mkldnn.matmul.fp32_precision == before
