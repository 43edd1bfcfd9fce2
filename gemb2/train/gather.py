"""All-gather of embeddings across ranks that keeps the local rank's gradients.

Reference: Ilharco et al., open_clip `loss.py` (`gather_features`, gather_with_grad=False): every
rank gathers every rank's features WITHOUT autograd, then puts its own tensor back in its slot, so
the contrastive batch is global while backward only flows into the local embeddings. Each rank thus
computes the same global loss; its gradients are d(loss)/d(local embeddings), and SUMMING them over
ranks (`gemb2.train.distributed.all_reduce_grads`) gives exactly the gradient of the one-process run
over the same global batch.

Ranks may hold different numbers of rows (hard negatives vary): sizes are exchanged first and the
tensors padded to the largest, then trimmed.
"""

from __future__ import annotations

from typing import overload

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world_size); (0, 1) when torch.distributed is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@overload
def gather_rows(x: torch.Tensor) -> torch.Tensor: ...
@overload
def gather_rows(x: None) -> None: ...
def gather_rows(x: torch.Tensor | None) -> torch.Tensor | None:
    """(n_local, ...) on each rank -> (sum of n, ...) in rank order; the local slice keeps its grad."""
    rank, size = world()
    if x is None or size == 1:
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(size)]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    pad = max(sizes)
    padded = torch.zeros((pad, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x.detach()
    parts = [torch.empty_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    parts = [p[:s] for p, s in zip(parts, sizes)]
    parts[rank] = x  # the local rows, with their autograd history
    return torch.cat(parts)
