"""The interface every model family gives the pipeline, eval and the CLI: gemb2's own `Gemb2Model` and imported
families (gemb2.pretrained.embedding_gemma2.EmbeddingGemma2) both have it.

    model.encode(items, task="document", dim=None, batch_size=None) -> (N, dim) float32 unit vectors
    model.check_dim(dim) -> dim (ValueError naming the Matryoshka dims);  model.model_id: "name@digest"
    model.device;  model.config.out_dim / matryoshka_dims / modalities
    load_spec_for(model) (gemb2.pipeline.loadspec): how the loaders cut files for it (a family may say: load_spec())
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch


class Embedder(Protocol):
    config: Any  # .out_dim, .matryoshka_dims, .modalities

    @property
    def device(self) -> torch.device: ...

    @property
    def model_id(self) -> str: ...

    def check_dim(self, dim: int | None) -> int: ...

    def encode(
        self,
        items: Sequence[Any],
        *,
        task: str | None = "document",
        dim: int | None = None,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        precision: str = "auto",
        device: torch.device | str | None = None,
    ) -> np.ndarray: ...
