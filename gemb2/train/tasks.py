"""How one task is trained: its sampling weight, symmetry, prompts and hard negatives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """One task of a stage (a recipe's `tasks:` entry).

    Prompts follow Gemini Embedding (section 3.1: task prompts as text prefixes); None takes the
    model config's `query_prompt` / `document_prompt`, "" trains that side without a prompt.
    """

    name: str
    weight: float = 1.0  # tasks are sampled with probability proportional to weight
    symmetric: bool = False  # InfoNCE in both directions (image <-> caption), else query -> document
    query_prompt: str | None = None
    document_prompt: str | None = None
    negatives: int = 0  # hard negatives used per query (the first ones of each example), 0 = in-batch only

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a task needs a name")
        if not self.weight > 0:
            raise ValueError(f"task {self.name!r}: weight must be > 0, got {self.weight}")
        if self.negatives < 0:
            raise ValueError(f"task {self.name!r}: negatives must be >= 0, got {self.negatives}")
