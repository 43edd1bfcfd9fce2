"""A hostile and broken corpus, written by the tests: every kind of file `gemb2 embed` must survive.

    c = build(root)     # c.expect[relpath] in {"fail", "skip", "any", "good"}; c.good_rows[relpath] = rows

- "fail": reported in `failures` with its path and a reason (a loader's LoadError or a discovery rule).
- "skip": passed over silently by rule (hidden, unsupported extension, a link cycle, an empty text).
- "any":  a damaged file a codec may partly read (a truncated WAV): either failed or embedded, never both.
- "good": embedded with exactly `good_rows[relpath]` rows (the files beside the hostile ones).

Relative paths are str with surrogate escapes for the names that are not UTF-8, as `os.fsdecode` gives.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf
from PIL import Image as PILImage

from tests.media import tone, write_video
from tests.pdfs import PdfPage, write_pdf

SPARSE_BYTES = 2 * 1024**3  # the 2 GB sparse files
DEEP = 120  # directory levels of the deep (still legal) branch
TOO_DEEP_CHARS = 5000  # the too-deep branch: a path longer than PATH_MAX (4096)


@dataclass
class Corpus:
    root: str
    expect: dict[str, str] = field(default_factory=dict)
    good_rows: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # why, per kind

    def add(self, rel: str, data: bytes, expect: str, note: str, rows: int = 1) -> str:
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return self.mark(rel, expect, note, rows)

    def mark(self, rel: str, expect: str, note: str, rows: int = 1) -> str:
        self.expect[rel] = expect
        self.notes[rel] = note
        if expect == "good":
            self.good_rows[rel] = rows
        return rel


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _image(fmt: str, **kw) -> bytes:
    rng = np.random.default_rng(len(fmt))
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (48, 64, 3), np.uint8)).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int, mode_byte: int = 2) -> bytes:
    """A PNG whose IHDR (valid CRC) declares width x height, with a tiny IDAT: enormous dimensions."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode_byte, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) \
        + _png_chunk(b"IEND", b"")


