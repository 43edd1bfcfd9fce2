"""Modality of a file by its content: magic bytes of the first few KiB, or a text heuristic.

The extension decides which loader runs; `sniff` checks that the content agrees, so that a text file named
``.png`` or random bytes named ``.mp4`` fail with a clear reason instead of a codec's riddle. Within a
modality any format is fine (a PNG named ``.jpg`` loads). Audio and video share containers (MP4/M4A,
Matroska/WebM, Ogg), so `compatible` lets either claim the other and leaves the decision to the loader.

References: the signatures are those of file(1)'s magic database and the WHATWG MIME Sniffing standard
(https://mimesniff.spec.whatwg.org/#matching-an-image-type-pattern).
"""

from __future__ import annotations

SNIFF_BYTES = 8192

_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def sniff(path: str) -> str | None:
    """ "image" | "audio" | "video" | "document" (PDF) | "text" by content, or None for unknown binary data
    (or an empty file)."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    return sniff_bytes(head)


def sniff_bytes(head: bytes) -> str | None:
    """`sniff` on the first bytes of a file (up to SNIFF_BYTES)."""
    if not head:
        return None
    if head.startswith(_BOMS):  # before MPEG audio: a UTF-16 LE BOM (FF FE) looks like an MPEG frame sync
        return "text"
    if head.startswith(b"%PDF-"):  # file(1): "0 string %PDF- PDF document" (leading junk is not accepted)
        return "document"
    if (
        head.startswith(
            (
                b"\xff\xd8\xff",
                b"\x89PNG\r\n\x1a\n",
                b"GIF87a",
                b"GIF89a",
                b"II*\x00",
                b"MM\x00*",
                b"II+\x00",
                b"MM\x00+",
            )
        )  # TIFF, BigTIFF
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or _bmp(head)
    ):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if (head[:4] == b"RIFF" and head[8:12] == b"WAVE") or head[:4] in (b"RIFX", b"RF64", b"fLaC", b"OggS"):
        return "audio"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "audio" if brand in (b"M4A ", b"M4B ", b"M4P ", b"F4A ") else "video"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):  # QuickTime without ftyp
        return "video"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska / WebM
        return "video"
    if _mpeg_ts(head):  # before the text test: a .ts recording must not pass for TypeScript
        return "video"
    if head[:3] == b"ID3" or _mpeg_audio_frame(head) or _adts_frame(head):
        return "audio"
    if b"\x00" not in head:
        return "text"
    return None


def compatible(claimed: str, found: str | None) -> bool:
    """Whether content of modality `found` may be loaded as `claimed` (the extension's modality)."""
    if claimed == found:
        return True
    return claimed in ("audio", "video") and found in ("audio", "video")


def _bmp(h: bytes) -> bool:
    """ "BM" alone would catch text starting "BMW"; also require a known DIB header size at offset 14."""
    return h[:2] == b"BM" and len(h) >= 18 and int.from_bytes(h[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)


def _mpeg_audio_frame(h: bytes) -> bool:
    """An MPEG-1/2 audio frame header (MP3 without ID3 tag): sync, valid version, layer, bitrate, rate."""
    if len(h) < 4 or h[0] != 0xFF or (h[1] & 0xE0) != 0xE0:
        return False
    version, layer = (h[1] >> 3) & 3, (h[1] >> 1) & 3
    bitrate, rate = h[2] >> 4, (h[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def _adts_frame(h: bytes) -> bool:
    """An ADTS header (raw .aac): 12-bit sync, layer 0, a valid sampling-frequency index."""
    return len(h) >= 7 and h[0] == 0xFF and (h[1] & 0xF6) == 0xF0 and ((h[2] >> 2) & 0xF) < 13


def _mpeg_ts(h: bytes) -> bool:
    """An MPEG transport stream (.ts, .m2ts recordings): 188-byte packets, each starting with the sync byte 0x47.
    Four syncs and a NUL (no text has one) so that a text that starts with "G" is never taken for one."""
    return len(h) > 564 and all(h[i] == 0x47 for i in (0, 188, 376, 564)) and b"\x00" in h
