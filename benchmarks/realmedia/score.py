"""Retrieval on the real-media set (benchmarks/realmedia): per-kind tables and one mixed table, with hubness.

    python -m benchmarks.realmedia.score [--model gemb2-mini] [--split dev|test|both] [--json]
                                         [--fit-data data/emoji/train.jsonl data/speech/train.jsonl ...]

For each half (dev, test) and each table, the hand-written descriptions are text queries and the half's items of
that kind (photo, icon, sound, speech, video, doc; or all of them: the mixed table) are the documents; with
--split both also the two halves together ("all": 244 queries, 106 items). Recall@1/5
and MRR per table; on the mixed table also hubness: for each item, the share of the queries whose target it is
not for which it is the top hit; reported as the largest share and the fraction of items above 2 %.

Systems, all in the same run:

  chance      the expected value of a random ranking (R@k = k / documents)
  MODEL       each --model, the file embedded whole (what `gemb2 embed` does)
  cascade     the item as text, then all-MiniLM-L6-v2: an image its EfficientNet-Lite0 top-1 ImageNet class name,
              audio its Whisper tiny.en transcript (greedy, faster-whisper), a video its frames' top-1 names and its
              transcript, a document its text
  MiniLM      raw all-MiniLM-L6-v2 on the document table (the only one it can embed)
  +words      training-free v2 as item layout: the first --model given, the item embedded as [its recognised words
              as text ("a photo of: tabby, tiger cat, Egyptian cat" top 3 classes; the transcript), the media
              itself] in one sequence (what an image / audio stem emitting those words as WordPiece tokens beside
              its own tokens gives)
  +words+centre  (with --fit-data) the +words vectors with gemb2/model/calibration.py's per-modality calibration,
              fitted (`fit_shift`) on the same layout of the TRAINING manifests given (gemb2/train/calibrate.py's
              choice of files: --fit-per-kind images and audio files, --fit-videos videos): what
              ModelConfig.calibration "centre" does in a model whose stems emit those words

Recognition results (class names, transcripts) are cached in the build folder (recognised.json), keyed by file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.realmedia import build as rm

KINDS = ("photo", "icon", "sound", "speech", "video", "doc")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ranks(qv: np.ndarray, dv: np.ndarray, targets: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(rank of each query's target, 0-based; each query's top document)."""
    s = qv @ dv.T  # (Q, D)
    order = np.argsort(-s, axis=1, kind="stable")
    rank = np.array([int(np.where(order[i] == t)[0][0]) for i, t in enumerate(targets)])
    return rank, order[:, 0]


def metrics(rank: np.ndarray, top: np.ndarray, targets: list[int], n_docs: int, hub: bool) -> dict:
    out = {
        "queries": len(rank),
        "documents": n_docs,
        "recall@1": float(np.mean(rank < 1)),
        "recall@5": float(np.mean(rank < 5)),
        "mrr": float(np.mean(1.0 / (rank + 1))),
    }
    if hub:
        t = np.array(targets)
        share = [float(np.sum((top == d) & (t != d)) / max(1, np.sum(t != d))) for d in range(n_docs)]
        out["hub_max"] = max(share)
        out["hub_items_over_2pct"] = float(np.mean(np.array(share) > 0.02))
    return out


def chance(n_queries: int, n_docs: int) -> dict:
    h = sum(1.0 / r for r in range(1, n_docs + 1)) / n_docs
    return {
        "queries": n_queries,
        "documents": n_docs,
        "recall@1": 1 / n_docs,
        "recall@5": min(1.0, 5 / n_docs),
        "mrr": h,
    }


