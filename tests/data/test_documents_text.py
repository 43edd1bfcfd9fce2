"""HTML, structured text and code through the text loader: visible text of pages, windows of data and code."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gemb2.data.discover import CODE_EXTENSIONS, DATA_EXTENSIONS, HTML_EXTENSIONS, modality_of
from gemb2.data.html import declared_charset, html_text
from gemb2.data.segments import LoadError
from gemb2.data.text import LONG_RUN_CHARS
from tests.data.readback import load

TOKENIZER = str(Path(__file__).parents[2] / "gemb2" / "model" / "assets" / "wordpiece-uncased.json")


PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>  The
 Lighthouse </title>
<style>body { color: red } p::before { content: "styled" }</style>
<script>document.write("<p>scripted</p>"); var a = 1 < 2;</script>
<link rel="stylesheet" href="x.css"></head>
<body><!-- a comment that is not text -->
<h1>Keepers &amp; storms</h1>
<p>The keeper&#8217;s log, &lt;1890&gt;:&nbsp;fog <b>all</b>
   night.</p>
<ul><li>oil</li><li>wicks</li></ul>
<table><tr><th>day</th><th>hours</th></tr><tr><td>Mon</td><td>14</td></tr></table>
<pre>  lamp = on
    wick = trimmed</pre>
<template><p>templated</p></template><noscript>enable scripts</noscript>
<img src="x.png" alt="alt text">end<br>of page
</body></html>"""


# --- HTML ---


def test_html_visible_text_title_first_blocks_on_lines():
    assert html_text(PAGE) == (
        "The Lighthouse\n\n"
        "Keepers & storms\n\n"
        "The keeper\u2019s log, <1890>: fog all night.\n\n"
        "oil\nwicks\n\n"
        "day hours\nMon 14\n\n"
        "  lamp = on\n    wick = trimmed\n\n"
        "end\nof page"
    )


def test_html_drops_scripts_styles_templates_comments_and_attributes():
    text = html_text(PAGE)
    for gone in ("scripted", "document.write", "color: red", "styled", "templated", "enable scripts", "comment",
                 "alt text", "x.css", "<p>", "&amp;", "&nbsp;", "\xa0"):
        assert gone not in text, gone


def test_html_without_title_or_body_and_broken_markup():
    assert html_text(b"<p>just a paragraph") == "just a paragraph"
    assert html_text(b"<title>only a title</title>") == "only a title"
    assert html_text(b"") == html_text(b"<html><script>x()</script></html>") == ""
    assert html_text(b"<div>a<p>b</div>c</p><i>d<b>e</i>f</b> &bogus; 3 < 4") == "a\n\nb\nc\n\ndef &bogus; 3 < 4"
    assert html_text(b"<p>before<title>unclosed title") == "beforeunclosed title"  # no title: body text
    assert html_text(b"<title>first</title><svg><title>icon</title></svg>body") == "first\n\niconbody"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b'<meta charset="iso-8859-1"><p>caf\xe9 \x93quoted\x94', "caf\xe9 \u201cquoted\u201d"),
        (b'<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"><p>'
         + "日本語".encode("shift_jis"), "日本語"),
        (b'<?xml version="1.0" encoding="koi8-r"?><html><p>' + "привет".encode("koi8-r"), "привет"),
        (b"\xff\xfe" + "<p>utf-16 \u00e9t\u00e9</p>".encode("utf-16-le"), "utf-16 \u00e9t\u00e9"),
        (b"\xef\xbb\xbf<meta charset=latin-1><p>\xc3\xa9", "\u00e9"),  # a BOM wins over the declaration
        ("<p>no declaration, UTF-8: \u00e9\u00e8".encode(), "no declaration, UTF-8: \u00e9\u00e8"),
        (b"<p>no declaration, legacy: caf\xe9", "no declaration, legacy: caf\xe9"),  # the text loader's cp1252
        (b'<meta charset="utf-16"><p>\xc3\xa9', "\u00e9"),  # found reading ASCII: cannot be UTF-16
        (b'<meta charset="no-such-charset"><p>\xc3\xa9', "\u00e9"),  # unknown label: as if none
        (b'<meta charset="utf-8"><p>bad \xff byte', "bad \ufffd byte"),  # declared: replaced, as browsers do
    ],
)
def test_html_charset_bom_meta_xml_declaration_and_fallback(data, text):
    assert html_text(data) == text


def test_declared_charset_labels():
    assert declared_charset(b"<META CHARSET='Windows-1251'>") == "cp1251"
    assert declared_charset(b"<meta charset=ascii>") == "cp1252"  # WHATWG
    assert declared_charset(b"<p>charset=utf-8 in the text</p>") is None


def test_html_file_loads_as_windows_of_its_visible_text(tmp_path):
    body = "".join(f"<p>sentence {i} about the <em>harbour</em> &amp; the sea.</p>\n" for i in range(60))
    (tmp_path / "page.htm").write_text(f"<title>Harbour</title><script>var x='hidden';</script>{body}")
    segs = load(tmp_path / "page.htm", text_window_tokens=32, text_overlap_tokens=4, tokenizer_file=TOKENIZER)
    text = html_text((tmp_path / "page.htm").read_bytes())
    assert len(segs) > 5 and segs[0].text.startswith("Harbour\n\nsentence 0 about the harbour & the sea.\n\n")
    assert all(s.text == text[int(s.start) : int(s.end)] for s in segs)  # offsets are in the extracted text
    assert not any("hidden" in s.text or "<" in s.text for s in segs)


