"""The shard store: vectors in safetensors shards plus a JSON-lines index of ids and paths, for other systems.

Layout of an output folder:

    manifest.json                 the truth: schema version, model, dim, the live shards, per file its record
                                  and where its rows are, and the remembered failures ("failed")
    shard-000001.safetensors      tensor "vectors": (rows, dim) float32
    shard-000001.jsonl            one JSON object per row, in the same order: key, path, modality, segment,
                                  start, end, text

Reading: take the shards `manifest.json` lists under "shards" (`read_shards` does; `gemb2.read_shards` is the
same function). Every row of a listed shard is live: when a file is re-embedded or deleted, the shards that held
its old rows are compacted (their live rows copied into the next shard written) and dropped in the same
commit, so a reader never meets a dead row in a listed shard.

Every file is written under a temporary name, flushed to disk and renamed into place; the manifest is
replaced last. A shard the manifest does not name (left by a killed run, or just compacted away) is never
read and is deleted after the manifest is replaced, so a torn shard is never taken for a valid one.

Schema version 2 added per-file "segmentation" (missing in version 1: 1) and "failed"; a version-1 folder is
read as it is and written as version 2.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence

import numpy as np

from gemb2.store.records import (
    EmbeddedFile,
    FailureRecord,
    FileRecord,
    StoreError,
    StoreUsageError,
    WrongModelError,
    segment_key,
)

SCHEMA_VERSION = 2
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
        self.where = f"shards in {os.path.abspath(folder)}"
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise StoreUsageError(f"--out {folder} exists and is not a folder")
        path = os.path.join(folder, MANIFEST)
        if os.path.exists(path):
            m = read_manifest(folder)
            if model is not None and m["model"] != model:
                raise WrongModelError(
                    f"{folder} holds vectors of model {m['model']!r}, not {model!r}: use another --out folder, "
                    f"or --rebuild to replace them"
                )
            m.setdefault("failed", {})
            m["schema_version"] = SCHEMA_VERSION  # version 1 reads as version 2 with defaults
            self._m = m
        else:
            self._m = {
                "schema_version": SCHEMA_VERSION,
                "model": model,
                "dim": dim,
                "next_shard": 1,
                "shards": {},
                "files": {},
                "failed": {},
            }
        self.model, self.dim, self.source = self._m["model"], self._m["dim"], self._m.get("source", "")

    def known_files(self) -> dict[str, FileRecord]:
        return {
            p: FileRecord(
                p, f["size"], f["mtime_ns"], f["content_hash"], self.model, f["n_segments"], f.get("segmentation", 1)
            )
            for p, f in self._m["files"].items()
        }

    def known_failures(self) -> dict[str, FailureRecord]:
        return {
            p: FailureRecord(p, f["size"], f["mtime_ns"], f["model"], f["reason"], f["version"])
            for p, f in self._m["failed"].items()
        }

    def drop(self) -> None:
        for name in os.listdir(self.folder) if os.path.isdir(self.folder) else []:
            if _SHARD.match(name) or name == MANIFEST:
                os.unlink(os.path.join(self.folder, name))
        self._m.update(next_shard=1, shards={}, files={}, failed={})

    def write(self, files: Sequence[EmbeddedFile], failures: Sequence[FailureRecord] = ()) -> None:
        """One commit: the new rows and the live rows of the shards this write leaves partly dead go into one new
        shard; the manifest is replaced; the old shards are deleted."""
        if not files and not failures:
            return
        for r in failures:
            self._m["failed"][r.path] = {
                "size": r.size,
                "mtime_ns": r.mtime_ns,
                "model": r.model,
                "reason": r.reason,
                "version": r.version,
            }
        self._drop_rows([f.record.path for f in files])
        pieces = self._carry_live_rows()
        for f in files:
            self._m["failed"].pop(f.record.path, None)
            rec = f.record
            info = {
                "size": rec.size,
                "mtime_ns": rec.mtime_ns,
                "content_hash": rec.content_hash,
                "n_segments": rec.n_segments,
                "segmentation": rec.segmentation,
            }
            lines = [
                json.dumps(
                    {
                        "key": segment_key(rec.path, r.segment),
                        "path": rec.path,
                        "modality": r.modality,
                        "segment": r.segment,
                        "start": r.start,
                        "end": r.end,
                        "text": r.text,
                    },
                    ensure_ascii=False,
                )
                for r in f.rows
            ]
            vectors = np.stack([r.vector for r in f.rows]).astype(np.float32) if f.rows else None  # (rows, dim)
            if vectors is not None and vectors.shape[1] != self.dim:
                raise StoreError(f"vectors of dimension {vectors.shape[1]} for a shard folder of dimension {self.dim}")
            pieces.append((rec.path, info, lines, vectors))
        self._write_shard(pieces)
        self._commit()

    def _carry_live_rows(self) -> list[tuple[str, dict, list[str], np.ndarray | None]]:
        """The live rows of every shard that also holds dead rows, by file, taken out of those shards (which are
        then dead and dropped by the commit): (path, file info, index lines, (rows, dim) vectors)."""
        from safetensors.numpy import load_file

        partial = {s for s, info in self._m["shards"].items() if 0 < info["live"] < info["rows"]}
        pieces = []
        for shard in sorted(partial):
            lines = _read_lines(os.path.join(self.folder, shard + ".jsonl"))
            vecs = load_file(os.path.join(self.folder, shard + ".safetensors"))["vectors"]
            for path, info in self._m["files"].items():
                if info["shard"] == shard:
                    first, n = info["first_row"], info["rows"]
                    keep = {k: v for k, v in info.items() if k not in ("shard", "first_row", "rows")}
                    pieces.append((path, keep, lines[first : first + n], vecs[first : first + n]))
            self._m["shards"][shard]["live"] = 0
        return pieces

    def _write_shard(self, pieces: list[tuple[str, dict, list[str], np.ndarray | None]]) -> None:
        """Write the rows of `pieces` as the next shard (none if they have no row) and point their files at it."""
        os.makedirs(self.folder, exist_ok=True)
        n = self._m["next_shard"]
        name = f"shard-{n:06d}"
        lines = [line for _, _, ls, _ in pieces for line in ls]
        if lines:
            from safetensors.numpy import save

            arr = np.concatenate([v for _, _, _, v in pieces if v is not None])
            _atomic_write(os.path.join(self.folder, name + ".jsonl"), ("\n".join(lines) + "\n").encode("utf-8"))
            _atomic_write(
                os.path.join(self.folder, name + ".safetensors"),
                save({"vectors": arr}, metadata={"model": self.model, "dim": str(self.dim)}),
            )
            self._m["shards"][name] = {"rows": len(lines), "live": len(lines)}
            self._m["next_shard"] = n + 1
        row = 0
        for path, info, ls, _ in pieces:
            self._m["files"][path] = {**info, "shard": name if ls else None, "first_row": row, "rows": len(ls)}
            row += len(ls)

    def _drop_rows(self, paths: Sequence[str]) -> None:
        for p in paths:
            old = self._m["files"].pop(p, None)
            if old and old["shard"]:
                self._m["shards"][old["shard"]]["live"] -= old["rows"]

    def remove(self, paths: Sequence[str]) -> None:
        if paths:
            for p in paths:
                self._m["failed"].pop(p, None)
            self._drop_rows(paths)
            self._write_shard(self._carry_live_rows())
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


def read_manifest(folder: str) -> dict:
    """The manifest of a shard folder, checked for its schema version (1 or 2)."""
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
    except (OSError, ValueError) as e:
        raise StoreError(f"cannot read {path}: {e}") from e
    if not isinstance(m, dict) or m.get("schema_version") not in (1, SCHEMA_VERSION):
        version = m.get("schema_version") if isinstance(m, dict) else None
        raise StoreError(f"{path} has schema version {version}, expected 1 or {SCHEMA_VERSION}")
    return m


def _read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def read_shards(folder: str) -> tuple[list[dict], np.ndarray]:
    """The rows of a shard folder: their index records (key, path, modality, segment, start, end, text) and an
    (N, dim) float32 array of their vectors, row i of one for record i of the other. Reads only the shards the
    manifest lists, and of those only the rows the manifest points at."""
    from safetensors.numpy import load_file

    m = read_manifest(folder)
    live: dict[str, list[tuple[int, int]]] = {}
    for info in m["files"].values():
        if info["shard"]:
            live.setdefault(info["shard"], []).append((info["first_row"], info["rows"]))
    records, vectors = [], []
    for shard in sorted(live):
        lines = _read_lines(os.path.join(folder, shard + ".jsonl"))
        vecs = load_file(os.path.join(folder, shard + ".safetensors"))["vectors"]
        for first, n in sorted(live[shard]):
            records.extend(json.loads(line) for line in lines[first : first + n])
            vectors.append(vecs[first : first + n])
    dim = m["dim"] or 0
    return records, (np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32))
