"""Shard samples -> training examples, and their members -> model-ready parts through gemb2's own loaders.

Two layouts are read:

- gemb2's (what `gemb2 data to-shards` writes): `{key}.json` holds the example as a manifest line does, its parts
  naming members of the same sample instead of paths:

      {"task": "speech-text",
       "query":    [{"member": "query.0.wav", "start": 0.0, "end": 4.5}],
       "positive": [{"text_member": "positive.0.txt"}],
       "negatives": [[{"text_member": "neg0.0.txt"}]]}

  a `member` is a file part (loaded by its extension, cut to the window containing `start` as the manifest's
  files are), a `text_member` a text part (the member's UTF-8 text, as it is).
- img2dataset / open_clip's (no gemb2 `.json`): the recipe says which members make the query and the positive,
  as lists of suffixes, `;` separating alternatives (`positive: ["jpg;png"]`: the jpg, else the png). A `txt`
  member is a text part (the caption); any other member a file part.

Members are loaded as gemb2 embed loads files: the bytes are written to a private temporary file named with the
member's extension and given to `gemb2.data.manifest_items.load_part`, so a part decodes exactly as the same
file named by a JSONL manifest does. Pickle members (.pyd, .pickle, .pkl, .pth, .pt) are refused by name, never
read; nothing else in a sample is ever decoded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass

from gemb2.data.manifest import PartRef
from gemb2.data.manifest_items import ItemLoadError, load_part
from gemb2.data.segments import LoadSpec
from gemb2.data.shards import Sample, ShardError
from gemb2.parts import Part, Text

PICKLE_SUFFIXES = ("pyd", "pickle", "pkl", "pth", "pt")
EXAMPLE_KEYS = {"task", "query", "positive", "negatives"}


@dataclass(frozen=True)
class MemberPart:
    """A file part held as bytes: the member `suffix` of sample `where`, with an optional window."""

    suffix: str
    data: bytes
    where: str  # shard#key.suffix, for messages
    start: float | None = None
    end: float | None = None

    def key(self) -> list:
        """Content key for false-negative masking: the bytes' digest (the same media in two samples is one)."""
        return ["b", hashlib.blake2b(self.data, digest_size=16).hexdigest(), self.start, self.end]


ShardItem = tuple[PartRef | MemberPart, ...]


@dataclass(frozen=True)
class ShardExample:
    task: str
    query: ShardItem
    positive: ShardItem
    negatives: tuple[ShardItem, ...]
    where: str  # shard#key


@dataclass(frozen=True)
class PlainLayout:
    """Which members of an img2dataset/open_clip sample make each side (suffix lists; ';' = alternatives)."""

    query: tuple[str, ...] = ("txt",)
    positive: tuple[str, ...] = ("jpg;jpeg;png;webp",)


def to_example(sample: Sample, task: str, layout: PlainLayout) -> ShardExample:
    """A sample as a training example of `task`; ShardError names the sample and what is wrong."""
    doc = None
    if "json" in sample.members:
        try:
            doc = json.loads(sample.members["json"])
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ShardError(f"{sample.where('json')}: invalid JSON ({e})") from None
    if isinstance(doc, dict) and "query" in doc:
        return _gemb2_example(sample, doc, task)
    return ShardExample(
        task,
        _plain_item(sample, layout.query, "query"),
        _plain_item(sample, layout.positive, "positive"),
        (),
        sample.where(),
    )


def _gemb2_example(sample: Sample, doc: dict, task: str) -> ShardExample:
    where = sample.where("json")
    unknown = sorted(set(doc) - EXAMPLE_KEYS)
    if unknown:
        raise ShardError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    if doc.get("task", task) != task:
        raise ShardError(f"{where}: the sample's task {doc['task']!r} is not its shards' task {task!r} (recipe)")
    negs = doc.get("negatives", [])
    if not isinstance(negs, list):
        raise ShardError(f"{where}: 'negatives' must be a list of items")
    return ShardExample(
        task,
        _item(sample, doc.get("query"), "query"),
        _item(sample, doc.get("positive"), "positive"),
        tuple(_item(sample, n, f"negatives[{i}]") for i, n in enumerate(negs)),
        sample.where(),
    )


def _item(sample: Sample, value: object, name: str) -> ShardItem:
    where = sample.where("json")
    if not isinstance(value, list) or not value:
        raise ShardError(f"{where}: {name!r} must be a non-empty list of parts")
    parts: list[PartRef | MemberPart] = []
    for i, p in enumerate(value):
        if isinstance(p, dict) and set(p) == {"text_member"}:
            parts.append(PartRef(text=_text(sample, p["text_member"])))
        elif isinstance(p, dict) and "member" in p and set(p) <= {"member", "start", "end"}:
            start, end = p.get("start"), p.get("end")
            for v in (start, end):
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                    raise ShardError(f"{where}: {name}[{i}]: start/end must be numbers >= 0, got {v!r}")
            parts.append(_member(sample, p["member"], start, end))
        else:
            raise ShardError(f'{where}: {name}[{i}] must be {{"member": ...}} or {{"text_member": ...}}, got {p!r:.80}')
    return tuple(parts)


def _plain_item(sample: Sample, spec: tuple[str, ...], name: str) -> ShardItem:
    parts: list[PartRef | MemberPart] = []
    for entry in spec:
        options = [s.strip().lstrip(".") for s in entry.split(";") if s.strip()]
        suffix = next((s for s in options if s in sample.members), None)
        if suffix is None:
            have = ", ".join(sorted(sample.members)) or "none"
            raise ShardError(f"{sample.where()}: no {' or '.join(options)} member for the {name} (members: {have})")
        parts.append(PartRef(text=_text(sample, suffix)) if suffix == "txt" else _member(sample, suffix, None, None))
    return tuple(parts)


def _checked(sample: Sample, suffix: object) -> str:
    if not isinstance(suffix, str) or suffix not in sample.members:
        raise ShardError(f"{sample.where()}: no member {suffix!r} (members: {', '.join(sorted(sample.members))})")
    if suffix.rsplit(".", 1)[-1].lower() in PICKLE_SUFFIXES:
        raise ShardError(f"{sample.where(suffix)}: a pickle member; gemb2 never unpickles data")
    return suffix


def _text(sample: Sample, suffix: object) -> str:
    s = _checked(sample, suffix)
    try:
        return sample.members[s].decode("utf-8")
    except UnicodeDecodeError as e:
        raise ShardError(f"{sample.where(s)}: not UTF-8 text ({e})") from None


def _member(sample: Sample, suffix: object, start, end) -> MemberPart:
    s = _checked(sample, suffix)
    return MemberPart(
        s,
        sample.members[s],
        sample.where(s),
        None if start is None else float(start),
        None if end is None else float(end),
    )


def load_shard_item(item: ShardItem, spec: LoadSpec) -> tuple[Part, ...]:
    """The parts of one item, decoded by the loaders `gemb2 embed` uses."""
    return tuple(Text(p.text) if isinstance(p, PartRef) and p.text is not None else _load_member(p, spec) for p in item)


def _load_member(part: PartRef | MemberPart, spec: LoadSpec) -> Part:
    assert isinstance(part, MemberPart)  # a PartRef here is a text (to_example)
    ext = os.path.splitext("x." + part.suffix)[1]
    fd, path = tempfile.mkstemp(prefix="gemb2-member-", suffix=ext, dir=_SCRATCH)  # private (0600), unique
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(part.data)
        return load_part(PartRef(path=path, start=part.start, end=part.end), spec)
    except ItemLoadError as e:
        raise ItemLoadError(str(e).replace(path, part.where)) from None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


_SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # memory, not disk, where there is one
