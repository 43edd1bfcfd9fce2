"""The options `gemb2 query` and `gemb2 search` share, declared once.

    @with_query_options
    def query(text: Annotated[...] = None, *, opts: QueryOptions) -> None: ...

`with_query_options` appends the shared parameters (those of `_shared` below) to the command's signature, so
Typer sees them as the command's own options, and hands them to the command as one `QueryOptions`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated

import typer

from . import common

_TERMS = "Combined queries"
_OUT = "Output"


def _shared(
    image: Annotated[Path | None, typer.Option(help="An image file, part of the query.")] = None,
    audio: Annotated[Path | None, typer.Option(help="An audio file (its first window), part of the query.")] = None,
    video: Annotated[Path | None, typer.Option(help="A video file (its first window), part of the query.")] = None,
    k: Annotated[
        int, typer.Option("-k", "--k", min=1, help="How many results (files; segments with --segments).")
    ] = 10,
    modality: Annotated[str | None, typer.Option(help="Only rows of this modality: text, image, audio, video.")] = None,
    where: Annotated[
        str | None, typer.Option(help="A SQL filter on the table's columns, e.g. \"path LIKE '%/2024/%'\".")
    ] = None,
    db: Annotated[str | None, typer.Option(help="LanceDB database folder or URI. [env: GEMB2_DB]")] = None,
    table: Annotated[str | None, typer.Option(help="Table name. [env: GEMB2_TABLE; default: media]")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model (a preset, a gemb2 model folder or a Hugging Face BERT folder); by default the one the table was built with."
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N. [env: GEMB2_DEVICE]")] = None,
    plus: Annotated[
        list[str] | None,
        typer.Option(
            metavar="TEXT",
            help='Add this text to the query (repeatable; always literal text, "2:30 pm" included).',
            rich_help_panel=_TERMS,
        ),
    ] = None,
    plus_weight: Annotated[
        list[float] | None,
        typer.Option(
            metavar="W",
            help="The weight of the --plus terms, in their order (repeatable). [default: 1]",
            rich_help_panel=_TERMS,
        ),
    ] = None,
    plus_file: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="PATH",
            help="Add this file (image, audio, video, text) to the query (repeatable).",
            rich_help_panel=_TERMS,
        ),
    ] = None,
    plus_file_weight: Annotated[
        list[float] | None,
        typer.Option(
            metavar="W",
            help="The weight of the --plus-file terms, in their order. [default: 1]",
            rich_help_panel=_TERMS,
        ),
    ] = None,
    minus: Annotated[
        list[str] | None,
        typer.Option(
            metavar="TEXT",
            help="Subtract this text from the query (repeatable; always literal text).",
            rich_help_panel=_TERMS,
        ),
    ] = None,
    minus_weight: Annotated[
        list[float] | None,
        typer.Option(
            metavar="W", help="The weight of the --minus terms, in their order. [default: 1]", rich_help_panel=_TERMS
        ),
    ] = None,
    minus_file: Annotated[
        list[Path] | None,
        typer.Option(metavar="PATH", help="Subtract this file from the query (repeatable).", rich_help_panel=_TERMS),
    ] = None,
    minus_file_weight: Annotated[
        list[float] | None,
        typer.Option(
            metavar="W",
            help="The weight of the --minus-file terms, in their order. [default: 1]",
            rich_help_panel=_TERMS,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print a JSON array of the k best rows (segments): rank, file_rank, score, path, modality, start, end, text (and a PDF's page).",
            rich_help_panel=_OUT,
        ),
    ] = False,
    paths_only: Annotated[
        bool,
        typer.Option(
            "-l", "--paths-only", help="Print only the paths of the k best files, one per line.", rich_help_panel=_OUT
        ),
    ] = False,
    segments: Annotated[
        bool,
        typer.Option(
            "--segments", help="One line per matching segment, not per file (its best segment).", rich_help_panel=_OUT
        ),
    ] = False,
    interactive: Annotated[
        bool,
        typer.Option(
            "--interactive",
            "-i",
            help="Keep the model loaded and read one query per line from stdin; a blank line or end of input ends it.",
            rich_help_panel=_OUT,
        ),
    ] = False,
    hybrid: Annotated[
        bool,
        typer.Option(
            "--hybrid",
            help="Also full-text search the query text (BM25) and fuse both rankings (reciprocal-rank fusion). Needs `gemb2 index`.",
        ),
    ] = False,
    dim: Annotated[
        int | None, typer.Option(help="Query with this Matryoshka prefix of the vectors (re-ranked by prefix cosine).")
    ] = None,
    refine_factor: Annotated[
        int,
        typer.Option(
            min=0, help="With a vector index: re-rank this many x k candidates with the exact vectors (0: off)."
        ),
    ] = 5,
    nprobes: Annotated[
        int, typer.Option(min=1, help="With a vector index: IVF partitions to search (more: better recall, slower).")
    ] = 5,
    ef: Annotated[
        int | None, typer.Option(min=1, help="With an HNSW index: candidates per search. [default: max(64, 2k)]")
    ] = None,
) -> None:
    """The shared options' declarations (never called)."""


