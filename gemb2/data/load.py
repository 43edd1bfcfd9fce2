"""One file -> a stream of segments: the entry point of the loaders, dispatching to the loader of a modality.

    for seg in load_file(entry, "video", LoadSpec()):
        seg.index, seg.start, seg.end, seg.parts   # 0, 0.0, 30.0, (Video(frames, times, audio),)

A segment is one window of a file (one row in the store). `load_file` checks that the content agrees
with the extension (`sniff`), then hands over to the loader of the modality, which streams: a 2-hour
file is never held in memory, only the window being built. Every problem with the file's content is a
`LoadError` whose message is the reason for a person, without the path (the caller knows it).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator

from gemb2.data.audio import load_audio
from gemb2.data.discover import FileEntry
from gemb2.data.image import load_image
from gemb2.data.pdf import load_pdf
from gemb2.data.segments import LoadError, LoadSpec, Segment
from gemb2.data.sniff import SNIFF_BYTES, compatible, sniff_bytes
from gemb2.data.text import load_text
from gemb2.data.video import load_video

_LOADERS: dict[str, Callable[[str, LoadSpec], Iterator[Segment]]] = {
    "text": load_text,
    "image": load_image,
    "audio": load_audio,
    "video": load_video,
    "document": load_pdf,
}
_ARTICLE = {"image": "an image", "audio": "audio", "video": "a video", "text": "text", "document": "a PDF document"}


def load_file(entry_or_path: FileEntry | str | os.PathLike, modality: str, spec: LoadSpec) -> Iterator[Segment]:
    """Stream the segments of one file (a FileEntry or a path) read as `modality`.

    A generator: every check runs on the first `next`, and a LoadError may come after some segments
    (a file corrupt in its middle); the caller then discards the segments it got.
    """
    path = os.fspath(entry_or_path.path if isinstance(entry_or_path, FileEntry) else entry_or_path)
    check_content(path, modality)
    loader = _LOADERS.get(modality)
    if loader is None:
        raise ValueError(f"unknown modality {modality!r}; expected text, image, audio, video or document")
    if modality in ("audio", "video") and not _utf8(path):
        # OpenCV and FFmpeg take UTF-8 paths only; a name that is not UTF-8 is read through its descriptor
        fd = os.open(path, os.O_RDONLY)
        try:
            yield from loader(f"/proc/self/fd/{fd}", spec)
        finally:
            os.close(fd)
        return
    yield from loader(path, spec)


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def check_content(path: str, modality: str) -> None:
    """Raise LoadError when the file is empty, unreadable, or its content is not of `modality`."""
    try:
        # O_NONBLOCK: a FIFO put where a regular file was found by the walk must not block the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise LoadError("not a regular file (it changed since the directory walk)")
            size = st.st_size
            found = sniff_bytes(os.read(fd, SNIFF_BYTES))
        finally:
            os.close(fd)
    except OSError as e:
        raise LoadError(f"cannot read the file: {e.strerror or e}") from None
    if size == 0:
        if modality == "text":
            return  # an empty text is zero segments, like a whitespace-only one
        raise LoadError("empty file (0 bytes)")
    if not compatible(modality, found):
        ext = os.path.splitext(path)[1] or "(no extension)"
        seen = f", looks like {_ARTICLE[found]}" if found else ""
        if modality == "text":
            raise LoadError(f"content is not text: binary data (extension {ext}{seen})")
        raise LoadError(f"content is not {_ARTICLE.get(modality, modality)} (extension {ext}{seen})")
