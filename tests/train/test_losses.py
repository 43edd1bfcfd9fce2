"""The embedding losses: InfoNCE (masking, hard negatives, symmetry), Matryoshka and GradCache."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gemb2.model import Gemb2Model, tiny
from gemb2.train.cached import GradCache
from gemb2.train.infonce import InfoNCELoss
from gemb2.train.matryoshka import MatryoshkaLoss


def unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def test_infonce_matches_hand_computed_two_by_two():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    t = 0.5
    # row 0: logits (0.6, 0.0)/t, label 0 ; row 1: logits (0.8, 1.0)/t, label 1
    r0 = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(0.0)))
    r1 = -math.log(math.exp(2.0) / (math.exp(1.6) + math.exp(2.0)))
    assert InfoNCELoss(t)(q, d).item() == pytest.approx((r0 + r1) / 2, abs=1e-6)
    # the other direction: d0 against (q0, q1) = (0.6, 0.8), label 0 ; d1: (0.0, 1.0), label 1
    c0 = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(1.6)))
    c1 = -math.log(math.exp(2.0) / (math.exp(0.0) + math.exp(2.0)))
    sym = InfoNCELoss(t, symmetric=True)(q, d).item()
    assert sym == pytest.approx(((r0 + r1) / 2 + (c0 + c1) / 2) / 2, abs=1e-6)


def test_duplicate_positive_is_masked_as_false_negative():
    q, d = unit(4, 8), unit(4, 8, seed=1)
    d[3] = d[1]  # the same positive twice: for query 1, column 3 is not a negative (and vice versa)
    ids = torch.tensor([10, 11, 12, 11])
    loss = InfoNCELoss(0.1)
    masked = loss(q, d, q_ids=torch.arange(4), d_ids=ids).item()
    plain = loss(q, d).item()
    logits = q @ d.T / 0.1
    logits[1, 3] = logits[3, 1] = float("-inf")
    expected = F.cross_entropy(logits, torch.arange(4)).item()
    assert masked == pytest.approx(expected, abs=1e-6)
    assert masked < plain  # the duplicate had been counted as a (very hard) negative


def test_duplicate_query_is_masked_as_false_negative():
    q, d = unit(3, 8), unit(3, 8, seed=1)
    q_ids = torch.tensor([5, 6, 5])  # queries 0 and 2 are the same text: each one's positive fits the other
    got = InfoNCELoss(0.1)(q, d, q_ids=q_ids, d_ids=torch.tensor([1, 2, 3])).item()
    logits = q @ d.T / 0.1
    logits[0, 2] = logits[2, 0] = float("-inf")
    assert got == pytest.approx(F.cross_entropy(logits, torch.arange(3)).item(), abs=1e-6)


def test_hard_negatives_are_extra_columns_and_a_negative_equal_to_the_positive_is_masked():
    q, d, n = unit(3, 8), unit(3, 8, seed=1), unit(2, 8, seed=2)
    got = InfoNCELoss(0.1)(q, d, n, d_ids=torch.tensor([1, 2, 3]), n_ids=torch.tensor([2, 9])).item()
    logits = torch.cat([q @ d.T, q @ n.T], 1) / 0.1  # (3, 5)
    logits[1, 3] = float("-inf")  # negative 0 has the content of query 1's positive
    assert got == pytest.approx(F.cross_entropy(logits, torch.arange(3)).item(), abs=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(0.0)
    with pytest.raises(ValueError, match="3 rows but d has 2"):
        InfoNCELoss()(unit(3, 4), unit(2, 4))
    with pytest.raises(ValueError, match="exceeds the embedding size 8"):
        MatryoshkaLoss(InfoNCELoss(), (16, 4))(unit(2, 8), unit(2, 8))


def test_matryoshka_sums_renormalised_prefixes_and_leaves_the_tail_untrained():
    q = unit(4, 16).requires_grad_(True)
    d = unit(4, 16, seed=1)
    inner = InfoNCELoss(0.1)
    got = MatryoshkaLoss(inner, (8, 4), weights=(1.0, 0.5))(q, d)
    expected = inner(F.normalize(q[:, :8], dim=-1), F.normalize(d[:, :8], dim=-1)) + 0.5 * inner(
        F.normalize(q[:, :4], dim=-1), F.normalize(d[:, :4], dim=-1))
    assert got.item() == pytest.approx(expected.item(), abs=1e-6)
    got.backward()
    assert q.grad[:, 8:].abs().max() == 0  # coordinates past the largest prefix get no gradient
    assert q.grad[:, :4].abs().max() > 0


def _model():
    torch.manual_seed(0)
    return Gemb2Model(tiny().replace(dropout=0.0)).train()


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunk", [1, 3])
def test_gradcache_gradients_equal_the_plain_loss(chunk):
    model = _model()
    queries = ["a red car", "a black cat", "pizza with cheese", "a rocket", "the sea at night", "green tea"]
    docs = ["red automobile", "small dark cat", "a slice of pizza", "space launch", "dark ocean", "tea leaves"]
    negs = ["a blue bicycle", "a loud dog"]
    loss_fn = MatryoshkaLoss(InfoNCELoss(0.05, symmetric=True), model.config.matryoshka_dims)

    def plain():
        model.zero_grad()
        q = model(model.collate(queries, "query"))
        d = model(model.collate(docs, "document"))
        n = model(model.collate(negs, "document"))
        loss = loss_fn(q, d, n)
        loss.backward()
        return loss.item(), _grads(model)

    def cached():
        model.zero_grad()
        encode = lambda texts_task: model(model.collate(*texts_task))  # noqa: E731
        split = lambda xs, task: [(xs[i : i + chunk], task) for i in range(0, len(xs), chunk)]  # noqa: E731
        gc = GradCache(encode, lambda q, d, negatives: loss_fn(q, d, negatives))
        loss = gc.step({"q": split(queries, "query"), "d": split(docs, "document"),
                        "negatives": split(negs, "document")})
        return loss.item(), _grads(model)

    l1, g1 = plain()
    l2, g2 = cached()
    assert l2 == pytest.approx(l1, abs=1e-5)  # chunks pad differently: float summation order
    assert g1.keys() == g2.keys() and len(g1) > 10
    for name in g1:
        torch.testing.assert_close(g2[name], g1[name], atol=1e-5, rtol=1e-4, msg=name)


def test_gradcache_replays_dropout_exactly():
    """With dropout on, step 3 must see the masks of step 1: the result is the same for any chunking
    of the same rows only when the RNG of each chunk is restored (here: 1 chunk per role, vs plain)."""
    torch.manual_seed(0)
    model = Gemb2Model(tiny().replace(dropout=0.3)).train()
    q_texts, d_texts = ["alpha beta", "gamma delta", "epsilon"], ["one two", "three four", "five"]
    loss_fn = InfoNCELoss(0.05)

    torch.manual_seed(123)
    model.zero_grad()
    q = model(model.collate(q_texts, "query"))
    d = model(model.collate(d_texts, "document"))
    l1 = loss_fn(q, d)
    l1.backward()
    g1 = _grads(model)

    torch.manual_seed(123)
    model.zero_grad()
    gc = GradCache(lambda c: model(model.collate(*c)), lambda q, d: loss_fn(q, d))
    l2 = gc.step({"q": [(q_texts, "query")], "d": [(d_texts, "document")]})
    g2 = _grads(model)
    assert l2.item() == pytest.approx(l1.item(), abs=1e-6)
    for name in g1:
        torch.testing.assert_close(g2[name], g1[name], atol=1e-5, rtol=1e-4, msg=name)
