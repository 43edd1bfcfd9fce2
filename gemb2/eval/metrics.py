"""Retrieval metrics over ranked lists with binary relevance.

References: Manning, Raghavan and Schuetze 2008, "Introduction to Information Retrieval", chapter 8
(recall at k, MRR); Jaervelin and Kekaelaeinen 2002, "Cumulated gain-based evaluation of IR
techniques" (nDCG). The definitions follow BEIR / pytrec_eval (Thakur et al. 2021):

    Recall@k   = |relevant in the top k| / |relevant|
    MRR        = 1 / rank of the first relevant document (0 if none is ranked)
    nDCG@k     = DCG@k / IDCG@k,  DCG@k = sum_{i <= k, doc_i relevant} 1 / log2(i + 1)

Each is averaged over queries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def recall_at(ranked: Sequence, relevant: set, k: int) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def reciprocal_rank(ranked: Sequence, relevant: set) -> float:
    for i, doc in enumerate(ranked, 1):
        if doc in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence, relevant: set, k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 1) for i, doc in enumerate(ranked[:k], 1) if doc in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal if ideal else 0.0


def retrieval_metrics(rankings: Sequence[Sequence], relevants: Sequence[set]) -> dict[str, float]:
    """Mean Recall@1/5/10, nDCG@10 and MRR over queries (ranked document ids, relevant id sets)."""
    if len(rankings) != len(relevants):
        raise ValueError(f"{len(rankings)} rankings for {len(relevants)} relevance sets")
    n = len(rankings)
    if n == 0:
        raise ValueError("no queries to evaluate")
    out = {f"recall@{k}": sum(recall_at(r, rel, k) for r, rel in zip(rankings, relevants)) / n for k in (1, 5, 10)}
    out["ndcg@10"] = sum(ndcg_at(r, rel, 10) for r, rel in zip(rankings, relevants)) / n
    out["mrr"] = sum(reciprocal_rank(r, rel) for r, rel in zip(rankings, relevants)) / n
    return out
