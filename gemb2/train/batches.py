"""A BatchPlan -> this rank's items (queries, positives, hard negatives) with prompts and content ids.

Prompts are prepended as a Text part and the model collates with task=None: this gives exactly the
tokens of `model.collate(items, task="query")` when the prompt is the config's, and lets each item
drop its prompt on its own (prompt dropout, Gemini Embedding section 3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gemb2.data.manifest import Manifest, content_id
from gemb2.data.manifest_items import load_item
from gemb2.data.segments import LoadSpec
from gemb2.parts import Part, Text

from .sampler import BatchPlan
from .tasks import TaskSpec

if TYPE_CHECKING:
    from gemb2.model import ModelConfig


@dataclass
class TrainBatch:
    task: str
    queries: list[tuple[Part, ...]]  # (b,) items, prompts included
    positives: list[tuple[Part, ...]]  # (b,)
    negatives: list[tuple[Part, ...]]  # (n,) every query's hard negatives, flattened
    q_ids: torch.Tensor  # (b,) int64 content ids
    d_ids: torch.Tensor  # (b,)
    n_ids: torch.Tensor  # (n,)


def rank_slice(plan: BatchPlan, rank: int, world: int) -> slice:
    """The contiguous rows of the global batch that `rank` embeds (gathered back in rank order)."""
    B = len(plan.indices)
    if B % world:
        raise ValueError(f"the batch size {B} is not divisible by the {world} ranks")
    per = B // world
    return slice(rank * per, (rank + 1) * per)


def build_batch(
    plan: BatchPlan,
    manifest: Manifest,
    task: TaskSpec,
    spec: LoadSpec,
    config: ModelConfig,
    rank: int = 0,
    world: int = 1,
) -> TrainBatch:
    """Load this rank's share of `plan` from disk. `config` is the model's (for the default prompts)."""
    rows = rank_slice(plan, rank, world)
    examples = manifest.examples(plan.task, plan.indices[rows])
    return assemble(
        plan.task,
        examples,
        plan.keep_query_prompt[rows],
        plan.keep_document_prompt[rows],
        task,
        config,
        load_item,
        spec,
    )


def prompt_text(config, side: str, chosen: str | None) -> str:
    """A task's prompt text for `side` ("query" / "document"). None: the model's own (a gemb2 config's
    query_prompt / document_prompt; a model with named prompts, EmbeddingGemma 2's, its prompt for that side).
    A name of the model's prompts (`query_prompt: STS`) is that prompt's text; any other string is the text."""
    named = getattr(config, "prompts", None) or {}
    if chosen is not None:
        return named.get(chosen, chosen)
    if hasattr(config, f"{side}_prompt"):
        return getattr(config, f"{side}_prompt") or ""
    from gemb2.pretrained.embedding_gemma2 import TASK_ALIASES

    return next((named[n] for n in TASK_ALIASES[side] if n in named), "")


def assemble(task_name: str, examples, keep_q, keep_d, task: TaskSpec, config, load, spec) -> TrainBatch:
    """Examples (manifest or shard examples: .query, .positive, .negatives) -> a TrainBatch; `load(item, spec)`
    decodes an item; keep_q/keep_d say which items keep their prompt (prompt dropout)."""
    qp = prompt_text(config, "query", task.query_prompt)
    dp = prompt_text(config, "document", task.document_prompt)

    def prompted(item, prompt: str, keep: bool):
        parts = load(item, spec)
        return ((Text(prompt),) + parts) if (prompt and keep) else parts

    queries = [prompted(e.query, qp, k) for e, k in zip(examples, keep_q)]
    positives = [prompted(e.positive, dp, k) for e, k in zip(examples, keep_d)]
    neg_refs = [n for e in examples for n in e.negatives[: task.negatives]]
    negatives = [prompted(n, dp, True) for n in neg_refs]
    ids = lambda refs: torch.tensor([content_id(r) for r in refs], dtype=torch.long)  # noqa: E731
    return TrainBatch(
        task_name,
        queries,
        positives,
        negatives,
        ids([e.query for e in examples]),
        ids([e.positive for e in examples]),
        ids(neg_refs),
    )
