"""`gemb2 query --server URL` (or $GEMB2_SERVER): the query sent to a running `gemb2 serve`, answered as in-process.

The query's files are sent as base64 parts named by their extension, so the server reads them with the same
loaders; the server checks it searches the same database and table. When the server cannot answer (it is not
running, it serves another table, it is busy, a file is over its body limit), `search_remote` says so in one
line and returns None: the caller searches in-process. A query the server finds wrong (a bad --where, --dim) is
the same UsageError the in-process path would raise. Standard library only (urllib).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import fields

from gemb2.errors import UsageError

TIMEOUT_S = 60.0
FALLBACK = {"wrong_table", "overloaded", "request_too_large", "model_not_found", "not_found"}


def request_body(q, uri: str, table: str) -> dict:
    """The /v1/search body of a gemb2.pipeline.query.Query on (uri, table)."""
    parts = []
    for kind, path in q.files:
        try:
            with open(path, "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
        except FileNotFoundError:
            raise UsageError(f"no such file: {path}") from None
        except OSError as e:
            raise UsageError(f"{path}: {e.strerror or e}") from None
        fmt = os.path.splitext(path)[1].lstrip(".") or None
        parts.append({"type": kind, "data": data, "format": fmt})
    tuning = q.tuning
    return {
        "text": q.text,
        "parts": parts,
        "k": q.k,
        "modality": q.modality,
        "where": q.where,
        "hybrid": q.hybrid,
        "dim": q.dim,
        "refine_factor": tuning.refine_factor if tuning else 5,
        "nprobes": tuning.nprobes if tuning else 5,
        "ef": tuning.ef if tuning else None,
        "model": q.model,
        "db": os.path.abspath(uri) if "://" not in uri else uri,
        "table": table,
    }


def post(url: str, body: dict, timeout: float = TIMEOUT_S) -> tuple[int, dict]:
    """POST JSON to `url`: (status, the JSON answer). A server that cannot be reached raises OSError."""
    req = urllib.request.Request(
        url, json.dumps(body).encode("utf-8"), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read())
        except ValueError:
            return e.code, {"error": {"message": f"HTTP {e.code}", "type": "server_error"}}


def search_remote(server: str, q, uri: str, table: str, warn: Callable[[str], None]) -> list | None:
    """The query's hits from the server at `server`, or None (said with `warn`) when it cannot answer."""
    from gemb2.pipeline.query import Hit

    body = request_body(q, uri, table)  # a missing file: the same usage error as in-process
    try:
        status, answer = post(server.rstrip("/") + "/v1/search", body)
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        warn(f"server {server} did not answer ({reason}); searching in-process")
        return None
    if status == 200 and isinstance(answer.get("data"), list):
        names = {f.name for f in fields(Hit)}
        return [Hit(**{k: v for k, v in row.items() if k in names}) for row in answer["data"]]
    err = answer.get("error") or {}
    message = str(err.get("message") or f"HTTP {status}")
    if 400 <= status < 500 and err.get("type") not in FALLBACK:
        raise UsageError(message)
    warn(f"server {server}: {message}; searching in-process")
    return None
