"""Vector index quality and speed of `gemb2 index --type auto` on clustered 768-d vectors, on this CPU.

    python benchmarks/index.py [--rows 100000 1000000] [--dim 768] [--queries 200]

For each table size: builds a real gemb2 LanceDB table (the store's schema, rows written in Arrow batches),
then `build_indexes(kind="auto")` exactly as `gemb2 index` does, and queries it through `LanceStore.search`
(the `gemb2 query` path, with its default refine step). Prints, against exact search (numpy, brute force
over the same vectors) as the baseline measured in the same run:
  - recall@10 (the fraction of the exact top 10 that the index returns), mean over the queries;
  - p50 / p95 query latency in ms, and the same for an exact LanceDB scan (no index) at the same size;
  - index build time (vector + scalar + full-text + optimize), in seconds.
Goal: recall@10 >= 0.95 with p50 < 10 ms at 1,000,000 rows. Results go in BENCHMARKS.md.

Data: `clusters` Gaussian centres in `dim` dimensions, points = centre + N(0, 0.6^2) noise, L2-normalised
(a crude model of real embeddings, which cluster by topic); queries are held-out points of the same law.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("LANCE_LOG", "error")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402


def clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for i in range(0, n, 100_000):  # in blocks: bounded temporary memory
        m = min(100_000, n - i)
        x = centres[rng.integers(0, clusters, m)] + rng.normal(scale=0.6, size=(m, dim)).astype(np.float32)
        out[i : i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def write_table(store, vectors: np.ndarray, batch: int = 100_000) -> None:
    """Rows straight into the store's table, in the store's schema (what `gemb2 embed` would write)."""
    from gemb2.store.lance_schema import segment_schema

    schema = segment_schema(store.dim, store.model)
    n, dim = vectors.shape
    for i in range(0, n, batch):
        m = min(batch, n - i)
        ids = np.arange(i, i + m)
        paths = [f"/bench/{j // 10:07d}.txt" for j in ids]
        cols = {
            "key": [f"{j:010d}" for j in ids], "path": paths, "modality": ["text"] * m,
            "segment": (ids % 10).astype(np.int32), "n_segments": np.full(m, 10, np.int32),
            "start": np.zeros(m), "end": np.zeros(m), "size": np.zeros(m, np.int64), "mtime_ns": np.zeros(m, np.int64),
            "content_hash": [""] * m, "model": [store.model] * m, "dim": np.full(m, dim, np.int32),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors[i : i + m].reshape(-1)), dim),
            "text": [f"row {j} of cluster data" for j in ids],
        }
        t = pa.Table.from_arrays([c if isinstance(c, pa.Array) else pa.array(c, schema.field(k).type) for k, c in cols.items()],
                                 schema=schema)
        if store.table is None:
            store._table = store._db.create_table(store.table_name, data=t, schema=schema)
        else:
            store.table.add(t)


def timed_queries(store, queries: np.ndarray, k: int, **kw) -> tuple[list[list[int]], np.ndarray]:
    ids, lat = [], []
    for q in queries:
        t0 = time.perf_counter()
        rows = store.search(q, k, **kw)
        lat.append(time.perf_counter() - t0)
        ids.append([int(r["key"]) for r in rows])
    return ids, np.array(lat) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--nprobes", type=int, nargs="*", default=[], help="also measure these nprobes values")
    ap.add_argument("--ef", type=int, nargs="*", default=[], help="also measure these HNSW ef values (with refine 5)")
    args = ap.parse_args()

    from gemb2.store import LanceStore
    from gemb2.store.index import QueryTuning, build_indexes

    print(f"cpu cores: {os.cpu_count()}  dim {args.dim}  k {args.k}  queries {args.queries}", flush=True)
    for n in args.rows:
        data = clustered(n + args.queries, args.dim, args.clusters, seed=n)
        base, queries = data[:n], data[n:]
        root = tempfile.mkdtemp(prefix="gemb2-bench-index-")
        try:
            store = LanceStore(os.path.join(root, "db"), "bench", model="bench@0", dim=args.dim)
            t0 = time.perf_counter()
            write_table(store, base)
            t_write = time.perf_counter() - t0
            t0 = time.perf_counter()
            exact = [list(np.argsort(-(base @ q))[: args.k]) for q in queries]  # baseline: exact numpy
            t_exact = (time.perf_counter() - t0) / len(queries) * 1e3
            _, scan = timed_queries(store, queries[:20], args.k)  # exact LanceDB scan, before any index
            rep = build_indexes(store.table, dim=args.dim, kind="auto", name="bench")
            build_s = sum(rep.seconds.values())
            print(f"\n{n:,} rows: wrote in {t_write:.1f}s; auto chose {rep.vector['kind']} {rep.vector}; "
                  f"build {build_s:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in rep.seconds.items())})", flush=True)
            print(f"  exact numpy: {t_exact:.2f} ms/query; exact LanceDB scan: p50 {np.percentile(scan, 50):.2f} ms "
                  f"p95 {np.percentile(scan, 95):.2f} ms", flush=True)
            for label, tuning in [("default (refine 5)", QueryTuning()), ("no refine", QueryTuning(refine_factor=None))] + [
                (f"nprobes {p}", QueryTuning(nprobes=p)) for p in args.nprobes
            ] + [(f"ef {e}", QueryTuning(ef=e)) for e in args.ef]:
                timed_queries(store, queries[:5], args.k, tuning=tuning)  # warm the index cache
                got, lat = timed_queries(store, queries, args.k, tuning=tuning)
                recall = np.mean([len(set(g) & set(e)) / args.k for g, e in zip(got, exact)])
                p50, p95 = np.percentile(lat, 50), np.percentile(lat, 95)
                print(f"  {label:<20} recall@{args.k} {recall:.3f}  p50 {p50:.2f} ms  p95 {p95:.2f} ms  "
                      f"(x{np.percentile(scan, 50) / p50:.1f} faster than the exact scan at p50)", flush=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
