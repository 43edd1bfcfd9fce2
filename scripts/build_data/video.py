"""Generated videos <-> captions (task `video-caption`), held out by video, with held-out emoji only.

    python scripts/build_data/video.py [--out data/video] [--limit N] [--emoji N]

Each video is an H.264 + AAC slideshow (ffmpeg, 160x160, 10 fps) of 2-3 emoji images, each shown for
the same share of the narration: espeak-ng speaking the caption ("grinning face, then red car") in
a voice fixed by the caption. A video is held out by its key; a held-out video shows only emoji
whose names are held out in emoji.py (and a training video only training emoji), so no test emoji is
seen in training by any task. Pairs: caption (query) -> video (positive); test.jsonl also holds
video -> caption (task `video-caption-reverse`). Needs (Debian): ffmpeg, espeak-ng, fonts-noto-color-emoji.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import is_test, write_splits  # noqa: E402
from emoji import chosen_emoji  # noqa: E402
from media import SAMPLE_RATE, require, save_emoji, speak, stable_hash, write_wav  # noqa: E402

MIN_SLIDE_S = 1.2


def make_video(path: str, images: list[str], narration: np.ndarray) -> None:
    """Slides shown for equal shares of the narration (at least MIN_SLIDE_S each), narration as AAC."""
    require("ffmpeg")
    slide = max(MIN_SLIDE_S, len(narration) / SAMPLE_RATE / len(images) + 0.2)
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "n.wav")
        write_wav(wav, narration)
        args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
        for img in images:
            args += ["-loop", "1", "-t", f"{slide:.2f}", "-i", img]
        args += ["-i", wav]
        chain = "".join(f"[{i}:v]" for i in range(len(images)))
        args += ["-filter_complex", f"{chain}concat=n={len(images)}:v=1:a=0,fps=10,format=yuv420p[v]",
                 "-map", "[v]", "-map", f"{len(images)}:a", "-c:v", "libx264", "-preset", "veryfast",
                 "-crf", "30", "-c:a", "aac", "-b:a", "48k", "-ar", str(SAMPLE_RATE), "-af", "apad",
                 "-t", f"{slide * len(images):.2f}", "-threads", "1", path]
        subprocess.run(args, check=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/video")
    ap.add_argument("--limit", type=int, default=300, help="videos made (before the split)")
    ap.add_argument("--emoji", type=int, default=1000, help="draw from the first N emoji of emoji.py's order")
    args = ap.parse_args(argv)
    pool = {False: [], True: []}  # held out? -> (name, png)
    for e in chosen_emoji(args.emoji):
        png = save_emoji(os.path.join(args.out, "images"), e)
        if png is not None:
            pool[is_test(e.name)].append((e.name, png))
    os.makedirs(os.path.join(args.out, "videos"), exist_ok=True)
    rows = []
    for i in range(args.limit):
        key = f"video-{i:05d}"
        test = is_test(key)
        rng = np.random.default_rng(stable_hash(key))
        picks = [pool[test][j] for j in rng.choice(len(pool[test]), size=int(rng.integers(2, 4)), replace=False)]
        caption = ", then ".join(name for name, _ in picks)
        path = os.path.join(args.out, "videos", f"{key}.mp4")
        if not os.path.exists(path):
            make_video(path, [png for _, png in picks], speak(caption, caption))
        video = [{"path": os.path.relpath(path, args.out)}]
        rows.append((key, {"task": "video-caption", "query": [{"text": caption}], "positive": video}))
        if test:
            rows.append((key, {"task": "video-caption-reverse", "query": video, "positive": [{"text": caption}]}))
    counts = write_splits(args.out, rows)
    print(f"{args.out}: {counts['train']} train, {counts['test']} test pairs", file=sys.stderr)


if __name__ == "__main__":
    main()
