"""A full-size EmbeddingGemma 2 checkpoint with random weights, laid out as google/embeddinggemma-2 is on the Hub.

    python benchmarks/gemma2_full_folder.py [PATH]      (default /tmp/gemb2-embeddinggemma2-full; ~3 GB, ~1 min)

The shape is transformers' default EmbeddingGemma2Config (the published 740M model): the 24-layer bidirectional
Gemma text encoder (hidden 512, sliding window 512 with a full-attention layer in six, per-layer embeddings,
262,144-token vocabulary, 768-d output) with Gemma 4's default vision tower (16 layers, 768 wide, 16 px patches
pooled 3x3, 280 soft tokens an image) and audio tower (12 conformer layers, 1024 wide): 744M parameters, fp32
safetensors. The weights are random (seed 0): only speed and memory mean anything on them.

The tokenizer is NOT Gemma's (its 262,144-entry SentencePiece model is not available offline): a byte-level BPE
trained with `tokenizers` on 20,000 of the benchmark's kind of sentences (WordNet glosses, stdlib docstrings,
other scripts; tests/pretrained/sentences.py, a different seed from the benchmark's texts) to 32,000 entries, then
padded with unused entries to Gemma's 262,144 ids, the special and media tokens at Gemma's ids (<pad> 0, <eos> 1,
<bos> 2, <|image> 255999, <|image|> 258880, ...). Its token counts are Gemma-like (about 1.3 tokens an English
word), which is what the speed depends on.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

DEFAULT = Path("/tmp/gemb2-embeddinggemma2-full")
VOCAB = 262_144
TRAINED = 32_000
CONTEXT = 2048  # sentence_bert_config.json's max_seq_length: what sentence-transformers cuts a text to
SPECIAL = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
MEDIA_IDS = {  # EmbeddingGemma2Config's defaults, the real checkpoint's ids
    "<|image>": 255_999,
    "<|audio>": 256_000,
    "<|image|>": 258_880,
    "<|audio|>": 258_881,
    "<image|>": 258_882,
    "<audio|>": 258_883,
    "<|video|>": 258_884,
}


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from tests.pretrained.gemma2_folder import gemma_tokenizer
    from tests.pretrained.sentences import varied_sentences

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TRAINED, special_tokens=list(SPECIAL), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(varied_sentences(20_000, seed=12345), trainer)
    vocab = tok.get_vocab()
    merges = [(str(a), str(b)) for a, b in json.loads(tok.to_str())["model"]["merges"]]
    by_id = {i: t for t, i in vocab.items()}
    for t, i in MEDIA_IDS.items():
        by_id[i] = t
    full = {by_id.get(i, f"<unused{i}>"): i for i in range(VOCAB)}
    out = Tokenizer(models.BPE(vocab=full, merges=merges, unk_token="<unk>"))
    out.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    out.decoder = decoders.ByteLevel()
    fast = gemma_tokenizer(out, CONTEXT)
    assert len(fast) == VOCAB and all(fast.convert_tokens_to_ids(t) == i for t, i in MEDIA_IDS.items())
    return fast


def make_full_folder(path: str | Path = DEFAULT, seed: int = 0) -> Path:
    """Write the full-size random checkpoint to `path` unless a complete one is there; returns it."""
    import torch
    from transformers import EmbeddingGemma2Config, EmbeddingGemma2Model
    from transformers.models.gemma4 import Gemma4AudioConfig, Gemma4ImageProcessorPil, Gemma4VisionConfig

    from tests.pretrained.gemma2_folder import _sentence_transformers, _write, read_json

    path = Path(path)
    if (path / "DONE").is_file():
        return path
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    config = EmbeddingGemma2Config(
        vision_config=Gemma4VisionConfig().to_dict(), audio_config=Gemma4AudioConfig().to_dict()
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EmbeddingGemma2Model(config).eval()
    model.save_pretrained(path)
    del model
    tokenizer.save_pretrained(path)
    Gemma4ImageProcessorPil().save_pretrained(path)  # its defaults: 16 px patches, pooled 3x3, 280 soft tokens
    _sentence_transformers(path)
    _write(
        path / "sentence_bert_config.json", {**read_json(path / "sentence_bert_config.json"), "max_seq_length": CONTEXT}
    )
    (path / "DONE").write_text("complete\n")
    return path


if __name__ == "__main__":
    print(make_full_folder(sys.argv[1] if len(sys.argv) > 1 else DEFAULT))