class Recogniser:
    """EfficientNet-Lite0's ImageNet classes and Whisper tiny.en's words for a file, cached by path."""

    def __init__(self, cache_file: Path):
        self.cache_file = cache_file
        self.memo: dict = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
        self._classifier = self._asr = None
        self.seconds = {"image": 0.0, "asr": 0.0}

    def classes(self, pixels: np.ndarray, k: int = 3) -> list[str]:
        import torch

        from gemb2.model.stems.efficientnet_lite import preprocess
        from gemb2.parts import fit_image
        from gemb2.pretrained.efficientnet import load_efficientnet_lite

        if self._classifier is None:
            self._classifier = load_efficientnet_lite(None, "lite0", num_classes=None).eval()
            assets = Path(rm.HERE).parents[1] / "gemb2/model/assets/imagenet_classes.txt"
            self._names = assets.read_text(encoding="utf-8").splitlines()
        t0 = time.perf_counter()
        x = torch.from_numpy(fit_image(pixels, 224)).permute(2, 0, 1)[None]
        with torch.inference_mode():
            top = self._classifier(preprocess(x))[0].topk(k).indices.tolist()
        self.seconds["image"] += time.perf_counter() - t0
        return [self._names[i] for i in top]

    def words(self, samples: np.ndarray) -> str:
        if self._asr is None:
            from faster_whisper import WhisperModel

            from gemb2.pretrained.weights import whisper_ct2_files

            folder = whisper_ct2_files("tiny.en")[0].parent
            self._asr = WhisperModel(str(folder), device="cpu", compute_type="float32", cpu_threads=2)
        t0 = time.perf_counter()
        segments, _ = self._asr.transcribe(
            samples.astype(np.float32),
            language="en",
            beam_size=1,
            without_timestamps=True,
            condition_on_previous_text=False,
        )
        text = " ".join(s.text.strip() for s in segments).strip()
        self.seconds["asr"] += time.perf_counter() - t0
        return text

    def of(self, key: str, part) -> dict:
        """{"classes": [...], "words": "..."} for a loaded part (an image, audio, or a video: frames + track)."""
        from gemb2.parts import Audio, Image, Video

        if key not in self.memo:
            got: dict = {"classes": [], "words": ""}
            if isinstance(part, Image):
                got["classes"] = self.classes(part.pixels)
            elif isinstance(part, Audio):
                got["words"] = self.words(part.samples)
            elif isinstance(part, Video):
                mid = part.frames[len(part.frames) // 2]
                got["classes"] = self.classes(mid)
                got["words"] = self.words(part.audio.samples) if part.audio is not None else ""
            self.memo[key] = got
            self.cache_file.write_text(json.dumps(self.memo, indent=1))
        return self.memo[key]


def load_parts(rows: list[dict], folder: Path, spec) -> list:
    from gemb2.data.discover import modality_of
    from gemb2.data.load import load_file

    parts = []
    for row in rows:
        path = str(folder / row["path"])
        parts.append(next(iter(load_file(path, modality_of(path) or "text", spec))).parts[0])
    return parts


def as_text(part, rec: dict) -> str:
    from gemb2.parts import Text

    if isinstance(part, Text):
        return part.text
    return " ".join([", ".join(rec["classes"][:1]), rec["words"]]).strip()


def with_words(part, rec: dict) -> list:
    from gemb2.parts import Text

    if isinstance(part, Text):
        return [part]
    said = [rec["words"]] if rec["words"] else []
    seen = ["a photo of: " + ", ".join(rec["classes"])] if rec["classes"] else []
    return [Text(" ".join(seen + said)), part]


def tables(rows: list[dict], split: str) -> dict[str, tuple[list[int], list[int], list[str]]]:
    """table -> (document row indices, each query's target as a position in those, query texts)."""
    out = {}
    for table in (*KINDS, "mixed"):
        docs = [
            i for i, r in enumerate(rows) if split in ("all", r["split"]) and table in ("mixed", r["id"].split("/")[0])
        ]
        targets, queries = [], []
        for pos, i in enumerate(docs):
            for d in rows[i]["descriptions"]:
                targets.append(pos)
                queries.append(d)
        out[table] = (docs, targets, queries)
    return out


def score_system(doc_vecs: np.ndarray, query_vec, rows: list[dict], splits: list[str], only=None) -> dict:
    out = {}
    for split in splits:
        for table, (docs, targets, queries) in tables(rows, split).items():
            if only is not None and table not in only:
                continue
            qv = query_vec(queries)
            rank, top = ranks(qv, doc_vecs[docs], targets)
            out[f"{split}/{table}"] = metrics(rank, top, targets, len(docs), hub=table == "mixed")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    doc = run(args)
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print_tables(doc, doc["splits"], doc["columns"])
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--model", action="append", help="a gemb2 model (repeatable; default gemb2-mini)")
    ap.add_argument("--data", type=Path, default=rm.DEFAULT_OUT, help="the folder benchmarks.realmedia.build fills")
    ap.add_argument("--split", choices=["dev", "test", "both"], default="dev")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--fit-data", type=Path, nargs="+", help="training manifests: also score +words+centre")
    ap.add_argument("--fit-per-kind", type=int, default=200, help="training images / audio files for --fit-data")
    ap.add_argument("--fit-videos", type=int, default=12, help="training videos for --fit-data")
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Every system on the set -> {"set_sha256", "results": {system: {"split/table": metrics}}, "columns", ...}."""
    from gemb2 import load_model
    from gemb2.parts import Text
    from gemb2.pipeline.loadspec import load_spec_for

    t0 = time.perf_counter()
    manifest = rm.build(args.data, log=log)
    if manifest["skipped"]:
        log(f"skipped {len(manifest['skipped'])} items (missing packages): {manifest['skipped'][0]['reason']} ...")
    rows, splits = manifest["items"], ["dev", "test", "all"] if args.split == "both" else [args.split]
    models = args.model or ["gemb2-mini"]
    minilm = load_model("all-MiniLM-L6-v2")
    first = load_model(models[0])
    parts = load_parts(rows, args.data, load_spec_for(first))
    rec = Recogniser(args.data / "recognised.json")
    recs = [rec.of(r["path"], p) for r, p in zip(rows, parts)]
    log(f"recognition: {rec.seconds}")
    results: dict[str, dict] = {"chance": {}}
    for split in splits:
        for table, (docs, targets, _) in tables(rows, split).items():
            results["chance"][f"{split}/{table}"] = chance(len(targets), len(docs))
    timing = {}
    for name in models:
        model = first if name == models[0] else load_model(name)
        t1 = time.perf_counter()
        dv = model.encode([[p] for p in parts], task="document")
        timing[name] = time.perf_counter() - t1
        results[name] = score_system(dv, lambda q, m=model: m.encode(q, task="query"), rows, splits)
        log(f"{name} ({model.model_id}): {timing[name]:.1f} s")
    t1 = time.perf_counter()
    dv = first.encode([with_words(p, r) for p, r in zip(parts, recs)], task="document")
    timing[f"{models[0]}+words"] = time.perf_counter() - t1
    results[f"{models[0]}+words"] = score_system(dv, lambda q: first.encode(q, task="query"), rows, splits)
    if args.fit_data:
        counts = {"image": args.fit_per_kind, "audio": args.fit_per_kind, "video": args.fit_videos}
        shift = fit_words_shift(first, args.fit_data, counts, Recogniser(args.data / "recognised_train.json"))
        dv = centred(dv, shift, [kind_of(p) for p in parts])
        results[f"{models[0]}+words+centre"] = score_system(dv, lambda q: first.encode(q, task="query"), rows, splits)
    dv = minilm.encode([as_text(p, r) for p, r in zip(parts, recs)], task="document")
    results["cascade"] = score_system(dv, lambda q: minilm.encode(q, task="query"), rows, splits)
    dv = minilm.encode([p.text if isinstance(p, Text) else "" for p in parts], task="document")
    results["all-MiniLM-L6-v2"] = score_system(dv, lambda q: minilm.encode(q, task="query"), rows, splits, {"doc"})
    doc = {
        "set_sha256": manifest["set_sha256"],
        "seconds": round(time.perf_counter() - t0, 1),
        "recognition_seconds": rec.seconds,
        "embed_seconds": timing,
        "results": results,
        "recognised": {r["id"]: x for r, x in zip(rows, recs)},
        "splits": splits,
    }
    extra = [f"{models[0]}+words+centre"] if args.fit_data else []
    doc["columns"] = ["chance", "cascade", "all-MiniLM-L6-v2", *models, f"{models[0]}+words", *extra]
    return doc


def kind_of(part) -> str:
    """A loaded part's calibration kind (gemb2/model/layout.py KINDS)."""
    from gemb2.parts import Audio, Image, Video

    return {Image: "image", Audio: "audio", Video: "video"}.get(type(part), "text")


def fit_words_shift(model, manifests: list[Path], per_kind: dict[str, int], rec: Recogniser):
    """calibration.fit_shift on the +words layout of training media (gemb2/train/calibrate.py's files and texts)."""
    from gemb2.data.load import load_file
    from gemb2.model.calibration import fit_shift
    from gemb2.pipeline.loadspec import load_spec_for
    from gemb2.train.calibrate import training_parts

    media, texts = training_parts(manifests, per_kind, 2000)
    spec, vectors = load_spec_for(model), {}
    for kind, paths in media.items():
        log(f"fit: {len(paths)} {kind} training files (recognition cached in {rec.cache_file})")
        parts = [next(iter(load_file(p, kind, spec))).parts[0] for p in paths]
        items = [with_words(p, rec.of(path, p)) for path, p in zip(paths, parts)]
        vectors[kind] = model.encode(items, task="document") if items else np.zeros((0, model.config.out_dim))
    return fit_shift(vectors, model.encode(texts, task="document")).numpy()


def centred(dv: np.ndarray, shift: np.ndarray, kinds: list[str]) -> np.ndarray:
    """The model's own calibration step (calibration.calibrate) on vectors: media moved, text rows kept."""
    import torch

    from gemb2.model.calibration import calibrate
    from gemb2.model.layout import KINDS as ROWS

    k = torch.tensor([ROWS[kind] for kind in kinds])
    return calibrate(torch.from_numpy(dv), torch.from_numpy(shift), k).numpy()


def print_tables(doc: dict, splits: list[str], cols: list[str]) -> None:
    res = doc["results"]
    for split in splits:
        print(f"\n{split} half: Recall@5 / Recall@1 (%), set {doc['set_sha256'][:12]}\n")
        print("| table | queries/docs | " + " | ".join(cols) + " |")
        print("|---|---|" + "---|" * len(cols))
        for table in (*KINDS, "mixed"):
            key = f"{split}/{table}"
            c = res["chance"][key]
            cells = [
                f"{100 * res[s][key]['recall@5']:.1f} / {100 * res[s][key]['recall@1']:.1f}" if key in res[s] else "–"
                for s in cols
            ]
            print(f"| {table} | {c['queries']}/{c['documents']} | " + " | ".join(cells) + " |")
        hubs = [
            f"{100 * res[s][f'{split}/mixed']['hub_max']:.1f} / {100 * res[s][f'{split}/mixed']['hub_items_over_2pct']:.0f}"
            if "hub_max" in res[s].get(f"{split}/mixed", {})
            else "–"
            for s in cols
        ]
        print("| mixed: hub max % / items > 2 % (%) | | " + " | ".join(hubs) + " |")


if __name__ == "__main__":
    sys.exit(main())
