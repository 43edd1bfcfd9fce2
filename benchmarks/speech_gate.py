"""Which of Whisper's gates keep spoken words and drop beeps: no-speech probability, mean log-probability, or both.

    python benchmarks/speech_gate.py [--data data] [--clips 150] [--model gemb2-mini-v2.1]

Chosen on data the real-media evaluation never sees: `--clips` clips of the speech TRAINING split
(scripts/build_data/speech.py: espeak-ng names and descriptions, a fixed shuffle) as speech, and as non-speech
the freedesktop theme's sounds that are not in the real-media set (its channel tests, which are speech, left out)
plus four tones. Each window is encoded by the model's audio stem and decoded greedily by Whisper with no gate;
then, per gate, how many spoken clips keep words (and the share of their sentence's words recovered, over all
clips) and how many non-speech sounds get words.
"""

from __future__ import annotations

import argparse
import glob
import json
import random
import re
import sys
from pathlib import Path

import numpy as np

FREEDESKTOP = "/usr/share/sounds/freedesktop/stereo"


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data"), help="the folder scripts/build_data wrote")
    ap.add_argument("--clips", type=int, default=150)
    ap.add_argument("--model", default="gemb2-mini-v2.1", help="a model whose recognise_speech_from is 'stem'")
    args = ap.parse_args(argv)
    import torch
    from ctranslate2 import StorageView

    from gemb2 import load_model
    from gemb2.data.load import load_file
    from gemb2.data.segments import LoadSpec

    model = load_model(args.model)
    rec, stem = model.recogniser, model.audio_stem

    def decoded(samples: np.ndarray) -> tuple[float, float, str]:
        """(no-speech probability, mean log-probability, text) of the window, nothing gated."""
        with torch.inference_mode():
            h = stem.encode(torch.from_numpy(samples[None].astype(np.float32))).numpy()
        return rec.generate(StorageView.from_array(np.ascontiguousarray(h)))

    def load(path: str) -> np.ndarray:
        return next(iter(load_file(path, "audio", LoadSpec()))).parts[0].samples

    lines = (args.data / "speech" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    random.Random(0).shuffle(rows)
    spoken = []
    for row in rows[: args.clips]:
        nsp, lp, text = decoded(load(str(args.data / "speech" / row["query"][0]["path"])))
        said = words(row["positive"][0]["text"])
        spoken.append((nsp, lp, text, len(said & words(text)) / max(1, len(said))))
    items = json.loads((Path(__file__).parent / "realmedia" / "queries.json").read_text(encoding="utf-8"))["items"]
    used = {Path(i["source"]["path"]).name for i in items if "path" in i.get("source", {})}
    other = [p for p in sorted(glob.glob(f"{FREEDESKTOP}/*.oga")) if Path(p).name not in used and "channel" not in p]
    noise = [decoded(load(p)) for p in other]
    for k in range(4):
        t = np.arange(16000 * (1 + 3 * k)) / 16000
        noise.append(decoded((0.3 * np.sin(2 * np.pi * (300 + 200 * k) * t)).astype(np.float32)))
    print(f"{args.model}: {len(spoken)} spoken training clips, {len(noise)} non-speech ({len(other)} sounds, 4 tones)")
    print("\n| gate | spoken clips with words | word recall (all clips) | non-speech with words |")
    print("|---|---|---|---|")
    has_text = [any(c.isalnum() for c in n[2]) for n in noise]
    for name, keep in (
        ("no-speech <= 0.4 and log-prob >= -1 (v2)", lambda nsp, lp: nsp <= 0.4 and lp >= -1),
        ("no-speech <= 0.4 (v2.1)", lambda nsp, lp: nsp <= 0.4),
        ("no-speech <= 0.6 (Whisper's)", lambda nsp, lp: nsp <= 0.6),
        ("not (no-speech > 0.6 and log-prob < -1) (Whisper's transcribe)", lambda nsp, lp: not (nsp > 0.6 and lp < -1)),
    ):
        kept = [s for s in spoken if keep(s[0], s[1])]
        loud = sum(1 for n, t in zip(noise, has_text) if t and keep(n[0], n[1]))
        recall = sum(s[3] for s in kept) / len(spoken)
        print(f"| {name} | {len(kept)} / {len(spoken)} | {100 * recall:.1f} % | {loud} / {len(noise)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
