"""Safe loading through the public API (gemb2.model.load_model): model folders hold only safetensors and
JSON; pickles, tokenizers that ask to run code, unexpected config keys and tensors of the wrong dtype or
shape are refused with a message that names the problem. Nothing here is ever unpickled."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from gemb2 import load_model
from gemb2.model import save_pretrained


class Boom:
    """Unpickling this would append to a file: proof that a pickle was (not) loaded."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "a"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("m") / "model"
    save_pretrained(load_model("tiny"), folder)
    return folder


def copy_of(saved, tmp_path):
    import shutil

    dst = tmp_path / "model"
    shutil.copytree(saved, dst)
    return dst


def test_a_folder_with_only_a_pickle_is_refused(saved, tmp_path):
    m = copy_of(saved, tmp_path)
    (m / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (m / "pytorch_model.bin").write_bytes(pickle.dumps(Boom(str(marker))))
    with pytest.raises(FileNotFoundError, match="no model.safetensors .*only from safetensors"):
        load_model(str(m))
    assert not marker.exists()


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pkl", "optimizer.pth"])
def test_a_folder_holding_a_pickle_beside_safetensors_is_refused(saved, tmp_path, name):
    m = copy_of(saved, tmp_path)
    marker = tmp_path / "unpickled"
    (m / name).write_bytes(pickle.dumps(Boom(str(marker))))
    try:
        with pytest.raises(ValueError, match=f"{name}.*pickle"):
            load_model(str(m))
    finally:
        assert not marker.exists()  # whatever happens, it was never unpickled


def test_a_folder_holding_a_pickle_is_never_unpickled(saved, tmp_path):
    m = copy_of(saved, tmp_path)
    marker = tmp_path / "unpickled"
    for name in ("pytorch_model.bin", "model.pt", "weights.pkl"):
        (m / name).write_bytes(pickle.dumps(Boom(str(marker))))
    try:
        load_model(str(m))
    except ValueError:
        pass  # refused, as test_a_folder_holding_a_pickle_beside_safetensors_is_refused requires
    assert not marker.exists()


@pytest.mark.parametrize("pre_tokenizer", [
    {"type": "PyPreTokenizer", "module": "os", "function": "system"},
    {"type": "Custom", "class": "evil.Tokenizer"},
])
def test_a_tokenizer_that_asks_to_run_code_is_refused(saved, tmp_path, pre_tokenizer):
    m = copy_of(saved, tmp_path)
    tok = json.loads((m / "tokenizer.json").read_text())
    tok["pre_tokenizer"] = pre_tokenizer
    (m / "tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(Exception, match=r"(?i)variant|unknown|tokenizer") as e:
        load_model(str(m))
    assert "\n" not in str(e.value).strip()[:300] or "tokenizer" in str(e.value).lower()


def test_unexpected_keys_in_config_are_refused(saved, tmp_path):
    m = copy_of(saved, tmp_path)
    doc = json.loads((m / "config.json").read_text())
    doc["config"]["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (m / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="unknown model config key.*auto_map"):
        load_model(str(m))
    doc["config"].pop("auto_map")
    doc["trust_remote_code"] = True
    (m / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="unknown key.*trust_remote_code"):
        load_model(str(m))


@pytest.mark.parametrize("change", ["dtype", "shape", "missing", "extra"])
def test_tensors_are_checked_before_use(saved, tmp_path, change):
    m = copy_of(saved, tmp_path)
    state = load_file(str(m / "model.safetensors"))
    name = sorted(k for k in state if k.endswith("weight") and state[k].ndim == 2)[0]
    if change == "dtype":
        state[name] = state[name].to(torch.float16)
        pattern = f"tensor '{name}' has dtype torch.float16"
    elif change == "shape":
        state[name] = state[name][:-1]
        pattern = f"tensor '{name}' has shape"
    elif change == "missing":
        del state[name]
        pattern = f"tensor '{name}' is missing"
    else:
        state["backdoor.weight"] = torch.zeros(2)
        pattern = "unexpected tensor 'backdoor.weight'"
    save_file(state, str(m / "model.safetensors"))
    with pytest.raises(ValueError, match=pattern):
        load_model(str(m))
