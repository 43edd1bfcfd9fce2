"""discover(): the directory walk, on real trees with links, FIFOs and odd names."""

from __future__ import annotations

import os
import threading

import pytest

from gemb2.data.discover import FileEntry, Skipped, discover, modality_of


def touch(path, data: bytes = b"x") -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def run(roots, **kw) -> list:
    """discover() in a thread with a timeout, so a walk that blocks fails instead of hanging the suite."""
    out: list = []
    t = threading.Thread(target=lambda: out.extend(discover([str(r) for r in roots], **kw)), daemon=True)
    t.start()
    t.join(timeout=20)
    assert not t.is_alive(), "discover() blocked"
    return out


def files(events) -> list[str]:
    return [e.path for e in events if isinstance(e, FileEntry)]


def test_modality_of_extensions():
    assert modality_of("a/B.JPG") == "image"
    assert modality_of("x.markdown") == "text"
    assert modality_of("x.opus") == "audio"
    assert modality_of("x.m4v") == "video"
    assert modality_of("x.pdf") is None
    assert modality_of("README") is None


def test_sorted_recursive_with_stat_fields(tmp_path):
    touch(tmp_path / "b" / "z.wav")
    touch(tmp_path / "b" / "a.png")
    touch(tmp_path / "a.txt", b"hello")
    touch(tmp_path / "notes.pdf")
    events = run([tmp_path])
    assert files(events) == [str(tmp_path / "a.txt"), str(tmp_path / "b" / "a.png"), str(tmp_path / "b" / "z.wav")]
    first = events[0]
    st = os.stat(tmp_path / "a.txt")
    assert (first.size, first.mtime_ns, first.modality) == (5, st.st_mtime_ns, "text")
    assert run([tmp_path]) == events  # deterministic


def test_hidden_and_os_junk_ignored(tmp_path):
    keep = touch(tmp_path / "photo.jpg")
    for junk in (".hidden.jpg", "._photo.jpg", ".DS_Store", "Thumbs.db", "desktop.ini",
                 "__MACOSX/photo.jpg", ".git/x.txt"):
        touch(tmp_path / junk)
    assert run([tmp_path]) == [FileEntry(keep, 1, os.stat(keep).st_mtime_ns, "image")]


def test_fifo_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.wav")
    os.mkfifo(tmp_path / "other")
    keep = touch(tmp_path / "song.wav")
    events = run([tmp_path])
    assert files(events) == [keep]
    assert [(s.path, s.reason) for s in events if isinstance(s, Skipped)] == [
        (str(tmp_path / "pipe.wav"), "not a regular file (FIFO)")]
    assert isinstance(run([tmp_path / "pipe.wav"])[0], Skipped)  # a FIFO given as a root


def test_symlink_loop_ends_and_yields_each_file_once(tmp_path):
    touch(tmp_path / "d" / "a.txt")
    os.symlink(tmp_path, tmp_path / "d" / "loop")
    os.symlink(tmp_path / "d", tmp_path / "d" / "self")
    os.symlink("x.jpg", tmp_path / "x.jpg")  # a link to itself
    events = run([tmp_path])
    assert files(events) == [str(tmp_path / "d" / "a.txt")]
    assert [s.path for s in events if isinstance(s, Skipped)] == [str(tmp_path / "x.jpg")]


def test_symlink_inside_followed_outside_skipped(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    real = touch(root / "real" / "a.png")
    secret = touch(outside / "secret.png")
    os.symlink(root / "real", root / "alias")  # inside: followed, file seen once (under the first path)
    os.symlink(secret, root / "escape.png")
    os.symlink(outside, root / "escape_dir")
    os.symlink(root / "missing.png", root / "broken.png")
    events = run([root])
    assert files(events) == [str(root / "alias" / "a.png")]
    skipped = {s.path: s.reason for s in events if isinstance(s, Skipped)}
    assert skipped[str(root / "escape.png")] == f"symbolic link to outside the roots: {secret}"
    assert skipped[str(root / "escape_dir")].startswith("symbolic link to outside the roots")
    assert skipped[str(root / "broken.png")].startswith("broken symbolic link")
    followed = run([root], follow_symlinks=True)
    # escape_dir/secret.png is the file escape.png already gave: yielded once
    assert files(followed) == [str(root / "alias" / "a.png"), str(root / "escape.png")]
    assert [s.path for s in followed if isinstance(s, Skipped)] == [str(root / "broken.png")]
    assert os.path.exists(real)


def test_directory_named_like_an_image_is_walked(tmp_path):
    inner = touch(tmp_path / "photo.jpg" / "inner.txt")
    assert files(run([tmp_path])) == [inner]


def test_root_file_missing_root_and_unsupported_root(tmp_path):
    f = touch(tmp_path / "one.mp3")
    assert files(run([f])) == [f]
    missing = run([tmp_path / "nope"])
    assert missing == [Skipped(str(tmp_path / "nope"), "No such file or directory")]
    assert isinstance(run([touch(tmp_path / "x.pdf")])[0], Skipped)


def test_relative_root_gives_absolute_paths(tmp_path, monkeypatch):
    touch(tmp_path / "sub" / "a.txt")
    monkeypatch.chdir(tmp_path)
    assert files(run(["sub/../sub"])) == [str(tmp_path / "sub" / "a.txt")]


def test_non_utf8_file_name_is_kept(tmp_path):
    name = os.fsdecode(b"caf\xe9.txt")  # latin-1 bytes: not UTF-8
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "wb") as f:
        f.write(b"hello")
    [entry] = run([tmp_path])
    assert entry.path == str(tmp_path / name)
    assert os.fsencode(entry.path).endswith(b"caf\xe9.txt")
    with open(entry.path, "rb") as f:
        assert f.read() == b"hello"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
def test_unreadable_directory_is_skipped(tmp_path):
    touch(tmp_path / "locked" / "a.txt")
    os.chmod(tmp_path / "locked", 0)
    try:
        events = run([tmp_path])
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert events == [Skipped(str(tmp_path / "locked"), "cannot list directory: Permission denied")]


def test_roots_must_be_a_sequence():
    with pytest.raises(TypeError, match="single string"):
        list(discover("media"))
