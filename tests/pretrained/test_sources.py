"""Model sources beyond presets and gemb2 folders: the weight-package preset, Hugging Face folders, hf: sources."""

from __future__ import annotations

import os

import numpy as np
import pytest

from gemb2.pretrained import ModelSourceError, load_model, model_source_id
from gemb2.pretrained.sources import FOLDER_PRESETS, resolve
from gemb2.pretrained.weights import minilm_folder
from tests.system import need_weights


def test_the_minilm_preset_is_a_text_only_model_from_its_weight_package():
    folder = need_weights(minilm_folder)
    m = load_model("all-MiniLM-L6-v2")
    assert m.config.name == "all-MiniLM-L6-v2" and m.config.modalities == ("text",)
    assert model_source_id("all-MiniLM-L6-v2") == m.model_id
    assert resolve(str(folder)) == ("hf", folder)
    by_folder = load_model(str(folder))  # same weights, named after the folder
    assert np.allclose(by_folder.encode(["a cat"]), m.encode(["a cat"]))


def test_unknown_names_list_every_preset():
    with pytest.raises(ModelSourceError, match="tiny.*gemb2-mini.*all-MiniLM-L6-v2.*hf:ORG/NAME"):
        load_model("no-such-model")
    assert "all-MiniLM-L6-v2" in FOLDER_PRESETS


def test_a_malformed_hub_source_is_refused_before_any_network():
    with pytest.raises(ModelSourceError, match="expected hf:ORG/NAME"):
        load_model("hf:just-a-name")


@pytest.mark.skipif(os.environ.get("HF_HUB_OFFLINE") != "1", reason="needs HF_HUB_OFFLINE=1 (no network in tests)")
def test_a_hub_source_offline_and_not_cached_is_a_one_line_error():
    with pytest.raises(ModelSourceError, match="hf:gemb2-tests/no-such-model: cannot fetch"):
        load_model("hf:gemb2-tests/no-such-model")
