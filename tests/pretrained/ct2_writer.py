"""A minimal CTranslate2 model.bin writer (binary version 6), after ModelSpec._serialize in
ctranslate2/specs/model_spec.py, to make small and malformed files for the reader's tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_CODES = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int16"): 2, np.dtype("int32"): 3, np.dtype("float16"): 4}


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<H", len(raw) + 1) + raw + b"\0"


def ct2_bytes(variables: dict[str, np.ndarray], spec: str = "TestSpec", aliases=(), version: int = 6) -> bytes:
    out = [struct.pack("<I", version), _string(spec), struct.pack("<II", 1, len(variables))]
    for name, value in variables.items():
        value = np.asarray(value)  # (tobytes below is C order; ascontiguousarray would make 0-d 1-d)
        out += [_string(name), struct.pack("<B", value.ndim), struct.pack(f"<{value.ndim}I", *value.shape)]
        out += [struct.pack("<BI", _CODES[value.dtype], value.nbytes), value.tobytes()]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases:
        out += [_string(alias), _string(target)]
    return b"".join(out)


def write_ct2(path: Path, variables: dict[str, np.ndarray], **kw) -> Path:
    path.write_bytes(ct2_bytes(variables, **kw))
    return path
