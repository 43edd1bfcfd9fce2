"""Query latency while `gemb2 embed` writes to the same table, against the idle latency, on this CPU.

    python benchmarks/query_under_load.py [--queries 1000] [--files 600]

Baseline (same run): p50/p95 of `gemb2 query`'s path (tiny model: encode the text, LanceDB search, k=10) on
an idle table. Then a real `gemb2 embed` subprocess adds `--files` text files to that table in small commits
while the same 1,000 queries run; every 50 queries the table is reopened so queries see new versions.
Prints p50/p95 under load as ratios to idle (goal <= 3x), and counts errors and torn results (none allowed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("LANCE_LOG", "error")

from tests.media import write_text  # noqa: E402

WORDS = "river stone night city music paper light blue red cat dog boat sea car".split()


def run_queries(db: str, model, n: int, check) -> list[float]:
    from gemb2.pipeline.query import query_vector, search
    from gemb2.parts import Text
    from gemb2.store import LanceStore

    store, lat = LanceStore(db), []
    for i in range(n):
        if i % 50 == 0:
            store = LanceStore(db)  # see the versions the writer committed since
        t0 = time.perf_counter()
        hits = search(store, query_vector(model, [Text(f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]}")]), 10)
        lat.append(time.perf_counter() - t0)
        check(hits)
    return lat


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--files", type=int, default=1200)
    ap.add_argument("--commit-rows", type=int, default=64, help="the writer's rows per commit (each commit adds a fragment)")
    ap.add_argument("--nice", type=int, default=0, help="niceness of the writer (cron jobs usually run under nice)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the querying process (a one-query encode gains nothing from more)")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from gemb2 import load_model

    tmp = tempfile.mkdtemp(prefix="gemb2-bench-load-")
    db = os.path.join(tmp, "db")
    for i in range(200):
        write_text(os.path.join(tmp, "seed", f"s{i:04d}.txt"), " ".join(WORDS[(i + j) % len(WORDS)] for j in range(12)))
    for i in range(a.files):
        write_text(os.path.join(tmp, "new", f"n{i:04d}.txt"), " ".join(WORDS[(i * 3 + j) % len(WORDS)] for j in range(40)))
    cli = [sys.executable, "-m", "gemb2", "embed", "--model", "tiny", "--db", db, "--quiet", "--workers", "1"]
    subprocess.run(cli + [os.path.join(tmp, "seed")], check=True)
    model = load_model("tiny")
    errors: list[str] = []

    def check(hits) -> None:
        keys = [(h.path, h.segment) for h in hits]
        if len(keys) != len(set(keys)) or not hits or any(not (-1.0001 <= h.score <= 1.0001) for h in hits):
            errors.append(repr(keys))

    idle = run_queries(db, model, a.queries, check)
    writer = subprocess.Popen(cli + ["--commit-rows", str(a.commit_rows), "--batch-size", "8", os.path.join(tmp, "new")],
                              preexec_fn=(lambda: os.nice(a.nice)) if a.nice else None)
    time.sleep(2.0)  # let it load its model and start committing
    busy = run_queries(db, model, a.queries, check)
    still_writing = writer.poll() is None
    writer.wait()
    print(f"## {a.queries} queries (tiny model, k=10) on a {200}-file table; writer adds {a.files} files in {a.commit_rows}-row commits (writer niceness {a.nice})")
    print(f"idle (baseline):  p50 {pct(idle, .5):6.2f} ms   p95 {pct(idle, .95):6.2f} ms")
    print(f"while embedding:  p50 {pct(busy, .5):6.2f} ms   p95 {pct(busy, .95):6.2f} ms   "
          f"({pct(busy, .5) / pct(idle, .5):.2f}x / {pct(busy, .95) / pct(idle, .95):.2f}x idle; goal <= 3x)")
    print(f"writer still running when the queries ended: {still_writing}; errors or torn results: {len(errors)}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
