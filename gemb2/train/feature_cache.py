"""Frozen pretrained encoders computed once per distinct input: a feature cache for training.

When a stage freezes a stem's pretrained encoder (EfficientNet-Lite in the image stem, Whisper's
encoder in the audio stem), the encoder's output for a given input never changes, yet the loop
would recompute it every time an example is drawn again. On a CPU that dominates a step (figures:
BENCHMARKS.md, "Training").
LiT (Zhai et al. 2022, "LiT: Zero-Shot Transfer with Locked-image text Tuning", sec. 3) makes the
same observation for a locked image tower: its embeddings can be precomputed.

    with cache.attached(model):      # for one training step
        loss = objective(batch)      # a frozen encoder's rows already seen come from memory

`attached` swaps each FROZEN stem encoder (every parameter requires_grad=False) for a wrapper for
the duration of the block and puts the original back afterwards, so the model's modules and
state_dict are untouched outside it (checkpoints never see the wrapper). A row's key is a digest of
the encoder's weights, the method called and the input row's bytes, so the cache is exact: stages
of one recipe that share the same frozen encoder share its features, and any change of weights or
input misses. Misses are computed without gradients (the encoder is frozen; nothing needs them) in
eval mode, then stored on the CPU until `max_bytes` is reached (later misses are computed but not
stored). Gradients into the trainable parts after the encoder are exactly those of the uncached run.
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from gemb2.model.digest import hash_state

# (stem attribute, encoder attribute, the encoder method the stem calls)
ENCODERS = (("image_stem", "encoder", "forward_features"), ("audio_stem", "encoder", "forward"))


class FeatureCache:
    """Memoised outputs of frozen stem encoders, keyed by (weights digest, method, input row bytes)."""

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.used_bytes = 0
        self.hits = 0
        self.misses = 0
        self._rows: dict[bytes, torch.Tensor] = {}
        self._digests: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # encoder -> weights digest

    def __len__(self) -> int:
        return len(self._rows)

    def stats(self) -> str:
        return (
            f"feature cache: {len(self)} rows, {self.used_bytes / 2**20:.0f} MiB, "
            f"{self.hits} hits, {self.misses} misses"
        )

    def save(self, path: str) -> None:
        """Write the cached rows to a safetensors file (keys hex-encoded), for another process to `load`."""
        from safetensors.torch import save_file

        save_file({k.hex(): v.contiguous() for k, v in self._rows.items()}, path)

    def load(self, path: str) -> int:
        """Add the rows of a file `save` wrote (within max_bytes). Returns how many were added."""
        from safetensors.torch import load_file

        added = 0
        for k, v in load_file(path).items():
            size = v.numel() * v.element_size()
            if bytes.fromhex(k) not in self._rows and self.used_bytes + size <= self.max_bytes:
                self._rows[bytes.fromhex(k)] = v
                self.used_bytes += size
                added += 1
        return added

    @contextlib.contextmanager
    def attached(self, model: nn.Module) -> Iterator[FeatureCache]:
        """Within the block, the model's frozen stem encoders read through the cache."""
        swapped = []
        try:
            for stem_name, attr, method in ENCODERS:
                stem = getattr(model, stem_name, None)
                encoder = getattr(stem, attr, None) if stem is not None else None
                if not isinstance(encoder, nn.Module) or any(p.requires_grad for p in encoder.parameters()):
                    continue  # no such encoder, or it trains: its outputs change, nothing to cache
                setattr(stem, attr, _Cached(encoder, method, self, self._digest(encoder)))
                swapped.append((stem, attr, encoder))
            yield self
        finally:
            for stem, attr, encoder in swapped:
                setattr(stem, attr, encoder)

    def _digest(self, encoder: nn.Module) -> bytes:
        if encoder not in self._digests:
            h = hashlib.blake2b(digest_size=16)
            hash_state(h, encoder.state_dict())
            self._digests[encoder] = h.digest()
        return self._digests[encoder]

    def run(self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, prefix: bytes) -> torch.Tensor:
        """fn over the rows of x (B, ...) -> (B, ...), computing only the rows not cached."""
        rows = x.detach().cpu().contiguous()
        keys = [
            prefix
            + hashlib.blake2b(
                f"{tuple(r.shape)}|{r.dtype}|".encode() + r.reshape(-1).view(torch.uint8).numpy().tobytes(),
                digest_size=16,
            ).digest()
            for r in rows
        ]
        first = {}  # key -> the first row that has it, for the keys not cached (a batch may repeat a row)
        for i, k in enumerate(keys):
            if k not in self._rows:
                first.setdefault(k, i)
        self.hits += len(keys) - len(first)
        self.misses += len(first)
        fresh: dict[bytes, torch.Tensor] = {}
        if first:
            with torch.no_grad():
                out = fn(x[list(first.values())])  # (m, ...)
            for j, k in enumerate(first):
                fresh[k] = out[j]
                row = out[j].detach().cpu().clone()
                size = row.numel() * row.element_size()
                if self.used_bytes + size <= self.max_bytes:
                    self._rows[k] = row
                    self.used_bytes += size
        return torch.stack([fresh[k] if k in fresh else self._rows[k].to(x.device) for k in keys])  # (B, ...)


class _Cached(nn.Module):
    """Stands in for a frozen encoder inside `FeatureCache.attached`: the same methods, through the cache."""

    def __init__(self, encoder: nn.Module, method: str, cache: FeatureCache, digest: bytes):
        super().__init__()
        self.inner: Any = encoder  # Any: its own methods (forward_features) are called through
        self._method, self._cache, self._prefix = method, cache, digest + method.encode() + b"|"

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        modes = [(m, m.training) for m in self.inner.modules()]  # per module: a stem may keep some in eval
        self.inner.eval()
        try:
            return self._cache.run(getattr(self.inner, self._method), x, self._prefix)
        finally:
            for m, mode in modes:
                m.training = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._method != "forward":
            return self.inner(x)
        return self._call(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self._method != "forward_features":
            return self.inner.forward_features(x)
        return self._call(x)

    def __getattr__(self, name: str):  # anything else (num_features, config, ...) is the encoder's
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)


_SHARED: FeatureCache | None = None


def shared_cache(max_mb: int) -> FeatureCache:
    """The process-wide cache (so the stages of one recipe share features), grown to at least max_mb MiB."""
    global _SHARED
    if _SHARED is None:
        _SHARED = FeatureCache(max_mb * 2**20)
    _SHARED.max_bytes = max(_SHARED.max_bytes, max_mb * 2**20)
    return _SHARED
