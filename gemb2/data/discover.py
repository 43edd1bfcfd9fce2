"""Find the media files under some roots: a deterministic, safe directory walk.

    discover(["./media"]) -> FileEntry(path, size, mtime_ns, modality) ... and Skipped(path, reason) ...

Rules (each one is tested in tests/data/test_discover.py):

- The walk is depth-first `os.scandir` (an explicit stack, so depth is not bounded by Python's recursion
  limit), entries sorted by name, so the order is the same on every run.
- Hidden names (``.x``) and OS junk (``._x`` AppleDouble files, ``Thumbs.db``, ``desktop.ini``,
  ``__MACOSX``) are ignored silently, as are files whose extension is not a supported one.
- Below the roots, ``node_modules``, ``__pycache__``, build output (``build``/``dist``/``target`` beside a project
  file), virtualenvs and conda environments, and what ``.gemb2ignore`` files (gitignore syntax) name are passed
  over, counted by rule in `ignored` (ignore.py states the rules). An unusable ``.gemb2ignore`` makes its folder
  Skipped with the reason (walking what it meant to hide would be worse).
- Only regular files are yielded. The type comes from ``lstat``/``stat``; nothing is ever opened during
  the walk, so FIFOs, sockets and devices can never block it. A special file with a media extension
  (``pipe.wav`` being a FIFO) is reported as Skipped.
- A directory is walked as a directory whatever its name (``photo.jpg/``).
- Symbolic links are followed only when their target lies inside one of the roots (or always, with
  ``follow_symlinks=True``). A link that points outside is reported as Skipped, as is a broken link.
- Every directory and every file is visited at most once, by its (st_dev, st_ino): symlink loops end, and a
  file reached twice through links is yielded once, under the first path in walk order (silently).
- A root that is a file is yielded itself (Skipped if its extension is not supported); a root that is
  missing or unreadable, and a directory that cannot be listed, is Skipped with the reason.
- Paths are ``os.path.abspath`` of the root joined with the names below it: links inside the roots are not
  resolved in the reported path. Names that are not valid UTF-8 come through as Python's surrogate-escaped
  str and are kept as they are.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gemb2.data.ignore import RULED_NAMES, IgnoreFileError, Rules, is_environment

PROSE_EXTENSIONS = (".txt", ".md", ".markdown", ".rst")
HTML_EXTENSIONS = (".html", ".htm", ".xhtml")  # read as the page's visible text (html.py)
DATA_EXTENSIONS = (".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".yaml", ".yml", ".toml", ".xml")
CODE_EXTENSIONS = (
    *(".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".go", ".rs", ".c", ".h", ".cpp", ".hpp", ".cc"),
    *(".cxx", ".hh", ".java", ".kt", ".kts", ".rb", ".php", ".cs", ".swift", ".sh", ".bash", ".zsh", ".sql"),
    *(".lua", ".r", ".scala", ".pl", ".dart", ".ex", ".exs", ".hs", ".jl", ".vue", ".svelte"),
)

EXTENSIONS: dict[str, str] = {
    **dict.fromkeys(PROSE_EXTENSIONS + HTML_EXTENSIONS + DATA_EXTENSIONS + CODE_EXTENSIONS, "text"),
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"), "image"),
    **dict.fromkeys(
        (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aiff", ".aif", ".aifc"), "audio"
    ),
    **dict.fromkeys((".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v"), "video"),
    ".pdf": "document",
}

JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx", "$recycle.bin", "system volume information"})


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # absolute, normalised; symlinks below the root are not resolved
    size: int  # bytes
    mtime_ns: int
    modality: str  # "text" | "image" | "audio" | "video" | "document", from the extension


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str  # for a person: "symbolic link to outside the roots: /etc/passwd"


def modality_of(path: str) -> str | None:
    """The modality a file's extension claims, or None when it is not a supported file."""
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())


def is_ignored_name(name: str) -> bool:
    """Hidden names and OS junk that a walk passes over silently."""
    return name.startswith(".") or name.startswith("._") or name.lower() in JUNK_NAMES


def discover(
    roots: Sequence[str],
    *,
    follow_symlinks: bool = False,
    unsupported: Counter[str] | None = None,
    ignored: Counter[str] | None = None,
) -> Iterator[FileEntry | Skipped]:
    """Walk `roots` in order and yield their supported files, and the problems met, in sorted order.

    `unsupported`, when given, counts the regular files passed over for their type, by lower-cased
    extension ("" for none), so that a caller can say what it did not embed. `ignored` counts the folders
    and files passed over by rule (ignore.py), by rule: "node_modules", "__pycache__", "build output",
    "environment", ".gemb2ignore" (a folder counts once; what is under it is never looked at)."""
    if isinstance(roots, (str, bytes)):
        raise TypeError(f"roots must be a sequence of paths, got the single string {roots!r}")
    walker = _Walker([os.path.abspath(r) for r in roots], follow_symlinks, unsupported, ignored)
    for root in walker.roots:
        yield from walker.walk_root(root)


@dataclass(frozen=True)
class _Dir:
    """A directory met during the walk, to be listed next."""

    path: str
    st: os.stat_result


_Listing = tuple[Rules, list[tuple[str, os.DirEntry]]]  # a folder's rules and its sorted, not hidden entries


