"""Retrieval metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from gemb2.eval.metrics import ndcg_at, recall_at, reciprocal_rank, retrieval_metrics


def test_single_relevant_document_at_rank_three():
    ranked = ["a", "b", "x", "c"]
    rel = {"x"}
    assert recall_at(ranked, rel, 1) == 0.0 and recall_at(ranked, rel, 5) == 1.0
    assert reciprocal_rank(ranked, rel) == pytest.approx(1 / 3)
    assert ndcg_at(ranked, rel, 10) == pytest.approx(1 / math.log2(4))  # DCG 1/log2(3+1), IDCG 1


def test_two_relevant_documents():
    ranked = ["x", "a", "b", "y"]
    rel = {"x", "y"}
    assert recall_at(ranked, rel, 1) == 0.5 and recall_at(ranked, rel, 10) == 1.0
    dcg = 1 / math.log2(2) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at(ranked, rel, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at(ranked, rel, 3) == pytest.approx(1.0 / idcg)  # y is past the cut


def test_means_over_queries_and_a_miss():
    m = retrieval_metrics([["a", "b"], ["c", "d"], ["e"]], [{"a"}, {"d"}, {"zz"}])
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@5"] == pytest.approx(2 / 3) and m["recall@10"] == pytest.approx(2 / 3)
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 0) / 3)
    with pytest.raises(ValueError, match="2 rankings for 1 relevance sets"):
        retrieval_metrics([["a"], ["b"]], [{"a"}])
