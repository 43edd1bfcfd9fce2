"""Emoji images <-> names and CLDR keywords (tasks `emoji-image-name`, `emoji-keywords-image`), held out by name.

    python scripts/build_data/emoji.py [--out data/emoji] [--limit N] [--size 160]

Each fully-qualified emoji of Unicode's emoji-test.txt (skin-tone variants left out) that Noto Color
Emoji can draw becomes a PNG (drawn with Pillow, as scripts/make_examples.py does) and two pairs:
image -> its CLDR short name ("grinning face"), and its CLDR keywords ("face | grin") -> image
(when it has keywords besides the name). test.jsonl also holds the reverse direction, name -> image
(task `emoji-name-image`), so retrieval is measured both ways. `--limit N` keeps N emoji in a fixed,
hash-mixed order. Needs (Debian): unicode-data, unicode-cldr-core, fonts-noto-color-emoji.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import is_test, write_splits  # noqa: E402
from media import emoji_list, order_by_hash, save_emoji  # noqa: E402


def chosen_emoji(limit: int | None):
    """The emoji used, in the fixed order; the same list for every builder given the same limit."""
    by_name = {e.name: e for e in emoji_list()}
    for name in order_by_hash(list(by_name))[: limit or None]:
        yield by_name[name]


def rows(out: str, limit: int | None, size: int):
    for e in chosen_emoji(limit):
        path = save_emoji(os.path.join(out, "images"), e, size)
        if path is None:
            continue
        image = [{"path": os.path.relpath(path, out)}]
        yield e.name, {"task": "emoji-image-name", "query": image, "positive": [{"text": e.name}]}
        if e.keywords:
            yield e.name, {"task": "emoji-keywords-image", "query": [{"text": " | ".join(e.keywords)}],
                           "positive": image}
        if is_test(e.name):
            yield e.name, {"task": "emoji-name-image", "query": [{"text": e.name}], "positive": image}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/emoji")
    ap.add_argument("--limit", type=int, default=None, help="at most this many emoji (before the split)")
    ap.add_argument("--size", type=int, default=160, help="image side in pixels")
    args = ap.parse_args(argv)
    counts = write_splits(args.out, list(rows(args.out, args.limit, args.size)))
    print(f"{args.out}: {counts['train']} train, {counts['test']} test pairs", file=sys.stderr)


if __name__ == "__main__":
    main()
