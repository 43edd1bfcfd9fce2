"""Emoji image <-> its spoken name (task `image-audio`), held out by emoji name as emoji.py.

    python scripts/build_data/image_audio.py [--out data/image_audio] [--limit N]

The same emoji (same order, same PNG) as emoji.py; the audio is the name spoken by espeak-ng in the
voice speech.py gives that sentence, so the clips are the same samples as speech.py's. Pairs: image
(query) -> speech (positive); test.jsonl also holds speech -> image (task `audio-image`).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import is_test, write_splits  # noqa: E402
from emoji import chosen_emoji  # noqa: E402
from media import save_emoji, speak_to  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/image_audio")
    ap.add_argument("--limit", type=int, default=1000, help="at most this many emoji (before the split)")
    ap.add_argument("--size", type=int, default=160, help="image side in pixels")
    args = ap.parse_args(argv)
    rows = []
    for e in chosen_emoji(args.limit):
        img = save_emoji(os.path.join(args.out, "images"), e, args.size)
        if img is None:
            continue
        wav = speak_to(os.path.join(args.out, "audio"), e.name, e.name)
        image, audio = [{"path": os.path.relpath(img, args.out)}], [{"path": os.path.relpath(wav, args.out)}]
        rows.append((e.name, {"task": "image-audio", "query": image, "positive": audio}))
        if is_test(e.name):
            rows.append((e.name, {"task": "audio-image", "query": audio, "positive": image}))
    counts = write_splits(args.out, rows)
    print(f"{args.out}: {counts['train']} train, {counts['test']} test pairs", file=sys.stderr)


if __name__ == "__main__":
    main()
