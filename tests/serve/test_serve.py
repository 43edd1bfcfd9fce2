"""`gemb2 serve` as a real process on loopback (port 0), with the tiny model and a real table: answers equal the
CLI's (`embed -`, `embed`, `query --json`), bad requests are 4xx and the server goes on, SIGTERM stops it cleanly.
One server for the module; every test starts processes, so all are slow."""

import base64
import http.client
import json
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import numpy as np
import pytest

from tests.cli_run import gemb2, gemb2_popen
from tests.media import mixed_tree

pytestmark = pytest.mark.slow


def start(*args):
    """A `gemb2 serve --port 0 ARGS` process and its URL (the first line it prints)."""
    p = gemb2_popen("serve", "--port", "0", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = p.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), p.stderr.read() if p.poll() is not None else url
    return p, url


def call(url, path, body=None, raw=None, headers=None):
    """(status, JSON answer) of GET (no body) or POST `body` as JSON (or `raw` bytes) on a fresh connection."""
    u = urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    c.request("POST" if data is not None else "GET", path, body=data, headers=headers or {})
    r = c.getresponse()
    out = r.status, json.loads(r.read())
    c.close()
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    files = mixed_tree(root / "m", n_text=4, n_image=2)
    db = str(root / "db")
    r = gemb2("embed", root / "m", "--model", "tiny", "--db", db, "--json", "--workers", "1")
    assert r.returncode == 0, r.stderr
    p, url = start("--model", "tiny", "--db", db)
    yield {"url": url, "db": db, "files": files, "proc": p}
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)


def test_200_concurrent_requests_from_8_clients_equal_embed_stdin(served):
    texts = [f"request {i}: " + "word " * (i % 9) for i in range(200)]

    def one(i):
        return call(served["url"], "/v1/embeddings", {"input": texts[i], "model": "tiny"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(200)))
    assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:2]
    got = np.array([a["data"][0]["embedding"] for _, a in answers])
    r = gemb2("embed", "-", "--model", "tiny", input="\n".join(texts) + "\n")
    want = np.array([json.loads(line)["vector"] for line in r.stdout.splitlines()])
    np.testing.assert_allclose(got, want, atol=2e-6)  # `embed -` writes 7 decimals
    assert answers[0][1]["model"].startswith("tiny-random@") and answers[0][1]["usage"]["prompt_tokens"] > 0


def test_batch_dimensions_and_base64(served):
    s, a = call(served["url"], "/v1/embeddings", {"input": ["a", "b c"], "dimensions": 16, "task": "query"})
    assert s == 200 and [d["index"] for d in a["data"]] == [0, 1] and len(a["data"][1]["embedding"]) == 16
    s, b = call(
        served["url"],
        "/v1/embeddings",
        {"input": ["a", "b c"], "dimensions": 16, "task": "query", "encoding_format": "base64"},
    )
    v = np.frombuffer(base64.b64decode(b["data"][1]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(v, a["data"][1]["embedding"], atol=1e-6)
    s, m = call(served["url"], "/v1/models")
    assert s == 200 and m["data"][0]["matryoshka_dimensions"] == [64, 32, 16]


@pytest.mark.parametrize(
    "body, status",
    [
        (b'{"input": "unterminated', 400),
        (json.dumps({"input": "x", "model": "no-such-model"}).encode(), 404),
        (json.dumps({"input": [[{"type": "image", "data": "not base64!"}]]}).encode(), 400),
        (json.dumps({"input": [[{"type": "image", "data": base64.b64encode(b"plain text").decode()}]]}).encode(), 400),
        (json.dumps({"input": "x", "dimensions": 17}).encode(), 400),
        (json.dumps({"input": [1, 2, 3]}).encode(), 400),
        (json.dumps({"input": ["x"] * 2049}).encode(), 400),
        (json.dumps({"text": "x", "where": "no_such_column = 1"}).encode(), 400),
    ],
)
def test_bad_requests_are_4xx_with_one_line_and_the_server_goes_on(served, body, status):
    path = "/v1/search" if b'"where"' in body else "/v1/embeddings"
    s, a = call(served["url"], path, raw=body, headers={"Content-Type": "application/json"})
    assert s == status, a
    assert a["error"]["message"] and "\n" not in a["error"]["message"] and a["error"]["type"]
    assert call(served["url"], "/health")[0] == 200


def test_a_50_mb_body_is_refused_declared_or_streamed(served):
    u = urlsplit(served["url"])
    big = b'{"input": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    for chunked in (False, True):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            if chunked:  # no Content-Length: refused once the bytes read pass the limit
                c.request(
                    "POST",
                    "/v1/embeddings",
                    body=iter([big[i : i + 1 << 20] for i in range(0, len(big), 1 << 20)]),
                    encode_chunked=True,
                    headers={"Transfer-Encoding": "chunked"},
                )
            else:
                c.request("POST", "/v1/embeddings", body=big)
            r = c.getresponse()
            assert r.status == 413 and "limit" in json.loads(r.read())["error"]["message"]
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered 413 and closed while we were still sending: also a refusal
        finally:
            c.close()
        assert call(served["url"], "/health")[0] == 200


def test_an_image_part_equals_the_file_embedded_by_gemb2_embed(served):
    from gemb2.store import LanceStore

    path = served["files"]["i0"]
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode()
    s, a = call(served["url"], "/v1/embeddings", {"input": [[{"type": "image", "data": data, "format": "png"}]]})
    assert s == 200, a
    rows = LanceStore(served["db"], "media").table.search().where(f"path = '{path}'").to_list()
    np.testing.assert_allclose(a["data"][0]["embedding"], rows[0]["vector"], atol=1e-5)


def test_search_and_query_server_equal_query_json_in_process(served):
    url, db = served["url"], served["db"]
    s, a = call(url, "/v1/search", {"text": "note number 2", "k": 5, "db": db, "table": "media"})
    local = gemb2("query", "note number 2", "--db", db, "-k", "5", "--json")
    assert s == 200 and local.returncode == 0, local.stderr
    want = json.loads(local.stdout)
    assert [r["path"] for r in a["data"]] == [r["path"] for r in want]
    assert [r["score"] for r in a["data"]] == pytest.approx([r["score"] for r in want], abs=1e-5)
    image = served["files"]["i1"]
    for args in (["note number 2", "-k", "5"], ["--image", image, "-k", "3", "--json"]):
        remote = gemb2("query", *args, "--db", db, "--server", url)
        here = gemb2("query", *args, "--db", db)
        assert remote.returncode == here.returncode == 0, remote.stderr
        assert remote.stdout == here.stdout and "in-process" not in remote.stderr


def test_an_unreachable_server_falls_back_in_process_with_a_notice(served):
    r = gemb2("query", "note", "--db", served["db"], "--json", env={"GEMB2_SERVER": "http://127.0.0.1:9"})
    assert r.returncode == 0, r.stderr
    assert "in-process" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert json.loads(r.stdout)[0]["rank"] == 1
    other = gemb2("query", "note", "--db", served["db"], "--table", "other", "--server", served["url"])
    assert other.returncode == 2 and "searches table 'media'" in other.stderr  # then in-process: no such table


def test_sigterm_answers_the_request_in_hand_and_exits_143():
    p, url = start("--model", "tiny")
    got = {}
    t = threading.Thread(target=lambda: got.update(a=call(url, "/v1/embeddings", {"input": ["long " * 100] * 300})))
    t.start()
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    t.join(60)
    assert p.wait(timeout=60) == 143
    assert got["a"][0] == 200 and len(got["a"][1]["data"]) == 300
    assert "stopped by SIGTERM" in p.stderr.read()
