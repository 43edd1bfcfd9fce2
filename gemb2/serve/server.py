"""Running the server: models loaded first, then a socket bound (port 0: a free one), its URL printed, uvicorn.

SIGINT or SIGTERM stops it gracefully: no new connection is accepted, the requests in hand are answered (up to
GRACE_S seconds), the batchers finish their jobs; `serve` then returns the signal's number (the command line
exits 128 + it: 130, 143). A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Sequence

from gemb2.errors import UsageError

from .app import Limits, Service, create_app
from .models import ModelPool
from .search import Table

GRACE_S = 30


class _Server:
    """uvicorn's Server, with our signal handling: it records the signal instead of raising it again."""

    def __init__(self, config):
        import uvicorn

        outer = self

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                if threading.current_thread() is not threading.main_thread():
                    yield
                    return
                previous = {s: signal.signal(s, outer.handle) for s in (signal.SIGINT, signal.SIGTERM)}
                try:
                    yield
                finally:
                    for s, h in previous.items():
                        signal.signal(s, h)

        self.server = Server(config)
        self.signum: int | None = None

    def handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            self.server.force_exit = True
        self.signum = signum
        self.server.should_exit = True


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and without it a response's header
    # and body writes wait on the client's delayed ACK (~40 ms a request on a kept-alive connection)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    models: Sequence[str],
    device: str | None,
    table: tuple[str, str] | None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: Limits | None = None,
    default_model: str = "gemb2-mini",
    ready: Callable[[str], None] = print,
    log: Callable[[str], None] = lambda s: None,
) -> int | None:
    """Load the models, open the table (uri, name) if any, listen and answer until a signal; its number, or None."""
    import uvicorn

    limits = limits or Limits()
    served_table = Table(*table) if table else None
    names = list(models)
    if served_table is not None and served_table.store.source:
        from gemb2.pipeline.open import table_source

        store = served_table.store  # a table made when "gemb2-mini" named v1 is served with v1 (read here, once)
        store.source = table_source(store.source, store.model)
        names.append(served_table.store.source)  # the table's model is always allowed (after --model's)
    names = names or [default_model]
    pool = ModelPool(names, device, max_batch_items=256)
    pool.get(None)  # the default model, now: the first request does not wait for it
    if served_table is not None and served_table.store.source:
        pool.get(served_table.store.source)
    sock = bind(host, port)
    config = uvicorn.Config(
        create_app(Service(pool, served_table, limits)),
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACE_S,
        http="h11",
    )
    server = _Server(config)
    url = url_of(sock)
    log(f"serving {', '.join(pool.names)} on {url}" + (f", table {served_table.name!r}" if served_table else ""))
    ready(url)
    try:
        asyncio.run(server.server.serve(sockets=[sock]))
    finally:
        sock.close()
        pool.close()
    return server.signum
