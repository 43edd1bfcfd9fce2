"""Training and evaluation manifests: JSONL, one example per line, read by byte offset.

    {"task": "wordnet-gloss",
     "query":     [{"text": "dog"}],
     "positive":  [{"text": "a member of the genus Canis ..."}],
     "negatives": [[{"text": "a feline mammal ..."}]]}                    optional, a list of items
    {"task": "speech-text",
     "query":     [{"path": "audio/0001.wav", "start": 0.0, "end": 4.5}],
     "positive":  [{"text": "the quick brown fox"}]}
    {"task": "emoji-image-name",
     "query":     [{"text": "a picture of"}, {"path": "images/cat.png"}],  an interleaved item
     "positive":  [{"text": "cat face"}]}

- `task` names the task (a recipe gives each task its weight, prompts, symmetry).
- `query`, `positive` and each of `negatives` is an ITEM: a non-empty list of parts, in order.
- A part is {"text": str}, or {"path": str} with optional "start" and "end" (seconds for audio and
  video, characters for text). A relative path is relative to the manifest's folder. The file is
  read by the same loaders as `gemb2 embed` (`gemb2.data.load.load_file`), so it is cut into the
  same windows: the part is the loader window that contains `start` (default 0), trimmed to
  [start, end) for audio and video.
- Unknown keys are refused (a typo is an error, not a silently ignored field).

The file is indexed once (one pass, every line validated, errors name file:line) into byte offsets
per task; examples are then read from disk by offset, so memory holds offsets, not examples.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from gemb2.errors import UsageError

EXAMPLE_KEYS = {"task", "query", "positive", "negatives"}


@dataclass(frozen=True)
class PartRef:
    """One part as the manifest names it: text, or a file (with an optional window)."""

    text: str | None = None
    path: str | None = None  # absolute (resolved against the manifest's folder)
    start: float | None = None
    end: float | None = None

    def key(self) -> list:
        return ["t", self.text] if self.text is not None else ["p", self.path, self.start, self.end]


ItemRef = tuple[PartRef, ...]


class Keyed(Protocol):
    """A part that names its content for false-negative masking (PartRef; a shard member)."""

    def key(self) -> list: ...


@dataclass(frozen=True)
class Example:
    task: str
    query: ItemRef
    positive: ItemRef
    negatives: tuple[ItemRef, ...] = ()


def content_id(item: Sequence[Keyed]) -> int:
    """A stable int64 hash of an item's content (texts, paths and windows): false-negative masking keys."""
    blob = json.dumps([p.key() for p in item], ensure_ascii=False).encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little", signed=True)


class ManifestError(UsageError, ValueError):
    """A manifest line that is not a valid example; the message names file:line and the problem."""


def parse_example(doc: object, base: Path, where: str) -> Example:
    """A decoded JSON line -> Example; `where` ("file:line") prefixes every error."""

    def bad(msg: str) -> ManifestError:
        return ManifestError(f"{where}: {msg}")

    if not isinstance(doc, dict):
        raise bad(f"an example must be a JSON object, got {type(doc).__name__}")
    unknown = sorted(set(doc) - EXAMPLE_KEYS)
    if unknown:
        raise bad(f"unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(EXAMPLE_KEYS))})")
    task = doc.get("task")
    if not isinstance(task, str) or not task:
        raise bad(f"'task' must be a non-empty string, got {task!r}")
    for key in ("query", "positive"):
        if key not in doc:
            raise bad(f"missing {key!r}")
    negs = doc.get("negatives", [])
    if not isinstance(negs, list):
        raise bad(f"'negatives' must be a list of items, got {type(negs).__name__}")
    return Example(
        task,
        _item(doc["query"], base, bad, "query"),
        _item(doc["positive"], base, bad, "positive"),
        tuple(_item(n, base, bad, f"negatives[{i}]") for i, n in enumerate(negs)),
    )


