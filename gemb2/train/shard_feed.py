"""Training batches streamed from WebDataset shards: split over ranks and loader workers, in a seeded order, resumable.

    slots      every rank runs W loader workers (data_workers, 0 = one in-process reader): G = world x W slots,
               slot g = rank x W + worker
    steps      step s is built by worker s mod W of every rank; its task and prompt dropout are drawn exactly as
               the JSONL sampler draws them (sampler.draw_task/draw_keep from the generator seeded by (seed, s)),
               and each rank takes its batch_size / world examples from its slot's stream of that task
    epochs     each task's shards are put in an order seeded by (seed, task, epoch); slot g reads the shards at
               positions g, g + G, g + 2G...; with fewer shards S than slots, slot g reads shard g mod S and keeps
               its samples i with i mod c = g div S, where c is the number of slots sharing that shard. No example
               is read by two slots; an epoch of a slot ends when its share is read, and the next one begins (an
               epoch is exact over all ranks when the slots' shares are equal: equal shards, a multiple of G)
    shuffle    samples are read in blocks of `shuffle_buffer`, each block permuted by (seed, task, slot, epoch,
               block); blocks never cross an epoch, so the examples of epoch e all come before those of e + 1
    resume     a stream's state is (epoch, block, where the block starts: [shard position, byte offset, sample
               number], examples of the block already given); resuming seeks to the block's start (a seek, or a
               ranged read on an object store), reads the block again and permutes it alike: the stream continues
               exactly. The main process keeps, for each worker, the states that came with its last batch; every
               rank writes them to its checkpoint as data-<rank>.json.

Why blocks and not webdataset's rolling buffer: a rolling buffer can hold a sample for arbitrarily long, so
rebuilding it after a restart means replaying the epoch up to there; a block is rebuilt from one seek and at most
`shuffle_buffer` samples read again.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import islice

import numpy as np
import torch

from gemb2.data.shard_examples import PlainLayout, load_shard_item, to_example
from gemb2.data.shards import Sample, ShardError, expand, iter_samples
from gemb2.errors import Gemb2Error, UsageError

from .batches import TrainBatch, assemble
from .sampler import draw_keep, draw_task, task_weights
from .tasks import TaskSpec


@dataclass(frozen=True)
class ShardSource:
    """A recipe's `data: {shards: ...}` entry: one task's shards and how to read them."""

    shards: tuple[str, ...]  # paths, file:// or object-store URLs; {000..099} brace ranges
    task: str | None = None  # None: the stage's only task
    query: tuple[str, ...] = PlainLayout.query  # img2dataset layout: the members that make each side
    positive: tuple[str, ...] = PlainLayout.positive
    shuffle_buffer: int = 1000  # examples shuffled together in memory (0 or 1: shard order only)

    def urls(self) -> list[str]:
        return [u for p in self.shards for u in expand(p)]

    def layout(self) -> PlainLayout:
        return PlainLayout(self.query, self.positive)

    def doc(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _crc(task: str) -> int:
    return zlib.crc32(task.encode())


class TaskStream:
    """One task's examples as slot `slot` of `nslots` reads them (see the module docstring); `take(k)` -> samples."""

    def __init__(self, urls: list[str], task: str, seed: int, slot: int, nslots: int, buffer: int, state=None):
        self.urls, self.task, self.seed, self.slot, self.nslots = urls, task, seed, slot, nslots
        self.buffer = max(buffer, 1)
        st = state or {"epoch": 0, "block": 0, "at": [0, 0, 0], "emitted": 0}
        self.epoch, self.block_no, self.at, self.emitted = st["epoch"], st["block"], list(st["at"]), st["emitted"]
        self._block: list[Sample] | None = None
        self._reader: Iterator = iter(())
        self._next = None  # the (position, sample) after the block, read ahead

    def state(self) -> dict:
        return {"epoch": self.epoch, "block": self.block_no, "at": list(self.at), "emitted": self.emitted}

    def plan(self, epoch: int) -> list[tuple[str, int, int]]:
        """This slot's (shard, c, r) in epoch order: it keeps the shard's samples i with i mod c == r."""
        S, G = len(self.urls), self.nslots
        order = np.random.default_rng([self.seed, _crc(self.task), epoch]).permutation(S)
        if S >= G:
            return [(self.urls[order[i]], 1, 0) for i in range(self.slot, S, G)]
        i = self.slot % S
        return [(self.urls[order[i]], len(range(i, G, S)), self.slot // S)]

    def _read(self, epoch: int, at: list[int]) -> Iterator[tuple[list[int], Sample]]:
        plan, (j0, offset, index) = self.plan(epoch), at
        for j in range(j0, len(plan)):
            url, c, r = plan[j]
            for s in iter_samples(url, offset if j == j0 else 0, index if j == j0 else 0):
                if s.index % c == r:
                    yield [j, s.offset, s.index], s

    def _fill(self, first: tuple | None) -> bool:
        """Read the block that starts at `first` (or at self.at: a new reader), permute it; False at epoch end."""
        if first is None:
            self._reader = self._read(self.epoch, self.at)
            got = list(islice(self._reader, self.buffer))
        else:
            got = [first, *islice(self._reader, self.buffer - 1)]
        if not got:
            return False
        self.at = list(got[0][0])
        perm = np.random.default_rng([self.seed, _crc(self.task), self.slot, self.epoch, self.block_no])
        order = perm.permutation(len(got)) if self.buffer > 1 else range(len(got))
        self._block = [got[i][1] for i in order]
        self._next = next(self._reader, None)
        return True

    def take(self, k: int) -> list[Sample]:
        out: list[Sample] = []
        while len(out) < k:
            if self._block is None:
                if not self._fill(None):
                    if self.at == [0, 0, 0]:
                        raise ShardError(
                            f"task {self.task!r}: no examples for loader slot {self.slot} of {self.nslots} "
                            f"in {len(self.urls)} shard(s) (fewer examples than ranks x data_workers?)"
                        )
                    self.epoch, self.block_no, self.at, self.emitted = self.epoch + 1, 0, [0, 0, 0], 0
                continue
            if self.emitted < len(self._block):
                out.append(self._block[self.emitted])
                self.emitted += 1
            elif self._next is None:  # the epoch is read: the next one starts with a new shard order
                self._block, self.epoch, self.block_no, self.at, self.emitted = None, self.epoch + 1, 0, [0, 0, 0], 0
            else:
                self.block_no, self.emitted = self.block_no + 1, 0
                self._fill(self._next)
        return out


class ShardDataset(torch.utils.data.IterableDataset):
    """Yields (step, TrainBatch, {task: stream state}) for the steps of [start, steps) this worker builds: worker w
    builds lane (start + w) mod W, the steps s with s mod W == lane, so the DataLoader's round robin (worker 0
    first) hands the steps over in order; a lane's streams are the same whatever step a run (re)starts at."""

    def __init__(self, feed: ShardFeed, start: int, states: dict[int, dict]):
        super().__init__()
        self.feed, self.start, self.states = feed, start, states

    def __iter__(self):
        f = self.feed
        info = torch.utils.data.get_worker_info()
        w, W = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:
            torch.set_num_threads(1)  # one decoding thread per worker: the workers are the parallelism
        lane = (self.start + w) % W
        mine = self.states.get(lane, {})
        streams = {
            t: TaskStream(src.urls(), t, f.seed, f.rank * W + lane, f.world * W, src.shuffle_buffer, mine.get(t))
            for t, src in f.sources.items()
        }
        k = f.batch_size // f.world
        rows = slice(f.rank * k, (f.rank + 1) * k)
        for s in range(self.start + w, f.steps, W):
            try:
                rng = np.random.default_rng([f.seed, s])
                task = draw_task(rng, f.names, f.p)
                keep = draw_keep(rng, f.batch_size, f.prompt_dropout)[:, rows]
                examples = [to_example(x, task, f.sources[task].layout()) for x in streams[task].take(k)]
                batch = assemble(task, examples, keep[0], keep[1], f.tasks[task], f.config, load_shard_item, f.spec)
            except Gemb2Error as e:  # handed over as it is: the DataLoader would wrap it in a traceback
                yield s, e, {}
                return
            yield s, batch, {t: st.state() for t, st in streams.items()}


def _as_is(x):
    return x


class ShardFeed:
    """The loop's batches from shards: `next()` -> this rank's TrainBatch of the next step; state for checkpoints."""

    def __init__(self, sources: list[ShardSource], tasks: dict[str, TaskSpec], s, spec, config, rank: int, world: int):
        by_task: dict[str, ShardSource] = {}
        for src in sources:
            t = src.task or (next(iter(tasks)) if len(tasks) == 1 else None)
            if t is None or t in by_task:
                raise UsageError(
                    f"shards {src.shards[0]}...: name one task per shard source (tasks: {', '.join(tasks)})"
                )
            by_task[t] = src
        missing = sorted(set(tasks) - set(by_task))
        if missing:
            raise UsageError(f"task(s) {', '.join(missing)} have no shards in the stage's data")
        self.sources = {t: by_task[t] for t in tasks}
        self.tasks, self.spec, self.config, self.rank, self.world = tasks, spec, config, rank, world
        self.names, self.p = task_weights({n: t.weight for n, t in tasks.items()})
        self.seed, self.steps, self.batch_size, self.prompt_dropout = s.seed, s.steps, s.batch_size, s.prompt_dropout
        self.workers = s.data_workers
        self.step, self.worker_states = 0, {}
        self._it = None

    def state(self) -> dict:
        return {"step": self.step}

    def rank_state(self) -> dict:
        return {"workers": self.workers, "streams": {str(w): st for w, st in sorted(self.worker_states.items())}}

    def load_state(self, state: dict, rank_state: dict | None) -> None:
        if rank_state is None or rank_state.get("workers") != self.workers:
            raise ValueError("the checkpoint's shard positions were written with other data_workers or ranks")
        self.step = int(state["step"])
        self.worker_states = {int(w): st for w, st in rank_state["streams"].items()}

    def next(self) -> TrainBatch:
        if self._it is None:
            data = ShardDataset(self, self.step, dict(self.worker_states))
            if self.workers:
                loader = torch.utils.data.DataLoader(
                    data,
                    batch_size=None,
                    num_workers=self.workers,
                    collate_fn=_as_is,
                    prefetch_factor=2,
                    # its own generator: the loader's base seed must not be drawn from the training RNG, which a
                    # resumed run restores before the loader starts (dropout would follow another stream)
                    generator=torch.Generator().manual_seed(self.seed),
                )
                self._it = iter(loader)
            else:
                self._it = iter(data)
        step, batch, states = next(self._it)
        if isinstance(batch, Exception):
            raise batch
        assert step == self.step, (step, self.step)  # workers answer in turn (ShardDataset)
        self.worker_states[step % max(self.workers, 1)] = states
        self.step += 1
        return batch

    def close(self) -> None:
        self._it = None
