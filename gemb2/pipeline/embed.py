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
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from gemb2 import __version__
from gemb2.data.discover import FileEntry, Skipped, discover
from gemb2.data.limits import release_free_memory
from gemb2.data.pool import Event, FileDone, SegmentLoaded, load_parallel, segment_nbytes
from gemb2.data.segments import Segment, embeddable, segmentation_version
from gemb2.parts import item_modality
from gemb2.pipeline.interrupt import Interrupted
from gemb2.pipeline.prompts import split_prompt
from gemb2.store.lock import owner
from gemb2.store.records import EmbeddedFile, FailureRecord, FileRecord, SegmentRow, Store, storage_path


@dataclass
class Failure:
    path: str
    reason: str
    transient: bool = False  # not about the content (time limit, memory bound, dead worker): not remembered


@dataclass
class EmbedReport:
    """What a run did; `to_dict` is the `--json` output of `gemb2 embed`."""

    model: str = ""
    files_added: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    files_failed: int = 0  # failed in this run (each in `failures`)
    files_failed_known: int = 0  # failed in an earlier run and unchanged since: not decoded again
    files_unsupported: int = 0  # passed over for their type (counted by extension in `unsupported`)
    rows_added: int = 0
    rows_updated: int = 0
    rows_removed: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    unsupported: dict[str, int] = field(default_factory=dict)  # extension ("" for none) -> files
    ignored: dict[str, int] = field(default_factory=dict)  # rule -> folders and files passed over by it (discover)
    notes: list[str] = field(default_factory=list)  # what a person should know about the run, each said once
    store: str = ""  # where the rows went, for a person: "table 'media' in /path/to/db"
    interrupted: str | None = None  # "SIGINT" / "SIGTERM" when a signal ended the run early
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
        d["failures"] = [{"path": f.path, "reason": f.reason} for f in self.failures]
        if not self.dry_run:
            for key in ("would_add", "would_update", "would_remove"):
                del d[key]
        return d


@dataclass(frozen=True)
class EmbedOptions:
    follow_symlinks: bool = False
    workers: int | None = None  # loader processes; None = min(4, cpu count); 0 = load in this process
    batch_size: int | None = None  # segments per model call; None: default_batch_size(model)
    commit_rows: int = 2048  # rows buffered before a store write (fewer, larger LanceDB versions)
    commit_seconds: float = 5.0  # ... or this long since the last write, so a killed run loses little
    max_pending_segments: int = 256  # loaded, not yet embedded segments in flight: bounds memory
    max_batch_bytes: int = 64 << 20  # a modality's batch goes to the model at batch_size segments or this many bytes
    retry_failed: bool = False  # decode again the files whose failure is remembered
    rank: int = 0  # this process's share of the files: those with owner(path, world_size) == rank
    world_size: int = 1
    engine: str = "local"  # "ray": loaders and model on a Ray cluster, fragments committed here (embed_ray.py)
    ray_address: str | None = None  # the cluster; None: RAY_ADDRESS or a `ray start` one, else a new local one

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(
                f"rank must be in [0, world_size) and world_size >= 1; got rank {self.rank}, world_size {self.world_size}"
            )


def default_batch_size(model) -> int:
    """Segments per model call: a GPU needs large batches to stay busy; a CPU gains nothing from them."""
    return 256 if model.device.type == "cuda" else 32


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


