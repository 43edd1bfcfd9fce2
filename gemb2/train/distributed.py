"""Data parallelism under `torchrun`: process-group setup and the gradient all-reduce.

Every rank embeds its slice of the global batch, gathers all embeddings (`gather.gather_rows`) and
computes the SAME global loss; its backward fills gradients from its own rows only. Summing the
gradients over ranks (`all_reduce_grads`) therefore gives exactly the gradient of one process over
the whole global batch. This is what DistributedDataParallel's bucketed all-reduce does (averaging
instead of summing); gemb2 reduces explicitly after backward because GradCache runs several
forward/backward passes per step and a text-only batch leaves the media stems unused, two cases
where DDP's hooks need `no_sync` and `find_unused_parameters` (PyTorch DDP notes, "Internal Design").

Backend: NCCL on CUDA, gloo on CPU (tests run two CPU processes with gloo).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from .gather import world


def init_from_env() -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR...); (rank, world, device).

    Without WORLD_SIZE (a plain `gemb2 train`) this is one process: (0, 1, cuda:0 or cpu).
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank, size = world()
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, size, torch.device("cuda", local)
    return rank, size, torch.device("cpu")


def all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Sum every trainable parameter's gradient over ranks (a missing grad counts as zeros), in one flat buffer."""
    _, size = world()
    if size == 1 or not params:
        return
    grads = []
    for p in params:
        g = p.grad
        if g is None:
            g = p.grad = torch.zeros_like(p)
        grads.append(g)
    flat = torch.cat([g.reshape(-1) for g in grads])  # (sum of numel,)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p, g in zip(params, grads):
        n = p.numel()
        g.copy_(flat[offset : offset + n].view_as(p))
        offset += n


def barrier() -> None:
    if world()[1] > 1:
        dist.barrier()


def is_main() -> bool:
    return world()[0] == 0
