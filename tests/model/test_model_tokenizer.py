"""The tokenizer wrapper over the vendored WordPiece vocabulary."""

from __future__ import annotations

import pytest

from gemb2.model.tokenizer import TextTokenizer


def test_vendored_wordpiece_encodes_without_special_tokens():
    tok = TextTokenizer.from_file()
    assert tok.vocab_size == 30522
    assert (tok.cls_id, tok.sep_id, tok.pad_id) == (101, 102, 0)
    ids = tok.encode("Hello world, a red car!")
    assert ids == [7592, 2088, 1010, 1037, 2417, 2482, 999]  # bert-base-uncased ids
    assert tok.decode(ids) == "hello world, a red car!"


def test_encode_batch_equals_encode_and_does_not_truncate():
    tok = TextTokenizer.from_file()
    texts = ["first text", "", "word " * 1000]
    assert tok.encode_batch(texts) == [tok.encode(t) for t in texts]
    assert len(tok.encode(texts[2])) == 1000


def test_save_writes_the_same_file(tmp_path):
    tok = TextTokenizer.from_file()
    tok.save(tmp_path / "tokenizer.json")
    again = TextTokenizer.from_file(tmp_path / "tokenizer.json")
    assert again.digest == tok.digest


def test_a_tokenizer_without_cls_is_refused():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    t = Tokenizer(WordLevel({"[PAD]": 0, "[SEP]": 1, "hello": 2}, unk_token="[PAD]"))
    with pytest.raises(ValueError, match=r"\[CLS\]"):
        TextTokenizer(t.to_str())


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        TextTokenizer.from_file(tmp_path / "nope.json")


def test_path_and_to_str_let_another_process_rebuild_it(tmp_path):
    tok = TextTokenizer.from_file()
    assert tok.path is not None and TextTokenizer.from_file(tok.path).digest == tok.digest
    assert TextTokenizer(tok.to_str()).encode("a red car") == tok.encode("a red car")
