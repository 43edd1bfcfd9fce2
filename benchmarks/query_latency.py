"""`gemb2 query` latency: a cold process per query (text, image, audio) against a bare `import lancedb`, on this CPU.

    python benchmarks/query_latency.py [--rows 10000] [--repeat 5] [--model gemb2-mini] [--section cold|warm|all] [--queries 1000]

Cold: each query is a new process (`python -m gemb2 query ...`), the files already in the page cache (one unmeasured
run of each command first). Baseline, measured in the same run the same way: `python -c "import lancedb"`, the least
any query must do (gemb2 searches through LanceDB). For each command: median wall time and median peak RSS over
`--repeat` runs (the peak from the child's own rusage, os.wait4), and the wall time as a ratio to the baseline.
Goal (issue 16): a text query <= 2.5x the baseline and < 500 MB.

The table: `--rows` rows written through gemb2's LanceStore with the model's id and source in its schema, as
`gemb2 embed` writes them (10 segments per file, each with a text window of random words), but with synthesized
unit vectors instead of embedded ones (a query's cost does not depend on what the vectors hold, and embedding 10k
windows would take minutes here). It is cached under $XDG_CACHE_HOME/gemb2-bench (or ~/.cache) by model id and
row count, and reused.

Warm: a resident `gemb2 serve --model M --db DB` on loopback, `--queries` (1,000) text queries sent one after
another on one kept-alive connection to /v1/search (k=10) and to /v1/embeddings; p50/p95 in ms. Baseline in the
same run: the same model's `encode` and the store's search called in this process (what HTTP and JSON add).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("LANCE_LOG", "error")

from tests.media import write_image, write_wav

WORDS = [
    "river",
    "stone",
    "night",
    "city",
    "music",
    "paper",
    "light",
    "blue",
    "red",
    "cat",
    "dog",
    "boat",
    "sea",
    "car",
    "tree",
    "rain",
    "song",
    "road",
]
SEGMENTS_PER_FILE = 10


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "gemb2-bench"


def build_table(db: Path, model: str, rows: int) -> None:
    """`rows` rows of (rows / 10) files in the table 'media' of `db`, tagged with `model`'s id and dimension."""
    import numpy as np

    from gemb2.pipeline.open import model_id_of, source_path
    from gemb2.store import LanceStore
    from gemb2.store.records import EmbeddedFile, FileRecord, SegmentRow

    model_id = model_id_of(model)
    dim = _model_dim(model)
    rng = np.random.default_rng(0)
    store = LanceStore(str(db), model=model_id, dim=dim, source=source_path(model))
    files = []
    for f in range(rows // SEGMENTS_PER_FILE):
        vecs = rng.standard_normal((SEGMENTS_PER_FILE, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        segs = [
            SegmentRow(s, "text", float(s * 200), float(s * 200 + 256), " ".join(rng.choice(WORDS, 40)), vecs[s])
            for s in range(SEGMENTS_PER_FILE)
        ]
        path = f"/corpus/{f // 100:03d}/notes-{f:05d}.txt"
        files.append(EmbeddedFile(FileRecord(path, 4096, f, f"h{f}", model_id, SEGMENTS_PER_FILE), segs))
        if len(files) == 200:
            store.write(files)
            files = []
    if files:
        store.write(files)


def _model_dim(model: str) -> int:
    """The output dimension of `model` without building it: a release's or a gemb2 folder's config.json."""
    import json

    from gemb2.pretrained.release import RELEASES, release_folder

    path = release_folder(model) / "config.json" if model in RELEASES else Path(model) / "config.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    return int(doc.get("config", doc)["out_dim"])


def table_for(model: str, rows: int) -> Path:
    """The cached benchmark database for (model, rows), built on first use."""
    from gemb2.pipeline.open import model_id_of

    db = cache_dir() / f"query_latency-{model_id_of(model).replace('@', '-')}-{rows}"
    if not (db / "media.lance").is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=db.name + ".", dir=db.parent if db.parent.is_dir() else None))
        t0 = time.perf_counter()
        build_table(tmp, model, rows)
        db.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, db)
        print(f"built {db} ({rows} rows) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return db


# Runs one command and reports its wall time and peak RSS. A small process of its own: Linux keeps ru_maxrss across
# fork and exec, so a child of this (large) process would report at least this process's size.
_MEASURE = """
import os, sys, time
null = os.open(os.devnull, os.O_WRONLY)
t0 = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - t0, usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status))
"""


def run_once(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one whole process in `cwd` (`python -m` puts the working directory
    first on sys.path: not a source tree, so PYTHONPATH says which gemb2 runs); a failing command stops the run."""
    out = subprocess.run([sys.executable, "-S", "-c", _MEASURE, *cmd], env=env, cwd=cwd, capture_output=True, text=True)
    wall, rss, code = out.stdout.split()[-3:] if out.stdout.strip() else ("0", "0", str(out.returncode or 1))
    if int(code) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}): {out.stderr.strip()[-500:]}")
    return float(wall), int(rss)


def cold_section(args) -> list[dict]:
    """Median wall time and peak RSS of whole processes: the baseline, then each kind of query."""
    db = table_for(args.model, args.rows)
    media = Path(tempfile.mkdtemp(prefix="gemb2-qlat-"))
    image, audio = write_image(media / "query.png", seed=3, size=(240, 320)), write_wav(media / "query.wav", 3.0)
    env = dict(os.environ, GEMB2_DB=str(db), PYTHONPATH=str(Path(args.src).resolve()))
    gemb2 = [sys.executable, "-m", "gemb2", "query", "--model", args.model, "-k", "10"]
    commands = [
        ("baseline: python -c 'import lancedb'", [sys.executable, "-c", "import lancedb"]),
        ('gemb2 query "text"', [*gemb2, "boats on the sea at night"]),
        ("gemb2 query --image F", [*gemb2, "--image", image]),
        ("gemb2 query --audio F", [*gemb2, "--audio", audio]),
    ]
    for _, cmd in commands:  # page cache warm, nothing measured
        run_once(cmd, env, media)
    runs: dict[str, list[tuple[float, int]]] = {name: [] for name, _ in commands}
    for _ in range(args.repeat):  # interleaved, so a burst of load elsewhere hits every command alike
        for name, cmd in commands:
            runs[name].append(run_once(cmd, env, media))
    base = statistics.median(w for w, _ in runs[commands[0][0]])
    return [
        {
            "command": name,
            "wall_s": statistics.median(w for w, _ in rs),
            "peak_rss_mb": statistics.median(r for _, r in rs) / 2**20,
            "ratio": statistics.median(w for w, _ in rs) / base,
        }
        for name, rs in runs.items()
    ]


def _percentiles(lat: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000


def _queries(n: int) -> list[str]:
    import random

    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))) for _ in range(n)]


def _timed(calls, texts: list[str]) -> list[float]:
    for t in texts[:20]:  # warm-up, not measured
        calls(t)
    lat = []
    for t in texts:
        t0 = time.perf_counter()
        calls(t)
        lat.append(time.perf_counter() - t0)
    return lat


def _http(url: str):
    """A function posting JSON to `url`'s paths over one kept-alive connection (as a client library would)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def post(path: str, body: dict) -> dict:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        answer = json.loads(r.read())
        if r.status != 200:
            raise SystemExit(f"{path}: HTTP {r.status}: {answer}")
        return answer

    return post


def warm_section(args) -> list[dict]:
    """Warm queries through a resident server (`gemb2 serve` on loopback), sent one after another on one kept-alive
    connection: p50/p95 of `--queries` text queries on /v1/search (k=10) and on /v1/embeddings (one text). Baseline
    in the same run: the same model's `encode` + the store's search called in this process (no HTTP, no JSON)."""
    from gemb2.parts import Text
    from gemb2.pipeline.open import load_model
    from gemb2.pipeline.query import query_vector, search
    from gemb2.store import LanceStore

    db = table_for(args.model, args.rows)
    texts = _queries(args.queries)
    env = dict(os.environ, PYTHONPATH=str(Path(args.src).resolve()), HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "gemb2", "serve", "--model", args.model, "--db", str(db), "--port", "0"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rows = []
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url:
            raise SystemExit(f"gemb2 serve did not start: {' '.join(cmd)}")
        post = _http(url)
        timed = {
            "/v1/search (text, k=10)": _timed(lambda t: post("/v1/search", {"text": t, "k": 10}), texts),
            "/v1/embeddings (one text)": _timed(
                lambda t: post("/v1/embeddings", {"input": t, "model": args.model}), texts
            ),
        }
    finally:
        server.terminate()
        server.wait(60)
    model, store = load_model(args.model, "cpu"), LanceStore(str(db), "media")
    base = {
        "in-process encode + search (baseline)": _timed(
            lambda t: search(store, query_vector(model, [Text(t)]), 10), texts
        ),
        "in-process encode (baseline)": _timed(lambda t: model.encode([t], task="document"), texts),
    }
    for name, lat in {**timed, **base}.items():
        p50, p95 = _percentiles(lat)
        rows.append({"command": name, "p50_ms": p50, "p95_ms": p95})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10000, help="rows in the table (10 per file)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each command; medians are printed")
    ap.add_argument("--model", default="gemb2-mini", help="the table's model (a release or a gemb2 model folder)")
    ap.add_argument("--section", choices=("cold", "warm", "all"), default="all")
    ap.add_argument("--queries", type=int, default=1000, help="warm: queries sent, one after another")
    ap.add_argument("--src", default=str(Path(__file__).resolve().parents[1]), help="the gemb2 tree the queries run")
    args = ap.parse_args()
    if args.section in ("cold", "all"):
        print(
            f"cold queries: {args.rows}-row table, model {args.model}, median of {args.repeat} runs, {os.cpu_count()} CPUs"
        )
        print(f"{'command':40s} {'wall s':>8s} {'x baseline':>11s} {'peak RSS MB':>12s}")
        for r in cold_section(args):
            print(f"{r['command']:40s} {r['wall_s']:8.2f} {r['ratio']:10.2f}x {r['peak_rss_mb']:12.0f}")
    if args.section in ("warm", "all"):
        print(
            f"warm queries: {args.queries} sequential, {args.rows}-row table, model {args.model}, {os.cpu_count()} CPUs"
        )
        rows = warm_section(args)
        ref = {"/v1/search (text, k=10)": rows[2], "/v1/embeddings (one text)": rows[3]}
        print(f"{'request':40s} {'p50 ms':>8s} {'p95 ms':>8s} {'p50 x in-process':>17s}")
        for r in rows:
            x = f"{r['p50_ms'] / ref[r['command']]['p50_ms']:16.2f}x" if r["command"] in ref else ""
            print(f"{r['command']:40s} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {x}")


if __name__ == "__main__":
    main()
