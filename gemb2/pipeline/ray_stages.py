"""What runs inside Ray workers for `gemb2 embed --engine ray` (gemb2/pipeline/embed_ray.py is the driver).

    files (rows: fid, path, size, mtime_ns, modality)
      -> load_files   CPU tasks: each loads its files through `load_parallel(..., workers=1)`: one gemb2 loader
                      process per task, so the per-file limits hold exactly as in a local run (the time limit,
                      the memory watchdog, RLIMIT_AS set by the loader on itself; a loader that dies fails its
                      file, not the task) -> rows: fid, the file's events (segments, then done or failed)
      -> Embedder     an actor pool holding the model: batches the files' segments by modality as a local run
                      does (`embed._Batches`), writes their rows as one uncommitted Lance fragment and returns
                      its metadata, the files' records and their failures as JSON (one row per batch)

A Ray worker killed mid-task is Ray's to retry (task retries, actor restarts); a retried batch writes a new
fragment, and the fragment of the lost attempt is never committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, replace

import numpy as np

from gemb2.data.discover import FileEntry
from gemb2.data.pool import Event, load_parallel
from gemb2.data.segments import LoadSpec
from gemb2.store.records import EmbeddedFile

_TOKENIZERS: dict[str, str] = {}  # digest of a tokenizer.json -> its copy on this node


def entries_of(batch: dict) -> list[FileEntry]:
    """The FileEntry of each row of a batch (paths travel as the bytes the OS gave)."""
    return [
        FileEntry(os.fsdecode(bytes(p)), int(s), int(m), str(mod))
        for p, s, m, mod in zip(batch["path"], batch["size"], batch["mtime_ns"], batch["modality"])
    ]


def spec_here(spec: LoadSpec, tokenizer_json: str) -> LoadSpec:
    """`spec` with a tokenizer file on this node (the driver's path may not exist on a worker machine)."""
    if not tokenizer_json:
        return spec
    key = hashlib.blake2b(tokenizer_json.encode(), digest_size=8).hexdigest()
    path = _TOKENIZERS.get(key)
    if path is None or not os.path.exists(path):
        fd, path = tempfile.mkstemp(prefix="gemb2-tokenizer-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(tokenizer_json)
        _TOKENIZERS[key] = path
    return replace(spec, tokenizer_file=path)


def load_files(batch: dict, spec: LoadSpec, tokenizer_json: str) -> dict:
    """A CPU task: the files of `batch` loaded in one limited gemb2 loader process, their events per file."""
    entries = entries_of(batch)
    events: list[list[Event]] = [[] for _ in entries]
    for ev in load_parallel(entries, spec_here(spec, tokenizer_json), workers=1):
        events[ev.file_id].append(ev)
    column = np.empty(len(entries), dtype=object)
    column[:] = events
    return {**batch, "events": column}


class _Collect:
    """The store `_Batches` writes to inside an actor: it keeps the embedded files for one fragment."""

    def __init__(self) -> None:
        self.files: list[EmbeddedFile] = []

    def write(self, files, failures=()) -> None:
        self.files += files


class Embedder:
    """An actor holding the model: a batch of loaded files in, one fragment of their rows out (uncommitted)."""

    def __init__(
        self, source: str, model_id: str, uri: str, dim: int, batch_size: int | None, device: str | None, threads: int
    ):
        from gemb2.pipeline import open as opening
        from gemb2.store.fragments import FragmentWriter

        self.model_id = model_id
        here = opening.model_id_of(source)
        if here != model_id:  # a model folder that differs between the driver's machine and this node
            raise RuntimeError(f"model {source!r} on this node is {here}, not {model_id}")
        if device == "cpu":  # Ray sets OMP_NUM_THREADS=1 in a 1-CPU actor; the model shares the node's cores as
            import torch  # a local run's does (the loaders are mostly waiting on files)

            torch.set_num_threads(threads)
        self.model = opening.load_model(source, device)
        self.batch_size = batch_size
        self.writer = FragmentWriter(uri, dim, model_id)

    def __call__(self, batch: dict) -> dict:
        from gemb2.pipeline.embed import EmbedOptions, EmbedReport, _Batches, _NoProgress, _Run

        entries = entries_of(batch)
        notes: list[tuple[str, list[str]]] = []
        run = _Run(EmbedReport(), self.model_id, _NoProgress(), None, lambda p, lines: notes.append((p, list(lines))))
        sink = _Collect()
        options = EmbedOptions(batch_size=self.batch_size)
        batches = _Batches(entries, [True] * len(entries), sink, self.model, options, run)  # type: ignore[arg-type]
        for i, evs in enumerate(batch["events"]):
            for ev in evs:
                ev.file_id = i  # this batch's index of the file
                batches.take(ev)
        for mod in list(batches.batches):
            batches.embed(mod)
        batches.commit(force=True)
        fragments = self.writer.write(sink.files)
        failures = [(f.path, f.reason, f.transient) for f in run.report.failures]
        return {
            "fragments": [json.dumps(fragments)],
            "files": [json.dumps([asdict(f.record) for f in sink.files])],
            "rows": [sum(len(f.rows) for f in sink.files)],
            "failures": [json.dumps(failures)],
            "notes": [json.dumps(notes)],
        }
