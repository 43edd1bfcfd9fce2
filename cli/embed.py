"""`gemb2 embed PATH...`: embed files into a LanceDB table (default) or safetensors shards; `-` embeds stdin lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from gemb2.errors import UsageError

from . import common


class _Bar:
    """tqdm on stderr, only when stderr is a terminal and not --quiet."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def start(self, total: int) -> None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", desc="embedding", file=sys.stderr, dynamic_ncols=True)

    def advance(self, n: int = 1) -> None:
        if self.bar:
            self.bar.update(n)

    def write(self, line: str) -> None:
        """A line on stderr above the bar (never glued onto it)."""
        if self.bar:
            self.bar.write(line, file=sys.stderr)
        else:
            typer.echo(line, err=True)

    def close(self) -> None:
        if self.bar:
            self.bar.close()


def embed(
    paths: Annotated[
        list[str], typer.Argument(help="Files and folders to embed (recursively), or - for text lines on stdin.")
    ],
    db: Annotated[
        str | None,
        typer.Option(help="LanceDB database folder or URI. [env: GEMB2_DB; default: ~/.local/share/gemb2/lancedb]"),
    ] = None,
    table: Annotated[str | None, typer.Option(help="Table name. [env: GEMB2_TABLE; default: media]")] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write safetensors shards + an index to this folder instead of LanceDB."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model: a preset (gemb2-mini, tiny, all-MiniLM-L6-v2), a gemb2 model folder or a Hugging Face BERT folder. [env: GEMB2_MODEL; default: gemb2-mini]"
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N. [env: GEMB2_DEVICE]")] = None,
    workers: Annotated[
        int | None, typer.Option(min=0, help="Loader processes (0: load in this process). [default: min(4, CPUs)]")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Segments per model call. [default: 32 on a CPU, 256 on a GPU]")
    ] = None,
    commit_rows: Annotated[
        int, typer.Option(min=1, help="Rows buffered per store write; a killed run redoes at most this many.")
    ] = 2048,
    follow_symlinks: Annotated[
        bool, typer.Option("--follow-symlinks", help="Follow symlinks that lead out of the given folders.")
    ] = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Drop the table (or shard folder) first and embed everything again.")
    ] = False,
    task: Annotated[str, typer.Option(help="For `-` (stdin): the prompt, document | query | none.")] = "document",
    dim: Annotated[int | None, typer.Option(help="For `-` (stdin): a Matryoshka dimension to truncate to.")] = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            help="A prompt of the model by name (EmbeddingGemma 2: its folder's prompts), for the lines of `-` or "
            "the documents of a table (which records it: one table, one prompt)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary on stderr.")] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also print what each file's decoders said (warnings, codec messages), which is otherwise kept off stderr.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be added, updated and removed; change nothing.")
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Decode again the files that failed in an earlier run and have not changed since (they are skipped by default).",
        ),
    ] = False,
    wait: Annotated[
        float,
        typer.Option(min=0, help="If another run is writing the table, wait up to this many seconds, then exit 4."),
    ] = 0,
    rank: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="This process's rank: it embeds the files whose path hash falls in its share. [env: RANK, as set by torchrun; default 0]",
        ),
    ] = None,
    world_size: Annotated[
        int | None, typer.Option(min=1, help="How many ranks share the files. [env: WORLD_SIZE; default 1]")
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="local: loader processes and the model here. ray: loading tasks and model actors on a Ray cluster, "
            "rows committed by this process."
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="With --engine ray: the cluster (auto, HOST:PORT, ray://HOST:10001). [default: RAY_ADDRESS, "
            "else a cluster `ray start` runs here, else a new one on this machine]"
        ),
    ] = None,
) -> None:
    """Embed files (text, images, audio, video) into a LanceDB table or safetensors shards.

    A rerun skips unchanged files, re-embeds changed ones and removes the rows of deleted ones.
    A file that failed is remembered and not decoded again until it changes (or --retry-failed).
    Exit codes: 0 done, 3 some files failed in this run (the rest were done), 2 usage error, 1 fatal error,
    4 another run holds the table (after --wait seconds), 130/143 interrupted by SIGINT/SIGTERM after
    committing the files embedded so far.
    """
    if "-" in paths:
        if len(paths) > 1:
            raise UsageError("`-` (stdin) cannot be combined with other paths")
        if prompt is not None:
            from gemb2.pipeline.prompts import check_prompt

            check_prompt(common.model_name(model), prompt)
        _embed_stdin(common.model_name(model), common.device_name(device), batch_size, prompt or task, dim)
        return
    from gemb2.pipeline.embed import EmbedOptions
    from gemb2.pipeline.embed_job import EmbedJob, exit_code, run_job

    if engine not in ("local", "ray"):
        raise UsageError(f"--engine must be local or ray, not {engine!r}")
    if ray_address is not None and engine != "ray":
        raise UsageError("--ray-address goes with --engine ray")
    rank, world_size = _rank_and_world(rank, world_size)
    options = EmbedOptions(
        engine=engine,
        ray_address=ray_address,
        follow_symlinks=follow_symlinks,
        workers=workers,
        batch_size=batch_size,
        commit_rows=commit_rows,
        rank=rank,
        world_size=world_size,
        retry_failed=retry_failed,
    )
    job = EmbedJob(
        paths,
        common.model_name(model),
        db=common.db_uri(db),
        table=common.table_name(table),
        out=None if out is None else str(out),
        device=common.device_name(device),
        rebuild=rebuild,
        dry_run=dry_run,
        wait_s=wait,
        options=options,
        prompt=prompt,
    )
    bar = _Bar(enabled=not quiet and common.stderr_is_tty())

    def on_failure(f) -> None:
        if not quiet:
            bar.write("gemb2: failed: " + common.printable(f"{f.path}: {f.reason}"))

    def on_notes(path: str, lines) -> None:
        for line in lines:
            bar.write("gemb2: note: " + common.printable(f"{path}: {line}"))

    report = run_job(job, progress=bar, on_failure=on_failure, on_notes=on_notes if verbose else None)
    _print_report(report, as_json=as_json, quiet=quiet)
    raise typer.Exit(exit_code(report))


