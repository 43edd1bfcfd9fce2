"""Shards under two gloo ranks: each rank writes its own stream positions, and a run resumed from a checkpoint
ends with the uninterrupted two-rank run's weights (every rank's loader workers restart where they were)."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

pytestmark = pytest.mark.slow  # spawned gloo processes


def _rank(rank: int, store: str, pattern: str, out: str, resume: bool) -> None:
    from gemb2.train.loop import TrainSettings, train_stage
    from gemb2.train.shard_feed import ShardSource
    from gemb2.train.tasks import TaskSpec

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    s = TrainSettings(
        steps=6,
        batch_size=8,
        lr=1e-3,
        seed=3,
        checkpoint_every=3,
        keep_checkpoints=0,
        log_every=0,
        prompt_dropout=0.3,
        data_workers=1,
    )
    src = ShardSource((pattern,), "pairs", shuffle_buffer=4)
    train_stage("tiny", out, {"pairs": TaskSpec("pairs", symmetric=True)}, [src], s, resume=resume)
    dist.destroy_process_group()


def test_two_ranks_resume_to_the_uninterrupted_weights(tmp_path):
    from tests.train.test_webdataset_train import shards

    _, pattern = shards(tmp_path, 48, 6)  # 8 shards: 2 ranks x 1 worker, 4 shards a slot
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    mp.start_processes(_rank, args=(str(tmp_path / "s1"), pattern, str(full), False), nprocs=2, start_method="spawn")
    ckpt = full / "checkpoints/step-000003"
    assert (ckpt / "data-0.json").is_file() and (ckpt / "data-1.json").is_file()
    shutil.copytree(ckpt, resumed / "checkpoints" / ckpt.name)  # as if killed after step 3
    mp.start_processes(_rank, args=(str(tmp_path / "s2"), pattern, str(resumed), True), nprocs=2, start_method="spawn")
    a = load_file(full / "final/model.safetensors")
    b = load_file(resumed / "final/model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() <= 1e-5, k
