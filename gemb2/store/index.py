"""Indexes of a LanceDB segments table: the vector (ANN) index, scalar indexes, the full-text index, upkeep.

    build_indexes(table, kind="auto")  ->  IndexReport (what was built, rows, versions, size)

The vector index is IVF_HNSW_SQ (Malkov & Yashunin 2018, "Efficient and robust approximate nearest
neighbor search using Hierarchical Navigable Small World graphs", over IVF partitions, with 8-bit
scalar quantisation) or IVF_PQ (Jégou et al. 2011, "Product quantization for nearest neighbor
search"). Both are approximate *and* quantised; queries add a refine step (re-ranking
`refine_factor x k` candidates with the full-precision vectors: see gemb2/store/lance.py) that brings
recall@10 close to an exact search's (figures: BENCHMARKS.md, "Vector index").

`auto` builds no vector index on small tables: below `brute_force_max_rows(dim)` rows an exact scan is
as fast as an index lookup and always exact, and an index would only cost build time.

Scalar indexes: a BTREE on `path` (equality and IN lists: the embed pipeline deletes and re-reads
files by path) and a BITMAP on `modality` (five values). Full text: LanceDB's native FTS (BM25) on
`text`. Order: `optimize` first (compaction, clean-up of old versions, rows added since the last run
folded into the existing indexes), then only the indexes that are missing or stale are built.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lancedb.index import HnswSq, IvfPq
    from lancedb.table import Table

from gemb2.errors import UsageError

# index statistics without the IVF centroids (LanceDB 0.40 warns about the old default on every call)
os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")

# Below this many rows of 768-d vectors, an exact scan answers as fast as an HNSW lookup (benchmarks/index.py
# --scan; figures: BENCHMARKS.md, "Vector index"). The scan's cost grows with rows x dim, so the threshold
# scales with 768 / dim (`brute_force_max_rows`).
BRUTE_FORCE_MAX_ROWS = 2_500
BRUTE_FORCE_REFERENCE_DIM = 768

# LanceDB trains IVF centroids and (for PQ) 256 codewords per sub-vector: fewer rows than this cannot
# train an index at all, whatever --type says.
MIN_INDEX_ROWS = 256

# Rows per IVF partition of an HNSW index: one HNSW graph per partition. Smaller graphs build much
# faster (BENCHMARKS.md, "Vector index") at a small query cost; partitions follow the data's clusters,
# so a query probes a few of them.
HNSW_ROWS_PER_PARTITION = 50_000
# Rows per IVF partition of an IVF_PQ index (LanceDB's guidance: sqrt(rows) partitions, ~4k rows each).
IVF_PQ_ROWS_PER_PARTITION = 4_096

VECTOR_KINDS = ("auto", "hnsw", "ivf_pq", "none")
LANCE_TYPES = {"hnsw": "IvfHnswSq", "ivf_pq": "IvfPq"}  # how list_indices() names them


class IndexBuildError(UsageError):
    """An index cannot be built as asked (an unknown type, a table too small for it)."""


def brute_force_max_rows(dim: int) -> int:
    """The row count below which `auto` builds no vector index, for vectors of `dim` dimensions."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return max(BRUTE_FORCE_MAX_ROWS, BRUTE_FORCE_MAX_ROWS * BRUTE_FORCE_REFERENCE_DIM // dim)


@dataclass(frozen=True)
class VectorIndexPlan:
    """Which vector index to build and with what parameters (also the query defaults that go with it)."""

    kind: str  # "hnsw" | "ivf_pq" | "none"
    reason: str  # for a person: why this kind
    num_partitions: int = 0
    m: int = 0  # HNSW: neighbours per node
    ef_construction: int = 0  # HNSW: candidates while building
    num_sub_vectors: int = 0  # IVF_PQ: sub-vectors (dim / num_sub_vectors dimensions each)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v or k in ("kind", "reason")}


