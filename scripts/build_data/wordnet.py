"""WordNet word <-> gloss (task `wordnet-word-gloss`), held out by word.

    python scripts/build_data/wordnet.py [--out data/wordnet] [--limit N]

For each noun, verb and adjective lemma of WordNet (Debian `wordnet`, /usr/share/wordnet/data.*),
its first (most frequent) sense gives one pair: the word (query) -> the definition (positive), with
WordNet's quoted usage examples removed (they often contain the word itself). `--limit N` keeps N
words in a fixed, hash-mixed order.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_splits  # noqa: E402
from media import order_by_hash, wordnet_senses  # noqa: E402


def pairs(limit: int | None) -> list[tuple[str, str]]:
    """(word, definition) in the fixed order."""
    senses = {lemma: definition for lemma, definition, _ in wordnet_senses()}
    return [(w, senses[w]) for w in order_by_hash(list(senses))[: limit or None]]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/wordnet")
    ap.add_argument("--limit", type=int, default=None, help="at most this many words (before the split)")
    args = ap.parse_args(argv)
    rows = [(w, {"task": "wordnet-word-gloss", "query": [{"text": w}], "positive": [{"text": d}]})
            for w, d in pairs(args.limit)]
    counts = write_splits(args.out, rows)
    print(f"{args.out}: {counts['train']} train, {counts['test']} test pairs", file=sys.stderr)


if __name__ == "__main__":
    main()
