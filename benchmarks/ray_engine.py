"""The Ray engine against the local one, and fragment commits against merge_insert shares, on this machine.

    python benchmarks/ray_engine.py [--model gemb2-mini] [--texts 48] [--images 16] [--writers 1,2,4,8,16]

Measured in the same run:
  1. throughput: `gemb2 embed TREE` (baseline: the local engine) and `gemb2 embed TREE --engine ray` (a local
     Ray cluster the driver starts) on the same mixed tree (texts, images, audio, a video, two broken files):
     files/s of the embedding itself (the report's seconds: planning, loading, model, commits; for Ray also
     connecting and starting the actors) and of the whole process (interpreter start, imports, model load);
  2. commit contention: N writers each add `--rows` rows in `--commits` commits to one table, as N
     `--rank/--world-size` shares do (LanceStore.write: merge_insert, concurrent processes), against N writers
     that write Lance fragments (gemb2.store.fragments.FragmentWriter) committed by one driver every N
     fragments (the Ray engine's path). Time to the last commit, and the commits that failed and were tried
     again (LanceDB's own internal retries are not visible; gemb2 retries what reaches it).
Results go in BENCHMARKS.md (section "Ray engine").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

DIM = 64


def make_tree(root: str, texts: int, images: int) -> None:
    from tests.media import write_image, write_text, write_video, write_wav

    for i in range(texts):
        words = " ".join(f"word{(i * 13 + j) % 211}" for j in range(120))
        write_text(os.path.join(root, "text", f"t{i:03d}.txt"), f"note {i}: {words}")
    for i in range(images):
        write_image(os.path.join(root, "img", f"i{i:03d}.png"), seed=i, size=(240, 320))
    for i in range(2):
        write_wav(os.path.join(root, "audio", f"a{i}.wav"), seconds=20, freq=300 + 100 * i)
    write_video(os.path.join(root, "video", "v0.mp4"), seconds=20)
    with open(os.path.join(root, "img", "broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with open(os.path.join(root, "audio", "broken.wav"), "wb") as f:
        f.write(b"RIFF\0\0\0\0WAVEfmt ")


def embed(tree: str, db: str, model: str, *extra: str) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "gemb2", "embed", tree, "--model", model, "--db", db, "--json", "--quiet", *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return wall, json.loads(r.stdout)


def throughput(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "tree")
        make_tree(tree, args.texts, args.images)
        n = sum(len(fs) for _, _, fs in os.walk(tree))
        print(
            f"## 1. {n} files ({args.texts} texts, {args.images} images 320x240, 2 x 20 s audio, a 20 s video, "
            f"2 broken), model {args.model}, {os.cpu_count()} CPUs"
        )
        results = {}
        for rnd in range(args.rounds):
            for name, extra in (
                (("local", ()), ("ray", ("--engine", "ray")))
                if rnd % 2 == 0
                else (("ray", ("--engine", "ray")), ("local", ()))
            ):
                db = os.path.join(tmp, f"db-{name}-{rnd}")
                wall, rep = embed(tree, db, args.model, *extra)
                done = rep["files_added"] + rep["files_failed"]
                results.setdefault(name, []).append((done / rep["seconds"], done / wall))
                shutil.rmtree(db)
        best = {k: (max(r[0] for r in v), max(r[1] for r in v)) for k, v in results.items()}
        for name in ("local", "ray"):
            emb, whole = best[name]
            print(
                f"{name:>5}: {emb:7.2f} files/s embedding ({emb / best['local'][0]:.2f}x local), "
                f"{whole:7.2f} files/s whole process ({whole / best['local'][1]:.2f}x local)"
            )


def _rows(writer: int, commit: int, rows: int):
    import numpy as np

    from gemb2.store import EmbeddedFile, FileRecord, SegmentRow

    rng = np.random.default_rng(writer * 1000 + commit)
    v = rng.normal(size=(rows, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    path = f"/w{writer}/c{commit}.txt"
    return [
        EmbeddedFile(
            FileRecord(path, 1, 1, "h", "m@1", rows, 2),
            [SegmentRow(i, "text", 0.0, 1.0, None, v[i]) for i in range(rows)],
        )
    ]


def _merge_writer(db: str, writer: int, commits: int, rows: int, out) -> None:
    from gemb2.store import LanceStore

    store, retries = LanceStore(db, "media", model="m@1", dim=DIM, source="x"), 0
    for c in range(commits):
        while True:
            try:
                store.write(_rows(writer, c, rows))
                break
            except Exception:  # a commit conflict LanceDB gave up on: try again, as a rank's rerun would
                retries += 1
                store.refresh()
    out.put(retries)


def _fragment_writer(uri: str, writer: int, commits: int, rows: int, out) -> None:
    from gemb2.store.fragments import FragmentWriter

    w = FragmentWriter(uri, DIM, "m@1")
    for c in range(commits):
        out.put(w.write(_rows(writer, c, rows)))


def contention(args) -> None:
    from gemb2.store import LanceStore
    from gemb2.store.fragments import commit_fragments, dataset_uri

    ctx = mp.get_context("spawn")
    print(
        f"\n## 2. Commit contention: N writers x {args.commits} commits x {args.rows} rows (dim {DIM}) into one table"
    )
    print(
        "| N | merge_insert shares: time, retried commits | fragments + one committer: time, driver commits | ratio |"
    )
    print("|---|---|---|---|")
    for n in args.writers:
        with tempfile.TemporaryDirectory() as tmp:
            seed = LanceStore(os.path.join(tmp, "a"), "media", model="m@1", dim=DIM, source="x")
            seed.write(_rows(999, 0, 1))
            q = ctx.Queue()
            t0 = time.perf_counter()
            procs = [
                ctx.Process(target=_merge_writer, args=(os.path.join(tmp, "a"), w, args.commits, args.rows, q))
                for w in range(n)
            ]
            for p in procs:
                p.start()
            retries = sum(q.get() for _ in procs)
            for p in procs:
                p.join()
            t_merge = time.perf_counter() - t0

            seed = LanceStore(os.path.join(tmp, "b"), "media", model="m@1", dim=DIM, source="x")
            seed.write(_rows(999, 0, 1))
            uri = dataset_uri(os.path.join(tmp, "b"), "media")
            q = ctx.Queue()
            t0 = time.perf_counter()
            procs = [ctx.Process(target=_fragment_writer, args=(uri, w, args.commits, args.rows, q)) for w in range(n)]
            for p in procs:
                p.start()
            window, commits = [], 0
            for _ in range(n * args.commits):
                window += q.get()
                if len(window) >= n:  # the driver commits every N fragments
                    commit_fragments(uri, window, [])
                    window, commits = [], commits + 1
            if window:
                commit_fragments(uri, window, [])
                commits += 1
            for p in procs:
                p.join()
            t_frag = time.perf_counter() - t0
            for d in ("a", "b"):
                count = LanceStore(os.path.join(tmp, d), "media").count()
                assert count == 1 + n * args.commits * args.rows, (d, count)
        print(f"| {n} | {t_merge:.2f} s, {retries} | {t_frag:.2f} s, {commits} | {t_merge / t_frag:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemb2-mini")
    ap.add_argument("--texts", type=int, default=48)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2, help="runs of each engine, interleaved; the best is shown")
    ap.add_argument("--writers", default="1,2,4,8,16")
    ap.add_argument("--commits", type=int, default=8, help="commits per writer")
    ap.add_argument("--rows", type=int, default=64, help="rows per commit")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    args.writers = [int(x) for x in args.writers.split(",")]
    if not args.skip_throughput:
        throughput(args)
    contention(args)


if __name__ == "__main__":
    main()
