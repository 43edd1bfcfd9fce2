"""Training throughput: samples/s of the training step (embed both sides, Matryoshka InfoNCE, backward,
AdamW), and on a GPU the model FLOPs utilisation.

    python benchmarks/train.py [--model tiny] [--batch-size 32] [--steps 10] [--tokens 64] [--cache-chunk 0]

Inputs are synthetic texts of `--tokens` words (no disk, no loaders: this measures the model side).
Baseline in the same run: the forward pass alone under inference_mode, so the ratio says what the
backward pass, the loss and the optimizer cost. MFU uses the usual estimate of 6 * parameters *
tokens FLOPs per trained sample, N the non-embedding parameters (Kaplan et al. 2020, section 2.1), against the GPU's bf16 peak
given by --peak-tflops (default 989 for an H100 SXM dense bf16).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import torch


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=64, help="words per synthetic text")
    ap.add_argument("--cache-chunk", type=int, default=0, help="> 0: GradCache with chunks of this size")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    args = ap.parse_args(argv)

    from gemb2 import load_model
    from gemb2.train.cached import GradCache
    from gemb2.train.infonce import InfoNCELoss
    from gemb2.train.matryoshka import MatryoshkaLoss

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_model(args.model).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    loss_fn = MatryoshkaLoss(InfoNCELoss(0.05), model.config.matryoshka_dims)
    words = [w.strip() for w in open("/usr/share/dict/words", errors="ignore")][:5000] if \
        __import__("os").path.exists("/usr/share/dict/words") else [f"w{i}" for i in range(5000)]
    rng = random.Random(0)
    text = lambda: " ".join(rng.choice(words) for _ in range(args.tokens))  # noqa: E731
    batches = [([text() for _ in range(args.batch_size)], [text() for _ in range(args.batch_size)])
               for _ in range(args.steps + 1)]
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else \
        __import__("contextlib").nullcontext
    encode = lambda items: model(model.collate(items, None).to(device)).float()  # noqa: E731
    tokens = model.collate(batches[0][0], None).mask.sum().item() / args.batch_size  # tokens per item

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step(q, d):
        opt.zero_grad(set_to_none=True)
        with amp():
            if args.cache_chunk:
                ch = lambda xs: [xs[i : i + args.cache_chunk] for i in range(0, len(xs), args.cache_chunk)]  # noqa
                GradCache(encode, lambda q, d: loss_fn(q, d)).step({"q": ch(q), "d": ch(d)})
            else:
                loss_fn(encode(q), encode(d)).backward()
        opt.step()

    def forward_only(q, d):
        with torch.inference_mode(), amp():
            encode(q), encode(d)

    results = {}
    for name, fn in (("forward only (baseline)", forward_only), ("train step", train_step)):
        fn(*batches[0])  # warm-up
        sync()
        t = time.perf_counter()
        for q, d in batches[1:]:
            fn(q, d)
        sync()
        results[name] = 2 * args.batch_size * args.steps / (time.perf_counter() - t)  # items/s (queries + docs)

    params = sum(p.numel() for p in model.parameters())
    print(f"model {args.model} ({params / 1e6:.1f}M parameters) on {torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}"
          f", batch {args.batch_size}, {tokens:.0f} tokens per item, cache_chunk {args.cache_chunk}")
    base = results["forward only (baseline)"]
    for name, rate in results.items():
        print(f"  {name:<24} {rate:10.1f} items/s  {rate / 2:10.1f} pairs/s  ratio {rate / base:.2f}x")
    if device.type == "cuda":
        # non-embedding parameters of the path text takes (Kaplan et al.'s N): backbone layers + projection
        n = sum(p.numel() for k, p in model.backbone.named_parameters() if not k.startswith("embeddings.")) + \
            sum(p.numel() for p in model.projection.parameters())
        flops = 6 * n * tokens * results["train step"]
        print(f"  MFU {100 * flops / (args.peak_tflops * 1e12):.1f}% (6 * {n / 1e6:.1f}M non-embedding parameters * "
              f"tokens, peak {args.peak_tflops:g} TFLOP/s)")


if __name__ == "__main__":
    sys.exit(main())
