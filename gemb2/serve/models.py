"""The models a server may use: an allow-list fixed at start, each loaded once and kept, with its batcher.

A request names a model by the name it was allowed under (`tiny`, `gemb2-mini`, a folder as given) or by its id
(`tiny-random@2bac59fd842a`); no request can make the server open a path or a model it was not started with.
The default model is loaded at start; the others on their first request (one load at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from gemb2.errors import UsageError

from .batcher import Batcher


class UnknownModel(UsageError):
    """A request named a model this server does not serve."""


@dataclass
class Served:
    """A loaded model, the name it was allowed under, and its batcher."""

    name: str
    model: object
    batcher: Batcher

    _spec: object = None

    @property
    def spec(self):
        """The loader spec media parts are decoded with for this model (as `gemb2 embed` decodes files for it)."""
        if self._spec is None:
            from gemb2.pipeline.loadspec import load_spec_for

            self._spec = load_spec_for(self.model)
        return self._spec

    @property
    def id(self) -> str:
        return self.model.model_id  # type: ignore[attr-defined]

    def info(self) -> dict:
        cfg = self.model.config  # type: ignore[attr-defined]
        return {
            "id": self.id,
            "object": "model",
            "owned_by": "gemb2",
            "name": self.name,
            "loaded": True,
            "dimensions": cfg.out_dim,
            "matryoshka_dimensions": sorted(cfg.matryoshka_dims, reverse=True),
            "modalities": list(cfg.modalities),
        }


class ModelPool:
    """The allowed models (`names`, the first the default), loaded by `load(name, device)` when first asked for."""

    def __init__(self, names: Sequence[str], device: str | None, *, max_batch_items: int = 256):
        if not names:
            raise UsageError("serve needs at least one model")
        self.names = list(dict.fromkeys(names))  # in order, once each
        self.device = device
        self.max_batch_items = max_batch_items
        self._loaded: dict[str, Served] = {}
        self._lock = threading.Lock()

    @property
    def default(self) -> str:
        return self.names[0]

    def get(self, name: str | None) -> Served:
        """The model `name` (a name it was allowed under, or a loaded model's id; None: the default), loaded."""
        name = name or self.default
        for served in list(self._loaded.values()):
            if name == served.id:
                return served
        if name not in self.names:
            raise UnknownModel(f"model {name!r} is not served here; this server serves {', '.join(self.names)}")
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._load(name)
            return self._loaded[name]

    def _load(self, name: str) -> Served:
        from gemb2.pipeline.embed import default_batch_size
        from gemb2.pipeline.open import load_model

        model = load_model(name, self.device)
        batcher = Batcher(
            model,
            max_items=self.max_batch_items,
            batch_size=default_batch_size(model),
            name=f"gemb2-serve-{len(self._loaded)}",
        )
        return Served(name, model, batcher)

    def loaded(self) -> list[Served]:
        return list(self._loaded.values())

    def info(self) -> list[dict]:
        """/v1/models: every allowed model; one not loaded yet says so (its dimensions are known once loaded)."""
        out = []
        for name in self.names:
            served = self._loaded.get(name)
            out.append(
                served.info()
                if served
                else {"id": name, "object": "model", "owned_by": "gemb2", "name": name, "loaded": False}
            )
        return out

    def close(self) -> None:
        for served in self._loaded.values():
            served.batcher.close(timeout=30)
