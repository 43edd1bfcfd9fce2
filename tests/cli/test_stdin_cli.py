"""`gemb2 embed -` and a closed stdout as real subprocesses on real pipes: an interactive writer gets each
vector before it writes the next line; bytes that are not UTF-8 are replaced with one warning; a reader
that stops (`| head -1`) ends gemb2 quietly with 141, as Unix tools."""

from __future__ import annotations

import json
import queue
import subprocess
import threading

import pytest

from tests.cli_run import gemb2_popen as popen

pytestmark = pytest.mark.slow
EXIT_BROKEN_PIPE = 141


def test_each_typed_line_gets_its_vector_before_the_next_is_written():
    p = popen("embed", "-", "--model", "tiny", "--batch-size", "32", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
              stderr=subprocess.PIPE)
    answers: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [answers.put(line) for line in p.stdout], daemon=True).start()
    try:
        for i, text in enumerate(["a red car", "", "un chat noir"], start=1):
            p.stdin.write(text.encode() + b"\n")
            p.stdin.flush()
            # not a speed limit: the old code waited for 32 lines (or the end of input) and never answered
            row = json.loads(answers.get(timeout=120))
            assert (row["line"], row["text"]) == (i, text) and len(row["vector"]) > 0
        p.stdin.close()
        assert p.wait(timeout=60) == 0
        assert answers.empty()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.stderr.read() == b""


def test_bytes_that_are_not_utf8_are_replaced_with_one_warning():
    p = popen("embed", "-", "--model", "tiny", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(b"caf\xe9\n\nb\xffad\n", timeout=300)
    assert p.returncode == 0, err.decode()
    assert [json.loads(x)["text"] for x in out.decode().splitlines()] == ["caf\ufffd", "", "b\ufffdad"]
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gemb2: ") and "U+FFFD" in lines[0], lines


def test_a_reader_that_stops_ends_gemb2_embed_quietly_with_141():
    # seq 1 5000 | gemb2 embed - | head -1
    p = popen("embed", "-", "--model", "tiny", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    threading.Thread(target=lambda: (p.stdin.write(b"".join(b"%d\n" % i for i in range(1, 5001))), p.stdin.close()),
                     daemon=True).start()
    first = json.loads(p.stdout.readline())
    assert first["line"] == 1
    p.stdout.close()  # what head does after its line
    try:
        assert p.wait(timeout=300) == EXIT_BROKEN_PIPE
    finally:
        if p.poll() is None:
            p.kill()
    assert p.stderr.read() == b""  # no traceback, no "Exception ignored"


def test_any_command_with_its_stdout_already_closed_exits_141_quietly():
    p = popen("--help", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before gemb2 writes
    assert p.wait(timeout=120) == EXIT_BROKEN_PIPE
    assert p.stderr.read() == b""