def test_a_large_page_is_bounded_by_max_text_bytes_and_reads_in_linear_time(tmp_path):
    page = tmp_path / "big.html"
    page.write_bytes(b"<html><body>" + b"<div><p>row <b>x</b> &amp; y</p></div>\n" * 100_000)  # ~4 MB
    t0 = time.perf_counter()
    segs = load(page, text_window_tokens=256, text_overlap_tokens=32)
    assert time.perf_counter() - t0 < 30 and len(segs) > 1000
    with pytest.raises(LoadError, match="too large"):
        load(page, max_text_bytes=1_000_000)


def test_deeply_nested_and_unclosed_markup_costs_linear_time():
    t0 = time.perf_counter()
    assert html_text(b"<div><span>" * 50_000 + b"deep" + b"</b></i>" * 1000) == "deep"
    assert time.perf_counter() - t0 < 20


# --- structured text and code ---


def test_every_document_extension_is_text():
    for ext in HTML_EXTENSIONS + DATA_EXTENSIONS + CODE_EXTENSIONS:
        assert modality_of(f"x{ext.upper()}") == "text", ext
    for ext in (".json", ".jsonl", ".csv", ".tsv", ".yaml", ".yml", ".toml", ".xml", ".py", ".ts", ".go", ".rs",
                ".c", ".h", ".cpp", ".java", ".sh", ".sql", ".html", ".htm"):
        assert modality_of(f"x{ext}") == "text", ext


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("data.json", '{\n  "city": "Lisbon",\n  "tram": 28,\n  "tags": ["hills", "tiles"]\n}\n'),
        ("rows.csv", "name,city\nAda,London\nGrace,Arlington\n"),
        ("conf.yaml", "server:\n  port: 8080\n  host: example.org\n"),
        ("code.py", 'def lighthouse(keeper: str) -> str:\n    """Trim the wick."""\n    return keeper.upper()\n'),
        ("main.go", "package main\n\nfunc main() {\n\tprintln(\"lamp\")\n}\n"),
    ],
)
def test_data_and_code_are_windows_of_the_file_as_it_is(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    segs = load(tmp_path / name, text_window_tokens=8, text_overlap_tokens=2, tokenizer_file=TOKENIZER)
    assert len(segs) >= 2
    assert all(s.text == content[int(s.start) : int(s.end)] == s.parts[0].text for s in segs)
    assert segs[0].start == 0 and segs[-1].end == len(content.rstrip())


@pytest.mark.parametrize("tokenizer", [TOKENIZER, None])
def test_minified_json_is_read_whole_but_a_blob_in_it_is_one_token(tmp_path, tokenizer):
    records = ",".join(f'{{"id":{i},"name":"item{i}","city":"Paris"}}' for i in range(400))  # no whitespace
    blob = "QUJD" * 2000  # 8,000 characters of base64
    content = f'{{"records":[{records}],"image":"{blob}"}}'
    (tmp_path / "min.json").write_text(content)
    segs = load(tmp_path / "min.json", text_window_tokens=64, text_overlap_tokens=8, tokenizer_file=tokenizer)
    assert all(f"item{i}" in "".join(s.parts[0].text for s in segs) for i in range(400))  # not cut at 1,000
    assert all(s.parts[0].text == content[int(s.start) : int(s.end)] for s in segs)
    blob_at = content.index(blob)  # the blob's first LONG_RUN_CHARS characters are one token, the rest none:
    assert not any(blob_at < s.start < blob_at + len(blob) for s in segs)  # no window starts inside it
    # prose keeps its rule: the same characters in a .txt are one long run
    (tmp_path / "min.txt").write_text(content)
    prose = load(tmp_path / "min.txt", text_window_tokens=64, text_overlap_tokens=8, tokenizer_file=tokenizer)
    assert len(prose) == 1 and prose[0].end - prose[0].start == LONG_RUN_CHARS


def test_binary_data_named_json_fails_clearly(tmp_path):
    (tmp_path / "dump.json").write_bytes(b"\x89\x00\x01\x02binary\x00" * 100)
    with pytest.raises(LoadError, match=r"^content is not text: binary data \(extension \.json\)$"):
        load(tmp_path / "dump.json")


def test_a_transport_stream_named_ts_is_not_typescript(tmp_path):
    packet = b"\x47\x40\x00\x10" + b"\x00" * 184
    (tmp_path / "recording.ts").write_bytes(packet * 40)
    with pytest.raises(LoadError, match=r"binary data \(extension \.ts, looks like a video\)"):
        load(tmp_path / "recording.ts")
    (tmp_path / "app.ts").write_text("export const lamp: string = 'on';\n")
    assert load(tmp_path / "app.ts")[0].text == "export const lamp: string = 'on';"