class _Walker:
    def __init__(
        self,
        roots: list[str],
        follow_symlinks: bool,
        unsupported: Counter[str] | None = None,
        ignored: Counter[str] | None = None,
    ):
        self.unsupported = unsupported
        self.ignored = ignored
        self.roots = roots
        self.real_roots = [os.path.realpath(r) for r in roots]
        self.follow_symlinks = follow_symlinks
        self.seen: set[tuple[int, int]] = set()  # (st_dev, st_ino) of dirs and files already visited

    def walk_root(self, root: str) -> Iterator[FileEntry | Skipped]:
        try:
            st = os.stat(root)  # a root named by the user is followed even when it is a link
        except OSError as e:
            yield Skipped(root, _os_reason(e))
            return
        if stat.S_ISDIR(st.st_mode):
            yield from self._walk_dir(root, st, Rules())
        elif stat.S_ISREG(st.st_mode):
            if modality_of(root) is None:
                yield Skipped(root, f"unsupported file type {os.path.splitext(root)[1] or '(no extension)'!r}")
            else:
                yield from self._file(root, st)
        else:
            yield Skipped(root, f"not a regular file ({_kind(st.st_mode)})")

    def _walk_dir(self, path: str, st: os.stat_result, rules: Rules) -> Iterator[FileEntry | Skipped]:
        """Depth-first, in sorted order, with an explicit stack: a tree 10,000 levels deep is no recursion."""
        stack: list[tuple[Rules, Iterator[tuple[str, os.DirEntry]]]] = []
        found: FileEntry | Skipped | _Dir | _Listing | None = self._list(path, st, rules, root=True)
        while True:
            if isinstance(found, tuple):
                stack.append((found[0], iter(found[1])))
            elif found is not None:
                yield found
            if not stack:
                return
            rules, entries = stack[-1]
            child = next(entries, None)
            if child is None:
                stack.pop()
                found = None
                continue
            found = self._entry(*child, rules)
            if isinstance(found, _Dir):
                found = self._list(found.path, found.st, rules)

    def _list(self, path: str, st: os.stat_result, rules: Rules, root: bool = False) -> _Listing | Skipped | None:
        """The rules among a directory's entries and its sorted, not hidden entries; None if it was walked
        already (a loop) or is an environment (not below a root)."""
        key = (st.st_dev, st.st_ino)
        if key in self.seen:
            return None  # a symlink loop or a second link to a walked directory
        self.seen.add(key)
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            return Skipped(path, f"cannot list directory: {_os_reason(e)}")
        names = [e.name for e in entries]
        if not root and is_environment(names):
            self._count("environment")
            return None
        try:
            rules = rules.within(path, names)
        except IgnoreFileError as e:
            return Skipped(path, str(e))
        return rules, [(os.path.join(path, e.name), e) for e in entries if not is_ignored_name(e.name)]

    def _count(self, rule: str) -> None:
        if self.ignored is not None:
            self.ignored[rule] += 1

    def _entry(self, path: str, entry: os.DirEntry, rules: Rules) -> FileEntry | Skipped | _Dir | None:
        if rules.specs or entry.name in RULED_NAMES:  # the common case costs one set lookup
            try:
                rule = rules.ignored(path, entry.name, entry.is_dir())  # d_type: a stat only for a link
            except OSError:
                rule = None  # not even the type can be read: the lstat below says why
            if rule is not None:
                self._count(rule)
                return None
        try:
            lst = entry.stat(follow_symlinks=False)  # lstat: never opens the file
        except OSError as e:
            return Skipped(path, _os_reason(e))
        st = lst
        if stat.S_ISLNK(lst.st_mode):
            try:
                st = os.stat(path)  # stat follows the link; it does not open the target either
            except OSError as e:
                if modality_of(path) is not None or e.errno == 40:  # ELOOP: a link cycle made of links
                    return Skipped(path, f"broken symbolic link: {_os_reason(e)}")
                return None
            if not self.follow_symlinks and not self._inside_roots(os.path.realpath(path)):
                if stat.S_ISDIR(st.st_mode) or modality_of(path) is not None:
                    return Skipped(path, f"symbolic link to outside the roots: {os.path.realpath(path)}")
                return None
        if stat.S_ISDIR(st.st_mode):
            return _Dir(path, st)
        if modality_of(path) is None:
            if self.unsupported is not None and stat.S_ISREG(st.st_mode):
                self.unsupported[os.path.splitext(path)[1].lower()] += 1
            return None
        if stat.S_ISREG(st.st_mode):
            return next(self._file(path, st), None)
        return Skipped(path, f"not a regular file ({_kind(st.st_mode)})")

    def _file(self, path: str, st: os.stat_result) -> Iterator[FileEntry]:
        key = (st.st_dev, st.st_ino)
        if key in self.seen:
            return
        self.seen.add(key)
        yield FileEntry(path, st.st_size, st.st_mtime_ns, modality_of(path))  # type: ignore[arg-type]

    def _inside_roots(self, real: str) -> bool:
        return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in self.real_roots)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return f"mode {oct(mode)}"


def _os_reason(e: OSError) -> str:
    return e.strerror or str(e)
