"""GradCache: a contrastive batch larger than memory, with the plain loss's gradients.

Reference: Gao, Zhang, Han and Callan 2021, "Scaling Deep Contrastive Learning Batch Size under
Memory Limited Setup" (RepL4NLP), section 3: the loss needs every embedding of the batch but the
encoder's activations are needed only one sub-batch at a time. sentence-transformers'
`CachedMultipleNegativesRankingLoss` is the same method. The steps:

    1. embed every chunk without autograd (no activations kept), saving each chunk's RNG state;
    2. compute the loss on those embeddings as leaves; backward gives d(loss)/d(embedding), cached;
    3. for each chunk again: restore its RNG state (the same dropout), embed WITH autograd, and
       backpropagate the cached gradient: backward(sum(embedding * cached_grad)).

Cost: one extra forward pass (about +33% compute); memory is one chunk's activations plus the
(rows, D) embeddings. The gradients equal the plain loss's up to floating-point summation order.

The loss takes embeddings, not the model: `encode` is any callable chunk -> (rows, D) embeddings
(it holds the model), and `loss_fn` any callable of the embeddings (e.g. gathered across ranks,
then `MatryoshkaLoss(InfoNCELoss())`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch


class GradCache:
    """Run `loss_fn` over chunked inputs with GradCache; `step` returns the (detached) loss.

    Args:
        encode: chunk -> (rows, D) embeddings; called twice per chunk (without, then with autograd).
        loss_fn: called as loss_fn(**{role: (rows, D) embeddings}, **extra) -> scalar.
        no_sync: optional context factory entered for every backward but the last (DDP's no_sync).
    """

    def __init__(
        self,
        encode: Callable[[Any], torch.Tensor],
        loss_fn: Callable[..., torch.Tensor],
        no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
    ):
        self.encode, self.loss_fn, self.no_sync = encode, loss_fn, no_sync

    def step(self, chunks: Mapping[str, Sequence[Any]], **extra: Any) -> torch.Tensor:
        """chunks: role -> list of chunks (e.g. "q", "d", "negatives"). Gradients land in .grad."""
        # 1. embeddings without activations, and the RNG state that produced them
        states: dict[str, list[_RNG]] = {}
        embs: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for role, parts in chunks.items():
                states[role], rows = [], []
                for chunk in parts:
                    states[role].append(_RNG.capture())
                    rows.append(self.encode(chunk))
                embs[role] = torch.cat(rows).detach().requires_grad_(True)  # (rows, D) leaves
        # 2. the loss on the cached embeddings: its gradient w.r.t. each embedding
        loss = self.loss_fn(**embs, **extra)
        loss.backward()
        # 3. re-embed chunk by chunk with autograd and push the cached gradients through
        todo = [(role, i, chunk) for role, parts in chunks.items() for i, chunk in enumerate(parts)]
        offsets = {role: 0 for role in chunks}
        for n, (role, i, chunk) in enumerate(todo):
            last = n == len(todo) - 1
            ctx = self.no_sync() if (self.no_sync is not None and not last) else contextlib.nullcontext()
            with ctx, states[role][i].restore():
                e = self.encode(chunk)  # (rows, D)
                start = offsets[role]
                grad = embs[role].grad
                assert grad is not None  # step 2's backward gave every embedding its gradient
                g = grad[start : start + e.shape[0]]
                offsets[role] = start + e.shape[0]
                torch.sum(e.float() * g).backward()
        return loss.detach()


class _RNG:
    """The CPU (and CUDA) RNG state at one moment, restorable later (sentence-transformers' RandContext)."""

    def __init__(self, cpu: torch.Tensor, cuda: list[torch.Tensor] | None):
        self.cpu, self.cuda = cpu, cuda

    @classmethod
    def capture(cls) -> _RNG:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(torch.get_rng_state(), cuda)

    @contextlib.contextmanager
    def restore(self):
        devices = list(range(len(self.cuda))) if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state_all(self.cuda)
            yield
