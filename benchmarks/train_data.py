"""Training data loading: WebDataset shards against the JSONL manifest they were converted from, on this CPU.

    python benchmarks/train_data.py [--examples 512] [--batch 32] [--workers 2] [--image 256]

Image-caption examples (a PNG of --image px and its caption; the tiny model's load spec) are written once as
files + a JSONL manifest and converted with `gemb2 data to-shards` (--shard-size 64). Prints examples/s for the
batches the training loop gets (TrainBatch: items decoded, prompts, content ids), no model forward:
  (baseline) the JSONL manifest (ManifestFeed: TaskSampler indices, a random read per file, in-process decode);
  (a)        shards, read in the training process (ShardFeed, data_workers 0);
  (b)        shards with --workers loader processes (ShardFeed, data_workers W);
each as a ratio to the baseline, measured in the same run over the same examples (one epoch, twice; the better).
Results go in BENCHMARKS.md (section "Training data").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.media import write_image


def build(root: Path, n: int, size: int) -> tuple[Path, str]:
    from gemb2.data.shard_write import to_shards

    rows = []
    for i in range(n):
        write_image(root / "img" / f"{i}.png", seed=i, size=(size, size))
        rows.append({"task": "cap", "query": [{"text": f"caption {i}"}], "positive": [{"path": f"img/{i}.png"}]})
    manifest = root / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return manifest, to_shards(manifest, root / "shards", 64)["tasks"]["cap"]["pattern"]


def rate(make, steps: int, batch: int) -> float:
    best = 0.0
    for _ in range(2):
        feed = make()
        t0 = time.perf_counter()
        for _ in range(steps):
            feed.next()
        best = max(best, steps * batch / (time.perf_counter() - t0))
        feed.close()
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--image", type=int, default=256)
    a = ap.parse_args()
    import torch

    from gemb2 import load_model
    from gemb2.pipeline.loadspec import load_spec_for
    from gemb2.train.feeds import make_feed
    from gemb2.train.loop import TrainSettings
    from gemb2.train.shard_feed import ShardSource
    from gemb2.train.tasks import TaskSpec

    torch.set_num_threads(1)
    model = load_model("tiny")
    spec, tasks, steps = load_spec_for(model), {"cap": TaskSpec("cap")}, a.examples // a.batch
    with tempfile.TemporaryDirectory() as tmp:
        manifest, pattern = build(Path(tmp), a.examples, a.image)
        src = [ShardSource((pattern,), "cap", shuffle_buffer=256)]

        def feed(data, workers=0):
            s = TrainSettings(steps=steps, batch_size=a.batch, data_workers=workers)
            return lambda: make_feed(data, tasks, s, spec, model.config, 0, 1)

        base = rate(feed([str(manifest)]), steps, a.batch)
        inproc = rate(feed(src), steps, a.batch)
        workers = rate(feed(src, a.workers), steps, a.batch)
    print(f"{a.examples} image-caption examples ({a.image}px PNG), batch {a.batch}, {os.cpu_count()} CPUs")
    print(f"(baseline) JSONL manifest, in-process       {base:8.1f} examples/s  1.00x")
    print(f"(a)        shards, in-process               {inproc:8.1f} examples/s  {inproc / base:.2f}x")
    print(f"(b)        shards, {a.workers} loader workers         {workers:8.1f} examples/s  {workers / base:.2f}x")


if __name__ == "__main__":
    main()
