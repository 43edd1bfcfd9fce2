"""The text tokenizer: a thin wrapper over the `tokenizers` library reading a `tokenizer.json`.

The default vocabulary is vendored at `assets/wordpiece-uncased.json`: bert-base-uncased WordPiece
as shipped with sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0). Texts are encoded WITHOUT
special tokens; the model places [CLS]/[SEP] around the whole interleaved sequence itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

DEFAULT_TOKENIZER = Path(__file__).parent / "assets" / "wordpiece-uncased.json"


class TextTokenizer:
    """Encodes text to token ids; knows the ids of [CLS], [SEP] and [PAD]."""

    def __init__(self, json_text: str, path: str | None = None):
        from tokenizers import Tokenizer

        self.json_text = json_text
        self.path = path  # the file it was read from (loader processes may reopen it), or None
        self._tok = Tokenizer.from_str(json_text)
        self._tok.no_truncation()  # the model truncates, with its own budget
        self._tok.no_padding()
        self.cls_id = self._special("[CLS]")
        self.sep_id = self._special("[SEP]")
        self.pad_id = self._special("[PAD]")
        self.digest = hashlib.sha256(json_text.encode("utf-8")).hexdigest()

    @classmethod
    def from_file(cls, path: str | Path = DEFAULT_TOKENIZER) -> TextTokenizer:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {path}")
        return cls(path.read_text(encoding="utf-8"), str(path.resolve()))

    def _special(self, token: str) -> int:
        i = self._tok.token_to_id(token)
        if i is None:
            raise ValueError(f"the tokenizer has no {token} token; gemb2 needs [CLS], [SEP] and [PAD]")
        return i

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Many texts at once (the Rust side runs them in parallel)."""
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids))

    def to_str(self) -> str:
        """The tokenizer.json text (as `tokenizers.Tokenizer.to_str`, but the exact text it was read from)."""
        return self.json_text

    def save(self, path: str | Path) -> None:
        """Write the exact tokenizer.json this tokenizer was read from."""
        Path(path).write_text(self.json_text, encoding="utf-8")
