"""gemb2/pipeline/stdin.py in-process: read-ahead windows over a real pipe, input order, the JSON line format,
UTF-8 replacement, empty lines; the same vectors as `model.encode`."""

from __future__ import annotations

import io
import json
import os
import threading

import numpy as np

from gemb2.pipeline.stdin import LineReader, embed_lines, format_lines


class Recorder:
    """The real model, with the number of lines of each `encode` call recorded."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def encode(self, items, **kw):
        self.calls.append(len(items))
        return self.model.encode(items, **kw)


def test_lines_come_back_in_input_order_with_the_vectors_of_encode(tiny):
    # short and long lines mixed: encode sorts each window by length; the output must still follow the input
    lines = [("word " * (1 + (i * 37) % 50)).strip() + f" {i}" for i in range(300)]
    out = io.StringIO()
    rec = Recorder(tiny)
    n = embed_lines(rec, io.BytesIO("".join(t + "\n" for t in lines).encode()), out, task="document",
                    batch_size=8, window=64)
    assert n == 300
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 301)) and [r["text"] for r in rows] == lines
    assert list(rows[0]) == ["line", "text", "vector"]  # the README's key order
    np.testing.assert_allclose(np.array([r["vector"] for r in rows]), tiny.encode(lines, task="document"), atol=1e-6)
    assert max(rec.calls) == 64 and sum(rec.calls) == 300  # windows, not batch_size-sized calls, when input is there


def test_values_are_round_7_of_each_float(tiny):
    v = tiny.encode(["a red car", "∑ of π"], task="query")
    text = format_lines(5, ["a red car", 'quote " and \\ and é'], v)
    rows = [json.loads(x) for x in text.splitlines()]
    assert [r["line"] for r in rows] == [5, 6] and rows[1]["text"] == 'quote " and \\ and é'
    for r, want in zip(rows, v):
        assert r["vector"] == [round(float(x), 7) for x in want]  # the values the old per-float loop wrote
    assert "é" in text  # not \\u-escaped


def test_not_utf8_is_replaced_and_said_once_and_empty_lines_embed(tiny):
    said = []
    out = io.StringIO()
    data = b"caf\xe9\n\nok\r\nb\xffad\n"
    assert embed_lines(tiny, io.BytesIO(data), out, task=None, warn=said.append) == 4
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["text"] for r in rows] == ["caf\ufffd", "", "ok", "b\ufffdad"]
    assert len(said) == 1 and "line 1" in said[0] and "U+FFFD" in said[0]
    assert all(abs(np.linalg.norm(r["vector"]) - 1) < 1e-5 for r in rows)


def test_no_input_writes_nothing(tiny):
    out = io.StringIO()
    assert embed_lines(tiny, io.BytesIO(b""), out) == 0 and out.getvalue() == ""


def test_take_returns_what_has_arrived_without_waiting_for_a_window():
    r, w = os.pipe()
    with os.fdopen(r, "rb") as rf, os.fdopen(w, "wb", buffering=0) as wf:
        reader = LineReader(rf, ahead=100)
        wf.write(b"first\n")
        assert reader.take(50) == ["first"]  # one line there: it comes back alone, at once
        wf.write(b"a\nb\nc\n")
        got = reader.take(50)
        while len(got) < 3:  # the three may be seen in more than one take; none is lost or reordered
            got += reader.take(50)
        assert got == ["a", "b", "c"]
        wf.write(b"no newline at the end")
        wf.close()
        assert reader.take(50) == ["no newline at the end"]
        assert reader.take(50) == [] and reader.take(50) == []


def test_a_small_read_ahead_passes_every_line_in_order():
    r, w = os.pipe()
    with os.fdopen(r, "rb") as rf, os.fdopen(w, "wb") as wf:
        reader = LineReader(rf, ahead=10)  # the reader thread blocks at 10 queued lines until some are taken
        writer = threading.Thread(target=lambda: (wf.write(b"".join(b"%d\n" % i for i in range(1000))), wf.close()))
        writer.start()
        got = []
        while batch := reader.take(7):
            assert len(batch) <= 7
            got += batch
        writer.join()
        assert got == [str(i) for i in range(1000)]
