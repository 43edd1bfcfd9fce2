"""The HTTP API (Starlette): routes, limits, and errors as JSON. Model calls and decoding run off the event loop.

    GET  /health          {"status": "ok", "models": [ids loaded], "table": name or null, "in_flight": n}
    GET  /v1/models       {"object": "list", "data": [{"id", "dimensions", "matryoshka_dimensions", "modalities"...}]}
    POST /v1/embeddings   OpenAI's request and answer; items may be part lists (gemb2.serve.inputs)
    POST /v1/search       the served table, as `gemb2 query --json` answers (gemb2.serve.search)

Limits: a body over `max_body` bytes is refused on its Content-Length, or as soon as the bytes read pass it
(413); at most `max_inputs` items per request; at most `max_concurrent` requests in hand at once (more: 503 with
Retry-After, at once, rather than a queue that grows). Every refusal is {"error": {"message": one line, "type"}}
with a 4xx status; a request that breaks something unforeseen gets a 500 of the same shape, and the server goes on.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from anyio import to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gemb2.errors import Gemb2Error, UsageError

from .inputs import ApiError, embeddings_request, model_field
from .models import ModelPool, Served, UnknownModel
from .search import Table, search_request


@dataclass(frozen=True)
class Limits:
    max_body: int = 16 * 1024 * 1024  # bytes: a few images or a short video, base64-encoded
    max_inputs: int = 2048  # items per /v1/embeddings request (OpenAI's limit)
    max_concurrent: int = 64  # requests in hand at once; more get 503
    max_k: int = 1000  # results per /v1/search


class Service:
    """What the routes share: the models, the table (or None), the limits and two counters."""

    def __init__(self, pool: ModelPool, table: Table | None, limits: Limits):
        self.pool, self.table, self.limits = pool, table, limits
        self.in_flight = 0
        self.answered = 0


def error(status: int, message: str, type: str = "invalid_request_error", headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": " ".join(message.split()), "type": type}}, status, headers=headers)


async def read_json(request: Request, limit: int) -> object:
    """The request's JSON body, at most `limit` bytes (413 on the Content-Length, or as soon as more arrive)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, f"the request body is over the limit of {limit} bytes", "request_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body is over the limit of {limit} bytes", "request_too_large")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ApiError(400, f"malformed JSON: {e}") from None


def _failure(e: BaseException) -> JSONResponse:
    """An exception from a request -> its JSON error: ours with their status, anything else a one-line 500."""
    if isinstance(e, ApiError):
        return error(e.status, str(e), e.type)
    if isinstance(e, UnknownModel):
        return error(404, str(e), "model_not_found")
    if isinstance(e, (UsageError, ValueError)):
        return error(400, str(e))
    if isinstance(e, Gemb2Error):
        return error(500, str(e), "server_error")
    return error(500, f"internal error: {type(e).__name__}: {e}", "server_error")


def _post(service: Service, handle: Callable[[object], Awaitable[dict]]):
    async def endpoint(request: Request) -> JSONResponse:
        if service.in_flight >= service.limits.max_concurrent:
            return error(
                503, "the server is busy: too many requests in hand; retry", "overloaded", {"Retry-After": "1"}
            )
        service.in_flight += 1
        try:
            answer = await handle(await read_json(request, service.limits.max_body))
        except Exception as e:
            return _failure(e)
        finally:
            service.in_flight -= 1
        service.answered += 1
        return JSONResponse(answer)

    return endpoint


async def _vectors(served: Served, items: list, task: str | None, dim: int | None) -> np.ndarray:
    return await asyncio.wrap_future(served.batcher.submit(items, task=task, dim=dim))


def _prepare_embeddings(service: Service, body: object):
    """In a worker thread: the model (loaded on first use), the decoded items, their sequence lengths."""
    model = model_field(body) if isinstance(body, dict) else None
    served = service.pool.get(model)
    req = embeddings_request(body, lambda: served.spec, service.limits.max_inputs)
    if req.dim is not None and req.dim != served.model.config.out_dim:  # type: ignore[attr-defined]
        try:
            served.model.check_dim(req.dim)  # type: ignore[attr-defined]
        except ValueError as e:
            raise ApiError(400, f"'dimensions' {req.dim}: {e}") from None
    plans = served.model.layout.plan_many([tuple(x) for x in req.items], req.task)  # type: ignore[attr-defined]
    return served, req, sum(p.length for p in plans)


def embeddings(service: Service):
    async def handle(body: object) -> dict:
        served, req, tokens = await to_thread.run_sync(_prepare_embeddings, service, body)
        dim = None if req.dim == served.model.config.out_dim else req.dim  # type: ignore[attr-defined]
        vecs = await _vectors(served, req.items, req.task, dim)
        if req.base64:
            data = [base64.b64encode(v.astype("<f4").tobytes()).decode("ascii") for v in vecs]
        else:
            data = vecs.tolist()
        return {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(data)],
            "model": served.id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return handle


def _prepare_search(service: Service, body: object):
    table = service.table
    if table is None:
        raise ApiError(404, "this server serves no table (start it with --db/--table)", "not_found")
    if isinstance(body, dict):
        table.check(body)
    store = table.store
    name = (model_field(body) if isinstance(body, dict) else None) or store.source or service.pool.default
    served = service.pool.get(name)
    if served.id != store.model:
        raise ApiError(400, f"table {table.name!r} was built with model {store.model!r}, not {served.id!r}")
    q = search_request(body, lambda: served.spec, service.limits.max_k)
    if q.dim is not None:
        try:
            served.model.check_dim(q.dim)  # type: ignore[attr-defined]
        except ValueError as e:
            raise ApiError(400, f"'dim' {q.dim}: {e}") from None
    return served, q


def search(service: Service):
    from gemb2.parts import Text

    async def handle(body: object) -> dict:
        served, q = await to_thread.run_sync(_prepare_search, service, body)
        task = "query" if any(isinstance(p, Text) for p in q.parts) else "document"  # as gemb2 query does
        vec = (await _vectors(served, [q.parts], task, None))[0]
        assert service.table is not None
        rows = await to_thread.run_sync(service.table.search, vec, q)
        return {"object": "list", "data": rows, "model": served.id, "table": service.table.name}

    return handle


def create_app(service: Service) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        loaded = [s.id for s in service.pool.loaded()]
        table = service.table.name if service.table else None
        return JSONResponse({"status": "ok", "models": loaded, "table": table, "in_flight": service.in_flight})

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": service.pool.info()})

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
        return error(
            status,
            f"{request.method} {request.url.path}: {detail}",
            "not_found" if status == 404 else "invalid_request_error",
        )

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/embeddings", _post(service, embeddings(service)), methods=["POST"]),
        Route("/v1/search", _post(service, search(service)), methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
