"""`gemb2 query`: an interleaved query (text and/or files) -> one vector -> nearest rows of a store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gemb2.data.discover import modality_of
from gemb2.data.load import load_file
from gemb2.data.pdf import page_of
from gemb2.data.segments import LoadError
from gemb2.errors import UsageError
from gemb2.parts import Part, Text
from gemb2.pipeline.prompts import split_prompt

if TYPE_CHECKING:
    from gemb2.pipeline.query_terms import Term
    from gemb2.store.index import QueryTuning
    from gemb2.store.lance import LanceStore


class QueryError(UsageError):
    """A query input cannot be used (a file that does not load, an unsupported type, a bad filter...): exit 2."""


MODALITIES = ("text", "image", "audio", "video", "mixed")


@dataclass(frozen=True)
class Query:
    """One `gemb2 query`: text and/or files (modality, path) that form one interleaved query, and how to search."""

    text: str | None = None
    files: Sequence[tuple[str, str]] = ()
    k: int = 10
    modality: str | None = None  # only rows of this modality
    where: str | None = None  # a SQL filter on the table's columns
    hybrid: bool = False  # also BM25 on the query text, fused by reciprocal rank
    dim: int | None = None  # a Matryoshka prefix of the vectors
    tuning: QueryTuning | None = None  # None: its defaults
    model: str | None = None  # by default the model the table was built with
    device: str | None = None
    default_model: str = field(default="gemb2-mini", compare=False)  # when neither --model nor the table names one
    terms: Sequence[Term] = ()  # --plus / --minus terms combined with the query (gemb2/pipeline/query_terms.py)
    rows: int | None = None  # how many segment rows to fetch (None: k); more, to group them into k files
    prompt: str | None = None  # the query text's prompt by name (--prompt; None: the model's query prompt)
    documents_prompt: str = "document"  # the table's documents' prompt (open_for_query reads it from the table)


def run_query(uri: str, table: str, q: Query) -> list[Hit]:
    """Open the table, check the query against it, embed the query with the table's model and search."""
    check_query(q)
    store, source = open_for_query(uri, table, q)
    vec = embed_query(
        source, replace(q, documents_prompt=split_prompt(store.model or "")[1])
    )  # the model is let go here: its memory is free again for the search
    return answer(store, q, vec)


def open_for_query(uri: str, table: str, q: Query) -> tuple[LanceStore, str]:
    """The table and the model source its queries are embedded with (--model, else the table's, else the default),
    which must be the model the table was built with."""
    from gemb2.pipeline.open import model_id_of, open_table, table_source
    from gemb2.pipeline.prompts import check_prompt

    store = open_table(uri, table)
    built_with = split_prompt(store.model or "")[0]
    source = q.model or (store.source and table_source(store.source, built_with)) or q.default_model
    if model_id_of(source) != built_with:
        raise UsageError(f"table {store.table_name!r} was built with model {store.model!r}, not {source!r}")
    if q.prompt is not None:
        check_prompt(source, q.prompt)
    return store, source


def embed_query(source: str, q: Query) -> np.ndarray:
    """The vector of one query, by a model of `source` with only the stems its parts need (a text query: none),
    used once: oneDNN's packed weights (gemb2.model.onednn) would cost one query more time and memory than
    they save, so it runs on torch's ordinary path."""
    from gemb2.model import onednn
    from gemb2.pipeline.open import check_dim, load_model

    files = any(t.file for t in q.terms)  # a file term (of any kind, a PDF page too): the whole model
    m = load_model(source, q.device, modalities=None if files else {"text"} | {kind for kind, _ in q.files})
    check_dim(m, q.dim)
    with onednn.disabled():
        return query_vector_of(m, q)


def query_vector_of(model, q: Query, spec=None) -> np.ndarray:
    """The query's vector: its text and files as one interleaved item, combined with its --plus/--minus terms."""
    from gemb2.pipeline.loadspec import load_spec_for
    from gemb2.pipeline.query_terms import combine, term_vector

    spec = spec if spec is not None else load_spec_for(model)
    tasks = (q.prompt or "query", q.documents_prompt)
    main = query_vector(model, query_parts(q.text, q.files, spec), *tasks) if q.text or q.files else None
    if not q.terms:
        assert main is not None
        return main
    return combine(main, [(t.signed_weight, term_vector(model, t, spec, *tasks)) for t in q.terms])


