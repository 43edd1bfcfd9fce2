"""One `gemb2 embed` run as the command line asks for it: which store (a LanceDB table or a shard folder),
created or rebuilt, under the table's lock, with SIGINT/SIGTERM stopping it cleanly; `run_embed` does the work.

    report = run_job(EmbedJob(paths, source="gemb2-mini", db=uri, table="media"), progress=bar)
    sys.exit(exit_code(report))       # 0 done, 3 some files failed, 130/143 interrupted

What cannot be done raises a `gemb2.errors` error: UsageError (a missing path, options that do not go
together, a table of another model), BusyError (another run holds the lock), FatalError (the store could not
be opened or written).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gemb2.errors import EXIT_OK, EXIT_PARTIAL, FatalError, UsageError
from gemb2.pipeline import open as opening
from gemb2.pipeline.embed import EmbedOptions, EmbedReport, Failure, Progress, run_embed
from gemb2.store.records import Store


@dataclass(frozen=True)
class EmbedJob:
    paths: Sequence[str]
    source: str  # the model: a preset name or a model folder
    db: str = ""  # the LanceDB database URI (unused with `out`)
    table: str = ""
    out: str | None = None  # a folder of safetensors shards instead of a LanceDB table
    device: str | None = None  # None or "auto": this rank's GPU under torchrun, else any GPU, else the CPU
    rebuild: bool = False  # drop the table (or shards) first and embed everything again
    dry_run: bool = False  # list what would change; no lock, no model, nothing written
    wait_s: float = 0.0  # how long to wait for another run's lock before BusyError
    prompt: str | None = None  # the documents' prompt by name (--prompt; None: the model's document prompt)
    options: EmbedOptions = field(default_factory=EmbedOptions)


def check_job(job: EmbedJob) -> None:
    """The usage errors a job can have before anything is opened."""
    for p in job.paths:
        if not Path(p).exists() and not Path(p).is_symlink():
            raise UsageError(f"no such file or folder: {p}")
    if job.options.world_size > 1 and job.out is not None:
        raise UsageError("--out shards are written by one process; use a LanceDB table (--db) for --world-size > 1")
    if job.options.world_size > 1 and job.rebuild:
        raise UsageError("--rebuild drops the table under the other ranks' feet: run it once with --world-size 1 first")
    if job.options.engine == "ray" and job.out is not None:
        raise UsageError("--engine ray writes a LanceDB table (--db); --out shards are written by one process")
    if job.options.engine == "ray" and job.options.world_size > 1:
        raise UsageError("--engine ray shares the files across the cluster itself: drop --rank/--world-size")
    if job.dry_run and job.rebuild:
        raise UsageError("--dry-run with --rebuild: a rebuild would drop and re-embed everything")


def run_job(
    job: EmbedJob,
    *,
    progress: Progress | None = None,
    on_failure: Callable[[Failure], None] | None = None,
    on_notes: Callable[[str, Sequence[str]], None] | None = None,
    until: Callable[[], bool] | None = None,
    get_model: Callable | None = None,
) -> EmbedReport:
    """Check `job`, open (or create, or rebuild) its store, and bring it up to date with `job.paths`.

    The model is loaded only if a file needs it (or a new store needs its dimension). `until`: polled with the
    stop signals; once it says True the run ends early as a signal would end it (the files embedded completely
    are committed), but `report.interrupted` stays None: the caller set the limit (`gemb2 search`'s budget).
    `get_model`: the caller's lazy loader of `job.source` (`lazy_model`), to use the model after the run.
    """
    from gemb2.pipeline.interrupt import StopSignal
    from gemb2.pipeline.prompts import check_prompt, with_prompt
    from gemb2.store.lock import table_lock

    check_job(job)
    if job.prompt is not None:
        check_prompt(job.source, job.prompt)
    model_id = with_prompt(opening.model_id_of(job.source), job.prompt)  # the table records the prompt
    model = get_model or lazy_model(job)
    store = open_store(job, model_id, model)
    opts = job.options
    try:
        if job.dry_run:  # reads only: no lock, no model
            return run_embed(job.paths, store, model_id=model_id, get_model=model, options=opts, dry_run=True)
        lock_at = (job.out, "") if job.out is not None else (job.db, job.table)
        with (
            table_lock(*lock_at, wait_s=job.wait_s, rank=opts.rank, world_size=opts.world_size),
            StopSignal() as signals,
        ):
            stop = signals if until is None else _StopOr(signals, until)
            report = run_embed(
                job.paths,
                store,
                model_id=model_id,
                get_model=model,
                options=opts,
                progress=progress,
                on_failure=on_failure,
                on_notes=on_notes,
                stop=stop,
            )
            if not signals.is_set():
                report.interrupted = None  # `until`, not a signal, ended it early
            return report
    except OSError as e:
        raise FatalError(f"writing to the store failed: {e}") from e
    finally:
        store.close()


def exit_code(report: EmbedReport) -> int:
    """128 + the signal for an interrupted run (130, 143), 3 when files failed in this run, else 0."""
    if report.interrupted:
        return 128 + signal.Signals[report.interrupted]
    return EXIT_PARTIAL if report.files_failed else EXIT_OK


def open_store(job: EmbedJob, model_id: str, get_model: Callable) -> Store:
    """The job's store: a table of another model is a UsageError (unless --rebuild, which drops it first);
    a new table or folder takes this model's id, dimension and source."""
    from gemb2.store import LanceStore, ShardStore
    from gemb2.store.records import WrongModelError

    store: Store
    try:
        if job.out is not None:
            store = ShardStore(job.out, model=model_id, dim=None if job.rebuild else _peek_dim(job.out))
        else:
            store = LanceStore(job.db, job.table, model=None if job.rebuild else model_id)
    except WrongModelError as e:  # a v1 table and the v2 default: say which --model it was made with
        held = ShardStore(job.out).model if job.out is not None else LanceStore(job.db, job.table).model
        raise WrongModelError(f"{e}{opening.wrong_model_hint(held or '')}") from None
    if job.rebuild:
        store.drop()
    if store.model is None or store.dim is None:
        store.model, store.dim = model_id, get_model().config.out_dim
        store.source = opening.source_path(job.source)
    return store


class _StopOr:
    """A stop flag set by a signal or once `until()` is true (a signal still interrupts a blocked wait)."""

    def __init__(self, signals, until: Callable[[], bool]):
        self.signals, self.until = signals, until

    def is_set(self) -> bool:
        return self.signals.is_set() or self.until()

    def waiting(self):
        return self.signals.waiting()

    @property
    def name(self) -> str:
        return self.signals.name


def lazy_model(job: EmbedJob) -> _Lazy:
    """The job's model, loaded on its first call (`.model`: None until then)."""
    return _Lazy(job.source, opening.rank_device(job.device))


class _Lazy:
    """The model, loaded on the first call."""

    def __init__(self, source: str, device: str | None):
        self.source, self.device, self.model = source, device, None

    def __call__(self):
        if self.model is None:
            self.model = opening.load_model(self.source, self.device)
        return self.model


def _peek_dim(out: str) -> int | None:
    """The dimension of an existing shard folder, from its manifest (None for a new folder)."""
    manifest = Path(out) / "manifest.json"
    if not manifest.exists():
        return None
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("dim")
    except ValueError:
        return None
