"""Retrieval quality on the held-out splits: gemb2 models against baselines measured in the same run.

    python benchmarks/quality.py --model runs/gemb2-mini/soup/final [--model runs/gemb2-mini/init ...]
                                 [--data data] [--json] [--out results.json]

Each --model is scored with `gemb2.eval.retrieval.evaluate` (what `gemb2 eval` runs) on the test
splits the scripts in scripts/build_data/ write: per task, Recall@1/5/10, nDCG@10 and MRR of its
queries against all of the task's documents. The frozen encoders' features are cached across tasks
and models (gemb2.train.feature_cache: the same pretrained EfficientNet/Whisper weights and the same
input give the same features), which changes no number. Baselines, computed here on the same pairs:

  chance        random rankings (the mean of 20 draws)
  cascade       every medium turned into text, then all-MiniLM-L6-v2: an image becomes its EfficientNet-Lite0
                ImageNet top-1 class name (gemb2/model/assets/imagenet_classes.txt), audio its Whisper
                tiny.en transcript (greedy, through faster-whisper: the repo has no Whisper decoder; this
                script is its only user), a video the transcript of its audio track
  MiniLM        raw all-MiniLM-L6-v2 on the text-only tasks

Results go to stdout (a Markdown table; --json for one JSON object), progress to stderr.

The real-media set (photos, icons, sounds, speech, videos, documents with hand-written descriptions, a mixed
table and its hubness) is scored by benchmarks/realmedia/score.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

SPLITS = ["emoji", "speech", "image_audio", "video", "wordnet", "stdlib"]
TEXT_TASKS = {"wordnet-word-gloss", "docstring-code"}
PAIRS = {  # task -> (query modality, document modality)
    "emoji-image-name": ("image", "text"), "emoji-name-image": ("text", "image"),
    "emoji-keywords-image": ("text", "image"), "speech-text": ("audio", "text"),
    "image-audio": ("image", "audio"), "audio-image": ("audio", "image"),
    "video-caption": ("text", "video"), "video-caption-reverse": ("video", "text"),
    "wordnet-word-gloss": ("text", "text"), "docstring-code": ("text", "text"),
}
METRICS = ("recall@1", "recall@5", "recall@10", "ndcg@10", "mrr")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def task_pairs(manifest, task):
    """As `gemb2 eval`: distinct queries and documents (by content id) and each query's relevant set."""
    from gemb2.eval.retrieval import retrieval_pool

    return retrieval_pool(manifest.examples(task, range(manifest.tasks[task])))


def score(qv: np.ndarray, q_ids: list, dv: np.ndarray, d_ids: list, relevant: dict) -> dict:
    from gemb2.eval.metrics import retrieval_metrics

    order = np.argsort(-(qv @ dv.T), axis=1, kind="stable")  # (N, M)
    return retrieval_metrics([[d_ids[j] for j in row] for row in order], [relevant[q] for q in q_ids])


def chance(manifest, tasks, draws: int = 20) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for task in tasks:
        queries, docs, relevant = task_pairs(manifest, task)
        q_ids, d_ids = list(queries), list(docs)
        runs = [score(rng.standard_normal((len(q_ids), 8)), q_ids, rng.standard_normal((len(d_ids), 8)), d_ids,
                      relevant) for _ in range(draws)]
        out[task] = {m: float(np.mean([r[m] for r in runs])) for m in METRICS}
    return out


