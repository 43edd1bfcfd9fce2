"""Evaluate a model on a manifest: per task, queries retrieve from the pool of that task's documents.

For each task of the manifest (gemb2.data.manifest format): the corpus is every distinct positive
and hard negative of the task (by content); each distinct query's relevant set is the positives of
all its lines. Queries are embedded with the query prompt, documents with the document prompt (the
model's `encode(task=...)`), ranked by cosine, and scored with metrics.retrieval_metrics.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np

from gemb2.data.manifest import Example, ItemRef, Manifest, content_id
from gemb2.data.manifest_items import load_item
from gemb2.pipeline.loadspec import load_spec_for

from .metrics import retrieval_metrics

if TYPE_CHECKING:
    from gemb2.model.embedder import Embedder


def retrieval_pool(examples: Iterable[Example]) -> tuple[dict[int, ItemRef], dict[int, ItemRef], dict[int, set[int]]]:
    """The distinct queries and documents of some examples (by content id), and each query's relevant set:
    the positives of all its lines. Hard negatives join the document pool."""
    queries: dict[int, ItemRef] = {}
    docs: dict[int, ItemRef] = {}
    relevant: dict[int, set[int]] = {}
    for e in examples:
        qid, did = content_id(e.query), content_id(e.positive)
        queries.setdefault(qid, e.query)
        docs.setdefault(did, e.positive)
        relevant.setdefault(qid, set()).add(did)
        for n in e.negatives:
            docs.setdefault(content_id(n), n)
    return queries, docs, relevant


def evaluate(
    model: Embedder,
    manifest_paths: str | os.PathLike | list[str | os.PathLike],
    *,
    dim: int | None = None,
    batch_size: int = 32,
    tasks: list[str] | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, dict]:
    """{task: {"queries": n, "documents": m, "recall@1": ..., "recall@5", "recall@10", "ndcg@10", "mrr"}}."""
    manifest = Manifest(manifest_paths)
    spec = load_spec_for(model)
    names = tasks or sorted(manifest.tasks)
    for t in names:
        if t not in manifest.tasks:
            raise ValueError(f"task {t!r} is not in the manifest (it has {', '.join(sorted(manifest.tasks))})")
    results = {}
    for task in names:
        examples = manifest.examples(task, range(manifest.tasks[task]))
        queries, docs, relevant = retrieval_pool(examples)
        log(f"{task}: {len(queries)} queries, {len(docs)} documents")
        doc_ids = list(docs)
        q_ids = list(queries)
        dv = model.encode(
            [load_item(docs[i], spec) for i in doc_ids], task="document", dim=dim, batch_size=batch_size
        )  # (M, dim)
        qv = model.encode(
            [load_item(queries[i], spec) for i in q_ids], task="query", dim=dim, batch_size=batch_size
        )  # (N, dim)
        scores = qv @ dv.T  # (N, M) cosine
        order = np.argsort(-scores, axis=1, kind="stable")  # (N, M): full ranking (MRR needs it)
        rankings = [[doc_ids[j] for j in row] for row in order]
        m = retrieval_metrics(rankings, [relevant[q] for q in q_ids])
        results[task] = {"queries": len(q_ids), "documents": len(doc_ids), **m}
    return results
