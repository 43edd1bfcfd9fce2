"""InfoNCE over in-batch negatives, with optional hard negatives and false-negative masking.

References:
    Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding" (InfoNCE, section 2.3).
    Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision" (CLIP),
        section 2.3 and Figure 3: the symmetric cross-entropy over a batch's similarity matrix.
    Li et al. 2023, "Towards General Text Embeddings with Multi-stage Contrastive Learning" (GTE),
        section 3.2: in-batch negatives that are really positives must not be pushed away.
    Lee et al. 2025, "Gemini Embedding" (arXiv 2503.07891), section 3.1: NCE loss with in-batch
        negatives, an optional hard negative per query, masking of same-target in-batch entries.
    sentence-transformers `MultipleNegativesRankingLoss` (the one-way form; hard negatives as extra
        columns shared by every query) and `MultipleNegativesSymmetricRankingLoss`.

    logits[i, j] = <q_i, d_j> / temperature          (B, B + N): positives, then hard negatives
    loss_q2d     = mean_i CE(logits[i], i)            masked columns get -inf
    symmetric:     loss = (loss_q2d + loss_d2q) / 2, loss_d2q = mean_j CE(<d_j, q_.> / t, j)

False negatives, by content id (the caller hashes each item's content into an int64):
    column j != i is masked for query i when d_ids[j] == d_ids[i] (the same positive twice) or
    q_ids[j] == q_ids[i] (the same query twice: its positive is a positive of query i too);
    hard-negative column k is masked for query i when n_ids[k] == d_ids[i] (a "negative" that IS the
    positive). The diagonal is never masked.

Relations: `MatryoshkaLoss` wraps this loss over embedding prefixes; `GradCache` runs it over a batch
too big for memory with the same gradients; `gather_embeddings` makes the batch global across ranks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InfoNCELoss(nn.Module):
    """Contrastive loss of L2-normalised embeddings against in-batch (and hard) negatives.

    Args:
        temperature: logits are cosine / temperature (sentence-transformers' scale = 1 / temperature).
            0.05 is the usual value for text embedders (E5, GTE); CLIP learns it, starting at 0.07.
        symmetric: also score each positive against all queries (CLIP's two directions), for tasks
            whose sides are interchangeable (image <-> caption); one-way (query -> document) otherwise.

    Inputs:
        q: (B, D) query embeddings, unit length.
        d: (B, D) positives, d[i] belongs to q[i].
        negatives: (N, D) hard negatives or None; every query is scored against all of them.
        q_ids, d_ids: (B,) int64 content ids, or None (no false-negative masking).
        n_ids: (N,) int64 content ids of the negatives, or None.

    Returns: a scalar, the mean cross-entropy (averaged over both directions when symmetric).
    """

    def __init__(self, temperature: float = 0.05, symmetric: bool = False):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.symmetric = bool(symmetric)

    def forward(
        self,
        q: torch.Tensor,
        d: torch.Tensor,
        negatives: torch.Tensor | None = None,
        q_ids: torch.Tensor | None = None,
        d_ids: torch.Tensor | None = None,
        n_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B = q.shape[0]
        if d.shape[0] != B:
            raise ValueError(f"q has {B} rows but d has {d.shape[0]}: every query needs one positive")
        labels = torch.arange(B, device=q.device)
        q, d = q.float(), d.float()
        mask = false_negatives(q_ids, d_ids, B, q.device)  # (B, B) True = drop
        logits = q @ d.T / self.temperature  # (B, B)
        logits = logits.masked_fill(mask, float("-inf"))
        if negatives is not None and len(negatives):
            neg = q @ negatives.float().T / self.temperature  # (B, N)
            if n_ids is not None and d_ids is not None:
                neg = neg.masked_fill(n_ids[None, :] == d_ids[:, None], float("-inf"))
            logits = torch.cat([logits, neg], dim=1)  # (B, B + N)
        loss = F.cross_entropy(logits, labels)
        if self.symmetric:
            back = (d @ q.T / self.temperature).masked_fill(mask.T, float("-inf"))  # (B, B)
            loss = (loss + F.cross_entropy(back, labels)) / 2
        return loss


def false_negatives(
    q_ids: torch.Tensor | None, d_ids: torch.Tensor | None, B: int, device: torch.device
) -> torch.Tensor:
    """(B, B) bool: True where column j is a duplicate of row i's query or positive (never the diagonal)."""
    mask = torch.zeros((B, B), dtype=torch.bool, device=device)
    if q_ids is not None:
        mask |= q_ids[:, None] == q_ids[None, :]
    if d_ids is not None:
        mask |= d_ids[:, None] == d_ids[None, :]
    mask.fill_diagonal_(False)
    return mask