def _item(value: object, base: Path, bad, name: str) -> ItemRef:
    if not isinstance(value, list) or not value:
        raise bad(f"{name!r} must be a non-empty list of parts, got {value!r:.80}")
    return tuple(_part(p, base, bad, f"{name}[{i}]") for i, p in enumerate(value))


def _part(p: object, base: Path, bad, name: str) -> PartRef:
    if not isinstance(p, dict):
        raise bad(f'{name} must be an object like {{"text": ...}} or {{"path": ...}}, got {p!r:.80}')
    if "text" in p:
        if set(p) != {"text"} or not isinstance(p["text"], str):
            raise bad(f'{name}: a text part is exactly {{"text": str}}, got {p!r:.80}')
        return PartRef(text=p["text"])
    if "path" not in p:
        raise bad(f'{name}: a part needs "text" or "path", got keys {sorted(p)}')
    unknown = sorted(set(p) - {"path", "start", "end"})
    if unknown:
        raise bad(f"{name}: unknown key(s) {', '.join(map(repr, unknown))}")
    if not isinstance(p["path"], str) or not p["path"]:
        raise bad(f'{name}: "path" must be a non-empty string, got {p["path"]!r}')
    start, end = p.get("start"), p.get("end")
    for k, v in (("start", start), ("end", end)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            raise bad(f"{name}: {k!r} must be a number >= 0, got {v!r}")
    if start is not None and end is not None and end <= start:
        raise bad(f"{name}: end ({end}) must be after start ({start})")
    path = Path(p["path"]).expanduser()
    path = path if path.is_absolute() else base / path
    return PartRef(
        path=os.fspath(path), start=None if start is None else float(start), end=None if end is None else float(end)
    )


class Manifest:
    """One or more indexed JSONL files: `tasks` (name -> number of examples) and `examples(task, indices)`.

    A task may span files; its examples are numbered in file order, then line order.
    """

    def __init__(self, paths: str | os.PathLike | list):
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not paths:
            raise ValueError("a manifest needs at least one file")
        self.paths = [Path(p) for p in paths]
        where: dict[str, list[tuple[int, int]]] = {}  # task -> [(file index, byte offset)]
        for k, path in enumerate(self.paths):
            if not path.is_file():
                raise FileNotFoundError(f"manifest not found: {path}")
            base = path.resolve().parent
            with open(path, "rb") as f:
                pos = 0
                for lineno, line in enumerate(f, 1):
                    if line.strip():
                        at = f"{path}:{lineno}"
                        try:
                            doc = json.loads(line)
                        except (json.JSONDecodeError, UnicodeDecodeError) as e:
                            raise ManifestError(f"{at}: invalid JSON ({e})") from None
                        where.setdefault(parse_example(doc, base, at).task, []).append((k, pos))
                    pos += len(line)
        if not where:
            raise ManifestError(f"{', '.join(map(str, self.paths))}: no examples")
        self._where = {t: np.asarray(v, dtype=np.int64) for t, v in where.items()}  # (n, 2)

    @property
    def tasks(self) -> dict[str, int]:
        return {t: len(v) for t, v in self._where.items()}

    def examples(self, task: str, indices: Iterable[int]) -> list[Example]:
        """The examples at `indices` of `task`, read from disk."""
        if task not in self._where:
            raise KeyError(f"no task {task!r} in {', '.join(map(str, self.paths))}")
        with ExitStack() as stack:
            files: dict[int, BinaryIO] = {}  # file index -> the file, opened once
            out = []
            for i in indices:
                k, pos = (int(x) for x in self._where[task][int(i)])
                if k not in files:
                    files[k] = stack.enter_context(open(self.paths[k], "rb"))
                f = files[k]
                f.seek(pos)
                base = self.paths[k].resolve().parent
                out.append(parse_example(json.loads(f.readline()), base, f"{self.paths[k]}[{task}#{int(i)}]"))
            return out
