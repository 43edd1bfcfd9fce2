"""Web pages and source code through `gemb2 embed` (tiny model) against reading them alone, on this CPU.

    python benchmarks/documents_text.py [--pages 1000] [--code 1000] [--workers 2]

Prints files/s for each kind, measured in the same run:
  (baseline) decode alone: read each file and turn it into its text (HTML: gemb2.data.html's visible text;
             code: decode_text), in a pool of the same number of spawned processes;
  (b)        gemb2's text loader alone: the above plus tokenizing and windowing (load_file), same pool;
  (c)        `gemb2 embed DIR --model tiny --workers W` in-process (run_embed: loaders, model, LanceDB);
  (d)        the same as a whole process, as a user runs it (interpreter start and imports included); its
             start-up alone (the same command on an empty folder) is printed beside it;
  (m)        the tiny model's `encode` alone on the windows of the first 200 files (loaded beforehand), in this
             process: what (c) would reach if loading, the pool and LanceDB cost nothing.
The pages are ~17 KB like real ones (a head with a stylesheet and scripts, a nav of links, ten paragraphs, a
table, a footer: ~2.5 KB of visible text); the code files are ~4 KB Python modules.
Results go in BENCHMARKS.md (section "Web pages and code").
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("LANCE_LOG", "error")

from benchmarks._util import WORDS  # noqa: E402


def make_pages(root: str, n: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    style = "<style>" + "".join(f".c{i} {{ margin: {i}px; color: #{i:06x}; }}\n" for i in range(80)) + "</style>"
    script = "<script>" + "".join(f"function f{i}(a) {{ return a + {i}; }}\n" for i in range(100)) + "</script>"
    nav = "<nav><ul>" + "".join(f'<li><a href="/p{i}.html" class="c{i}">Section {i}</a></li>' for i in range(30))
    os.makedirs(root, exist_ok=True)
    for k in range(n):
        paras = "".join(
            f"<p>{' '.join(rng.choice(WORDS, size=40))} &amp; <b>{rng.choice(WORDS)}</b> {' '.join(rng.choice(WORDS, 20))}.</p>\n"
            for _ in range(10)
        )
        rows = "".join(f"<tr><td>{rng.choice(WORDS)}</td><td>{rng.integers(0, 99)}</td></tr>" for _ in range(12))
        page = (
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Log {k}: {rng.choice(WORDS)}</title>'
            f"{style}{script}</head><body>{nav}</ul></nav><main><h1>Entry {k}</h1>{paras}"
            f"<table>{rows}</table></main><footer>&copy; the keepers</footer><!-- generated --></body></html>"
        )
        with open(os.path.join(root, f"page{k:05d}.html"), "w") as f:
            f.write(page)


def make_code(root: str, n: int) -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    os.makedirs(root, exist_ok=True)
    for k in range(n):
        funcs = "".join(
            f"def {rng.choice(WORDS)}_{i}({rng.choice(WORDS)}: int, {rng.choice(WORDS)}: str = '') -> dict:\n"
            f'    """Return the {rng.choice(WORDS)} of the {rng.choice(WORDS)} near the {rng.choice(WORDS)}."""\n'
            f"    result = {{'{rng.choice(WORDS)}': {i}, '{rng.choice(WORDS)}': [x * 2 for x in range({i})]}}\n"
            f"    if result and {rng.choice(WORDS)}:\n        return result\n    return {{}}\n\n\n"
            for i in range(16)
        )
        with open(os.path.join(root, f"mod{k:05d}.py"), "w") as f:
            f.write(f'"""Module {k}."""\n\nimport os\n\n\n{funcs}')


def _decode_only(path: str) -> int:
    from gemb2.data.text import read_text

    read_text(path, 64 * 1024 * 1024)
    return 1


def _loader_only(args) -> int:
    from gemb2.data.load import load_file

    path, spec = args
    for _ in load_file(path, "text", spec):
        pass
    return 1


def pool_rate(fn, items, workers: int) -> float:
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        pool.map(abs, range(workers))  # start the workers before the clock
        t0 = time.perf_counter()
        n = sum(pool.imap_unordered(fn, items, chunksize=8))
        dt = time.perf_counter() - t0
    return n / dt


def in_process_rate(folder: str, workers: int) -> tuple[float, int]:
    from gemb2 import load_model
    from gemb2.pipeline.embed import EmbedOptions, run_embed
    from gemb2.store import LanceStore

    model = load_model("tiny")
    db = tempfile.mkdtemp(prefix="gemb2-bench-db-")
    store = LanceStore(db, model=model.model_id, dim=model.config.out_dim)
    t0 = time.perf_counter()
    r = run_embed(
        [folder], store, model_id=model.model_id, get_model=lambda: model, options=EmbedOptions(workers=workers)
    )
    dt = time.perf_counter() - t0
    assert r.files_failed == 0, r.failures
    shutil.rmtree(db)
    return r.files_added / dt, r.rows_added


def whole_process_seconds(folder: str, workers: int) -> float:
    db = tempfile.mkdtemp(prefix="gemb2-bench-db-")
    cmd = [
        sys.executable,
        "-m",
        "gemb2",
        "embed",
        folder,
        "--model",
        "tiny",
        "--db",
        db,
        "--json",
        "--quiet",
        "--workers",
        str(workers),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", LANCE_LOG="error")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    dt = time.perf_counter() - t0
    shutil.rmtree(db)
    return dt


def model_rate(paths: list[str], spec) -> float:
    """files/s of the tiny model's encode alone on the files' windows (loaded before the clock starts)."""
    from gemb2 import load_model
    from gemb2.data.load import load_file

    model = load_model("tiny")
    items = [list(seg.parts) for p in paths for seg in load_file(p, "text", spec)]
    model.encode(items[:32])  # warm-up
    t0 = time.perf_counter()
    model.encode(items)
    return len(paths) / (time.perf_counter() - t0)


def tiny_spec():
    """The LoadSpec `gemb2 embed --model tiny` gives its loaders (its tokenizer file and window)."""
    from gemb2 import load_model
    from gemb2.pipeline.loadspec import load_spec_for

    return load_spec_for(load_model("tiny"))


def report(kind: str, folder: str, workers: int, start_up: float) -> None:
    paths = sorted(os.path.join(folder, n) for n in os.listdir(folder))
    size = sum(os.path.getsize(p) for p in paths) / len(paths)
    spec = tiny_spec()
    base = pool_rate(_decode_only, paths, workers)
    loader = pool_rate(_loader_only, [(p, spec) for p in paths], workers)
    ours, rows = in_process_rate(folder, workers)
    whole = len(paths) / whole_process_seconds(folder, workers)
    alone = model_rate(paths[:200], spec)
    print(f"\n## {kind}: {len(paths)} files of {size / 1024:.1f} KB on average, {workers} worker processes, tiny model")
    print(f"(baseline) read + to text alone:             {base:8.1f} files/s")
    print(f"(b) gemb2 text loader alone (+ windows):     {loader:8.1f} files/s  ({loader / base:.2f}x baseline)")
    print(f"(c) gemb2 embed in-process ({rows} rows):  {ours:8.1f} files/s  ({ours / base:.2f}x baseline)")
    print(
        f"(d) gemb2 embed whole process:               {whole:8.1f} files/s  ({whole / base:.2f}x baseline; "
        f"start-up alone {start_up:.1f} s)"
    )
    print(f"(m) tiny model encode alone, in-process:     {alone:8.1f} files/s  ((c) is {ours / alone:.2f}x of it)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--code", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gemb2-bench-docs-")
    try:
        make_pages(os.path.join(tmp, "pages"), a.pages)
        make_code(os.path.join(tmp, "code"), a.code)
        os.makedirs(os.path.join(tmp, "empty"))
        start_up = whole_process_seconds(os.path.join(tmp, "empty"), a.workers)
        report("Web pages (.html)", os.path.join(tmp, "pages"), a.workers, start_up)
        report("Code (.py)", os.path.join(tmp, "code"), a.workers, start_up)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
