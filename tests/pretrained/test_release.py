"""Shipped releases: the weights a release adds are applied to its assembled parts, every name and shape checked;
`gemb2-mini` (when its added weights ship and its parts are installed) is a real, trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gemb2 import load_model
from gemb2.model import Gemb2Model, tiny
from gemb2.pretrained.release import apply_adds, release_folder


def test_set_and_low_rank_updates_are_applied():
    m = Gemb2Model(tiny())
    name = next(n for n, t in m.state_dict().items() if t.ndim == 2 and n.startswith("backbone.") and "query" in n)
    w0 = m.state_dict()[name].clone()
    out, inp = w0.shape
    b, a = torch.randn(out, 2), torch.randn(2, inp)
    apply_adds(m, {"set.modality_embeddings.weight": torch.ones_like(m.modality_embeddings.weight),
                   f"lowrank_b.{name}": b, f"lowrank_a.{name}": a})
    assert torch.equal(m.modality_embeddings.weight, torch.ones_like(m.modality_embeddings.weight))
    torch.testing.assert_close(m.state_dict()[name], w0 + b @ a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("adds, message", [
    ({"set.no.such.weight": torch.zeros(1)}, "'set.no.such.weight' names no tensor"),
    ({"set.modality_embeddings.weight": torch.zeros(2, 2)}, "has shape (2, 2)"),
    ({"lowrank_b.projection.weight": torch.zeros(64, 2)}, "do not make a (64, 64) update"),
    ({"scale.projection.weight": torch.zeros(1)}, "unknown tensor kind in 'scale.projection.weight'"),
])
def test_bad_added_weights_are_named(adds, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_adds(Gemb2Model(tiny()), adds)


def test_unknown_release_is_refused():
    with pytest.raises(ValueError, match="unknown release 'gemb2-huge'"):
        release_folder("gemb2-huge")


@pytest.fixture(scope="module")
def mini():
    if not (release_folder("gemb2-mini") / "adds.safetensors").is_file():
        pytest.skip("gemb2-mini's added weights are not in this checkout")
    return load_model("gemb2-mini")  # needs its parts' weight packages: a clear error when they are missing


def test_gemb2_mini_is_assembled_from_parts_plus_its_added_weights(mini):
    assert mini.model_id.startswith("gemb2-mini-v2.1@") and mini.config.out_dim == 384
    assert mini.config.image_stem == "efficientnet" and mini.config.audio_stem == "whisper"
    q = mini.encode(["a small domestic cat"], task="query")
    d = mini.encode(["feline mammal usually having thick soft fur", "a function that parses JSON text"],
                    task="document")
    assert q @ d[0] > q @ d[1]  # a trained text space, not a random one
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)


def test_gemb2_mini_embeds_text_exactly_as_all_minilm_l6_v2(mini):
    """Its align stage froze the text path and it has no prompts: text retrieval is MiniLM's to the last digit."""
    from gemb2.pretrained.weights import minilm_folder

    texts = ["a small domestic cat", "flag: Kiribati", "def parse(s): return json.loads(s)", "Grüße, 東京"]
    minilm = load_model(str(minilm_folder()))
    for task in ("query", "document"):
        np.testing.assert_allclose(mini.encode(texts, task=task), minilm.encode(texts, task=None), atol=1e-6)

