"""JSONL manifests -> WebDataset tar shards (`gemb2 data to-shards`), one shard set per task.

    OUT/<task>-000000.tar, OUT/<task>-000001.tar, ...    `shard_size` examples each (the last one fewer)

Example i of a task (numbered in manifest order) is sample `{i:09d}`: its `.json` is the manifest line with each
part naming a member of the sample (see gemb2.data.shard_examples), each text part a `.txt` member and each file
part the file's bytes under its own extension:

    000000012.json  000000012.query.0.txt  000000012.positive.0.png  000000012.neg0.0.txt

The output is deterministic (same manifest and files -> the same bytes): members in that order, mtime 0, owner
0/0, mode 0644, ustar headers. Each shard is written to a temporary name and renamed when complete; a failure
removes what this run wrote.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gemb2.data.discover import modality_of
from gemb2.data.manifest import ItemRef, ManifestError, parse_example
from gemb2.errors import InputError, UsageError


class ConvertError(InputError, ValueError):
    """A manifest's file that cannot be copied into a shard; the message names manifest:line and the file."""


@dataclass
class _TaskShards:
    """The shards of one task being written."""

    out: Path
    stem: str
    size: int
    examples: int = 0
    written: list[Path] = field(default_factory=list)
    bytes: int = 0
    _tar: tarfile.TarFile | None = None
    _tmp: Path | None = None

    def add(self, members: list[tuple[str, bytes]]) -> None:
        if self._tar is None:
            self._tmp = self.out / f".{self.stem}-{len(self.written):06d}.tar.tmp"
            self._tar = tarfile.open(self._tmp, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115 (closed by close/abort)
        key = f"{self.examples:09d}"
        for suffix, data in members:
            info = tarfile.TarInfo(f"{key}.{suffix}")
            info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o644, "", ""
            self._tar.addfile(info, io.BytesIO(data))
        self.examples += 1
        if self.examples % self.size == 0:
            self.close()

    def close(self) -> None:
        if self._tar is None or self._tmp is None:
            return
        self._tar.close()
        final = self.out / f"{self.stem}-{len(self.written):06d}.tar"
        os.replace(self._tmp, final)
        self.bytes += final.stat().st_size
        self.written.append(final)
        self._tar, self._tmp = None, None

    def abort(self) -> None:
        if self._tar is not None and self._tmp is not None:
            self._tar.close()
            self._tmp.unlink(missing_ok=True)
        for p in self.written:
            p.unlink(missing_ok=True)

    def pattern(self) -> str:
        n = len(self.written)
        if n == 1:
            return str(self.written[0])
        return str(self.out / f"{self.stem}-{{{0:06d}..{n - 1:06d}}}.tar")


def to_shards(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    shard_size: int,
    *,
    progress: Callable[[int], object] = lambda n: None,
) -> dict:
    """Write `manifest`'s examples as shards under `out`; returns the summary (per task: examples, shards,
    the brace pattern a recipe's `shards:` takes)."""
    src, out = Path(manifest), Path(out)
    if shard_size < 1:
        raise UsageError(f"--shard-size must be >= 1, got {shard_size}")
    if not src.is_file():
        raise UsageError(f"manifest not found: {src}")
    if out.exists() and (not out.is_dir() or any(out.glob("*.tar"))):
        raise UsageError(f"{out} already holds shards (or is a file); choose another folder or remove them")
    out.mkdir(parents=True, exist_ok=True)
    tasks: dict[str, _TaskShards] = {}
    try:
        _convert(src, out, shard_size, tasks, progress)
        for t in tasks.values():
            t.close()
    except BaseException:
        for t in tasks.values():
            t.abort()
        raise
    if not tasks:
        raise ManifestError(f"{src}: no examples")
    return {
        "manifest": str(src),
        "out": str(out),
        "examples": sum(t.examples for t in tasks.values()),
        "shards": sum(len(t.written) for t in tasks.values()),
        "bytes": sum(t.bytes for t in tasks.values()),
        "tasks": {
            name: {"examples": t.examples, "shards": len(t.written), "pattern": t.pattern()}
            for name, t in tasks.items()
        },
    }


def _convert(src: Path, out: Path, size: int, tasks: dict[str, _TaskShards], progress) -> None:
    base = src.resolve().parent
    stems: dict[str, str] = {}
    with open(src, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            at = f"{src}:{lineno}"
            try:
                doc = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ManifestError(f"{at}: invalid JSON ({e})") from None
            ex = parse_example(doc, base, at)
            if ex.task not in tasks:
                stem = re.sub(r"[^A-Za-z0-9._-]", "_", ex.task)
                if stem in stems:
                    raise UsageError(f"tasks {stems[stem]!r} and {ex.task!r} would share the shard name {stem!r}")
                stems[stem] = ex.task
                tasks[ex.task] = _TaskShards(out, stem, size)
            members: list[tuple[str, bytes]] = []
            sides = [("query", ex.query), ("positive", ex.positive)]
            sides += [(f"neg{j}", n) for j, n in enumerate(ex.negatives)]
            parts = {role: _parts(role, item, members, at) for role, item in sides}
            record = {"task": ex.task, "query": parts["query"], "positive": parts["positive"]}
            if ex.negatives:
                record["negatives"] = [parts[f"neg{j}"] for j in range(len(ex.negatives))]
            members.insert(0, ("json", json.dumps(record, ensure_ascii=False, sort_keys=True).encode()))
            tasks[ex.task].add(members)
            progress(1)


def _parts(role: str, item: ItemRef, members: list[tuple[str, bytes]], at: str) -> list[dict]:
    """The item's parts as the .json names them; their members appended to `members`."""
    out = []
    for i, p in enumerate(item):
        if p.text is not None:
            suffix = f"{role}.{i}.txt"
            members.append((suffix, p.text.encode("utf-8")))
            out.append({"text_member": suffix})
            continue
        assert p.path is not None
        ext = os.path.splitext(p.path)[1].lower()
        if modality_of(p.path) is None:
            raise ConvertError(f"{at}: {p.path}: unknown file type (extension not known to gemb2 embed)")
        try:
            data = Path(p.path).read_bytes()
        except OSError as e:
            raise ConvertError(f"{at}: {p.path}: {e.strerror or e}") from None
        suffix = f"{role}.{i}{ext}"
        members.append((suffix, data))
        part: dict = {"member": suffix}
        if p.start is not None:
            part["start"] = p.start
        if p.end is not None:
            part["end"] = p.end
        out.append(part)
    return out


def count_examples(manifest: str | os.PathLike) -> int:
    """Non-blank lines of a manifest (the progress bar's total)."""
    with open(manifest, "rb") as f:
        return sum(1 for line in f if line.strip())
