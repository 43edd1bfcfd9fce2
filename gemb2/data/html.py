"""HTML -> its visible text, for the text loader: "Title\\n\\nbody", block elements on lines of their own.

    html_text(b"<title>T</title><p>a &amp; b</p><script>x()</script>")   # "T\\n\\na & b"

What is kept: the text a browser shows, entities decoded (``&amp;``, ``&nbsp;``, ``&#x2014;``), whitespace
collapsed as rendering collapses it (kept as it is inside ``<pre>`` and ``<textarea>``), a line break at every
block element (``<p>``, ``<div>``, ``<li>``, ``<br>``, ``<tr>``, headings...) and a blank line after headings and
paragraphs, so that text windows read like the page. The first ``<title>`` comes first, then a blank line.
What is dropped: markup, comments, ``<script>``, ``<style>``, ``<template>`` and ``<noscript>`` content, and the
``<head>``'s other elements (they hold no text). Attributes are never text (no ``alt``, no ``title=``).

Parser: the standard library's `html.parser` (a tolerant tokenizer: unclosed and misnested tags, stray ``<`` and
broken entities are read as browsers read them, never an error), so no dependency is added for it.

Charset, as a browser decides it without HTTP headers (WHATWG Encoding, "prescan"): a byte-order mark, else a
``<meta charset>`` / ``<meta http-equiv="Content-Type" content="...; charset=...">`` or an XML declaration's
``encoding`` in the first PRESCAN_BYTES, else the text loader's rule (UTF-8, else cp1252, else latin-1). A
declared charset decodes with U+FFFD for bad bytes, as browsers do; ``iso-8859-1`` and ``ascii`` mean cp1252
(WHATWG) and a declared UTF-16 without a BOM means UTF-8 (the bytes were read as ASCII to find it).

Memory: the loader refuses a file over `LoadSpec.max_text_bytes` before reading it (as for text); the decoded
page is fed to the parser in FEED_CHARS slices and the bytes are released first, so at most the page's text and
the extracted text (never longer) are held together.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from gemb2.data.segments import LoadError
from gemb2.data.text import decode_text

PRESCAN_BYTES = 4096  # where a charset declaration is looked for (WHATWG prescans 1024; real pages stray further)
FEED_CHARS = 1 << 20  # the parser is fed this many characters at a time

SKIP = frozenset({"script", "style", "template", "noscript"})  # their content is never shown as text
PRE = frozenset({"pre", "textarea", "listing", "plaintext", "xmp"})  # whitespace kept as it is
PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "figure", "hr"})
LINES = frozenset(
    {
        *("address", "article", "aside", "body", "br", "caption", "dd", "details", "dialog", "div", "dl", "dt"),
        *("fieldset", "figcaption", "footer", "form", "header", "hgroup", "html", "legend", "li", "main", "menu"),
        *("nav", "ol", "option", "section", "summary", "textarea", "tr", "ul"),
    }
)
CELLS = frozenset({"td", "th"})  # a space between cells of a row

_META = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)|<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9_.:\-]+)""",
    re.IGNORECASE,
)
_WS = re.compile(r"\s+")
_BLANKS = re.compile(r"\n(?:[ \t]*\n)+")  # a run of lines with nothing on them


def html_text(data: bytes) -> str:
    """The visible text of an HTML page given as bytes (see the module docstring). LoadError on binary data."""
    text = decode_html(data)
    del data
    parser = _Extractor()
    for i in range(0, len(text), FEED_CHARS):
        parser.feed(text[i : i + FEED_CHARS])
    parser.close()
    return parser.result()


def decode_html(data: bytes) -> str:
    """bytes -> str: BOM, then a declared charset, then the text loader's UTF-8 / cp1252 / latin-1 rule."""
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return decode_text(data)
    declared = declared_charset(data[:PRESCAN_BYTES])
    if declared is None:
        return decode_text(data)
    if b"\x00" in data:
        raise LoadError("binary data (NUL bytes) in a text file")
    return data.decode(declared, errors="replace")


def declared_charset(head: bytes) -> str | None:
    """The Python codec of the first charset a page's head declares, or None (none, or one Python lacks)."""
    m = _META.search(head)
    if m is None:
        return None
    label = (m.group(1) or m.group(2)).decode("ascii").lower()
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name in ("latin-1", "iso8859-1", "ascii"):  # WHATWG: these labels mean windows-1252
        return "cp1252"
    if name.startswith("utf-16") or name.startswith("utf-32"):  # read as ASCII to find it: cannot be UTF-16
        return "utf-8"
    return name


class _Extractor(HTMLParser):
    """Collects the title and the visible text; whitespace and line breaks follow rendering (roughly)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.out: list[str] = []
        self.skip = 0  # depth inside SKIP elements
        self.pre = 0  # depth inside PRE elements
        self.in_title = False
        self.title_seen = False
        self.breaks = 0  # newlines owed before the next text
        self.space = False  # a space owed before the next text

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in SKIP:
            self.skip += 1
        elif self.skip:
            return
        elif tag == "title" and not self.title_seen:
            self.in_title = True
        else:
            self.pre += tag in PRE
            self._block(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if not self.skip and tag not in SKIP:  # <br/>, <hr/>: a break; <script/> is no open element
            self._block(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP:
            self.skip = max(0, self.skip - 1)
        elif self.skip:
            return
        elif tag == "title" and self.in_title:
            self.in_title, self.title_seen = False, True
        else:
            if tag in PRE:
                self.pre = max(0, self.pre - 1)
            self._block(tag)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.in_title:
            self.title.append(data)
        elif self.pre:
            self._emit(data)
        else:
            words = _WS.sub(" ", data)
            if words.startswith(" "):
                self.space, words = True, words[1:]
            trailing = words.endswith(" ")
            if trailing:
                words = words[:-1]
            if words:
                self._emit(words)
            self.space = self.space or trailing

    def _block(self, tag: str) -> None:
        if tag in PARAGRAPHS:
            self.breaks = 2
        elif tag in LINES:
            self.breaks = max(self.breaks, 1)
        elif tag in CELLS:
            self.space = True

    def _emit(self, text: str) -> None:
        if self.out:
            if self.breaks:
                self.out.append("\n" * self.breaks)
            elif self.space:
                self.out.append(" ")
        self.breaks, self.space = 0, False
        self.out.append(text)

    def result(self) -> str:
        if self.in_title:  # an unclosed <title> is no title: what followed it is body text
            self.in_title, rest, self.title = False, "".join(self.title), []
            self.handle_data(rest)
        title = _WS.sub(" ", "".join(self.title)).strip()
        body = _BLANKS.sub("\n\n", "".join(self.out)).strip()
        return f"{title}\n\n{body}" if title and body else title or body