def _print_report(report, *, as_json: bool, quiet: bool) -> None:
    """--json on stdout; a dry run's list on stdout; the one-line summary (and why a run ended early) on stderr."""
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    if report.dry_run:
        if not as_json:
            for tag, group in (
                ("add", report.would_add),
                ("update", report.would_update),
                ("remove", report.would_remove),
            ):
                for path in group:
                    typer.echo(f"{tag}\t{common.printable(path)}")
        if not quiet:
            common.warn(
                f"dry run: {len(report.would_add)} to add, {len(report.would_update)} to update, "
                f"{len(report.would_remove)} to remove, {report.files_unchanged} unchanged; nothing was changed"
            )
        return
    if not quiet:
        for note in report.notes:
            common.warn("note: " + note)
        common.warn(_summary(report))
    if report.interrupted:
        common.warn(
            f"interrupted by {report.interrupted}: the files embedded so far are committed; "
            f"run the same command again to continue"
        )


def _summary(r) -> str:
    """One line: what the run did, where, and what it passed over."""
    line = (
        f"{r.files_added} added, {r.files_updated} updated, {r.files_unchanged} unchanged, "
        f"{r.files_removed} removed, {r.files_failed} failed"
    )
    if r.files_failed_known:
        line += f", {r.files_failed_known} failed before and unchanged (--retry-failed to try them again)"
    line += f"; {r.rows_added + r.rows_updated} rows written, {r.rows_removed} removed in {r.seconds:.1f}s ({r.store})"
    if r.files_unsupported:
        kinds = ", ".join(
            f"{n} {ext or 'without extension'}"
            for ext, n in sorted(r.unsupported.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        line += f"; {r.files_unsupported} files of unsupported types not embedded ({kinds})"
    if r.ignored:
        rules = ", ".join(f"{n} {rule}" for rule, n in sorted(r.ignored.items(), key=lambda kv: (-kv[1], kv[0])))
        line += f"; {sum(r.ignored.values())} folders and files passed over by rule ({rules})"
    return line


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """--rank/--world-size, else torchrun's RANK/WORLD_SIZE, else 0 of 1."""
    import os

    def env_int(name: str) -> int | None:
        v = os.environ.get(name)
        if v is None or v == "":
            return None
        try:
            return int(v)
        except ValueError:
            raise UsageError(f"${name} must be an integer, not {v!r}") from None

    rank = rank if rank is not None else env_int("RANK") or 0
    world_size = world_size if world_size is not None else env_int("WORLD_SIZE") or 1
    if not 0 <= rank < world_size:
        raise UsageError(f"--rank {rank} must be below --world-size {world_size}")
    return rank, world_size


def _embed_stdin(source: str, device: str | None, batch_size: int | None, task: str, dim: int | None) -> None:
    """Texts on stdin, one per line -> JSON lines {"line", "text", "vector"} on stdout (gemb2/pipeline/stdin.py)."""
    from gemb2.pipeline.stdin import embed_stdin

    embed_stdin(source, device, sys.stdin, sys.stdout, task=task, dim=dim, batch_size=batch_size, warn=common.warn)
