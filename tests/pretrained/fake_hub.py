"""A Hugging Face Hub on loopback: a real HTTP server (a thread) speaking the part of the Hub's API that
huggingface_hub's snapshot_download / hf_hub_download use, serving repos from local folders.

    with FakeHub({"google/embeddinggemma-2": folder}) as hub:
        env = hub.env(cache)              # HF_ENDPOINT=hub.url, HF_HUB_CACHE=cache, HF_HUB_OFFLINE=0, no token
        gemb2("pull", "embeddinggemma-2", env=env)
        hub.requests                      # [(method, path), ...] as the server saw them
        hub.fail["model.safetensors"] = 500   # that file's GET answers 500 from now on (HEAD still answers)

Endpoints (as huggingface_hub 1.x / 2.x call them):
    GET  /api/models/ORG/NAME/revision/REV      {"id", "sha", "siblings"}; 404 X-Error-Code: RepoNotFound
    GET  /api/models/ORG/NAME/tree/REV?recursive=...   [{"type": "file", "path", "size", "oid", "lfs"?}]
    HEAD /ORG/NAME/resolve/REV/PATH             X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size, Content-Length
    GET  /ORG/NAME/resolve/REV/PATH             the bytes (Range: bytes=N- answered with 206)
Only the network is stood in for: the files, the client, the cache and the process reading them are real.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pkl", ".pth", ".ckpt")  # stored in LFS on the real Hub


class _Repo:
    def __init__(self, repo_id: str, folder: Path):
        self.files = {
            p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
        }
        h = hashlib.sha1(repo_id.encode())
        for name, data in self.files.items():
            h.update(name.encode() + b"\0" + data)
        self.sha = h.hexdigest()

    def entry(self, path: str) -> dict:
        data = self.files[path]
        sha256 = hashlib.sha256(data).hexdigest()
        git_oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        row: dict = {"type": "file", "path": path, "size": len(data), "oid": git_oid}
        if path.endswith(LFS_SUFFIXES):
            row["lfs"] = {"oid": sha256, "size": len(data), "pointerSize": 134}
        return row


class FakeHub:
    """Repos (repo id -> folder) served on 127.0.0.1; `fail[path] = status` makes a file's GET answer `status`;
    `down = status` makes every request answer it; `requests` logs what was asked."""

    def __init__(self, repos: dict[str, Path]):
        self.repos = {rid: _Repo(rid, Path(f)) for rid, f in repos.items()}
        self.fail: dict[str, int] = {}
        self.down: int | None = None
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def env(self, cache: Path) -> dict[str, str]:
        """The environment that points huggingface_hub (in a gemb2 subprocess) at this server and `cache`."""
        return {
            "HF_ENDPOINT": self.url,
            "HF_HUB_CACHE": str(cache),
            "HF_HOME": str(cache.parent / "hf-home"),
            "HF_HUB_OFFLINE": "0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1",
            "HF_TOKEN": "",
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
        }

    def fetched(self) -> set[str]:
        """The repo paths whose bytes were asked for (GET .../resolve/REV/PATH)."""
        return {
            p.split("/resolve/", 1)[1].split("/", 1)[1] for m, p in self.requests if m == "GET" and "/resolve/" in p
        }


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args) -> None:  # quiet: the tests assert on hub.requests
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
            self.send_response(status)
            for k, v in {"Content-Length": str(len(data)), **headers}.items():
                self.send_header(k, v)
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _error(self, status: int, code: str, body: bool) -> None:
            msg = json.dumps({"error": f"{code or 'Server error'} ({status})"}).encode()
            headers = {"Content-Type": "application/json", **({"X-Error-Code": code} if code else {})}
            self._send(status, msg, headers, body)

        def _answer(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path))
            if hub.down is not None:
                return self._error(hub.down, "", body)
            if path.startswith("/api/models/"):
                return self._api(path[len("/api/models/") :], body)
            parts = path.lstrip("/").split("/", 4)  # ORG NAME resolve REV PATH
            repo = hub.repos.get("/".join(parts[:2]))
            if len(parts) < 5 or parts[2] != "resolve" or repo is None:
                return self._error(404, "RepoNotFound", body)
            name = parts[4]
            if name not in repo.files:
                return self._error(404, "EntryNotFound", body)
            if body and name in hub.fail:
                return self._error(hub.fail[name], "", body)
            self._file(repo, name, body)

        def _file(self, repo: _Repo, name: str, body: bool) -> None:
            data, entry = repo.files[name], repo.entry(name)
            etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
            headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
            if "lfs" in entry:
                headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
            rng = self.headers.get("Range", "")
            if body and rng.startswith("bytes=") and rng[6:].rstrip("-").isdigit():
                start = int(rng[6:].rstrip("-"))
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                return self._send(206, data[start:], headers, body)
            self._send(200, data, headers, body)

        def _api(self, rest: str, body: bool) -> None:
            org, name, kind, *_ = [*rest.split("/", 3), "", ""]
            repo = hub.repos.get(f"{org}/{name}")
            if repo is None:
                return self._error(404, "RepoNotFound", body)
            if kind == "revision":
                info = {"id": f"{org}/{name}", "sha": repo.sha, "siblings": [{"rfilename": f} for f in repo.files]}
                return self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
            if kind == "tree":
                rows = [repo.entry(f) for f in repo.files]
                return self._send(200, json.dumps(rows).encode(), {"Content-Type": "application/json"}, body)
            self._error(404, "EntryNotFound", body)

    return Handler
