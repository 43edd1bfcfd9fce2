"""Task-homogeneous batches, tasks sampled by weight, in an order fixed by the seed and resumable.

References: Gemini Embedding (Lee et al. 2025, section 3.1) and GTE (Li et al. 2023, section 3.1):
every batch comes from one task (in-batch negatives of another task are trivially easy), tasks are
sampled with probability proportional to a weight.

Determinism: the task of step s is drawn from a generator seeded by (seed, s); each task walks
through a permutation of its examples seeded by (seed, task, epoch). The position is therefore just
`state()` = {"step": s, "cursors": {task: [epoch, offset]}}: saved in a checkpoint, `load_state`
makes a resumed run draw exactly the batches the interrupted run would have drawn.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchPlan:
    step: int
    task: str
    indices: np.ndarray  # (global_batch,) example indices within the task
    keep_query_prompt: np.ndarray  # (global_batch,) bool: False = prompt dropped for this query
    keep_document_prompt: np.ndarray  # (global_batch,) bool


class TaskSampler:
    """sizes: task -> number of examples; weights: task -> weight; batch_size: the GLOBAL batch."""

    def __init__(
        self, sizes: dict[str, int], weights: dict[str, float], batch_size: int, seed: int, prompt_dropout: float = 0.0
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= prompt_dropout <= 1.0:
            raise ValueError(f"prompt_dropout must be in [0, 1], got {prompt_dropout}")
        missing = sorted(set(weights) - set(sizes))
        if missing:
            raise ValueError(f"task(s) {', '.join(missing)} have no examples in the stage's data")
        for t in weights:
            if sizes[t] < batch_size:
                raise ValueError(f"task {t!r} has {sizes[t]} examples, fewer than the batch size {batch_size}")
        self.tasks = sorted(weights)
        w = np.asarray([weights[t] for t in self.tasks], dtype=np.float64)
        self.p = w / w.sum()
        self.sizes, self.batch_size, self.seed, self.prompt_dropout = sizes, batch_size, seed, prompt_dropout
        self.step = 0
        self.cursors = {t: [0, 0] for t in self.tasks}

    def state(self) -> dict:
        return {"step": self.step, "cursors": {t: list(c) for t, c in self.cursors.items()}}

    def load_state(self, state: dict) -> None:
        if sorted(state["cursors"]) != self.tasks:
            raise ValueError(f"the checkpoint's tasks {sorted(state['cursors'])} are not this stage's {self.tasks}")
        self.step = int(state["step"])
        self.cursors = {t: [int(e), int(o)] for t, (e, o) in state["cursors"].items()}

    def _perm(self, task: str, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, zlib.crc32(task.encode()), epoch])
        return rng.permutation(self.sizes[task])

    def next(self) -> BatchPlan:
        rng = np.random.default_rng([self.seed, self.step])
        task = draw_task(rng, self.tasks, self.p)
        epoch, offset = self.cursors[task]
        taken: list[np.ndarray] = []
        need = self.batch_size
        while need:
            perm = self._perm(task, epoch)
            chunk = perm[offset : offset + need]
            taken.append(chunk)
            need -= len(chunk)
            offset += len(chunk)
            if offset >= len(perm):
                epoch, offset = epoch + 1, 0
        self.cursors[task] = [epoch, offset]
        keep = draw_keep(rng, self.batch_size, self.prompt_dropout)  # (2, B)
        plan = BatchPlan(self.step, task, np.concatenate(taken), keep[0], keep[1])
        self.step += 1
        return plan


def draw_task(rng: np.random.Generator, tasks: list[str], p: np.ndarray) -> str:
    """The task of a step, from the step's generator (seeded by (seed, step)): sorted `tasks`, probabilities `p`."""
    return tasks[int(rng.choice(len(tasks), p=p))]


def draw_keep(rng: np.random.Generator, batch_size: int, prompt_dropout: float) -> np.ndarray:
    """(2, B) bool: which queries (row 0) and documents (row 1) keep their prompt; drawn after the task."""
    return rng.random((2, batch_size)) >= prompt_dropout


def task_weights(weights: dict[str, float]) -> tuple[list[str], np.ndarray]:
    """Sorted task names and their sampling probabilities (weights normalised)."""
    tasks = sorted(weights)
    w = np.asarray([weights[t] for t in tasks], dtype=np.float64)
    return tasks, w / w.sum()