def answer(store: LanceStore, q: Query, vec: np.ndarray) -> list[Hit]:
    """The `q.rows or q.k` best rows of `store` for the query vector `vec`."""
    n = q.rows or q.k
    with _filter_errors(q.where):
        if q.hybrid:
            text = q.text or ""
            return hybrid_search(store, vec, text, n, modality=q.modality, where=q.where, tuning=q.tuning, dim=q.dim)
        return search(store, vec, n, modality=q.modality, where=q.where, tuning=q.tuning, dim=q.dim)


def check_query(q: Query) -> None:
    """The usage errors a query can have before anything is opened."""
    if q.modality is not None and q.modality not in MODALITIES:
        raise UsageError(f"--modality must be text, image, audio, video or mixed, not {q.modality!r}")
    for _, path in q.files:
        if not Path(path).is_file():
            raise UsageError(f"no such file: {path}")
    if not q.text and not q.files and not any(t.sign > 0 for t in q.terms):
        raise UsageError("give a query text, or --image/--audio/--video, or a --plus/--plus-file term")


class QuerySession:
    """A table and the model its queries are embedded with, opened once and used for any number of queries
    (`gemb2 query --interactive`, `gemb2 search`). `model`: one already loaded (e.g. by the indexing step)."""

    def __init__(self, uri: str, table: str, q: Query, model=None):
        from gemb2.pipeline.open import load_model

        store, source = open_for_query(uri, table, q)
        self.store = store
        self.documents_prompt = split_prompt(store.model or "")[1]
        self.model = model if model is not None else load_model(source, q.device)
        self._spec = None

    @property
    def spec(self):
        from gemb2.pipeline.loadspec import load_spec_for

        if self._spec is None:
            self._spec = load_spec_for(self.model)
        return self._spec

    def vector(self, q: Query) -> np.ndarray:
        return query_vector_of(self.model, replace(q, documents_prompt=self.documents_prompt), self.spec)

    def run(self, q: Query) -> list[Hit]:
        """Answer `q` (its model, device and table are this session's)."""
        from gemb2.pipeline.open import check_dim

        check_query(q)
        check_dim(self.model, q.dim)
        return answer(self.store, q, self.vector(q))


@contextmanager
def _filter_errors(where: str | None) -> Iterator[None]:
    """LanceDB's "Invalid input" ValueError for a bad `--where` -> QueryError; any other error stays what it is."""
    try:
        yield
    except ValueError as e:
        if where is None or not str(e).startswith("Invalid input"):
            raise
        raise QueryError(f"query failed: {e}") from e


@dataclass
class Hit:
    rank: int
    score: float  # cosine similarity (hybrid: the fused reciprocal-rank score)
    path: str
    modality: str
    segment: int
    start: float
    end: float
    text: str | None
    vector_rank: int | None = None  # hybrid only: rank in the vector list (None: not in it)
    text_rank: int | None = None  # hybrid only: rank in the full-text list
    content_hash: str = ""  # the file's (blake2b of its bytes): identical files share it
    file_rank: int | None = None  # the rank of its file among the files of the results (query_output.rank_files)

    @property
    def page(self) -> int | None:
        """The page (1-based) of a PDF's row (its start is page + character offset: gemb2.data.pdf), else None."""
        return page_of(self.start)[0] if modality_of(self.path) == "document" else None

    def to_dict(self) -> dict:
        extra: dict = (
            {}
            if self.vector_rank is None and self.text_rank is None
            else {"vector_rank": self.vector_rank, "text_rank": self.text_rank}
        )
        if self.page is not None:
            extra["page"] = self.page
        if self.file_rank is not None:
            extra["file_rank"] = self.file_rank
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "path": self.path,
            "modality": self.modality,
            "segment": self.segment,
            "start": self.start,
            "end": self.end,
            "text": self.text,
        } | extra