def png_bomb(side: int) -> bytes:
    """A real greyscale PNG of side x side zeros, compressed (a decompression bomb: KB on disk, side^2 bytes decoded)."""
    raw_row = b"\x00" * (side + 1)  # filter byte + pixels
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(raw_row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def gif_huge_screen() -> bytes:
    """A GIF whose logical screen is 65535 x 65535."""
    g = bytearray(_image("GIF"))
    g[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(g)


def jpeg_huge_sof() -> bytes:
    """A JPEG whose SOF0 frame header says 65500 x 65500."""
    j = bytearray(_image("JPEG", quality=80))
    i = j.find(b"\xff\xc0")
    j[i + 5 : i + 9] = struct.pack(">HH", 65500, 65500)
    return bytes(j)


def _wav(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def _audio(fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(1.0, 16000), 16000, format=fmt, subtype=subtype)
    return buf.getvalue()


def _video_bytes(tmp: str, fourcc: str = "mp4v", ext: str = ".mp4", seconds: float = 2.0) -> bytes:
    path = os.path.join(tmp, "v" + ext)
    write_video(path, seconds=seconds, fps=5, size=(32, 24), fourcc=fourcc, numbered=True)
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def _pdf(tmp: str, pages: list[PdfPage], **kw) -> bytes:
    path = write_pdf(os.path.join(tmp, "made.pdf"), pages, **kw)
    with open(path, "rb") as f:
        return f.read()


def _sparse(path: str, head: bytes, size: int) -> None:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)


def build(root: str, scratch: str) -> Corpus:
    """Write the corpus under `root` (created); `scratch` is a folder for encoder temp files."""
    os.makedirs(root)
    c = Corpus(root)
    half = lambda b: b[: len(b) // 2]  # noqa: E731
    rng = np.random.default_rng(7)

    # --- good files beside the hostile ones: each must be embedded, with exactly these rows
    c.add("good/a.txt", b"a short plain text about a red car", "good", "plain UTF-8 text")
    c.add("good/b.png", _image("PNG"), "good", "PNG")
    c.add("good/c.jpg", _image("JPEG", quality=85), "good", "JPEG")
    c.add("good/d.wav", _wav(tone(2.0, 22050), 22050), "good", "WAV 22 kHz")
    c.add("good/e.mp4", _video_bytes(scratch), "good", "MPEG-4 video")
    c.add("good/f.pdf", _pdf(scratch, [PdfPage("A page about boats."), PdfPage(picture=True)]), "good",
          "a PDF: a text page and an image-only page", rows=2)
    c.add("good/png-named.jpg", _image("PNG"), "good", "a PNG named .jpg: same modality, loads")
    c.add("good/latin1.md", "caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1"), "good", "legacy 8-bit text")
    c.add("good/nan.wav", _wav(np.where(np.arange(16000) % 7 == 0, np.nan, 0.1).astype(np.float32), 16000, "FLOAT"),
          "good", "audio with NaN samples: NaN -> 0, embedded")
    c.add("good/one-line-50mb.txt", b"a" * (50 * 1024**2), "good", "a text file of one 50 MB line (one word)")
    c.add("good/bomb-under-guard.png", png_bomb(8000), "good",
          "a decompression bomb under the pixel guard (64 MP of zeros, 60 KB on disk): decoded within the memory bound")
    c.add("good/new\nline.txt", b"a name with a newline", "good", "a file name with a newline")
    bad_name = os.fsdecode(b"good/bad-\xff\xfe-name.txt")
    c.add(bad_name, b"a name that is not UTF-8", "good", "a file name with invalid UTF-8 bytes")
    c.add(os.fsdecode(b"good/bad-\xff.wav"), _wav(tone(1.0, 16000), 16000), "good",
          "an audio file whose name is not UTF-8 (read through /proc/self/fd)")
    c.add("good/dir.jpg/inside.txt", b"a folder named like an image", "good", "a directory named photo.jpg/")
    deep = "/".join(["d"] * DEEP)
    c.add(f"good/{deep}/deep.txt", b"at the bottom of a deep tree", "good", f"{DEEP} nested directories")

    # --- images: truncated and corrupt headers for every format, enormous dimensions, bombs
    for fmt, ext in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tif")):
        c.add(f"bad/truncated.{ext}", half(_image(fmt)), "fail", f"truncated {fmt}")
    c.add("bad/header-only.pdf", b"%PDF-1.4\n", "fail", "a PDF cut after its header")
    c.add("bad/locked.pdf", _pdf(scratch, [PdfPage("x")], user_password="pw"), "fail", "a PDF that needs a password")
    c.add("bad/truncated.gif", half(_image("GIF")), "any", "truncated GIF (Pillow may decode the rows it has)")
    png = bytearray(_image("PNG"))
    png[16:24] = b"\xde\xad\xbe\xef" * 2  # IHDR width/height overwritten: CRC mismatch
    c.add("bad/bad-crc.png", bytes(png), "fail", "PNG with a corrupt IHDR (CRC mismatch)")
    c.add("bad/header-only.jpg", b"\xff\xd8\xff\xe0" + rng.bytes(2000), "fail", "JPEG magic then garbage")
    c.add("bad/riff-garbage.webp", b"RIFF\x00\x10\x00\x00WEBPVP8 " + rng.bytes(2000), "fail", "WebP magic then garbage")
    c.add("bad/tiff-garbage.tiff", b"II*\x00" + rng.bytes(2000), "fail", "TIFF magic then garbage")
    c.add("bad/bmp-garbage.bmp", b"BM" + rng.bytes(12) + struct.pack("<I", 40) + rng.bytes(2000), "fail",
          "BMP magic then garbage")
    c.add("bad/huge-dims.png", png_header_only(100_000, 100_000), "fail", "PNG declaring 100000 x 100000")
    c.add("bad/huge-screen.gif", gif_huge_screen(), "fail", "GIF with a 65535 x 65535 screen")
    c.add("bad/huge-sof.jpg", jpeg_huge_sof(), "fail", "JPEG whose frame header says 65500 x 65500")
    c.add("bad/bomb-over-guard.png", png_bomb(12000), "fail", "decompression bomb over the 100 MP guard")

    # --- audio
    wav = _wav(tone(3.0, 16000), 16000)
    c.add("bad/truncated.wav", wav[: len(wav) // 3], "any", "WAV whose data chunk is cut short")
    c.add("bad/corrupt-header.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + rng.bytes(200), "fail", "WAV with a garbage fmt chunk")
    c.add("bad/truncated.flac", half(_audio("FLAC")), "any", "truncated FLAC")
    c.add("bad/corrupt.flac", b"fLaC" + rng.bytes(3000), "fail", "FLAC magic then garbage")
    c.add("bad/truncated.ogg", _audio("OGG", "VORBIS")[:200], "fail", "Ogg Vorbis cut inside its headers")
    c.add("bad/garbage.mp3", b"ID3\x03\x00\x00\x00\x00\x00\x00" + rng.bytes(3000), "any", "an ID3 tag then garbage")
    c.add("bad/garbage.m4a", b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00" + rng.bytes(3000), "fail", "M4A ftyp then garbage")
    c.add("bad/garbage.aac", b"\xff\xf1\x50\x80" + rng.bytes(3000), "any", "an ADTS sync word then garbage")
    c.add("bad/wav-huge-header.wav", wav[:40] + struct.pack("<I", 0xFFFFFFF0) + wav[44:], "any",
          "WAV whose data chunk claims 4 GB")

    # --- video
    mp4 = _video_bytes(scratch)
    c.add("bad/truncated.mp4", half(mp4), "fail", "MP4 cut in half (no moov)")
    c.add("bad/garbage.mkv", b"\x1a\x45\xdf\xa3" + rng.bytes(4000), "fail", "Matroska magic then garbage")
    c.add("bad/garbage.avi", b"RIFF\x00\x10\x00\x00AVI LIST" + rng.bytes(4000), "fail", "AVI magic then garbage")
    c.add("bad/truncated.avi", half(_video_bytes(scratch, "MJPG", ".avi")), "any", "MJPEG AVI cut in half")
    c.add("bad/no-frames.mp4", _video_bytes(scratch, seconds=0), "fail", "a video with no frames")
    c.add("bad/ftyp-only.mov", b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "fail", "a QuickTime header and nothing else")

    # --- wrong extensions, zero length, binary text
    c.add("bad/text-named.png", b"this is not an image at all", "fail", "text named .png")
    c.add("bad/png-named.wav", _image("PNG"), "fail", "a PNG named .wav")
    c.add("bad/random.mp4", rng.bytes(8192), "fail", "random bytes named .mp4")
    c.add("bad/binary.txt", b"abc\x00\x01\x02" * 100, "fail", "binary data named .txt")
    c.add("bad/bad-utf16.txt", b"\xff\xfe" + b"a\x00b\x00\x00\xd8", "fail", "UTF-16 with an unpaired surrogate")
    c.add("bad/empty.png", b"", "fail", "zero-length image")
    c.add("bad/empty.wav", b"", "fail", "zero-length audio")
    c.add("bad/empty.mp4", b"", "fail", "zero-length video")
    c.add("bad/empty.txt", b"", "skip", "zero-length text: nothing to embed, not an error")
    c.add("bad/blank.md", b"  \n\t\n", "skip", "whitespace-only text")

    # --- the 2 GB sparse files
    _sparse(os.path.join(root, "bad/sparse-2gb.mp4"), b"", SPARSE_BYTES)
    c.mark("bad/sparse-2gb.mp4", "fail", "2 GB sparse file of zeros named .mp4")
    _sparse(os.path.join(root, "bad/sparse-2gb.txt"), b"text", SPARSE_BYTES)
    c.mark("bad/sparse-2gb.txt", "fail", "2 GB sparse text: over max_text_bytes")

    # --- special files, links, names
    os.mkfifo(os.path.join(root, "bad/fifo.wav"))
    c.mark("bad/fifo.wav", "fail", "a FIFO named .wav: never opened")
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(root, "bad/sock.txt"))
    s.close()
    c.mark("bad/sock.txt", "fail", "a socket named .txt")
    os.symlink("/dev/null", os.path.join(root, "bad/devnull.mp3"))
    c.mark("bad/devnull.mp3", "fail", "a symlink to /dev/null: outside the roots, and a device")
    try:
        os.mknod(os.path.join(root, "bad/zero.txt"), 0o644 | 0o020000, os.makedev(1, 5))  # /dev/zero
        c.mark("bad/zero.txt", "fail", "a character device (mknod /dev/zero) named .txt")
    except (PermissionError, OSError):
        pass  # not root: the /dev/null symlink stands for devices
    os.symlink("loop-a.txt", os.path.join(root, "bad/loop-b.txt"))
    os.symlink("loop-b.txt", os.path.join(root, "bad/loop-a.txt"))
    c.mark("bad/loop-a.txt", "fail", "a symlink loop (ELOOP)")
    c.mark("bad/loop-b.txt", "fail", "a symlink loop (ELOOP)")
    os.makedirs(os.path.join(root, "bad/cycle"))
    os.symlink("..", os.path.join(root, "bad/cycle/up"))  # a directory cycle: walked once
    os.symlink("/etc/hostname", os.path.join(root, "bad/escape.txt"))
    c.mark("bad/escape.txt", "fail", "a symlink escaping the roots")
    os.symlink("/etc", os.path.join(root, "bad/escape-dir"))
    c.mark("bad/escape-dir", "fail", "a directory symlink escaping the roots")
    os.symlink("nowhere.png", os.path.join(root, "bad/broken.png"))
    c.mark("bad/broken.png", "fail", "a broken symlink")
    c.add("bad/.hidden.txt", b"hidden", "skip", "hidden file")
    c.add("bad/notes.docx", b"PK\x03\x04", "skip", "unsupported extension")
    c.add("bad/unreadable.txt", b"secret", "fail", "a file without read permission (as a non-root user)")
    os.chmod(os.path.join(root, "bad/unreadable.txt"), 0)
    c.add("bad/locked/inside.txt", b"locked away", "skip", "a file in a directory that cannot be listed")
    os.chmod(os.path.join(root, "bad/locked"), 0)
    c.mark("bad/locked", "fail", "a directory without permissions (as a non-root user)")

    # --- a branch deeper than PATH_MAX (made with relative mkdir/chdir steps)
    here = os.getcwd()
    try:
        os.makedirs(os.path.join(root, "bad/too-deep"))
        os.chdir(os.path.join(root, "bad/too-deep"))
        for _ in range(TOO_DEEP_CHARS // 4):
            os.mkdir("ddd")
            os.chdir("ddd")
        with open("bottom.txt", "wb") as f:
            f.write(b"below PATH_MAX")
    finally:
        os.chdir(here)
    c.mark("bad/too-deep", "any", "a branch longer than PATH_MAX: reported where it cannot be walked")
    return c


def unlock(root: str) -> None:
    """Give back the permissions the corpus took away and remove the too-deep branch (shutil.rmtree, as
    pytest's tmp_path cleanup uses it, recurses once per level and would exceed Python's recursion limit)."""
    for rel in ("bad/locked", "bad/unreadable.txt"):
        p = os.path.join(root, rel)
        if os.path.lexists(p):
            os.chmod(p, 0o755)
    remove_deep(os.path.join(root, "bad/too-deep"))


def remove_deep(top: str) -> None:
    """Remove a chain of single directories of any depth, bottom up, by relative steps (no recursion)."""
    if not os.path.isdir(top):
        return
    here = os.getcwd()
    try:
        os.chdir(top)
        depth = 0
        while os.path.isdir("ddd"):
            os.chdir("ddd")
            depth += 1
        for name in os.listdir("."):
            os.unlink(name)
        for _ in range(depth):
            os.chdir("..")
            os.rmdir("ddd")
    finally:
        os.chdir(here)
    os.rmdir(top)
