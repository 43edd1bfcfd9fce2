"""Fit a release's per-modality calibration (gemb2/model/calibration.py) on training data and write it into the release.

    python -m gemb2.train.calibrate FOLDER DATA.jsonl... [--per-kind 200] [--videos N] [--texts 2000] [--json]

FOLDER is a release folder (gemb2/pretrained/assets/<name>/: parts.json, config.json, adds.safetensors). The
model is loaded from it WITHOUT calibration; the training manifests' media files (`{"path": ...}` parts, relative
to each manifest's folder) are embedded as documents, at most --per-kind of each of image and audio (--videos
videos, default the same), and
their text parts (at most --texts) too; each modality's shift is the text mean minus its mean (`fit_shift`). The
choice of files is a fixed order (crc32 of the path, then the path) and the means are taken in float64, so the same
data gives the same bytes. Writes "set.calibration_shift" into adds.safetensors, "calibration": "centre" into
config.json and the new model_id.json (the id changes: the vectors do).

Fit it on training data only (for gemb2-mini: scripts/build_data/ emoji, speech, video and wordnet train.jsonl);
never on the evaluation set (benchmarks/realmedia) or on scikit-image's / scikit-learn's sample photos.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np

from gemb2.model.calibration import BUFFER, fit_shift
from gemb2.model.layout import KINDS

MEDIA = ("image", "audio", "video")


def training_parts(
    manifests: list[Path], per_kind: int | dict[str, int], n_texts: int
) -> tuple[dict[str, list[str]], list[str]]:
    """({kind: media file paths}, texts) from manifests' examples, each list in the fixed order and cut to size
    (`per_kind`: one count for every medium, or {kind: count})."""
    from gemb2.data.discover import modality_of

    media: dict[str, set[str]] = {k: set() for k in MEDIA}
    texts: set[str] = set()
    for manifest in manifests:
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            example = json.loads(line)
            for part in [p for side in ("query", "positive") for p in example.get(side, [])]:
                if "path" in part:
                    path = str(manifest.parent / part["path"])
                    kind = modality_of(path)
                    if kind in media:
                        media[kind].add(path)
                elif isinstance(part.get("text"), str) and part["text"].strip():
                    texts.add(part["text"])
    counts: dict[str, int] = per_kind if isinstance(per_kind, dict) else {k: per_kind for k in MEDIA}
    return {k: fixed_order(v)[: counts.get(k, 0)] for k, v in media.items()}, fixed_order(texts)[:n_texts]


def fixed_order(xs: set[str]) -> list[str]:
    return sorted(xs, key=lambda s: (zlib.crc32(s.encode("utf-8")), s))


def fit(model, media: dict[str, list[str]], texts: list[str], log=lambda msg: None):
    """The shifts for `model` (its calibration switched off while embedding) -> (len(KINDS), D) float32 tensor."""
    from gemb2.data.load import load_file
    from gemb2.pipeline.loadspec import load_spec_for

    config = model.config
    model.config = config.replace(calibration="none")
    try:
        spec, vectors = load_spec_for(model), {}
        for kind, paths in media.items():
            if paths:
                log(f"embedding {len(paths)} {kind} files")
                vectors[kind] = model.encode([list(next(iter(load_file(p, kind, spec))).parts) for p in paths])
        log(f"embedding {len(texts)} texts")
        text = model.encode(texts, task="document")
    finally:
        model.config = config
    return fit_shift(vectors, text)


def write(folder: Path, shift) -> str:
    """Put `shift` into the release folder (adds, config.json, model_id.json). -> the new model id"""
    from safetensors.torch import load_file, save_file

    from gemb2.pretrained.release import write_model_id

    adds = load_file(str(folder / "adds.safetensors"))
    adds[f"set.{BUFFER}"] = shift.contiguous()
    save_file(dict(sorted(adds.items())), str(folder / "adds.safetensors"))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["calibration"] = "centre"
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return write_model_id(folder)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="the release folder (parts.json, config.json, adds.safetensors)")
    ap.add_argument("manifests", type=Path, nargs="+", help="training manifests (train.jsonl)")
    ap.add_argument("--per-kind", type=int, default=200, help="media files per modality (default 200)")
    ap.add_argument("--videos", type=int, help="video files (default: --per-kind)")
    ap.add_argument("--texts", type=int, default=2000, help="texts (default 2000)")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    from gemb2.pretrained.release import load_release_folder

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    for m in args.manifests:
        if not m.is_file():
            ap.error(f"no such manifest: {m}")
    counts = {"image": args.per_kind, "audio": args.per_kind, "video": args.per_kind}
    if args.videos is not None:
        counts["video"] = args.videos
    media, texts = training_parts(args.manifests, counts, args.texts)
    shift = fit(load_release_folder(args.folder), media, texts, log)
    model_id = write(args.folder, shift)
    out = {"model_id": model_id, "files": {k: len(v) for k, v in media.items()}, "texts": len(texts)}
    out["shift_norm"] = {k: round(float(np.linalg.norm(shift[KINDS[k]].numpy())), 4) for k in MEDIA}
    print(json.dumps(out) if args.json else f"calibration written to {args.folder}: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
