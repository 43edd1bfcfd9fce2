"""`gemb2 embed --engine ray`: the plan's files embedded on a Ray cluster, committed by this process (the driver).

    plan (embed.run_embed, as a local run) -> Ray Data: load_files tasks -> Embedder actors (ray_stages.py)
      -> fragments' metadata back here -> LanceStore.commit_fragments every `commit_rows` rows or
         `commit_seconds` seconds: one Lance transaction adds them and deletes the old rows of the files they
         replace; the side table (empty files, remembered failures) follows

Only the driver commits, so workers never race on the table. A killed driver loses its uncommitted window;
the next run's plan sees those files as still to do (their fragments were never committed) and finishes
the job: no duplicate, no lost row. A file whose rows arrive twice in one run (a retried batch) is written
in a later window that deletes its first copy.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext, redirect_stdout
from typing import Any, cast

from gemb2.data.discover import FileEntry
from gemb2.errors import FatalError, UsageError
from gemb2.pipeline.interrupt import Interrupted
from gemb2.store.records import FailureRecord, FileRecord, storage_path

LOAD_FILES = (
    4  # at most this many files per loading task: each task starts one loader process, so a few files share its start
)
EMBED_FILES = 32  # at most this many files per actor call: one fragment each
ENV_PREFIXES = ("AWS_", "GOOGLE_", "AZURE_", "GEMB2_", "LANCE_", "LANCEDB_", "HF_")  # what workers need from here


def connect(address: str | None) -> None:
    """Connect to the Ray cluster at `address` ("auto", "host:port", "ray://..."), or, with None, to the one
    RAY_ADDRESS or `ray start` names, else start one on this machine. Workers get this process's object-store
    credentials and gemb2 settings (ENV_PREFIXES)."""
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'gemb2[ray]'") from None
    if ray.is_initialized():
        return
    _reachable(address or os.environ.get("RAY_ADDRESS"))
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        ray.init(address=address, runtime_env={"env_vars": env}, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = address or os.environ.get("RAY_ADDRESS") or "this machine"
        raise FatalError(f"cannot connect to the Ray cluster at {where}: {str(e).splitlines()[0]}") from e
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "print_on_execution_start"):
        ctx.print_on_execution_start = False


def _reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """A HOST:PORT that nothing answers on is a one-line FatalError now (Ray itself would retry for minutes)."""
    import socket

    if not address or "://" in address or address == "auto" or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as e:
        raise FatalError(f"cannot connect to the Ray cluster at {address}: {e}") from None


def _dataset(todo: Sequence[FileEntry], store, model, batch_size: int | None):
    """The streaming pipeline: files -> loading tasks -> embedding actors (one per GPU, else CPU actors)."""
    import ray
    from gemb2.pipeline.loadspec import load_spec_for
    from gemb2.pipeline.ray_stages import Embedder, load_files
    from gemb2.store.fragments import dataset_uri

    rows = [{"path": os.fsencode(e.path), "size": e.size, "mtime_ns": e.mtime_ns, "modality": e.modality} for e in todo]
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    actors = gpus or max(1, cpus // 4)
    nodes = max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
    # a few files per call, fewer when there are few files, so that every worker gets some and results come often
    per_load = max(1, min(LOAD_FILES, len(rows) // (2 * cpus)))
    per_embed = max(1, min(EMBED_FILES, len(rows) // (4 * actors)))
    spec = load_spec_for(model)
    ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows) // per_load, 4 * cpus)))
    ds = ds.map_batches(
        cast(Any, load_files),
        fn_kwargs={"spec": spec, "tokenizer_json": model.tokenizer.to_str()},
        batch_size=per_load,
        num_cpus=1,
    )
    return ds.map_batches(
        cast(Any, Embedder),
        fn_constructor_kwargs={
            "source": store.source,
            "model_id": store.model,
            "uri": dataset_uri(store.uri, store.table_name),
            "dim": store.dim,
            "batch_size": batch_size,
            "device": "cuda" if gpus else "cpu",
            "threads": max(1, cpus // nodes // max(1, actors // nodes)),  # a CPU actor's share of its node's cores
        },
        batch_size=per_embed,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=1 if gpus else 0,
        num_cpus=1,
    )  # Ray Data's defaults retry a failed task and restart a dead actor (retrying its batch)


class _Window:
    """The results received and not yet committed, and the report they add to once committed."""

    def __init__(self, store, todo: Sequence[FileEntry], is_new: Sequence[bool], options, run):
        self.store, self.options, self.run = store, options, run
        self.entries = {storage_path(e.path): (e, new) for e, new in zip(todo, is_new)}
        self.fragments: list[str] = []
        self.files: list[FileRecord] = []
        self.rows = 0
        self.seen: set[str] = set()  # paths committed (or received) in this run
        self.again: set[str] = set()  # paths received a second time: their first copy is deleted by the commit
        self.last = time.monotonic()

    def take(self, result: dict) -> None:
        """One actor batch: its fragment and files join the window; its failures are counted now."""
        files = [FileRecord(**f) for f in json.loads(result["files"])]
        if any(f.path in self.seen for f in files):
            self.commit(force=True)  # a retried batch: commit the window first, then replace the first copy
            self.again.update(f.path for f in files if f.path in self.seen)
        for path, lines in json.loads(result["notes"]):
            if self.run.on_notes:
                self.run.on_notes(path, lines)
        for path, reason, transient in json.loads(result["failures"]):
            from gemb2.pipeline.embed import Failure

            e = self.entries[path][0]
            self.run.fail(Failure(path, reason, transient=transient), (e.size, e.mtime_ns))
            self.run.progress.advance(1)
        self.fragments += json.loads(result["fragments"])
        self.files += files
        self.rows += int(result["rows"])
        self.run.progress.advance(len(files))

    def commit(self, force: bool = False) -> None:
        opts, run = self.options, self.run
        due = force or self.rows >= opts.commit_rows or time.monotonic() - self.last > opts.commit_seconds
        if not due or not (self.files or run.remember):
            return
        replace = [f.path for f in self.files if not self.entries[f.path][1] or f.path in self.again]
        failures: list[FailureRecord] = list(run.remember)
        self.store.commit_fragments(self.fragments, self.files, failures, replace=replace)
        run.remember.clear()
        for f in self.files:
            if f.path in self.seen:
                continue
            self.seen.add(f.path)
            new = self.entries[f.path][1]
            if new:
                run.report.files_added += 1
                run.report.rows_added += f.n_segments
            else:
                run.report.files_updated += 1
                run.report.rows_updated += f.n_segments
        self.fragments, self.files, self.rows, self.last = [], [], 0, time.monotonic()


def embed_on_ray(todo: Sequence[FileEntry], is_new: Sequence[bool], store, model, options, run, stop) -> None:
    """Embed `todo` on the cluster; commit as results come; on `stop`, commit what came and return."""
    from gemb2.store.lance import LanceStore

    if not isinstance(store, LanceStore):
        raise UsageError("--engine ray writes a LanceDB table; --out shards are written by one process")
    if not todo:
        return
    connect(options.ray_address)
    store.ensure_table()  # the workers' fragments take its schema
    window = _Window(store, todo, is_new, options, run)
    # Ray prints what its raylets report (a worker that died) on stdout; stdout is for --json only
    with redirect_stdout(sys.stderr):
        batches = iter(_dataset(todo, store, model, options.batch_size).iter_rows())
        try:
            while stop is None or not stop.is_set():
                try:
                    with stop.waiting() if stop is not None else nullcontext():
                        result = next(batches)
                except (StopIteration, Interrupted):
                    break
                window.take(result)
                window.commit()
            window.commit(force=True)
        finally:
            close = getattr(batches, "close", None)
            if close:
                close()
            import ray

            ray.shutdown()  # the driver lets go of the cluster (and Ray's printing threads end)
