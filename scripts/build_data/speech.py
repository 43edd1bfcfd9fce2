"""espeak-ng speech <-> text (task `speech-text`), held out by sentence.

    python scripts/build_data/speech.py [--out data/speech] [--limit N] [--emoji-share 0.5]

Short sentences are spoken by espeak-ng in 56 voices (7 English accents x 8 voice variants) at 4
speeds, the voice fixed by a hash of the sentence, and written as 16 kHz mono WAV. The sentences are
emoji names (the same emoji, in the same order, as emoji.py and image_audio.py; an emoji name is
held out here exactly when its image is held out there) and WordNet definitions of at most 10 words
(held out by their word, as in wordnet.py). Pairs: audio (query) -> its text (positive).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import write_splits  # noqa: E402
from emoji import chosen_emoji  # noqa: E402
from media import order_by_hash, speak_to, wordnet_senses  # noqa: E402

MAX_WORDS = 10


def sentences(limit: int | None, emoji_share: float) -> list[tuple[str, str]]:
    """(split key, sentence): emoji names and short WordNet definitions, interleaved by share."""
    n_emoji = None if limit is None else round(limit * emoji_share)
    names = [e.name for e in chosen_emoji(n_emoji)]
    defs = {w: d for w, d, _ in wordnet_senses() if len(d.split()) <= MAX_WORDS}
    words = order_by_hash(list(defs))[: None if limit is None else limit - len(names)]
    return [(n, n) for n in names] + [(w, defs[w]) for w in words]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/speech")
    ap.add_argument("--limit", type=int, default=2000, help="sentences spoken (before the split)")
    ap.add_argument("--emoji-share", type=float, default=0.5, help="fraction of the sentences that are emoji names")
    args = ap.parse_args(argv)
    audio = os.path.join(args.out, "audio")
    rows = []
    for key, text in sentences(args.limit, args.emoji_share):
        path = speak_to(audio, text, text)
        rows.append((key, {"task": "speech-text", "query": [{"path": os.path.relpath(path, args.out)}],
                           "positive": [{"text": text}]}))
    counts = write_splits(args.out, rows)
    print(f"{args.out}: {counts['train']} train, {counts['test']} test pairs", file=sys.stderr)


if __name__ == "__main__":
    main()
