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
    assert modality_of("x.pdf") == "document"
    assert modality_of("x.docx") is None
    assert modality_of("README") is None


def test_sorted_recursive_with_stat_fields(tmp_path):
    touch(tmp_path / "b" / "z.wav")
    touch(tmp_path / "b" / "a.png")
    touch(tmp_path / "a.txt", b"hello")
    touch(tmp_path / "notes.docx")
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
    assert isinstance(run([touch(tmp_path / "x.docx")])[0], Skipped)


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


# --- what is passed over by rule (gemb2/data/ignore.py) ---

def rel(root, events) -> list[str]:
    return [os.path.relpath(p, root) for p in files(events)]


def test_tool_folders_and_environments_are_passed_over_and_counted(tmp_path):
    from collections import Counter

    for name in ("keep.py", "node_modules/lib/index.js", "src/node_modules/x.js", "pkg/__pycache__/m.py",
                 "venv/pyvenv.cfg", "venv/lib/site.py", "env2/pyvenv.cfg", "conda/conda-meta/history.txt",
                 "conda/lib/a.py", "__pycache__.txt"):
        touch(tmp_path / name)
    ignored: Counter[str] = Counter()
    assert rel(tmp_path, run([tmp_path], ignored=ignored)) == ["__pycache__.txt", "keep.py"]
    assert ignored == {"node_modules": 2, "__pycache__": 1, "environment": 3}
    # a folder given as a root is walked whatever it is
    assert rel(tmp_path, run([tmp_path / "node_modules"])) == ["node_modules/lib/index.js"]
    assert rel(tmp_path, run([tmp_path / "venv"])) == ["venv/lib/site.py"]


def test_build_and_dist_are_output_only_beside_a_project_file(tmp_path):
    for name in ("proj/pyproject.toml", "proj/src/a.py", "proj/build/lib/a.py", "proj/dist/a.json",
                 "proj/target/x.json", "web/package.json", "web/dist/app.js", "photos/build/house.jpg",
                 "photos/dist/x.txt", "proj/docs/build/page.html", "build.py"):
        touch(tmp_path / name)
    assert rel(tmp_path, run([tmp_path])) == [
        "build.py", "photos/build/house.jpg", "photos/dist/x.txt", "proj/docs/build/page.html", "proj/pyproject.toml",
        "proj/src/a.py", "web/package.json"]


def test_gemb2ignore_patterns_negation_and_nesting(tmp_path):
    for name in ("a.txt", "b.log.txt", "keep.log.txt", "drafts/d.md", "sub/a.txt", "sub/b.log.txt",
                 "sub/deep/x.md", "sub/deep/y.md", "top.md", "sub/top.md", "sub/build/c.py", "sub/pyproject.toml",
                 "other/node_modules/m.js"):
        touch(tmp_path / name)
    (tmp_path / ".gemb2ignore").write_text(
        "# comments and blank lines are fine\n\n*.log.txt\n!keep.log.txt\ndrafts/\n/top.md\n!node_modules/\n")
    (tmp_path / "sub" / ".gemb2ignore").write_text("!b.log.txt\ndeep/*.md\n!deep/y.md\n!build/\n")
    from collections import Counter

    ignored: Counter[str] = Counter()
    assert rel(tmp_path, run([tmp_path], ignored=ignored)) == [
        "a.txt", "keep.log.txt", "other/node_modules/m.js", "sub/a.txt", "sub/b.log.txt", "sub/build/c.py",
        "sub/deep/y.md", "sub/pyproject.toml", "sub/top.md"]
    assert ignored == {".gemb2ignore": 4}  # b.log.txt, drafts/, top.md, sub/deep/x.md
    # a subtree walked on its own uses its own .gemb2ignore, not the ones above it
    assert "sub/deep/x.md" not in rel(tmp_path, run([tmp_path / "sub"]))
    assert rel(tmp_path, run([tmp_path / "drafts"])) == ["drafts/d.md"]


def test_a_folder_ignored_by_a_pattern_cannot_be_reincluded_below(tmp_path):
    touch(tmp_path / "logs" / "keep.txt")
    (tmp_path / ".gemb2ignore").write_text("logs/\n!logs/keep.txt\n")
    assert files(run([tmp_path])) == []  # as in git: the folder is never entered


def test_an_unusable_gemb2ignore_skips_its_folder_with_the_reason(tmp_path):
    touch(tmp_path / "bad" / "a.txt")
    (tmp_path / "bad" / ".gemb2ignore").write_text("ok\nfoo\\\n")  # a trailing backslash: invalid
    touch(tmp_path / "fifo" / "b.txt")
    os.mkfifo(tmp_path / "fifo" / ".gemb2ignore")  # never opened: it would block
    keep = touch(tmp_path / "good.txt")
    events = run([tmp_path])
    assert files(events) == [keep]
    reasons = {os.path.basename(s.path): s.reason for s in events if isinstance(s, Skipped)}
    assert reasons["bad"].startswith(".gemb2ignore: Invalid git pattern")
    assert reasons["fifo"] == ".gemb2ignore is not a regular file"
