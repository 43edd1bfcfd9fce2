"""Text files -> overlapping windows of tokens, each cut from the original text at character offsets.

Decoding: UTF-8 (with or without BOM), UTF-16 LE/BE with a BOM, else legacy 8-bit text as cp1252, else
latin-1 (which decodes any byte). A NUL byte in a text without a UTF-16 BOM means binary: refused.

Chunking: windows of `spec.text_window_tokens` tokens, consecutive windows sharing
`spec.text_overlap_tokens`, with the tokenizer of `spec.tokenizer_file` (HF `tokenizers`, one per process)
or whitespace-separated words when it is None. Token offsets map each window back to a [start, end)
character span of the decoded text; the window's text is that span of the original (not the normalised
tokens). The text is tokenized in blocks that end at a newline, so memory follows the block, not the file.
An empty or whitespace-only text gives zero segments (a file with nothing to embed is not an error).
"""

from __future__ import annotations

import functools
import os
import re
from collections import deque
from typing import Iterator

from gemb2.data.segments import SNIPPET_CHARS, LoadError, Segment
from gemb2.data.spec import LoadSpec
from gemb2.parts import Text

BLOCK_CHARS = 1 << 16  # tokenize this much text at a time (cut at the next newline)


def load_text(path: str, spec: LoadSpec) -> Iterator[Segment]:
    size = os.stat(path).st_size
    if size > spec.max_text_bytes:
        raise LoadError(f"text file too large: {size} bytes > max_text_bytes {spec.max_text_bytes}")
    with open(path, "rb") as f:
        text = decode_text(f.read())
    spans = _token_spans(text, spec.tokenizer_file)
    for i, (start, end) in enumerate(windows(spans, spec.text_window_tokens, spec.text_overlap_tokens)):
        chunk = text[start:end]
        yield Segment(index=i, start=float(start), end=float(end), parts=(Text(chunk),), text=chunk[:SNIPPET_CHARS])


def decode_text(data: bytes) -> str:
    """bytes -> str by BOM, then UTF-8, then cp1252, then latin-1. Raises LoadError on binary data."""
    if data.startswith(b"\xef\xbb\xbf"):
        return _decode(data[3:], "utf-8")
    if data.startswith(b"\xff\xfe"):
        return _decode(data[2:], "utf-16-le")
    if data.startswith(b"\xfe\xff"):
        return _decode(data[2:], "utf-16-be")
    if b"\x00" in data:
        raise LoadError("binary data (NUL bytes) in a text file")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise LoadError(f"invalid {encoding} text at byte {e.start}") from None


def windows(spans: Iterator[tuple[int, int]], size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """Token (start, end) character spans -> window (start, end) spans of `size` tokens, `overlap` shared.

    The last window holds whatever tokens remain after the previous one (it is never a pure overlap).
    """
    buf: deque[tuple[int, int]] = deque()
    fresh = 0  # tokens in buf not covered by an emitted window
    for span in spans:
        buf.append(span)
        fresh += 1
        if len(buf) == size:
            yield buf[0][0], buf[-1][1]
            for _ in range(size - overlap):
                buf.popleft()
            fresh = 0
    if fresh:
        yield buf[0][0], buf[-1][1]


def _token_spans(text: str, tokenizer_file: str | None) -> Iterator[tuple[int, int]]:
    """Character spans of the tokens of `text`, in order."""
    if tokenizer_file is None:
        for m in re.finditer(r"\S+", text):
            yield m.span()
        return
    tokenizer = _tokenizer(os.path.abspath(tokenizer_file))
    pos = 0
    while pos < len(text):
        cut = text.find("\n", pos + BLOCK_CHARS)
        cut = len(text) if cut < 0 else cut + 1
        enc = tokenizer.encode(text[pos:cut], add_special_tokens=False)
        for start, end in enc.offsets:
            if end > start:
                yield pos + start, pos + end
        pos = cut


@functools.lru_cache(maxsize=4)
def _tokenizer(path: str):
    """One `tokenizers.Tokenizer` per file and process (loading a tokenizer.json costs ~100 ms)."""
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises plain Exception for a missing or malformed file
        raise ValueError(f"cannot load tokenizer_file {path!r}: {e}") from e
