"""Text files -> overlapping windows of tokens, each cut from the original text at character offsets.

Decoding: UTF-8 (with or without BOM), UTF-16 LE/BE with a BOM, else legacy 8-bit text as cp1252, else
latin-1 (which decodes any byte). A NUL byte in a text without a UTF-16 BOM means binary: refused.

Chunking: windows of `spec.text_window_tokens` tokens, consecutive windows sharing
`spec.text_overlap_tokens`, with the tokenizer of `spec.tokenizer_file` (HF `tokenizers`, one per process)
or whitespace-separated words when it is None. The tokenizer file's own truncation and padding are turned
off: a window, not the file's max_length, bounds what is embedded, and every token of the text is in one.
Token offsets map each window back to a [start, end) character span of the decoded text; the window's text
is that span of the original (not the normalised tokens). The text is tokenized in blocks that end at a
newline (else at a whitespace, else at MAX_BLOCK_CHARS), so memory follows the block, not the file; a run
of LONG_RUN_CHARS non-space characters (a 50 MB line of one word, a base64 blob) counts as one token and
is not tokenized.
An empty or whitespace-only text gives zero segments (a file with nothing to embed is not an error).

HTML (`HTML_EXTENSIONS`) is read as its visible text (gemb2/data/html.py: title first, no markup or scripts);
its windows' start and end are character offsets in that text, not in the file. Structured text and code
(`DATA_EXTENSIONS`, `CODE_EXTENSIONS`: JSON, CSV, YAML, XML, source files...) are text as they are, with one
difference: there a long run is LONG_RUN_CHARS characters of a blob's alphabet (letters, digits, ``_+/=.-``:
base64, hex, a long number), since a minified JSON or a CSV line has no spaces but is all content; its
punctuation splits it into words that are tokenized (in blocks, so time and memory stay linear).
"""

from __future__ import annotations

import functools
import os
import re
from collections import deque
from collections.abc import Iterator

from gemb2.data.discover import CODE_EXTENSIONS, DATA_EXTENSIONS, HTML_EXTENSIONS
from gemb2.data.segments import SNIPPET_CHARS, LoadError, LoadSpec, Segment
from gemb2.parts import Text

BLOCK_CHARS = 1 << 16  # tokenize this much text at a time (cut at the next newline)
MAX_BLOCK_CHARS = 1 << 20  # ... or at a whitespace, or here, when no newline comes within this many
LONG_RUN_CHARS = 1000  # a run of this many non-space characters is one token, not tokenized (see _token_spans)
_SPACE = re.compile(r"\s")
_WORD = re.compile(r"\S+")
_LONG_RUN = re.compile(rf"(?<!\S)\S{{{LONG_RUN_CHARS},}}")  # tried only where a run starts: linear time
_PROSE = (_LONG_RUN, _WORD)  # (long runs, words when there is no tokenizer)
_DATA = (  # data and code: a long run is of a blob's alphabet; words are runs of it, and punctuation
    re.compile(rf"(?<![\w+/=.\-])[\w+/=.\-]{{{LONG_RUN_CHARS},}}"),
    re.compile(r"[\w+/=.\-]+|[^\s\w+/=.\-]"),
)
_DATA_EXTENSIONS = frozenset(DATA_EXTENSIONS + CODE_EXTENSIONS)


def load_text(path: str, spec: LoadSpec) -> Iterator[Segment]:
    text = read_text(path, spec.max_text_bytes)
    rules = _DATA if os.path.splitext(path)[1].lower() in _DATA_EXTENSIONS else _PROSE
    spans = _token_spans(text, spec.tokenizer_file, rules)
    for i, (start, end) in enumerate(windows(spans, spec.text_window_tokens, spec.text_overlap_tokens)):
        chunk = text[start:end]
        yield Segment(index=i, start=float(start), end=float(end), parts=(Text(chunk),), text=chunk[:SNIPPET_CHARS])


