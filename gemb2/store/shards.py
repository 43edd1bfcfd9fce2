"""The shard store: vectors in safetensors shards plus a JSON-lines index of ids and paths, for other systems.

Layout of an output folder:

    manifest.json                 the truth: schema version, model, dim, live shards, and per file its record
                                  and where its rows are
    shard-000001.safetensors      tensor "vectors": (rows, dim) float32
    shard-000001.jsonl            one JSON object per row, in the same order: key, path, modality, segment,
                                  start, end, text

Every file is written under a temporary name, flushed to disk and renamed into place; the manifest is
replaced last. A shard the manifest does not name (left by a killed run) is never read and is deleted by
the next write, so a torn shard is never taken for a valid one. Replaced or removed rows stay in their shard
until every row of it is dead, when the shard is deleted.
"""

from __future__ import annotations

import json
import os
import re
from typing import Sequence

import numpy as np

from gemb2.store.records import EmbeddedFile, FileRecord, StoreError, segment_key

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
_SHARD = re.compile(r"^shard-(\d{6})\.(safetensors|jsonl)$")


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ShardStore:
    """Safetensors shards in a folder; see the module docstring for the layout."""

    def __init__(self, folder: str, *, model: str | None = None, dim: int | None = None):
        self.folder = folder
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise StoreError(f"--out {folder} exists and is not a folder")
        path = os.path.join(folder, MANIFEST)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    m = json.load(f)
            except (OSError, ValueError) as e:
                raise StoreError(f"cannot read {path}: {e}") from e
            if m.get("schema_version") != SCHEMA_VERSION:
                raise StoreError(f"{path} has schema version {m.get('schema_version')}, expected {SCHEMA_VERSION}")
            if model is not None and m["model"] != model:
                raise StoreError(
                    f"{folder} holds vectors of model {m['model']!r}, not {model!r}: use another --out folder, "
                    f"or --rebuild to replace them"
                )
            self._m = m
        else:
            self._m = {"schema_version": SCHEMA_VERSION, "model": model, "dim": dim, "next_shard": 1, "shards": {}, "files": {}}
        self.model, self.dim, self.source = self._m["model"], self._m["dim"], self._m.get("source", "")

    def known_files(self) -> dict[str, FileRecord]:
        return {
            p: FileRecord(p, f["size"], f["mtime_ns"], f["content_hash"], self.model, f["n_segments"])
            for p, f in self._m["files"].items()
        }

    def drop(self) -> None:
        for name in os.listdir(self.folder) if os.path.isdir(self.folder) else []:
            if _SHARD.match(name) or name == MANIFEST:
                os.unlink(os.path.join(self.folder, name))
        self._m.update(next_shard=1, shards={}, files={})

    def write(self, files: Sequence[EmbeddedFile]) -> None:
        if not files:
            return
        from safetensors.numpy import save

        os.makedirs(self.folder, exist_ok=True)
        n = self._m["next_shard"]
        name = f"shard-{n:06d}"
        vectors, lines = [], []
        for f in files:
            for r in f.rows:
                vectors.append(r.vector)
                lines.append(
                    json.dumps(
                        {
                            "key": segment_key(f.record.path, r.segment),
                            "path": f.record.path,
                            "modality": r.modality,
                            "segment": r.segment,
                            "start": r.start,
                            "end": r.end,
                            "text": r.text,
                        },
                        ensure_ascii=False,
                    )
                )
        self._drop_rows([f.record.path for f in files])
        if vectors:
            arr = np.stack(vectors).astype(np.float32)  # (rows, dim)
            if arr.shape[1] != self.dim:
                raise StoreError(f"vectors of dimension {arr.shape[1]} for a shard folder of dimension {self.dim}")
            _atomic_write(os.path.join(self.folder, name + ".jsonl"), ("\n".join(lines) + "\n").encode("utf-8"))
            _atomic_write(
                os.path.join(self.folder, name + ".safetensors"),
                save({"vectors": arr}, metadata={"model": self.model, "dim": str(self.dim)}),
            )
            self._m["shards"][name] = {"rows": len(vectors), "live": len(vectors)}
            self._m["next_shard"] = n + 1
        row = 0
        for f in files:
            self._m["files"][f.record.path] = {
                "size": f.record.size,
                "mtime_ns": f.record.mtime_ns,
                "content_hash": f.record.content_hash,
                "n_segments": f.record.n_segments,
                "shard": name if f.rows else None,
                "first_row": row,
                "rows": len(f.rows),
            }
            row += len(f.rows)
        self._commit()

    def _drop_rows(self, paths: Sequence[str]) -> None:
        for p in paths:
            old = self._m["files"].pop(p, None)
            if old and old["shard"]:
                self._m["shards"][old["shard"]]["live"] -= old["rows"]

    def remove(self, paths: Sequence[str]) -> None:
        if paths:
            self._drop_rows(paths)
            self._commit()

    def _commit(self) -> None:
        """Write the manifest, then delete shards with no live row and files no manifest names."""
        self._m.update(model=self.model, dim=self.dim, source=self.source)
        dead = [s for s, info in self._m["shards"].items() if info["live"] <= 0]
        for s in dead:
            del self._m["shards"][s]
        os.makedirs(self.folder, exist_ok=True)
        _atomic_write(os.path.join(self.folder, MANIFEST), json.dumps(self._m, ensure_ascii=False).encode("utf-8"))
        for name in os.listdir(self.folder):
            m = _SHARD.match(name)
            stale_tmp = ".tmp-" in name and name.startswith("shard-")
            if stale_tmp or (m and f"shard-{m.group(1)}" not in self._m["shards"]):
                try:
                    os.unlink(os.path.join(self.folder, name))
                except FileNotFoundError:
                    pass

    def close(self) -> None:
        pass


def read_shards(folder: str) -> tuple[list[dict], np.ndarray]:
    """The live rows of a shard folder: their index records and an (N, dim) float32 array of their vectors."""
    from safetensors.numpy import load_file

    with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
        m = json.load(f)
    live: dict[str, list[tuple[int, int]]] = {}
    for info in m["files"].values():
        if info["shard"]:
            live.setdefault(info["shard"], []).append((info["first_row"], info["rows"]))
    records, vectors = [], []
    for shard in sorted(live):
        lines = open(os.path.join(folder, shard + ".jsonl"), encoding="utf-8").read().splitlines()
        vecs = load_file(os.path.join(folder, shard + ".safetensors"))["vectors"]
        for first, n in sorted(live[shard]):
            records.extend(json.loads(line) for line in lines[first : first + n])
            vectors.append(vecs[first : first + n])
    dim = m["dim"] or 0
    return records, (np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32))