def plan_vector_index(rows: int, dim: int, kind: str = "auto") -> VectorIndexPlan:
    """Choose the vector index for a table of `rows` vectors of `dim` dimensions.

    HNSW parameters: m=20 (LanceDB's default; recall@10 0.96 before refine at 100k rows),
    ef_construction=150 (the low end of the usual 150-300: build time grows with it and the refine
    step recovers the recall), one IVF partition per `HNSW_ROWS_PER_PARTITION` rows.
    IVF_PQ: sqrt-ish partitions of ~4k rows, sub-vectors of 8 dimensions (dim / 8; 16 for small dims).
    """
    if kind not in VECTOR_KINDS:
        raise IndexBuildError(f"--type must be one of {', '.join(VECTOR_KINDS)}, not {kind!r}")
    if kind == "none":
        return VectorIndexPlan("none", "asked for none: queries scan every vector (exact)")
    if kind == "auto":
        limit = brute_force_max_rows(dim)
        if rows < limit:
            return VectorIndexPlan(
                "none", f"{rows} rows < {limit}: an exact scan is as fast as an index at this size (dim {dim})"
            )
        kind = "hnsw"
    if rows < MIN_INDEX_ROWS:
        raise IndexBuildError(
            f"the table has {rows} rows; a {kind} index needs at least {MIN_INDEX_ROWS} to train "
            f"(queries scan every row exactly until then: use --type auto or none)"
        )
    if kind == "hnsw":
        parts = max(1, math.ceil(rows / HNSW_ROWS_PER_PARTITION))
        return VectorIndexPlan("hnsw", f"IVF_HNSW_SQ for {rows} rows", num_partitions=parts, m=20, ef_construction=150)
    parts = max(1, min(rows // MIN_INDEX_ROWS, round(rows / IVF_PQ_ROWS_PER_PARTITION)))
    sub = dim // 8 if dim % 8 == 0 and dim >= 64 else _largest_divisor_at_most(dim, 16)
    return VectorIndexPlan("ivf_pq", f"IVF_PQ for {rows} rows", num_partitions=parts, num_sub_vectors=sub)


def _largest_divisor_at_most(n: int, cap: int) -> int:
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


@dataclass(frozen=True)
class QueryTuning:
    """Search-time knobs that go with a vector index (None = LanceDB's default)."""

    refine_factor: int | None = 5  # re-rank 5 x k candidates exactly (recall: BENCHMARKS.md, "Vector index")
    # IVF partitions to search: 5 balances recall and latency at 1M rows (20 partitions; the other choices
    # measured are in BENCHMARKS.md, "Vector index"). Tables far past 1M rows (hundreds of partitions) may
    # want more: `gemb2 query --nprobes`.
    nprobes: int | None = 5
    ef: int | None = None  # HNSW candidates; None: max(64, 2k) (see `ef_for`)

    def ef_for(self, k: int) -> int:
        return self.ef if self.ef is not None else max(64, 2 * k)


@dataclass
class IndexReport:
    """What `build_indexes` did; `to_dict` is the `--json` output of `gemb2 index`."""

    table: str = ""
    rows: int = 0
    dim: int = 0
    vector: dict = field(default_factory=dict)  # the plan; "built": built by this run; "present": exists now
    scalar: list[str] = field(default_factory=list)  # columns that got a scalar index
    fts: list[str] = field(default_factory=list)  # columns that got a full-text index
    indexes: list[dict] = field(default_factory=list)  # every index on the table afterwards
    versions_before: int = 0
    versions_after: int = 0
    version: int = 0
    size_bytes: int = 0
    bytes_freed: int = 0
    seconds: dict = field(default_factory=dict)  # per step
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        return d

    def timed(self, step: str, fn: Callable[[], object]) -> None:
        """Run `fn`, adding its wall time to `seconds[step]`."""
        t0 = time.perf_counter()
        fn()
        self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - t0


def vector_index_config(plan: VectorIndexPlan) -> HnswSq | IvfPq:
    from lancedb.index import HnswSq, IvfPq

    if plan.kind == "hnsw":
        return HnswSq(
            distance_type="cosine", num_partitions=plan.num_partitions, m=plan.m, ef_construction=plan.ef_construction
        )
    if plan.kind == "ivf_pq":
        return IvfPq(distance_type="cosine", num_partitions=plan.num_partitions, num_sub_vectors=plan.num_sub_vectors)
    raise ValueError(f"no index config for kind {plan.kind!r}")


def build_indexes(
    table: Table,
    *,
    dim: int,
    kind: str = "auto",
    scalar_columns: tuple[str, ...] = ("path", "modality"),
    fts_columns: tuple[str, ...] = ("text",),
    cleanup_older_than: timedelta | None = timedelta(minutes=10),
    name: str = "",
    rebuild: bool = False,
) -> IndexReport:
    """Optimise a LanceDB `table` (compaction, old versions deleted, new rows folded into its indexes), then
    build the indexes it lacks: vector (per `kind`), scalar, full-text. `rebuild` rebuilds them all.

    `cleanup_older_than`: versions older than this are deleted (None: keep every version). Readers that
    still hold an older version fail when its files go, so the default keeps ten minutes of history.
    """
    rep = IndexReport(table=name, dim=dim)
    rep.rows = table.count_rows()
    rep.versions_before = len(table.list_versions())
    plan = plan_vector_index(rep.rows, dim, kind)
    rep.vector = plan.to_dict() | {"built": False}
    older = cleanup_older_than if cleanup_older_than is not None else timedelta(days=365_000)

    def optimize() -> None:
        with warnings.catch_warnings():  # LanceDB warns about cleanup_older_than=0: the user asked for it
            warnings.simplefilter("ignore", UserWarning)
            table.optimize(cleanup_older_than=older)

    # 1. compact, delete old versions, and fold rows added since the last run into the existing indexes
    #    (LanceDB's optimize). Indexes built below leave a few versions: the next run deletes them. (A second
    #    optimize after building is not worth it: see BENCHMARKS.md, "Vector index".)
    rep.timed("optimize", optimize)
    existing = {tuple(i.columns): i for i in table.list_indices()}
    _vector_index(table, plan, existing.get(("vector",)), rebuild, rep)
    # 3. scalar and full-text indexes: built when missing (or --rebuild); optimize keeps them current
    if rep.rows == 0:
        rep.messages.append("the table is empty: no scalar or full-text index to build")
    else:
        _scalar_and_fts_indexes(table, scalar_columns, fts_columns, existing, rebuild, rep)
    rep.versions_after = len(table.list_versions())
    rep.version = table.version
    rep.indexes = describe_indexes(table)
    stats = table.stats()
    rep.size_bytes = int(stats["total_bytes"] if isinstance(stats, dict) else stats.total_bytes)
    return rep


def _vector_index(table: Table, plan: VectorIndexPlan, current, rebuild: bool, rep: IndexReport) -> None:
    """2. The vector index: built when missing, of another kind, or when the table has doubled since it was
    built (its partitions were sized for the old row count); otherwise step 1 (optimize) refreshed it.
    `current`: the table's vector index, or None."""
    if plan.kind != "none":
        if current is None or rebuild or str(current.index_type) != LANCE_TYPES[plan.kind]:
            stale = True
        else:
            stats = table.index_stats(current.name)
            stale = stats is None or stats.num_unindexed_rows > stats.num_indexed_rows
        if stale or current is None:
            rep.timed("vector", lambda: table.create_index("vector", config=vector_index_config(plan), replace=True))
            rep.vector["built"] = True
        else:
            rep.messages.append(f"the vector index {current.name} is up to date (new rows were added to it)")
        rep.vector["present"] = True
    else:
        if current is not None:  # an index left from when the table was bigger, or --type none
            rep.timed("vector", lambda: table.drop_index(current.name))
            rep.messages.append(f"dropped the vector index {current.name}")
        rep.messages.append(plan.reason)
        rep.vector["present"] = False


def _scalar_and_fts_indexes(
    table: Table,
    scalar_columns: tuple[str, ...],
    fts_columns: tuple[str, ...],
    existing: dict,
    rebuild: bool,
    rep: IndexReport,
) -> None:
    """The scalar indexes (a BITMAP on `modality`, BTREEs elsewhere) and the full-text ones that are missing."""
    from lancedb.index import FTS, Bitmap, BTree

    for col in scalar_columns:
        if rebuild or (col,) not in existing:
            cfg = Bitmap() if col == "modality" else BTree()
            rep.timed("scalar", lambda col=col, cfg=cfg: table.create_index(col, config=cfg, replace=True))
        rep.scalar.append(col)
    for col in fts_columns:
        if rebuild or (col,) not in existing:
            rep.timed("fts", lambda col=col: table.create_index(col, config=FTS(), replace=True))
        rep.fts.append(col)


def describe_indexes(table: Table) -> list[dict]:
    """Every index of `table`: name, type, columns, and how many rows it covers and misses."""
    out = []
    for i in table.list_indices():
        d = {"name": i.name, "type": str(i.index_type), "columns": list(i.columns)}
        stats = table.index_stats(i.name)
        if stats is not None:
            d["indexed_rows"], d["unindexed_rows"] = stats.num_indexed_rows, stats.num_unindexed_rows
        out.append(d)
    return out


def vector_index_kind(table: Table) -> str | None:
    """The type of the table's vector index as LanceDB names it ("IvfHnswSq", "IvfPq", ...) or None."""
    for i in table.list_indices():
        if list(i.columns) == ["vector"]:
            return str(i.index_type)
    return None
