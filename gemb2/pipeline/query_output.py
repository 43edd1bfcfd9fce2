"""The results of a query by file: segments grouped under their file, identical files (same content hash) as one.

    files = group_by_file(hits, k)       # the k best files, each with its best segment and its identical copies
    rank_files(hits)                     # each hit's `file_rank`: where its file stands among the files

A file's rank is that of its best segment; files with the same `content_hash` (blake2b of their bytes, as
`gemb2 embed` stores it) are one result, listed under the path of the copy that ranked first, the others as
`also`. Rows without a hash (none in a table gemb2 wrote) are grouped by path alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gemb2.pipeline.query import Hit

GROUP_ROWS = 10  # grouped output fetches max(GROUP_MIN_ROWS, GROUP_ROWS x k) segment rows, then keeps k files
GROUP_MIN_ROWS = 100


def rows_for_files(k: int) -> int:
    """How many segment rows to fetch so that k files are (almost always) among them."""
    return max(GROUP_MIN_ROWS, GROUP_ROWS * k)


@dataclass
class FileResult:
    """One file of the results: its rank among files, its best segment, its other matching segments, and the
    other paths with the same content."""

    rank: int
    best: Hit
    segments: list[Hit] = field(default_factory=list)  # every fetched segment of the file (and its copies), best first
    also: list[str] = field(default_factory=list)  # identical files: the same content hash under other paths

    @property
    def paths(self) -> list[str]:
        return [self.best.path, *self.also]


def _identity(h: Hit) -> str:
    return f"hash:{h.content_hash}" if h.content_hash else f"path:{h.path}"


def group_by_file(hits: Sequence[Hit], k: int | None = None) -> list[FileResult]:
    """`hits` (best first) as files, best first: at most `k` of them (None: all)."""
    groups: dict[str, FileResult] = {}
    for h in hits:
        key = _identity(h)
        g = groups.get(key)
        if g is None:
            if k is not None and len(groups) >= k:
                continue
            g = groups[key] = FileResult(len(groups) + 1, h)
        elif h.path != g.best.path and h.path not in g.also:
            g.also.append(h.path)
        g.segments.append(h)
    return list(groups.values())


def rank_files(hits: Sequence[Hit]) -> list[Hit]:
    """Set each hit's `file_rank` (identical files share one) and return the hits."""
    ranks: dict[str, int] = {}
    for h in hits:
        h.file_rank = ranks.setdefault(_identity(h), len(ranks) + 1)
    return list(hits)


def paths_only(files: Sequence[FileResult]) -> list[str]:
    """`-l`: one path per result, best first (identical files once, under the path that ranked first)."""
    return [f.best.path for f in files]
