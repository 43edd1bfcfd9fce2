"""Checkpoint folders: exact round trip, strict validation, presets and model ids."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from gemb2.pretrained import PRESETS, ModelSourceError, load_model, model_source_id

from gemb2.model import load_pretrained, save_pretrained


@pytest.fixture
def saved(tmp_path, model):
    return save_pretrained(model, tmp_path / "ckpt")


def test_save_writes_the_four_files_and_no_temporaries(saved):
    assert sorted(p.name for p in saved.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                       "tokenizer.json"]
    assert [p.name for p in saved.parent.iterdir()] == ["ckpt"]
    assert "tiny-random@" in (saved / "README.md").read_text()


def test_round_trip_is_bit_identical(saved, model, media):
    loaded = load_pretrained(saved)
    items = media.every_modality()
    assert np.array_equal(loaded.encode(items), model.encode(items))
    assert loaded.model_id == model.model_id
    assert load_model(str(saved)).model_id == model.model_id


def test_saving_twice_gives_the_same_id_and_replaces_the_folder(saved, model):
    again = save_pretrained(model, saved)
    assert json.loads((again / "config.json").read_text())["model_id"] == model.model_id
    assert sorted(p.name for p in saved.parent.iterdir()) == ["ckpt"]


def test_model_source_id_reads_the_folder_without_loading(saved, model):
    assert model_source_id(str(saved)) == model.model_id
    (saved / "model.safetensors").write_bytes(b"not read")  # proof that no weights are read
    assert model_source_id(str(saved)) == model.model_id


def test_model_source_id_of_a_preset():
    assert model_source_id("tiny") == load_model("tiny").model_id


def _rewrite(saved, change):
    state = load_file(str(saved / "model.safetensors"))
    change(state)
    save_file(state, str(saved / "model.safetensors"))


def test_a_missing_tensor_is_named(saved):
    _rewrite(saved, lambda s: s.pop("audio_stem.position"))
    with pytest.raises(ValueError, match="tensor 'audio_stem.position' is missing"):
        load_pretrained(saved)


def test_an_unexpected_tensor_is_named(saved):
    _rewrite(saved, lambda s: s.update({"pooler.dense.weight": torch.zeros(2, 2)}))
    with pytest.raises(ValueError, match="unexpected tensor 'pooler.dense.weight'"):
        load_pretrained(saved)


def test_a_mis_shaped_tensor_is_named(saved):
    _rewrite(saved, lambda s: s.update({"projection.weight": torch.zeros(32, 64)}))
    with pytest.raises(ValueError, match=r"'projection.weight' has shape \(32, 64\)"):
        load_pretrained(saved)


def test_a_wrong_dtype_is_named(saved):
    _rewrite(saved, lambda s: s.update({"projection.bias": s["projection.bias"].half()}))
    with pytest.raises(ValueError, match="projection.bias.*float16"):
        load_pretrained(saved)


def test_edited_weights_under_a_stored_id_are_refused(saved):
    _rewrite(saved, lambda s: s["projection.bias"].add_(1.0))
    with pytest.raises(ValueError, match="model_id"):
        load_pretrained(saved)


def test_an_unknown_config_key_is_refused(saved):
    doc = json.loads((saved / "config.json").read_text())
    doc["config"]["colour"] = "red"
    (saved / "config.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="colour"):
        load_pretrained(saved)


def test_a_folder_without_safetensors_is_refused(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        load_pretrained(saved)


def test_a_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelSourceError, match="no config.json"):
        load_model(str(tmp_path))
    with pytest.raises(ModelSourceError, match="no config.json"):
        model_source_id(str(tmp_path))


def test_a_corrupt_config_is_a_source_error_for_the_id(saved):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(ModelSourceError, match="invalid JSON"):
        model_source_id(str(saved))


def test_the_default_model_is_the_shipped_release_not_a_random_preset():
    from gemb2.pretrained.release import release_folder
    from gemb2.pretrained.sources import resolve

    assert "gemb2-mini" in PRESETS
    if not (release_folder("gemb2-mini") / "adds.safetensors").is_file():  # a checkout without the release
        for call in (load_model, model_source_id):
            with pytest.raises(ModelSourceError, match="not installed yet") as e:
                call("gemb2-mini")
            assert "--model tiny" in str(e.value)
    else:  # assembled from its parts + its added weights (tests/pretrained/test_release.py loads it)
        assert resolve("gemb2-mini") == ("release", release_folder("gemb2-mini"))


def test_an_unknown_name_lists_the_presets():
    with pytest.raises(ModelSourceError, match="tiny.*gemb2-mini"):
        load_model("no-such-model")
