"""Micro-batching: requests that arrive while the model is busy are embedded together, in one `encode` call.

    fut = batcher.submit(items, task="query", dim=None)   # a concurrent.futures.Future of an (N, dim) array
    vectors = await asyncio.wrap_future(fut)

One worker thread per model owns it (torch runs one forward at a time there; its own intra-op threads do the
parallel work). Whenever the model is free, the worker takes every job that has arrived, up to `max_items`
items, groups them by (task, dim), and embeds each group in one call; `encode` sorts the items by length and pads
each batch only to its longest, so joining requests costs no padding. A person sending one request waits for
nothing: a job alone is embedded as soon as it arrives. Vectors are the same as one request alone would get, up
to float rounding of the batch's padding shape (~1e-7).

If a joined call fails, each job of the group is retried alone, so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

_STOP = object()


@dataclass
class _Job:
    items: list
    task: str | None
    dim: int | None
    future: Future = field(default_factory=Future)


class Batcher:
    """A worker thread that embeds submitted items with `model`, joining jobs that wait together."""

    def __init__(self, model, *, max_items: int = 256, batch_size: int | None = None, name: str = "gemb2-batcher"):
        self.model = model
        self.max_items = max_items
        self.batch_size = batch_size
        self.calls = 0  # encode calls made (a joined call counts once): how much batching happened
        self._q: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, items: list, *, task: str | None, dim: int | None) -> Future:
        job = _Job(items, task, dim)
        self._q.put(job)
        return job.future

    def close(self, timeout: float | None = None) -> None:
        """Finish the jobs already submitted, then stop the thread."""
        self._q.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is _STOP:
                return
            jobs, n, stop = [job], len(job.items), False
            while n < self.max_items:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                jobs.append(nxt)
                n += len(nxt.items)
            groups: dict[tuple, list[_Job]] = {}
            for j in jobs:
                groups.setdefault((j.task, j.dim), []).append(j)
            for group in groups.values():
                self._embed(group)
            if stop:
                return

    def _embed(self, jobs: list[_Job]) -> None:
        items = [it for j in jobs for it in j.items]
        try:
            vectors = self._encode(items, jobs[0].task, jobs[0].dim)
        except BaseException as e:  # handed to the waiting request, never lost
            if len(jobs) > 1:
                for j in jobs:
                    self._embed([j])
                return
            jobs[0].future.set_exception(e)
            return
        start = 0
        for j in jobs:
            j.future.set_result(vectors[start : start + len(j.items)])
            start += len(j.items)

    def _encode(self, items: list, task: str | None, dim: int | None) -> np.ndarray:
        self.calls += 1
        return self.model.encode(items, task=task, dim=dim, batch_size=self.batch_size)
