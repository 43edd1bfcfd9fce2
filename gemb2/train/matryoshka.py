"""Matryoshka representation learning: the loss summed over nested prefixes of the embedding.

Reference: Kusupati et al. 2022, "Matryoshka Representation Learning" (NeurIPS), section 3: the
training loss is a weighted sum of the same loss on the first m coordinates, for m in a nested set
M, so that every prefix is a usable embedding. sentence-transformers' `MatryoshkaLoss` is the same
wrapper. Each prefix is re-normalised to unit length before the inner loss, because gemb2 stores and
compares unit vectors (`gemb2.model.truncate`).

Inputs: the inner loss's inputs; every embedding argument (q, d, negatives) is (rows, D) with
D >= max(dims). Ids and other arguments pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class MatryoshkaLoss(nn.Module):
    """sum_m w_m * loss(q[:, :m], d[:, :m], negatives[:, :m], ...), each prefix re-normalised.

    Args:
        loss: an embedding loss such as `InfoNCELoss`.
        dims: the prefixes, e.g. the model config's `matryoshka_dims` (384, 256, 128, 64).
        weights: one per dim (default 1 each, as in the paper's experiments).
    """

    def __init__(self, loss: nn.Module, dims: Sequence[int], weights: Sequence[float] | None = None):
        super().__init__()
        dims = tuple(int(m) for m in dims)
        if not dims or any(m < 1 for m in dims):
            raise ValueError(f"dims must be positive integers, got {dims}")
        weights = tuple(float(w) for w in (weights if weights is not None else [1.0] * len(dims)))
        if len(weights) != len(dims):
            raise ValueError(f"{len(weights)} weights for {len(dims)} dims")
        self.loss, self.dims, self.weights = loss, dims, weights

    def forward(
        self, q: torch.Tensor, d: torch.Tensor, negatives: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        if max(self.dims) > q.shape[-1]:
            raise ValueError(f"Matryoshka dim {max(self.dims)} exceeds the embedding size {q.shape[-1]}")
        total = q.new_zeros((), dtype=torch.float32)
        for m, w in zip(self.dims, self.weights):
            cut = lambda x, m=m: None if x is None else F.normalize(x[..., :m], dim=-1)  # noqa: E731
            total = total + w * self.loss(cut(q), cut(d), cut(negatives), **kwargs)
        return total
