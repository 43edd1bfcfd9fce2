"""How gemb2 hashes weights: every tensor's name, dtype, shape and raw bytes, in name order.

`weights_digest` is the digest part of a model id ("<name>@<digest>"); `hash_state` is the tensor part,
which the training feature cache also keys frozen encoders by. Changing either changes every model id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Protocol

import torch

from .config import ModelConfig
from .recognise import class_names
from .tokenizer import TextTokenizer


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


def hash_state(h: _Hash, state: Mapping[str, torch.Tensor]) -> None:
    """Feed `h` every tensor of `state` in name order: `name|dtype|shape|`, then its bytes as stored."""
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def weights_digest(config: ModelConfig, tokenizer: TextTokenizer, state: Mapping[str, torch.Tensor]) -> str:
    """A short, stable hash of what decides the vectors: config (`to_dict`), tokenizer, and every tensor's
    name, dtype and bytes."""
    h = hashlib.sha256()
    h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    h.update(tokenizer.digest.encode())
    if config.recognise_classes:  # the names it writes are part of what it embeds
        h.update("\n".join(class_names()).encode())
    hash_state(h, state)
    return h.hexdigest()[:12]
