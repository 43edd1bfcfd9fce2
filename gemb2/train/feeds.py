"""Where a stage's batches come from: JSONL manifests (random access, TaskSampler) or WebDataset shards (streamed).

Both give the loop the same three things: `next()` -> this rank's TrainBatch of the next step; `state()` -> the
position every rank shares (trainer.json's "sampler"); `rank_state()` -> what only this rank knows (shard
positions, written as data-<rank>.json; None for manifests); `load_state` restores both on --resume.
"""

from __future__ import annotations

from gemb2.data.manifest import Manifest
from gemb2.errors import UsageError

from .batches import TrainBatch, build_batch
from .sampler import TaskSampler
from .shard_feed import ShardFeed, ShardSource
from .tasks import TaskSpec


class ManifestFeed:
    """Batches from JSONL manifests: the global batch's example indices by TaskSampler, this rank's rows loaded."""

    def __init__(self, data: list[str], tasks: dict[str, TaskSpec], s, spec, config, rank: int, world: int):
        self.manifest = Manifest(data)
        # the data's other tasks are not sampled in this stage
        weights = {n: t.weight for n, t in tasks.items()}
        self.sampler = TaskSampler(self.manifest.tasks, weights, s.batch_size, s.seed, s.prompt_dropout)
        self.tasks, self.spec, self.config, self.rank, self.world = tasks, spec, config, rank, world

    def next(self) -> TrainBatch:
        plan = self.sampler.next()
        return build_batch(plan, self.manifest, self.tasks[plan.task], self.spec, self.config, self.rank, self.world)

    def state(self) -> dict:
        return self.sampler.state()

    def rank_state(self) -> dict | None:
        return None

    def load_state(self, state: dict, rank_state: dict | None) -> None:
        self.sampler.load_state(state)

    def close(self) -> None:
        pass


def make_feed(data: list, tasks: dict[str, TaskSpec], s, spec, config, rank: int, world: int):
    """A ManifestFeed for manifest paths, a ShardFeed for ShardSources (a stage reads one kind)."""
    shards = [d for d in data if isinstance(d, ShardSource)]
    if shards and len(shards) != len(data):
        raise UsageError("a stage reads JSONL manifests or shards, not both")
    if shards:
        return ShardFeed(shards, tasks, s, spec, config, rank, world)
    if s.data_workers:
        raise UsageError("data_workers: only shard data is read by loader workers (a manifest is read in place)")
    return ManifestFeed([str(d) for d in data], tasks, s, spec, config, rank, world)
