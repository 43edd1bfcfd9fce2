"""`gemb2 embed`: files on disk -> loaders (worker processes) -> batches by modality -> model -> store.

    discover -> diff against the store -> load_parallel -> per-modality batches -> model.encode
             -> whole files buffered -> store.write in large commits

Past one process: rank r of W (`EmbedOptions.rank/world_size`, or torchrun's RANK/WORLD_SIZE read by the
CLI) embeds, updates and removes only the files it owns (`gemb2.store.lock.owner`, a hash of the path), so
the ranks of a job write disjoint rows of one table with no coordination: no duplicate and no lost row.

Incremental: a file whose (size, mtime_ns, model) the store already holds is never opened; a changed
file's rows are replaced in one write; rows of files gone from the given roots are removed. Resumable:
writes are idempotent upserts on a stable key, so a run killed at any moment is finished by the next.
A file that cannot be read or decoded is a `Failure` with its path and reason; the run goes on.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from gemb2.data.discover import FileEntry, Skipped, discover
from gemb2.data.pool import FileDone, FileFailed, SegmentLoaded, load_parallel
from gemb2.parts import item_modality
from gemb2.store.lock import owner
from gemb2.store.records import EmbeddedFile, FileRecord, SegmentRow, Store, storage_path


@dataclass
class Failure:
    path: str
    reason: str


@dataclass
class EmbedReport:
    """What a run did; `to_dict` is the `--json` output of `gemb2 embed`."""

    model: str = ""
    files_added: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    files_failed: int = 0
    rows_added: int = 0
    rows_updated: int = 0
    rows_removed: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    rank: int = 0
    world_size: int = 1
    dry_run: bool = False
    # --dry-run only: the stored paths that would be added, updated (re-embedded) and removed
    would_add: list[str] = field(default_factory=list)
    would_update: list[str] = field(default_factory=list)
    would_remove: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        if not self.dry_run:
            for key in ("would_add", "would_update", "would_remove"):
                del d[key]
        return d


@dataclass(frozen=True)
class EmbedOptions:
    follow_symlinks: bool = False
    workers: int | None = None  # loader processes; None = min(4, cpu count); 0 = load in this process
    batch_size: int = 32  # segments per model call
    commit_rows: int = 2048  # rows buffered before a store write (fewer, larger LanceDB versions)
    commit_seconds: float = 30.0  # ... or this long since the last write, so a killed run loses little
    max_pending_segments: int = 256  # loaded, not yet embedded segments in flight: bounds memory
    rank: int = 0  # this process's share of the files: those with owner(path, world_size) == rank
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, world_size) and world_size >= 1; got rank {self.rank}, world_size {self.world_size}")


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


class _NoProgress:
    def start(self, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


@dataclass
class Plan:
    """The diff of a tree against a store."""

    new: list[FileEntry] = field(default_factory=list)
    changed: list[FileEntry] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[FileRecord] = field(default_factory=list)
    skipped: list[Failure] = field(default_factory=list)


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def plan(roots: Sequence[str], known: dict[str, FileRecord], model_id: str, *, follow_symlinks: bool = False,
         rank: int = 0, world_size: int = 1) -> Plan:
    """Walk `roots` and sort the files `rank` owns into new / changed / unchanged, and its known files gone
    from the roots. Skipped paths (broken links, FIFOs...) are reported by their owner too."""
    p = Plan()
    seen: set[str] = set()

    def mine(path: str) -> bool:
        return world_size == 1 or owner(path, world_size) == rank

    for found in discover(roots, follow_symlinks=follow_symlinks):
        key = storage_path(found.path)
        if not mine(key):
            continue
        if isinstance(found, Skipped):
            p.skipped.append(Failure(key, found.reason))
            continue
        seen.add(key)
        rec = known.get(key)
        if rec is None:
            p.new.append(found)
        elif rec.matches(found.size, found.mtime_ns, model_id):
            p.unchanged += 1
        else:
            p.changed.append(found)
    abs_roots = [storage_path(os.path.abspath(r)) for r in roots]
    p.deleted = [rec for path, rec in known.items() if path not in seen and mine(path) and _under(path, abs_roots)]
    return p


class _Pending:
    """A file being embedded: its rows fill in as batches come back."""

    __slots__ = ("entry", "rows", "n_segments", "content_hash", "missing")

    def __init__(self, entry: FileEntry):
        self.entry = entry
        self.rows: dict[int, SegmentRow] = {}
        self.n_segments: int | None = None  # known once the loader says the file is done
        self.content_hash = ""
        self.missing = 0  # segments handed to a batch whose vectors have not come back

    def complete(self) -> bool:
        return self.n_segments is not None and self.missing == 0


def run_embed(
    roots: Sequence[str],
    store: Store,
    *,
    model_id: str,
    get_model: Callable[[], object],
    options: EmbedOptions = EmbedOptions(),
    progress: Progress | None = None,
    on_failure: Callable[[Failure], None] | None = None,
    dry_run: bool = False,
) -> EmbedReport:
    """Bring `store` up to date with the files under `roots`. The model is loaded only if a file needs it.

    `dry_run`: plan only: the report lists what would be added, updated and removed; nothing is written
    and the model is not loaded.
    """
    t0 = time.perf_counter()
    progress = progress or _NoProgress()
    report = EmbedReport(model=model_id, rank=options.rank, world_size=options.world_size, dry_run=dry_run)

    def fail(path: str, reason: str) -> None:
        f = Failure(path, reason)
        report.failures.append(f)
        report.files_failed += 1
        if on_failure:
            on_failure(f)

    p = plan(roots, store.known_files(), model_id, follow_symlinks=options.follow_symlinks,
             rank=options.rank, world_size=options.world_size)
    for s in p.skipped:
        fail(s.path, s.reason)
    report.files_unchanged = p.unchanged
    if dry_run:
        report.would_add = [storage_path(e.path) for e in p.new]
        report.would_update = [storage_path(e.path) for e in p.changed]
        report.would_remove = [r.path for r in p.deleted]
        report.seconds = time.perf_counter() - t0
        return report
    if p.deleted:
        store.remove([r.path for r in p.deleted])
        report.files_removed = len(p.deleted)
        report.rows_removed = sum(r.n_segments for r in p.deleted)

    todo = p.new + p.changed
    is_new = [True] * len(p.new) + [False] * len(p.changed)
    if todo:
        progress.start(len(todo))
        try:
            model = get_model()
            can = set(model.config.modalities)
            for e in todo:  # e.g. images under a text-only model: a counted failure, never a crash
                if e.modality not in can:
                    fail(storage_path(e.path), f"model {model_id} does not embed {e.modality} files")
                    progress.advance(1)
            keep = [i for i, e in enumerate(todo) if e.modality in can]
            todo, is_new = [todo[i] for i in keep], [is_new[i] for i in keep]
            _embed_files(todo, is_new, store, model_id, model, options, progress, report, fail)
        finally:
            progress.close()
    report.seconds = time.perf_counter() - t0
    return report


def _embed_files(todo, is_new, store, model_id, model, options, progress, report, fail) -> None:
    from gemb2.pipeline.spec import load_spec_for

    spec = load_spec_for(model)
    workers = options.workers if options.workers is not None else min(4, os.cpu_count() or 1)
    pending: dict[int, _Pending] = {}
    batches: dict[str, list[tuple[int, object]]] = {}  # modality -> [(file_id, Segment)]
    ready: list[tuple[int, EmbeddedFile]] = []
    last_commit = time.monotonic()

    def embed(modality: str) -> None:
        batch = batches.pop(modality, [])
        if not batch:
            return
        vectors = model.encode([seg.parts for _, seg in batch], task="document", batch_size=options.batch_size)
        for (fid, seg), vec in zip(batch, vectors):
            pf = pending[fid]
            pf.rows[seg.index] = SegmentRow(seg.index, item_modality(seg.parts), seg.start, seg.end, seg.text, vec)
            pf.missing -= 1
        for fid in {fid for fid, _ in batch}:
            finish_if_complete(fid)

    def finish_if_complete(fid: int) -> None:
        pf = pending[fid]
        if not pf.complete():
            return
        del pending[fid]
        e = pf.entry
        rec = FileRecord(storage_path(e.path), e.size, e.mtime_ns, pf.content_hash, model_id, pf.n_segments)
        ready.append((fid, EmbeddedFile(rec, [pf.rows[i] for i in range(pf.n_segments)])))

    def commit(force: bool = False) -> None:
        nonlocal last_commit
        rows = sum(len(f.rows) for _, f in ready)
        if not ready or not (force or rows >= options.commit_rows or time.monotonic() - last_commit > options.commit_seconds):
            return
        store.write([f for _, f in ready])
        for fid, f in ready:
            if is_new[fid]:
                report.files_added += 1
                report.rows_added += len(f.rows)
            else:
                report.files_updated += 1
                report.rows_updated += len(f.rows)
        progress.advance(len(ready))
        ready.clear()
        last_commit = time.monotonic()

    events = load_parallel(todo, spec, workers=workers, max_pending_segments=options.max_pending_segments)
    try:
        for ev in events:
            if isinstance(ev, SegmentLoaded):
                pf = pending.setdefault(ev.file_id, _Pending(todo[ev.file_id]))
                pf.missing += 1
                mod = item_modality(ev.segment.parts)
                batches.setdefault(mod, []).append((ev.file_id, ev.segment))
                if len(batches[mod]) >= options.batch_size:
                    embed(mod)
            elif isinstance(ev, FileDone):
                pf = pending.setdefault(ev.file_id, _Pending(todo[ev.file_id]))
                pf.n_segments, pf.content_hash = ev.n_segments, ev.content_hash
                finish_if_complete(ev.file_id)
            elif isinstance(ev, FileFailed):
                pf = pending.pop(ev.file_id, None)
                for mod in list(batches):  # drop its segments still waiting for a batch
                    batches[mod] = [(fid, s) for fid, s in batches[mod] if fid != ev.file_id]
                fail(storage_path(todo[ev.file_id].path), ev.reason)
                progress.advance(1)
            commit()
        for mod in list(batches):
            embed(mod)
        commit(force=True)
    finally:
        close = getattr(events, "close", None)
        if close:
            close()


def iter_lines(stream: Iterable[str], batch_size: int) -> Iterable[list[str]]:
    """Lines of a text stream in batches, newline stripped, so `gemb2 embed -` answers as lines arrive."""
    batch: list[str] = []
    for line in stream:
        batch.append(line.rstrip("\r\n"))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