def query_parts(text: str | None, files: Sequence[tuple[str, str]], spec) -> list[Part]:
    """The parts of one interleaved query: the text first, then each (expected modality, path) in order.

    A long audio or video file contributes its first window, as `embed` cut it.
    """
    parts: list[Part] = [Text(text)] if text else []
    for expected, path in files:
        modality = modality_of(path)
        if modality is None or modality != expected:
            raise QueryError(f"{path}: not a supported {expected} file (its extension says {modality or 'unknown'})")
        try:
            first = next(iter(load_file(path, modality, spec)), None)
        except LoadError as e:
            raise QueryError(f"{path}: {e}") from e
        except OSError as e:
            raise QueryError(f"{path}: {e.strerror or e}") from e
        if first is None:
            raise QueryError(f"{path}: nothing to embed in it")
        parts.extend(first.parts)
    if not parts:
        raise QueryError("a query needs some text or a file (--image, --audio, --video)")
    return parts


def query_vector(model, parts: Sequence[Part], query: str = "query", document: str = "document") -> np.ndarray:
    """The query's vector. Text queries get the query prompt (`query`); a query of files alone is embedded as a
    document (with the table's documents' prompt, `document`), so a file that is in the table finds itself with
    cosine 1.0."""
    task = query if any(isinstance(p, Text) for p in parts) else document
    return model.encode([list(parts)], task=task)[0]


def _hit(rank: int, r: dict, **extra) -> Hit:
    h = r.get("content_hash", "")
    return Hit(
        rank,
        r["score"],
        r["path"],
        r["modality"],
        r["segment"],
        r["start"],
        r["end"],
        r["text"],
        **extra,
        content_hash=h,
    )


def search(
    store: LanceStore,
    vector: np.ndarray,
    k: int,
    *,
    modality: str | None = None,
    where: str | None = None,
    tuning: QueryTuning | None = None,
    dim: int | None = None,
) -> list[Hit]:
    """The k nearest rows to `vector`. `dim`: answer as the Matryoshka prefix of `dim` dimensions would
    (the query is truncated and re-normalised here; the store re-ranks by prefix cosine)."""
    if dim is not None:
        vector = _prefix(vector, dim)
    rows = store.search(vector, k, modality=modality, where=where, tuning=tuning)
    return [_hit(i + 1, r) for i, r in enumerate(rows)]


def _prefix(vector: np.ndarray, dim: int) -> np.ndarray:
    if not 1 <= dim <= len(vector):
        raise QueryError(f"--dim {dim}: must be between 1 and the table's dimension {len(vector)}")
    v = np.asarray(vector, dtype=np.float32)[:dim]
    return v / max(float(np.linalg.norm(v)), 1e-12)


RRF_K = 60  # Cormack et al. 2009's constant: ranks past ~60 contribute little, the top ranks dominate


def rrf_fuse(rankings: Sequence[Sequence[str]], k: int, c: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion (Cormack, Clarke & Buettcher 2009, "Reciprocal Rank Fusion outperforms
    Condorcet and individual Rank Learning Methods"): score(d) = sum over rankings of 1 / (c + rank(d)),
    rank 1-based. Ties are broken by first appearance. Returns the k best (id, score), best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (c + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])[:k]


def hybrid_search(
    store: LanceStore,
    vector: np.ndarray,
    text: str,
    k: int,
    *,
    modality: str | None = None,
    where: str | None = None,
    tuning: QueryTuning | None = None,
    dim: int | None = None,
    depth: int | None = None,
) -> list[Hit]:
    """Full-text (BM25 on the rows' text) and vector search, each `depth` deep (default max(50, 2k)), fused by
    reciprocal-rank fusion. `score` is the fused score; `vector_rank` and `text_rank` say where each hit came from."""
    if not text:
        raise QueryError("--hybrid needs a query text (the full-text half searches it)")
    depth = depth or max(50, 2 * k)
    if dim is not None:
        vector = _prefix(vector, dim)
    by_vec = store.search(vector, depth, modality=modality, where=where, tuning=tuning)
    by_text = store.text_search(text, depth, modality=modality, where=where)
    rows = {r["key"]: r for r in by_text} | {r["key"]: r for r in by_vec}
    vrank = {r["key"]: i + 1 for i, r in enumerate(by_vec)}
    trank = {r["key"]: i + 1 for i, r in enumerate(by_text)}
    fused = rrf_fuse([[r["key"] for r in by_vec], [r["key"] for r in by_text]], k)
    return [
        _hit(i + 1, rows[key] | {"score": score}, vector_rank=vrank.get(key), text_rank=trank.get(key))
        for i, (key, score) in enumerate(fused)
    ]
