"""The all-gather keeps the local rank's gradients: 2 gloo processes == 1 process over the same global batch."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from gemb2.train.gather import gather_rows
from gemb2.train.infonce import InfoNCELoss
from gemb2.train.matryoshka import MatryoshkaLoss

pytestmark = pytest.mark.slow  # two spawned gloo processes


def global_batch():
    g = torch.Generator().manual_seed(7)
    q = F.normalize(torch.randn(8, 16, generator=g), dim=-1)
    d = F.normalize(torch.randn(8, 16, generator=g), dim=-1)
    n = F.normalize(torch.randn(3, 16, generator=g), dim=-1)  # uneven: rank 0 holds 2, rank 1 holds 1
    d_ids = torch.tensor([0, 1, 2, 3, 4, 1, 6, 7])  # a duplicate positive across the two ranks
    return q, d, n, d_ids


LOSS = MatryoshkaLoss(InfoNCELoss(0.05, symmetric=True), (16, 8))


def _worker(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    q, d, n, d_ids = global_batch()
    rows = slice(4 * rank, 4 * rank + 4)
    neg = slice(0, 2) if rank == 0 else slice(2, 3)
    lq, ld, ln = (x[s].clone().requires_grad_(True) for x, s in ((q, rows), (d, rows), (n, neg)))
    loss = LOSS(gather_rows(lq), gather_rows(ld), gather_rows(ln), d_ids=gather_rows(d_ids[rows]))
    loss.backward()
    save_file({"loss": loss.detach(), "gq": lq.grad, "gd": ld.grad, "gn": ln.grad}, f"{out}/{rank}.safetensors")
    dist.destroy_process_group()


def test_two_gloo_processes_compute_the_one_process_loss_and_gradients(tmp_path):
    q, d, n, d_ids = (x.clone() for x in global_batch())
    for x in (q, d, n):
        x.requires_grad_(True)
    loss = LOSS(q, d, n, d_ids=d_ids)
    loss.backward()

    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.start_processes(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, start_method="spawn")
    r0, r1 = (load_file(tmp_path / f"{r}.safetensors") for r in (0, 1))
    for r in (r0, r1):  # every rank computes the same global loss
        torch.testing.assert_close(r["loss"], loss.detach(), atol=1e-6, rtol=0)
    # each rank's gradients are the one-process gradients of its own rows
    torch.testing.assert_close(torch.cat([r0["gq"], r1["gq"]]), q.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(torch.cat([r0["gd"], r1["gd"]]), d.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(torch.cat([r0["gn"], r1["gn"]]), n.grad, atol=1e-6, rtol=1e-5)