def read_text(path: str, max_bytes: int) -> str:
    """The text of a file: decoded (`decode_text`), or an HTML page's visible text. LoadError when the file
    is larger than `max_bytes` (checked before reading) or is binary."""
    size = os.stat(path).st_size
    if size > max_bytes:
        raise LoadError(f"text file too large: {size} bytes > max_text_bytes {max_bytes}")
    with open(path, "rb") as f:
        if os.path.splitext(path)[1].lower() in HTML_EXTENSIONS:
            from gemb2.data.html import html_text  # html imports this module's decode_text

            return html_text(f.read())
        return decode_text(f.read())


def text_windows(text: str, spec: LoadSpec) -> Iterator[tuple[int, int]]:
    """The [start, end) character spans of the windows `load_text` cuts `text` into (the PDF loader's too)."""
    return windows(_token_spans(text, spec.tokenizer_file), spec.text_window_tokens, spec.text_overlap_tokens)


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


def _token_spans(
    text: str, tokenizer_file: str | None, rules: tuple[re.Pattern, re.Pattern] = _PROSE
) -> Iterator[tuple[int, int]]:
    """Character spans of the tokens of `text`, in order.

    A run of LONG_RUN_CHARS or more non-space characters (a base64 blob, a 50 MB line of one word) is not
    language: it is not tokenized but stands as one token spanning its first LONG_RUN_CHARS characters
    (WordPiece would make it one [UNK] anyway: words over 100 characters are unknown), so that neither the
    tokenizer's time nor a window's text grows with it. `rules` = _DATA (data and code): such a run is of a
    blob's alphabet only, and without a tokenizer a word is a run of it or one punctuation character.
    """
    tokenizer = None if tokenizer_file is None else _tokenizer(os.path.abspath(tokenizer_file))
    pos = 0
    long_run, word = rules
    for m in long_run.finditer(text):
        yield from _spans_between(text, pos, m.start(), tokenizer, word)
        yield m.start(), m.start() + LONG_RUN_CHARS
        pos = m.end()
    yield from _spans_between(text, pos, len(text), tokenizer, word)


def _spans_between(text: str, pos: int, stop: int, tokenizer, word: re.Pattern = _WORD) -> Iterator[tuple[int, int]]:
    """Token spans of text[pos:stop], tokenized in blocks (`word` matches without a tokenizer)."""
    if tokenizer is None:
        for m in word.finditer(text, pos, stop):
            yield m.span()
        return
    while pos < stop:
        cut = _block_end(text, pos, stop)
        enc = tokenizer.encode(text[pos:cut], add_special_tokens=False)
        for start, end in enc.offsets:
            if end > start:
                yield pos + start, pos + end
        pos = cut


def _block_end(text: str, pos: int, stop: int) -> int:
    """End of the block starting at `pos`: after the first newline past BLOCK_CHARS, else after a
    whitespace, else a hard cut; never more than MAX_BLOCK_CHARS (a word cut there splits in two tokens)."""
    if stop - pos <= MAX_BLOCK_CHARS:
        cut = text.find("\n", pos + BLOCK_CHARS, stop)
        return stop if cut < 0 else cut + 1
    limit = pos + MAX_BLOCK_CHARS
    cut = text.find("\n", pos + BLOCK_CHARS, limit)
    if cut >= 0:
        return cut + 1
    m = _SPACE.search(text, pos + BLOCK_CHARS, limit)
    return m.end() if m else limit


@functools.lru_cache(maxsize=4)
def _tokenizer(path: str):
    """One `tokenizers.Tokenizer` per file and process (loading a tokenizer.json costs far more than chunking a small file)."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises plain Exception for a missing or malformed file
        raise ValueError(f"cannot load tokenizer_file {path!r}: {e}") from e
    # A tokenizer.json may carry the model's input budget (all-MiniLM-L6-v2's: truncation to 128 tokens, padding
    # to 128): here it would cut each block to its first 128 tokens and lose the rest of the text. The windows
    # are the budget; the tokenizer only splits.
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