class _NoProgress:
    def start(self, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


class StopFlag(Protocol):
    """What the run polls to end early (`gemb2.pipeline.interrupt.StopSignal`)."""

    def is_set(self) -> bool: ...
    def waiting(self) -> AbstractContextManager[None]: ...


@dataclass
class Plan:
    """The diff of a tree against a store."""

    new: list[FileEntry] = field(default_factory=list)
    changed: list[FileEntry] = field(default_factory=list)
    unchanged: int = 0
    failed_known: int = 0  # unchanged files whose failure is remembered
    deleted: list[FileRecord] = field(default_factory=list)
    gone_failures: list[str] = field(default_factory=list)  # remembered failures of paths gone from the roots
    skipped: list[Failure] = field(default_factory=list)
    skipped_stat: dict[str, tuple[int, int]] = field(default_factory=dict)  # skipped path -> (size, mtime_ns) by lstat
    unsupported: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _lstat(path: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def plan(
    roots: Sequence[str],
    known: dict[str, FileRecord],
    model_id: str,
    *,
    follow_symlinks: bool = False,
    rank: int = 0,
    world_size: int = 1,
    failures: dict[str, FailureRecord] | None = None,
    retry_failed: bool = False,
) -> Plan:
    """Walk `roots` and sort the files `rank` owns into new / changed / unchanged / failed before and unchanged,
    and its known files gone from the roots. Skipped paths (broken links, FIFOs...) are reported by their owner
    too, unless they are remembered failures that have not changed."""
    p = Plan()
    seen: set[str] = set()
    failures = failures or {}
    version = __version__

    def mine(path: str) -> bool:
        return world_size == 1 or owner(path, world_size) == rank

    def failed_before(key: str, size: int, mtime_ns: int) -> bool:
        f = failures.get(key)
        return not retry_failed and f is not None and f.matches(size, mtime_ns, model_id, version)

    for found in discover(roots, follow_symlinks=follow_symlinks, unsupported=p.unsupported, ignored=p.ignored):
        key = storage_path(found.path)
        if not mine(key):
            continue
        seen.add(key)
        if isinstance(found, Skipped):
            st = _lstat(found.path)
            if st is not None and failed_before(key, *st):
                p.failed_known += 1
            else:
                p.skipped.append(Failure(key, found.reason, transient=st is None))
                if st is not None:
                    p.skipped_stat[key] = st
            continue
        rec = known.get(key)
        if rec is not None and rec.matches(found.size, found.mtime_ns, model_id, segmentation_version(found.modality)):
            p.unchanged += 1
        elif failed_before(key, found.size, found.mtime_ns):
            p.failed_known += 1
        elif rec is None:
            p.new.append(found)
        else:
            p.changed.append(found)
    abs_roots = [storage_path(os.path.abspath(r)) for r in roots]
    p.deleted = [rec for path, rec in known.items() if path not in seen and mine(path) and _under(path, abs_roots)]
    p.gone_failures = [
        path for path in failures if path not in seen and path not in known and mine(path) and _under(path, abs_roots)
    ]
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


class _Run:
    """The state of one run: its report, the failures to remember, and what to tell the caller."""

    def __init__(
        self,
        report: EmbedReport,
        model_id: str,
        progress: Progress,
        on_failure: Callable[[Failure], None] | None,
        on_notes: Callable[[str, Sequence[str]], None] | None = None,
    ):
        self.report, self.model_id, self.progress, self.on_failure = report, model_id, progress, on_failure
        self.on_notes = on_notes  # what a file's codecs and libraries printed (captured by the loaders)
        self.remember: list[FailureRecord] = []  # content failures not yet written to the store

    def fail(self, f: Failure, stat: tuple[int, int] | None = None) -> None:
        """Count a failure of this run; remember it with the file's (size, mtime_ns) unless it is transient."""
        self.report.failures.append(f)
        self.report.files_failed += 1
        if not f.transient and stat is not None:
            self.remember.append(FailureRecord(f.path, stat[0], stat[1], self.model_id, f.reason, __version__))
        if self.on_failure:
            self.on_failure(f)


def run_embed(
    roots: Sequence[str],
    store: Store,
    *,
    model_id: str,
    get_model: Callable[[], Any],
    options: EmbedOptions = EmbedOptions(),
    progress: Progress | None = None,
    on_failure: Callable[[Failure], None] | None = None,
    on_notes: Callable[[str, Sequence[str]], None] | None = None,
    dry_run: bool = False,
    stop: StopFlag | None = None,
) -> EmbedReport:
    """Bring `store` up to date with the files under `roots`. The model is loaded only if a file needs it.

    `on_notes(path, lines)`: what a file's decoders printed (warnings, C-level messages), kept off stderr.
    `dry_run`: plan only: the report lists what would be added, updated and removed; nothing is written
    and the model is not loaded. `stop`: polled between steps; once set, the run commits the files it has
    embedded completely and returns early with `report.interrupted` set.
    """
    t0 = time.perf_counter()
    report = EmbedReport(
        model=model_id,
        rank=options.rank,
        world_size=options.world_size,
        dry_run=dry_run,
        store=store.where,
    )
    run = _Run(report, model_id, progress or _NoProgress(), on_failure, on_notes)
    p = plan(
        roots,
        store.known_files(),
        model_id,
        follow_symlinks=options.follow_symlinks,
        rank=options.rank,
        world_size=options.world_size,
        failures=store.known_failures(),
        retry_failed=options.retry_failed,
    )
    report.files_unchanged, report.files_failed_known = p.unchanged, p.failed_known
    report.unsupported = dict(sorted(p.unsupported.items()))
    report.files_unsupported = sum(p.unsupported.values())
    report.ignored = dict(sorted(p.ignored.items()))
    if dry_run:
        _what_would_change(report, p)
    elif stop is None or not stop.is_set():
        for s in p.skipped:
            run.fail(s, p.skipped_stat.get(s.path))
        if p.deleted or p.gone_failures:
            store.remove([r.path for r in p.deleted] + p.gone_failures)
            report.files_removed = len(p.deleted)
            report.rows_removed = sum(r.n_segments for r in p.deleted)
        _embed_new_and_changed(p, store, get_model, options, run, stop)
    if stop is not None and stop.is_set():
        report.interrupted = getattr(stop, "name", "") or "signal"
    report.seconds = time.perf_counter() - t0
    return report


def _what_would_change(report: EmbedReport, p: Plan) -> None:
    """A dry run's report: the files that would be added, updated and removed, and the skipped ones."""
    report.failures = list(p.skipped)
    report.files_failed = len(p.skipped)
    report.would_add = [storage_path(e.path) for e in p.new]
    report.would_update = [storage_path(e.path) for e in p.changed]
    report.would_remove = [r.path for r in p.deleted]


def _embed_new_and_changed(
    p: Plan, store: Store, get_model: Callable[[], Any], options: EmbedOptions, run: _Run, stop: StopFlag | None
) -> None:
    """Embed the plan's new and changed files (loading the model only if there are some), then write the
    failures still to remember. A file of a modality the model does not embed is a counted failure."""
    todo = p.new + p.changed
    is_new = [True] * len(p.new) + [False] * len(p.changed)
    if todo:
        run.progress.start(len(todo))
        try:
            model = get_model()
            can = set(model.config.modalities)
            run.report.notes += _model_notes(todo, can, run.model_id)
            for e in todo:  # e.g. images under a text-only model: a counted failure, never a crash
                if not embeddable(e.modality, can):
                    reason = f"model {run.model_id} does not embed {e.modality} files"
                    run.fail(Failure(storage_path(e.path), reason), (e.size, e.mtime_ns))
                    run.progress.advance(1)
            keep = [i for i, e in enumerate(todo) if embeddable(e.modality, can)]
            if not (stop is not None and stop.is_set()):
                files, new = [todo[i] for i in keep], [is_new[i] for i in keep]
                if options.engine == "ray":
                    from gemb2.pipeline.embed_ray import embed_on_ray

                    embed_on_ray(files, new, store, model, options, run, stop)
                else:
                    _Batches(files, new, store, model, options, run).load_and_embed(stop)
        finally:
            run.progress.close()
    store.write([], run.remember)  # what is left to remember (each commit also writes what it has)
    run.remember.clear()


def _model_notes(todo: Sequence[FileEntry], can: set[str], model_id: str) -> list[str]:
    """What a person should know about how `model_id` (which embeds `can`) embeds these files: said once a run."""
    if "image" not in can and any(e.modality == "document" for e in todo):
        return [
            f"model {model_id} embeds text only: PDF pages are embedded by their text layer, their images are "
            "not (a page without text gives no row)"
        ]
    return []


class _Batches:
    """Files in flight: their segments batched per modality for the model, and whole files committed to the
    store every `commit_rows` rows or `commit_seconds` seconds. A file counts as done (progress) once embedded."""

    def __init__(
        self, todo: list[FileEntry], is_new: list[bool], store: Store, model, options: EmbedOptions, run: _Run
    ):
        self.todo, self.is_new, self.store, self.model, self.options, self.run = (
            todo,
            is_new,
            store,
            model,
            options,
            run,
        )
        self.batch_size = options.batch_size or default_batch_size(model)
        self.pending: dict[int, _Pending] = {}
        self.batches: dict[str, list[tuple[int, Segment]]] = {}  # modality -> [(file_id, Segment)]
        self.batch_bytes: dict[str, int] = {}  # modality -> bytes of its batch (pool.segment_nbytes)
        self.ready: list[tuple[int, EmbeddedFile]] = []
        self.last_commit = time.monotonic()

    def load_and_embed(self, stop: StopFlag | None) -> None:
        """Load the files in worker processes and embed them; on `stop`, finish the files already loaded."""
        from gemb2.pipeline.loadspec import load_spec_for

        options = self.options
        workers = options.workers if options.workers is not None else min(4, os.cpu_count() or 1)
        events = load_parallel(
            self.todo, load_spec_for(self.model), workers=workers, max_pending_segments=options.max_pending_segments
        )
        try:
            while stop is None or not stop.is_set():
                try:
                    with stop.waiting() if stop is not None else nullcontext():
                        ev = next(events)
                except (StopIteration, Interrupted):
                    break
                self.take(ev)
                self.commit()
            if stop is not None and stop.is_set():  # only the files whose loading is done can be committed
                for mod in list(self.batches):
                    self.batches[mod] = [(f, s) for f, s in self.batches[mod] if self.pending[f].n_segments is not None]
            for mod in list(self.batches):
                self.embed(mod)
            self.commit(force=True)
        finally:
            close = getattr(events, "close", None)
            if close:
                close()

    def take(self, ev: Event) -> None:
        """One loader event: a segment joins its modality's batch; a file is done loading, or failed."""
        todo, run = self.todo, self.run
        if isinstance(ev, SegmentLoaded):
            pf = self.pending.setdefault(ev.file_id, _Pending(todo[ev.file_id]))
            pf.missing += 1
            mod = item_modality(ev.segment.parts)
            self.batches.setdefault(mod, []).append((ev.file_id, ev.segment))
            self.batch_bytes[mod] = self.batch_bytes.get(mod, 0) + segment_nbytes(ev.segment)
            if len(self.batches[mod]) >= self.batch_size or self.batch_bytes[mod] >= self.options.max_batch_bytes:
                self.embed(mod)
            return
        if ev.notes and run.on_notes:
            run.on_notes(storage_path(todo[ev.file_id].path), ev.notes)
        if isinstance(ev, FileDone):
            pf = self.pending.setdefault(ev.file_id, _Pending(todo[ev.file_id]))
            pf.n_segments, pf.content_hash = ev.n_segments, ev.content_hash
            self.finish_if_complete(ev.file_id)
            return
        self.pending.pop(ev.file_id, None)
        for mod in list(self.batches):  # drop its segments still waiting for a batch
            self.batches[mod] = [(fid, s) for fid, s in self.batches[mod] if fid != ev.file_id]
            self.batch_bytes[mod] = sum(segment_nbytes(s) for _, s in self.batches[mod])
        e = todo[ev.file_id]
        run.fail(Failure(storage_path(e.path), ev.reason, transient=ev.transient), (e.size, e.mtime_ns))
        run.progress.advance(1)

    def embed(self, modality: str) -> None:
        """Embed a modality's batch; the files it completes are ready to commit."""
        batch = self.batches.pop(modality, [])
        if not batch:
            return
        self.batch_bytes.pop(modality, None)
        task = split_prompt(self.run.model_id)[1]  # the table's documents' prompt (prompts.py)
        vectors = self.model.encode([seg.parts for _, seg in batch], task=task, batch_size=self.batch_size)
        if modality != "text":
            release_free_memory()  # the model call's freed activations, back to the system
        for (fid, seg), vec in zip(batch, vectors):
            pf = self.pending[fid]
            pf.rows[seg.index] = SegmentRow(seg.index, item_modality(seg.parts), seg.start, seg.end, seg.text, vec)
            pf.missing -= 1
        for fid in {fid for fid, _ in batch}:
            self.finish_if_complete(fid)

    def finish_if_complete(self, fid: int) -> None:
        pf = self.pending[fid]
        if not pf.complete() or pf.n_segments is None:
            return
        del self.pending[fid]
        e = pf.entry
        seg_version = segmentation_version(e.modality)
        rec = FileRecord(
            storage_path(e.path), e.size, e.mtime_ns, pf.content_hash, self.run.model_id, pf.n_segments, seg_version
        )
        self.ready.append((fid, EmbeddedFile(rec, [pf.rows[i] for i in range(pf.n_segments)])))
        self.run.progress.advance(1)

    def commit(self, force: bool = False) -> None:
        """Write the ready files (and the failures to remember) if enough rows or time have gathered, or `force`."""
        run, report = self.run, self.run.report
        rows = sum(len(f.rows) for _, f in self.ready)
        options = self.options
        due = force or rows >= options.commit_rows or time.monotonic() - self.last_commit > options.commit_seconds
        if not due or not (self.ready or run.remember):
            return
        self.store.write([f for _, f in self.ready], run.remember)
        run.remember.clear()
        for fid, f in self.ready:
            if self.is_new[fid]:
                report.files_added += 1
                report.rows_added += len(f.rows)
            else:
                report.files_updated += 1
                report.rows_updated += len(f.rows)
        self.ready.clear()
        self.last_commit = time.monotonic()
