"""Deterministic, varied English-and-more sentences for text parity tests and benchmarks.

Sources that are on every test machine, no download: WordNet glosses (Debian `wordnet`,
/usr/share/wordnet/data.*), the docstrings of the Python standard library, and Unicode
character names (`unicodedata`) with the characters themselves. The mix:

    short       1-3 words, some empty or blank
    gloss       a WordNet definition, sometimes with its example sentence and extra punctuation
    docstring   a paragraph of a stdlib docstring (code, quotes, brackets)
    unicode     accented, Greek, Cyrillic, Arabic, Hebrew, Devanagari, CJK, emoji, next to their names
    long        several glosses and docstrings joined: 300-700 words, past 256 tokens

No sentence holds a line break (so they can go through `gemb2 embed -` one per line).
"""

from __future__ import annotations

import importlib
import inspect
import random
import unicodedata
from functools import lru_cache
from pathlib import Path

WORDNET = Path("/usr/share/wordnet")
_MODULES = ("builtins", "os", "os.path", "json", "re", "collections", "itertools", "functools", "pathlib",
            "string", "textwrap", "random", "statistics", "datetime", "shutil", "subprocess", "argparse")
_SCRIPTS = [(0x00C0, 0x017F), (0x0391, 0x03C9), (0x0410, 0x044F), (0x05D0, 0x05EA), (0x0627, 0x064A),
            (0x0905, 0x0939), (0x3041, 0x3096), (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0x1F300, 0x1F5FF),
            (0x2190, 0x21FF), (0x2200, 0x22FF)]


def _one_line(s: str) -> str:
    return " ".join(s.split())


@lru_cache(maxsize=1)
def _glosses() -> tuple[str, ...]:
    out = []
    for part in ("noun", "verb", "adj", "adv"):
        path = WORDNET / f"data.{part}"
        if not path.is_file():
            continue
        with path.open(encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "| " not in line:
                    continue  # the licence header
                out.append(_one_line(line.split("| ", 1)[1]))
    return tuple(out)


@lru_cache(maxsize=1)
def _docstrings() -> tuple[str, ...]:
    out = []
    for name in _MODULES:
        mod = importlib.import_module(name)
        for attr in sorted(dir(mod)):
            doc = inspect.getdoc(getattr(mod, attr, None))
            if doc and not attr.startswith("_"):
                out.extend(_one_line(p) for p in doc.split("\n\n") if p.strip())
    return tuple(dict.fromkeys(out))  # unique, in order


@lru_cache(maxsize=1)
def _chars() -> tuple[tuple[str, str], ...]:
    out = []
    for lo, hi in _SCRIPTS:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            name = unicodedata.name(ch, "")
            if name and unicodedata.category(ch)[0] in "LSN":
                out.append((ch, name))
    return tuple(out)


def varied_sentences(n: int = 1000, seed: int = 0) -> list[str]:
    """`n` sentences, the same for the same (n, seed) on every machine with the same WordNet and Python."""
    rng = random.Random(seed)
    glosses, docs, chars = _glosses(), _docstrings(), _chars()
    texts = glosses or docs  # WordNet is preferred; the docstrings alone still give a varied set

    def words(k: int) -> str:
        return " ".join(rng.choice(rng.choice(texts).split()) for _ in range(k))

    def unicode_line() -> str:
        picks = [rng.choice(chars) for _ in range(rng.randint(1, 8))]
        if rng.random() < 0.5:
            return " ".join(f"{c} ({name.lower()})" for c, name in picks)
        return "".join(c for c, _ in picks) + " " + rng.choice(texts)

    def long_text() -> str:
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < rng.randint(300, 700):
            parts.append(rng.choice(texts) if rng.random() < 0.7 else rng.choice(docs))
        return " ".join(parts)

    makers = [
        (0.10, lambda: rng.choice(["", " ", "a", "?", "ok", "OK!!", "x" * 150]) if rng.random() < 0.1 else words(rng.randint(1, 3))),
        (0.35, lambda: rng.choice(texts) + rng.choice(["", ".", "!", "?!", " ...", ";", ' "quoted"', " (sic)"])),
        (0.20, lambda: rng.choice(docs)),
        (0.20, unicode_line),
        (0.15, long_text),
    ]
    weights = [w for w, _ in makers]
    out = []
    for _ in range(n):
        make = rng.choices([m for _, m in makers], weights)[0]
        out.append(make().replace("\r", " ").replace("\n", " "))
    return out