class Cascade:
    """Media -> text (ImageNet class name, Whisper transcript), then a text model."""

    def __init__(self, spec):
        from faster_whisper import WhisperModel

        from gemb2.pretrained.efficientnet import load_efficientnet_lite
        from gemb2.pretrained.weights import whisper_ct2_files

        self.spec = spec
        self.classifier = load_efficientnet_lite(None, "lite0", num_classes=None).eval()
        assets = Path(__file__).resolve().parents[1] / "gemb2/model/assets/imagenet_classes.txt"
        self.classes = assets.read_text(encoding="utf-8").splitlines()
        ct2_folder = whisper_ct2_files("tiny.en")[0].parent  # model.bin, config.json, tokenizer.json, vocabulary
        self.asr = WhisperModel(str(ct2_folder), device="cpu", compute_type="float32", cpu_threads=2)
        self._memo: dict = {}

    def image_text(self, pixels: np.ndarray) -> str:
        from gemb2.model.stems.efficientnet_lite import preprocess
        from gemb2.parts import fit_image

        x = torch.from_numpy(fit_image(pixels, 224)).permute(2, 0, 1)[None]  # (1, 3, 224, 224) uint8
        with torch.inference_mode():
            return self.classes[int(self.classifier(preprocess(x)).argmax())]

    def audio_text(self, samples: np.ndarray) -> str:
        segments, _ = self.asr.transcribe(samples.astype(np.float32), language="en", beam_size=1,
                                          without_timestamps=True, condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments).strip()

    def item_text(self, item) -> str:
        from gemb2.data.manifest_items import load_item
        from gemb2.parts import Audio, Image, Text, Video

        key = tuple(p.key().__repr__() for p in item)
        if key not in self._memo:
            texts = []
            for p in load_item(item, self.spec):
                if isinstance(p, Text):
                    texts.append(p.text)
                elif isinstance(p, Image):
                    texts.append(self.image_text(p.pixels))
                elif isinstance(p, Audio):
                    texts.append(self.audio_text(p.samples))
                elif isinstance(p, Video) and p.audio is not None:
                    texts.append(self.audio_text(p.audio.samples))
            self._memo[key] = " ".join(texts)
        return self._memo[key]

    def evaluate(self, text_model, manifest, tasks) -> tuple[dict, dict]:
        """-> ({task: metrics}, {task: a few (query text, document text) examples})."""
        out, shown = {}, {}
        for task in tasks:
            queries, docs, relevant = task_pairs(manifest, task)
            q_ids, d_ids = list(queries), list(docs)
            q_txt = [self.item_text(queries[i]) for i in q_ids]
            d_txt = [self.item_text(docs[i]) for i in d_ids]
            qv = text_model.encode(q_txt, task="query")
            dv = text_model.encode(d_txt, task="document")
            out[task] = score(qv, q_ids, dv, d_ids, relevant)
            shown[task] = list(zip(q_txt[:3], [d_txt[d_ids.index(next(iter(relevant[q])))] for q in q_ids[:3]]))
        return out, shown


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="a gemb2 model (repeatable)")
    ap.add_argument("--data", default="data", help="the folder scripts/build_data wrote")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--no-baselines", action="store_true", help="only the --model rows (chance is always computed)")
    ap.add_argument("--feature-cache", help="a safetensors file of frozen-encoder features: read if present, "
                    "written at the end (the features of the same weights and inputs; no number changes)")
    args = ap.parse_args(argv)

    from gemb2 import load_model
    from gemb2.data.manifest import Manifest
    from gemb2.eval.retrieval import evaluate
    from gemb2.pipeline.loadspec import load_spec_for
    from gemb2.train.feature_cache import FeatureCache

    paths = [str(Path(args.data) / s / "test.jsonl") for s in SPLITS if (Path(args.data) / s / "test.jsonl").is_file()]
    manifest = Manifest(paths)
    tasks = [t for t in PAIRS if t in manifest.tasks]
    t0 = time.perf_counter()
    results: dict[str, dict] = {"chance": chance(manifest, tasks)}
    cache = FeatureCache(16 << 30)
    if args.feature_cache and Path(args.feature_cache).is_file():
        log(f"feature cache: {cache.load(args.feature_cache)} rows from {args.feature_cache}")
    for name in args.model:
        model = load_model(name).requires_grad_(False)  # evaluation only: every encoder is frozen, so cached
        log(f"{name}: {model.model_id}")
        with cache.attached(model):
            results[name] = evaluate(model, paths, tasks=tasks, log=lambda m: log(f"  {m}"))
        log(f"  {cache.stats()}")
    if args.feature_cache:
        cache.save(args.feature_cache)
    examples = {}
    if not args.no_baselines:
        minilm = load_model("all-MiniLM-L6-v2")
        text_tasks = [t for t in tasks if t in TEXT_TASKS]  # none with --data holding media splits only
        if text_tasks:  # (evaluate's tasks=[] would mean every task, media ones too)
            results["all-MiniLM-L6-v2"] = evaluate(minilm, paths, tasks=text_tasks)
        spec = load_spec_for(load_model(args.model[0]))
        results["cascade"], examples = Cascade(spec).evaluate(minilm, manifest, [t for t in tasks if t not in TEXT_TASKS])
    doc = {"seconds": round(time.perf_counter() - t0, 1), "tasks": {t: {"pair": "->".join(PAIRS[t])} for t in tasks},
           "results": results, "cascade_examples": examples,
           "sizes": {t: {"queries": results[args.model[0]][t]["queries"], "documents": results[args.model[0]][t]["documents"]}
                     for t in tasks}}
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    if args.json:
        print(json.dumps(doc))
        return
    cols = ["chance", "cascade", "all-MiniLM-L6-v2", *args.model]
    for metric in ("recall@1", "ndcg@10"):
        print(f"\n{metric} (%)\n")
        print("| task | pair | queries/docs | " + " | ".join(cols) + " |")
        print("|---|---|---|" + "---|" * len(cols))
        for t in tasks:
            cells = [f"{100 * results[c][t][metric]:.1f}" if t in results.get(c, {}) else "" for c in cols]
            size = doc["sizes"][t]
            print(f"| {t} | {'->'.join(PAIRS[t])} | {size['queries']}/{size['documents']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
