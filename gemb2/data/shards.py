"""WebDataset tar shards, read as a stream of samples: local files, file:// or object-store URLs (s3://, gs://...).

A shard is a plain tar (the layout img2dataset writes and open_clip trains from): consecutive members that share
a KEY form one sample, `{key}.{suffix}`, the key being the member path up to the first dot of its file name
(`000012.jpg`, `000012.txt`, `000012.json` -> sample 000012 with members jpg, txt, json).

The reader is a small native tar parser (ustar, GNU long names, pax headers), not tarfile nor the webdataset
library, for three reasons:
- exact resume: every sample carries the byte offset of its first header, so a reader can start there again
  (a seek on a local file, a ranged read on an object store) without reading the shard from its start;
- strictness: tarfile silently ends an archive at a truncated or garbled header after the first member; here
  a shard must end with the end-of-archive block, so a truncated shard is an error naming it and the offset;
- no pickle: member bytes are only ever handed to gemb2's own loaders (gemb2.data.shard_examples); nothing here
  decodes anything (webdataset's default decoders unpickle `.pyd`/`.pickle` members).

Members are read into memory one sample at a time; a shard is never extracted to disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from gemb2.errors import InputError, UsageError

BLOCK = 512
MAX_MEMBER_BYTES = 1 << 31  # 2 GiB: a sample is held in memory; a bigger member is a broken or hostile shard


class ShardError(InputError, ValueError):
    """A shard that cannot be read (missing, corrupt, truncated); the message names the shard and the byte offset."""


class ShardPatternError(UsageError, ValueError):
    """A shard pattern that names no shard, or a brace range that cannot be expanded."""


@dataclass(frozen=True)
class Sample:
    """One sample of a shard: its members by suffix, and where it starts (for resume)."""

    url: str  # the shard
    key: str
    members: dict[str, bytes]  # suffix ("jpg", "query.0.txt") -> bytes
    index: int  # the sample's number in its shard, from 0
    offset: int  # byte offset of its first member's header in the shard

    def where(self, suffix: str | None = None) -> str:
        return f"{self.url}#{self.key}" + (f".{suffix}" if suffix else "")


_BRACE = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")


def expand(pattern: str) -> list[str]:
    """Brace expansion as webdataset and bash do it: `a-{000..002}.tar` -> a-000.tar a-001.tar a-002.tar (zero
    padding kept), `{a,b}` -> both; several groups multiply, left to right."""
    m = _BRACE.search(pattern)
    if m is None:
        return [pattern]
    body, head, tail = m.group(1), pattern[: m.start()], pattern[m.end() :]
    r = _RANGE.match(body)
    if r:
        lo, hi = int(r.group(1)), int(r.group(2))
        if hi < lo:
            raise ShardPatternError(f"{pattern}: the range {{{body}}} runs backwards")
        if hi - lo >= 10_000_000:
            raise ShardPatternError(f"{pattern}: the range {{{body}}} names more than 10 million shards")
        width = len(r.group(1))
        options = [f"{i:0{width}d}" for i in range(lo, hi + 1)]
    elif "," in body:
        options = body.split(",")
    else:
        raise ShardPatternError(f"{pattern}: {{{body}}} is neither a range {{000..099}} nor a list {{a,b}}")
    return [x for o in options for x in expand(head + o + tail)]


def is_remote(url: str) -> bool:
    """An object-store URL (s3://, gs://, ...): read through pyarrow's filesystems. file:// and paths are local."""
    return "://" in url and not url.startswith("file://")


def local_path(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def open_shard(url: str, offset: int = 0) -> BinaryIO:
    """The shard's bytes from `offset` on: a local file (seek), or pyarrow's object-store file (ranged reads).

    Object stores take their settings as pyarrow does: credentials and region from the AWS environment and
    files, an endpoint from AWS_ENDPOINT_URL (or `?endpoint_override=host:port&scheme=http` in the URL)."""
    try:
        if is_remote(url):
            from pyarrow import fs

            filesystem, path = fs.FileSystem.from_uri(url)
            f = filesystem.open_input_file(path)
        else:
            f = open(local_path(url), "rb")  # noqa: SIM115 (the caller closes it)
        if offset:
            f.seek(offset)
        return f  # type: ignore[return-value]  (pyarrow's NativeFile reads like a binary file)
    except FileNotFoundError:
        raise ShardError(f"{url}: shard not found") from None
    except (OSError, ValueError) as e:  # pyarrow's errors are OSError / ArrowInvalid (a ValueError)
        raise ShardError(f"{url}: cannot open shard ({e})") from None


def iter_samples(url: str, offset: int = 0, index: int = 0) -> Iterator[Sample]:
    """The samples of shard `url` in order, starting at byte `offset` (a sample's start), numbered from `index`.

    Members that are not regular files (folders, links) and names without a suffix are passed over, as
    webdataset does; a suffix seen twice in one sample, a bad header checksum, a truncated member or a shard
    without its end-of-archive block raise ShardError with the shard and the byte offset."""
    f = open_shard(url, offset)
    try:
        key, members, start = None, {}, offset
        for at, name, data in _members(f, url, offset):
            k, suffix = _split(name)
            if k is None:
                continue
            if k != key:
                if key is not None:
                    yield Sample(url, key, members, index, start)
                    index += 1
                key, members, start = k, {}, at
            if suffix in members:
                raise ShardError(f"{url}: byte {at}: sample {k!r} has two {suffix!r} members")
            members[suffix] = data
        if key is not None:
            yield Sample(url, key, members, index, start)
    finally:
        f.close()


_KEY = re.compile(r"^((?:.*/|)[^./][^.]*)\.([^/]+)$")  # webdataset's base_plus_ext: key up to the name's first dot


def _split(name: str) -> tuple[str | None, str]:
    m = _KEY.match(name)
    return (m.group(1), m.group(2)) if m else (None, "")


def _members(f: BinaryIO, url: str, pos: int) -> Iterator[tuple[int, str, bytes]]:
    """(header offset, path, bytes) of each regular-file member; the offset is that of the first header that
    belongs to the member (a GNU long-name or pax header before it)."""
    long_name: str | None = None
    first = None  # offset of the pending member's first (extension) header
    while True:
        head = _read(f, BLOCK, url, pos, "header")
        if head == bytes(BLOCK):
            return  # the end-of-archive block
        name, size, kind = _header(head, url, pos)
        at = pos if first is None else first
        pos += BLOCK
        if size > MAX_MEMBER_BYTES:
            raise ShardError(f"{url}: byte {at}: a member of {size} bytes (more than {MAX_MEMBER_BYTES})")
        data = _read(f, size, url, pos, f"member {name!r}")
        pad = -size % BLOCK
        _read(f, pad, url, pos + size, "padding")
        pos += size + pad
        if kind == b"L":  # GNU long name: the next member's path
            long_name, first = data.rstrip(b"\0").decode("utf-8", "surrogateescape"), at
        elif kind == b"x":  # pax extended header: path (and size) of the next member
            long_name, first = _pax_path(data) or long_name, at
        elif kind == b"g":
            continue  # pax global header: nothing gemb2 uses
        else:
            if kind in (b"0", b"\0", b"7"):  # regular files
                yield at, long_name or name, data
            long_name, first = None, None


def _read(f: BinaryIO, n: int, url: str, pos: int, what: str) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = f.read(n - len(out))
        if not chunk:
            if what == "header" and not out:
                raise ShardError(f"{url}: truncated at byte {pos} (no end-of-archive block; re-copy the shard)")
            raise ShardError(f"{url}: truncated {what} at byte {pos} (re-copy the shard)")
        out += chunk
    return bytes(out)


def _header(h: bytes, url: str, pos: int) -> tuple[str, int, bytes]:
    """A ustar/GNU header block -> (path, size, type flag); checksum checked."""
    try:
        stored = int(h[148:156].split(b"\0")[0].strip() or b"0", 8)
    except ValueError:
        stored = -1
    if stored != sum(h[:148]) + 32 * 8 + sum(h[156:]):
        raise ShardError(f"{url}: corrupt tar header at byte {pos} (checksum mismatch; not a tar, or damaged)")
    name = h[:100].split(b"\0")[0]
    if h[257:262] == b"ustar" and h[345] != 0:
        name = h[345:500].split(b"\0")[0] + b"/" + name
    raw = h[124:136]
    if raw[0] & 0x80:  # GNU base-256 size
        size = int.from_bytes(raw[1:], "big")
    else:
        try:
            size = int(raw.split(b"\0")[0].strip() or b"0", 8)
        except ValueError:
            raise ShardError(f"{url}: corrupt tar header at byte {pos} (size {raw!r})") from None
    return name.decode("utf-8", "surrogateescape"), size, h[156:157]


def _pax_path(data: bytes) -> str | None:
    """The `path` record of a pax extended header ("<len> path=<value>\\n" records)."""
    path, i = None, 0
    while i < len(data):
        sp = data.find(b" ", i)
        if sp < 0:
            break
        try:
            n = int(data[i:sp])
        except ValueError:
            break
        rec = data[sp + 1 : i + n - 1]
        k, _, v = rec.partition(b"=")
        if k == b"path":
            path = v.decode("utf-8", "surrogateescape")
        i += n if n > 0 else len(data)
    return path
