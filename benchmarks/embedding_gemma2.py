"""EmbeddingGemma 2 at full size: gemb2 against transformers + its processor, whole processes, texts/s and images/s.

    python benchmarks/embedding_gemma2.py [--texts 96] [--images 4] [--rounds 4] [--threads 2] [--batch-size 32]
                                          [--device cpu|cuda] [--precision fp32|bf16] [--folder PATH] [--tiny]

The model is the full-size default configuration with random weights (benchmarks/gemma2_full_folder.py builds it
once, ~3 GB, in /tmp; its tokenizer is a stand-in with Gemma's vocabulary size, see there). Each round runs two
whole processes one after the other, the baseline first in odd rounds and gemb2 first in even ones (a shared
machine's other load lands on both), each with the same torch threads (OMP_NUM_THREADS and torch.set_num_threads)
on the same inputs:

    baseline   sentence-transformers' encode procedure over transformers' own parts: AutoTokenizer (padding,
               truncation to the folder's max_seq_length), Gemma4ImageProcessorPil, EmbeddingGemma2Model under
               torch.inference_mode, texts sorted by length in batches of --batch-size, mean pooling over the
               attention mask, L2 normalisation; the folder's "document" prompt before every text and image.
               (sentence-transformers 6.2 itself cannot load this model here: its processor wants torchvision
               for the video processor, which is not installed.)
    gemb2      load_model(folder).encode(texts, task="document"), then encode of the images as Image parts

Inputs: N varied sentences (tests/pretrained/sentences.py, seed 1: short, glosses, docstrings, other scripts, 15 %
long) and M decoded RGB images of mixed sizes and aspect ratios (smooth random fields, 320x240 to 1280x960).
Each process reports its model load time, its texts and images time and its peak RSS; the script prints the
per-round figures, the median throughput of each side, the ratio gemb2 / baseline (goal >= 1.2) and the minimum
cosine between the two sides' vectors (parity: >= 0.9999 in fp32).
--tiny: the tiny test checkpoint (tests/pretrained/gemma2_folder.py) instead, a few seconds: checks the script.
--precision bf16: both sides in bf16 (on a GPU, what benchmarks/gpu.sh runs; on a CPU with AMX, gemb2's opt-in).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
SIDES = ("baseline", "gemb2")


def images(n: int, seed: int = 0):
    """n decoded RGB images, (H, W, 3) uint8, of mixed sizes: smooth random fields (a coarse grid upsampled)."""
    import numpy as np

    sizes = [(240, 320), (768, 1024), (500, 300), (960, 1280), (480, 640), (300, 500)]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        coarse = rng.integers(0, 256, (h // 20 + 2, w // 20 + 2, 3)).astype(np.float32)
        ys, xs = np.linspace(0, coarse.shape[0] - 1.001, h), np.linspace(0, coarse.shape[1] - 1.001, w)
        y0, x0 = ys.astype(int), xs.astype(int)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        c = coarse
        img = (c[y0][:, x0] * (1 - fy) * (1 - fx) + c[y0 + 1][:, x0] * fy * (1 - fx)
               + c[y0][:, x0 + 1] * (1 - fy) * fx + c[y0 + 1][:, x0 + 1] * fy * fx)  # fmt: skip
        out.append(np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8))
    return out


def _baseline(folder: str, texts: list[str], pics: list, args) -> tuple[float, Callable, Callable]:
    """Load transformers' model and processor parts; returns (load s, text fn, image fn)."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from transformers import AutoTokenizer, EmbeddingGemma2Model
    from transformers.models.gemma4 import Gemma4ImageProcessorPil

    t0 = time.perf_counter()
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    hf: Any = EmbeddingGemma2Model.from_pretrained(folder, dtype=dtype).to(args.device).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    proc = Gemma4ImageProcessorPil.from_pretrained(folder)
    st = json.loads(Path(folder, "config_sentence_transformers.json").read_text(encoding="utf-8"))
    context = json.loads(Path(folder, "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"]
    prompt = st["prompts"]["document"]
    load = time.perf_counter() - t0

    def pool(out, mask) -> np.ndarray:
        h = out.last_hidden_state.float()
        m = mask.unsqueeze(-1).to(h.dtype)
        return F.normalize((h * m).sum(1) / m.sum(1), dim=-1).cpu().numpy()

    def run_texts() -> np.ndarray:
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # sentence-transformers: longest first
        out = np.zeros((len(texts), hf.config.text_config.embedding_dim), np.float32)
        with torch.inference_mode():
            for s in range(0, len(order), args.batch_size):
                idx = order[s : s + args.batch_size]
                b = tok([prompt + texts[i] for i in idx], padding=True, truncation=True, max_length=context,
                        return_tensors="pt").to(args.device)  # fmt: skip
                out[idx] = pool(hf(**b), b["attention_mask"])
        return out

    def run_images() -> np.ndarray:
        vecs = []
        with torch.inference_mode():
            for s in range(0, len(pics), args.batch_size):
                got = proc(images=pics[s : s + args.batch_size], return_tensors="pt")
                slots = [
                    tok.boi_token + tok.image_token * int(n) + tok.eoi_token for n in got["num_soft_tokens_per_image"]
                ]
                b = tok([prompt + x for x in slots], padding=True, return_tensors="pt").to(args.device)
                pv = got["pixel_values"].to(args.device, dtype)
                vecs.append(pool(hf(**b, pixel_values=pv, image_position_ids=got["image_position_ids"].to(args.device)),
                                 b["attention_mask"]))  # fmt: skip
        return np.concatenate(vecs)

    return load, run_texts, run_images


def _gemb2(folder: str, texts: list[str], pics: list, args) -> tuple[float, Callable, Callable]:
    from gemb2.parts import Image
    from gemb2.pretrained.sources import load_model

    t0 = time.perf_counter()
    model = load_model(folder).to(args.device)
    load = time.perf_counter() - t0
    items = [Image(p) for p in pics]

    def run_texts():
        return model.encode(texts, task="document", precision=args.precision, batch_size=args.ours_batch_size)

    def run_images():
        return model.encode(items, task="document", precision=args.precision, batch_size=args.ours_batch_size)

    return load, run_texts, run_images


def one_side(args) -> None:
    """The child process: load, warm up, time texts then images, save the vectors, print a JSON line."""
    import resource

    import numpy as np
    import torch

    from tests.pretrained.sentences import varied_sentences

    torch.set_num_threads(args.threads)
    texts, pics = varied_sentences(args.texts, seed=1), images(args.images)
    load, run_texts, run_images = (_baseline if args.side == "baseline" else _gemb2)(args.folder, texts, pics, args)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    got, secs = {}, {}
    for name, fn in (("texts", run_texts), ("images", run_images)):
        if args.device.startswith("cuda"):
            fn()  # warm-up on a GPU (kernels, allocator); on a CPU the first call is what a user's process pays
        t0 = time.perf_counter()
        got[name] = fn()
        sync()
        secs[name] = time.perf_counter() - t0
    np.savez(args.out, **got)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    print(json.dumps({"load_s": load, "texts_s": secs["texts"], "images_s": secs["images"], "peak_rss_mib": rss}))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=96, help="sentences")
    ap.add_argument("--images", type=int, default=4, help="images")
    ap.add_argument("--rounds", type=int, default=4, help="rounds, each one process per side, order alternating")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads for both")
    ap.add_argument("--batch-size", type=int, default=32, help="the baseline's batch size (sentence-transformers')")
    ap.add_argument("--ours-batch-size", type=int, default=None, help="gemb2's [default: its own choice]")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]: both run there")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="both sides' dtype")
    ap.add_argument("--folder", default=None, help="an EmbeddingGemma 2 folder [default: the full-size random one]")
    ap.add_argument("--tiny", action="store_true", help="the tiny test checkpoint: checks that the script runs")
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        one_side(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.folder is None:
            if args.tiny:
                from tests.pretrained.gemma2_folder import make_folder

                args.folder = str(make_folder(os.path.join(tmp, "tiny")))
            else:
                from benchmarks.gemma2_full_folder import make_full_folder

                args.folder = str(make_full_folder())
        compare(args, tmp)


def compare(args, tmp: str) -> None:
    import numpy as np

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads), PYTHONPATH=ROOT)
    flags = ["--texts", str(args.texts), "--images", str(args.images), "--threads", str(args.threads),
             "--batch-size", str(args.batch_size), "--device", args.device, "--precision", args.precision,
             "--folder", args.folder] + (["--ours-batch-size", str(args.ours_batch_size)] if args.ours_batch_size else [])  # fmt: skip
    print(f"{args.texts} texts, {args.images} images, {args.device}, {args.precision}, {args.threads} threads, "
          f"baseline batch {args.batch_size}, folder {args.folder}", file=sys.stderr)  # fmt: skip
    runs: dict[str, list[dict]] = {s: [] for s in SIDES}
    for r in range(args.rounds):
        for side in SIDES if r % 2 == 0 else SIDES[::-1]:
            out = os.path.join(tmp, f"{side}.npz")
            cmd = [sys.executable, os.path.abspath(__file__), "--side", side, "--out", out, *flags]
            p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"{side} failed ({p.returncode}): {p.stderr[-3000:]}")
            m = json.loads(p.stdout.strip().splitlines()[-1])
            runs[side].append(m)
            print(f"  round {r + 1}: {side:<8} load {m['load_s']:6.1f} s, {args.texts / m['texts_s']:8.2f} texts/s, "
                  f"{args.images / m['images_s']:7.3f} images/s, peak RSS {m['peak_rss_mib']:6.0f} MiB", file=sys.stderr)  # fmt: skip
    vec = {s: np.load(os.path.join(tmp, f"{s}.npz")) for s in SIDES}
    med = {s: {k: statistics.median(m[k] for m in runs[s]) for k in runs[s][0]} for s in SIDES}
    print(f"median of {args.rounds} rounds   load s   texts/s   images/s   peak RSS MiB")
    for s in SIDES:
        name = "transformers (baseline)" if s == "baseline" else "gemb2"
        print(f"{name:<24}{med[s]['load_s']:7.1f} {args.texts / med[s]['texts_s']:9.2f} "
              f"{args.images / med[s]['images_s']:10.3f} {med[s]['peak_rss_mib']:14.0f}")  # fmt: skip
    for k, unit in (("texts", "texts/s"), ("images", "images/s")):
        ratios = [b[f"{k}_s"] / g[f"{k}_s"] for b, g in zip(runs["baseline"], runs["gemb2"])]
        a, b = vec["gemb2"][k].astype(np.float64), vec["baseline"][k].astype(np.float64)
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        print(f"ratio gemb2 / baseline, {unit}: {med['baseline'][f'{k}_s'] / med['gemb2'][f'{k}_s']:.3f} of the medians "
              f"(per round: {', '.join(f'{x:.2f}' for x in ratios)}; goal >= 1.2); min cosine {cos.min():.7f}")  # fmt: skip


if __name__ == "__main__":
    main()
