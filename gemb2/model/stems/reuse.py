"""Features a stem computed for recognition, kept for the stem's own forward on the same input.

A model that recognises media (recognise.py) runs part of a stem before the layout (the words must be known before
the token sequence is built) and the whole stem after it, on the same input: the EfficientNet stem's CNN feeds its
ImageNet head (the class names) and then its projector; the Whisper stem's encoder feeds Whisper's decoder
(recognise_speech_from "stem") and then the stem's pooling and projector. Inside `reusing()`
(what `Gemb2Model.encode` opens around both) a `Reuse` keeps each row's features under a key that names the exact
input (a digest of its bytes, shape and dtype, and how the features were computed); `take` returns them for rows it
finds. Outside the block nothing is kept or looked up (training, the ONNX export, direct calls), and at most
`max_bytes` are kept (rows past it are simply computed again).

    reuse = Reuse()
    with reuse.reusing():
        reuse.keep(keys, features)          # (B, ...) rows under their keys
        rows = reuse.take(keys)             # [Tensor | None] per key
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

REUSE_BYTES = 128 << 20  # kept in one block: 512 Lite0 maps at 224 px (250 KiB), or 55 Whisper tiny windows (2.3 MB)


def row_keys(rows: torch.Tensor | np.ndarray, salt: str = "") -> list[bytes]:
    """One key per row of `rows` (its bytes, shape and dtype, and `salt`: how features are computed from it)."""
    a = rows.detach().cpu().numpy() if isinstance(rows, torch.Tensor) else np.asarray(rows)
    head = f"{a.shape[1:]}|{a.dtype}|{salt}".encode()
    return [
        hashlib.blake2b(np.ascontiguousarray(r).tobytes(), digest_size=16, person=b"gemb2-reuse").digest() + head
        for r in a
    ]


class Reuse:
    """Rows of features by key, kept only inside `reusing()` and only up to its byte budget."""

    def __init__(self) -> None:
        self._rows: dict[bytes, torch.Tensor] | None = None
        self._bytes = self._room = 0

    @property
    def active(self) -> bool:
        return self._rows is not None

    def __len__(self) -> int:
        """Rows kept now (0 outside a block)."""
        return len(self._rows or ())

    @property
    def kept_bytes(self) -> int:
        return self._bytes

    @contextlib.contextmanager
    def reusing(self, max_bytes: int = REUSE_BYTES) -> Iterator[None]:
        """Within the block `keep` keeps and `take` finds; everything kept is dropped when it ends. A nested block
        shares the outer one's rows."""
        if self._rows is not None:
            yield
            return
        self._rows, self._bytes, self._room = {}, 0, max_bytes
        try:
            yield
        finally:
            self._rows, self._bytes = None, 0

    def keep(self, keys: Sequence[bytes], features: torch.Tensor) -> None:
        """Keep features[i] under keys[i] (detached), while the budget lasts; nothing outside a block."""
        if self._rows is None:
            return
        for key, row in zip(keys, features):
            size = row.numel() * row.element_size()
            if key in self._rows or self._bytes + size > self._room:
                continue
            self._rows[key] = row.detach()
            self._bytes += size

    def take(self, keys: Sequence[bytes]) -> list[torch.Tensor | None]:
        """The kept row of each key (None: not kept, or outside a block)."""
        rows = self._rows
        return [None] * len(keys) if rows is None else [rows.get(k) for k in keys]