@dataclass(frozen=True)
class QueryOptions:
    """The values of the shared options, as one object (field names = `_shared`'s parameters)."""

    image: Path | None
    audio: Path | None
    video: Path | None
    k: int
    modality: str | None
    where: str | None
    db: str | None
    table: str | None
    model: str | None
    device: str | None
    plus: list[str] | None
    plus_weight: list[float] | None
    plus_file: list[Path] | None
    plus_file_weight: list[float] | None
    minus: list[str] | None
    minus_weight: list[float] | None
    minus_file: list[Path] | None
    minus_file_weight: list[float] | None
    as_json: bool
    paths_only: bool
    segments: bool
    interactive: bool
    hybrid: bool
    dim: int | None
    refine_factor: int
    nprobes: int
    ef: int | None

    @property
    def db_uri(self) -> str:
        return common.db_uri(self.db)

    @property
    def table_name(self) -> str:
        return common.table_name(self.table)

    def query(self, text: str | None, *, where: str | None = None):
        """The `gemb2.pipeline.query.Query` these options ask for, of `text` (`where`: replaces --where)."""
        from gemb2.pipeline.query import Query
        from gemb2.pipeline.query_output import rows_for_files
        from gemb2.pipeline.query_terms import terms_from_options
        from gemb2.store.index import QueryTuning

        files = [(m, str(p)) for m, p in (("image", self.image), ("audio", self.audio), ("video", self.video)) if p]
        terms = terms_from_options(
            self.plus or (),
            self.plus_weight or (),
            [str(p) for p in self.plus_file or ()],
            self.plus_file_weight or (),
            self.minus or (),
            self.minus_weight or (),
            [str(p) for p in self.minus_file or ()],
            self.minus_file_weight or (),
        )
        by_file = not (self.segments or self.as_json)
        return Query(
            text=text or None,
            files=files,
            k=self.k,
            modality=self.modality,
            where=self.where if where is None else where,
            hybrid=self.hybrid,
            dim=self.dim,
            tuning=QueryTuning(refine_factor=self.refine_factor or None, nprobes=self.nprobes, ef=self.ef),
            model=self.model,
            device=common.device_name(self.device),
            default_model=common.model_name(None),
            terms=terms,
            rows=rows_for_files(self.k) if by_file else None,
        )


_SHARED = list(inspect.signature(_shared, eval_str=True).parameters.values())
assert [p.name for p in _SHARED] == [f.name for f in fields(QueryOptions)], "QueryOptions must mirror _shared"


def with_query_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command(..., *, opts: QueryOptions)` as a Typer command taking the shared options as its own."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "opts"]
    names = [p.name for p in _SHARED]

    @functools.wraps(command)
    def wrapper(**kwargs) -> None:
        opts = QueryOptions(**{n: kwargs.pop(n) for n in names})
        command(**kwargs, opts=opts)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own + _SHARED]
    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return wrapper
