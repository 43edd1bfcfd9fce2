"""The pooling check of the BERT importer: a sentence-transformers folder's 1_Pooling/config.json in either key
style (current `"pooling_mode": "mean"`, older `"pooling_mode_mean_tokens": true`) is mean pooling, which gemb2
reproduces, so no warning; any other pooling warns, naming it."""

from __future__ import annotations

import json
import logging

import pytest

from gemb2.pretrained.bert import bert_config, pooling_modes
from tests.pretrained.test_bert import HF_CONFIG

MEAN_CONFIGS = [
    {"word_embedding_dimension": 16, "pooling_mode": "mean", "include_prompt": True},  # sentence-transformers >= 5
    {"embedding_dimension": 16, "pooling_mode": ["mean"]},
    {"word_embedding_dimension": 16, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
     "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False},  # the older style
    {"word_embedding_dimension": 16},  # no mode named: sentence-transformers' default, mean
]
OTHER_CONFIGS = [
    ({"word_embedding_dimension": 16, "pooling_mode": "cls"}, "cls"),
    ({"word_embedding_dimension": 16, "pooling_mode": ["mean", "max"]}, "mean+max"),
    ({"word_embedding_dimension": 16, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),
    ({"word_embedding_dimension": 16, "pooling_mode_lasttoken": True}, "lasttoken"),
]


def _folder(tmp_path, pooling: dict):
    (tmp_path / "config.json").write_text(json.dumps(HF_CONFIG))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return tmp_path


@pytest.mark.parametrize("pooling", MEAN_CONFIGS)
def test_mean_pooling_in_either_key_style_gives_no_warning(tmp_path, caplog, pooling):
    with caplog.at_level(logging.WARNING, logger="gemb2"):
        bert_config(_folder(tmp_path, pooling))
    assert not [r for r in caplog.records if "pooling" in r.getMessage()], caplog.text
    assert pooling_modes(pooling) == ("mean",)


@pytest.mark.parametrize("pooling,named", OTHER_CONFIGS)
def test_other_pooling_warns_naming_it(tmp_path, caplog, pooling, named):
    with caplog.at_level(logging.WARNING, logger="gemb2"):
        bert_config(_folder(tmp_path, pooling))
    warned = [r.getMessage() for r in caplog.records if "pooling" in r.getMessage()]
    assert len(warned) == 1 and f"with {named} pooling" in warned[0] and "will differ" in warned[0]
