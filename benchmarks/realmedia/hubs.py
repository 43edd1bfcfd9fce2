"""Hubs on the real-media set's mixed table, and how far per-kind centring could move them (an oracle).

    python -m benchmarks.realmedia.hubs [--model gemb2-mini] [--split dev|test|both] [--top 10]

For each half: the mixed table's Recall@5 / Recall@1, the per-kind tables' pooled Recall@5 (each query against
its own kind's items only: what the issue's "per-modality tables" are), the items that are most often the top hit
of queries whose target they are not (the hubs), and the same figures after an ORACLE centring: each media kind's
vectors moved onto the queries' mean (shift = mean of all query vectors - mean of that kind's item vectors,
fitted on the half's own items and re-normalised), which no shipped model can do since it sees the evaluation
items. If even the oracle leaves the gap, calibration cannot close it: recognition has to get better.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import numpy as np

from benchmarks.realmedia import build as rm
from benchmarks.realmedia.score import load_parts, log


def evaluate(dv: np.ndarray, qv: np.ndarray, qt: np.ndarray, kinds: np.ndarray, docs: list[int]) -> dict:
    """Mixed and pooled per-kind figures for the queries whose targets are in `docs`."""
    pos = {d: k for k, d in enumerate(docs)}
    sel = [j for j in range(len(qt)) if qt[j] in pos]
    s = qv[sel] @ dv[docs].T
    target = np.array([pos[qt[j]] for j in sel])
    order = np.argsort(-s, axis=1, kind="stable")
    rank = np.array([int(np.where(order[i] == t)[0][0]) for i, t in enumerate(target)])
    top = order[:, 0]
    share = np.array([np.sum((top == d) & (target != d)) / max(1, np.sum(target != d)) for d in range(len(docs))])
    own = []
    for kind in sorted(set(kinds[docs])):
        mine = [i for i, d in enumerate(docs) if kinds[d] == kind]
        qs = [i for i in range(len(target)) if kinds[docs[target[i]]] == kind]
        o = np.argsort(-s[np.ix_(qs, mine)], axis=1, kind="stable")
        own += [int(np.where(o[n] == mine.index(target[i]))[0][0]) < 5 for n, i in enumerate(qs)]
    wrong = Counter(int(t) for t, g in zip(top, target) if t != g)
    return {
        "mixed_r5": float(np.mean(rank < 5)),
        "mixed_r1": float(np.mean(rank < 1)),
        "per_kind_r5": float(np.mean(own)),
        "hub_max": float(share.max()),
        "hub_items_over_2pct": float(np.mean(share > 0.02)),
        "hubs": [(docs[d], n, n / max(1, int(np.sum(target != d)))) for d, n in wrong.most_common()],
    }


def oracle_centred(dv: np.ndarray, qv: np.ndarray, kinds: np.ndarray, docs: list[int]) -> np.ndarray:
    out = dv.copy()
    for kind in set(kinds[docs]) - {"doc"}:
        rows = [d for d in docs if kinds[d] == kind]
        moved = dv[rows] + (qv.mean(0) - dv[rows].mean(0))
        out[rows] = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--model", default="gemb2-mini")
    ap.add_argument("--data", default=rm.DEFAULT_OUT)
    ap.add_argument("--split", choices=["dev", "test", "both"], default="dev")
    ap.add_argument("--top", type=int, default=10, help="hubs listed per half")
    args = ap.parse_args(argv)
    from pathlib import Path

    from gemb2 import load_model
    from gemb2.pipeline.loadspec import load_spec_for

    folder = Path(args.data)
    rows = rm.build(folder, log=log)["items"]
    model = load_model(args.model)
    parts = load_parts(rows, folder, load_spec_for(model))
    dv = model.encode([[p] for p in parts], task="document")
    queries = [(i, d) for i, r in enumerate(rows) for d in r["descriptions"]]
    qv = model.encode([d for _, d in queries], task="query")
    qt = np.array([i for i, _ in queries])
    kinds = np.array([r["id"].split("/")[0] for r in rows])
    print(f"{model.model_id}, set {rm.set_sha256()[:12]}")
    for split in ["dev", "test"] if args.split == "both" else [args.split]:
        docs = [i for i, r in enumerate(rows) if r["split"] == split]
        for name, vectors in (("as embedded", dv), ("oracle centring", oracle_centred(dv, qv, kinds, docs))):
            m = evaluate(vectors, qv, qt, kinds, docs)
            print(
                f"\n{split} half, {name}: mixed Recall@5 {100 * m['mixed_r5']:.1f} / Recall@1 {100 * m['mixed_r1']:.1f}"
                f", per-kind tables Recall@5 {100 * m['per_kind_r5']:.1f}; largest hub {100 * m['hub_max']:.1f} %"
                f", items above 2 %: {100 * m['hub_items_over_2pct']:.0f} %"
            )
            for d, n, share in m["hubs"][: args.top]:
                print(f"  {rows[d]['id']:28s} top hit of {n} other queries ({100 * share:.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
