"""`gemb2 embed` as cron runs it: the real CLI in a subprocess over a tree of every supported format, good and
broken, run again and again; interrupted by SIGINT and SIGTERM; what it passes over; a table of another model;
failure lines beside a progress bar on a terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

import numpy as np
import pytest
from PIL import Image as PILImage

from gemb2.store import EmbeddedFile, FileRecord, LanceStore, SegmentRow
from tests.cli_run import gemb2, gemb2_popen
from tests.media import ffmpeg, write_text, write_wav
from tests.pdfs import PdfPage, write_pdf

pytestmark = pytest.mark.slow


def embed_json(tree, db, *extra, timeout=600):
    r = gemb2("embed", str(tree), "--model", "tiny", "--db", str(db), "--json", "--workers", "2", *extra, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    assert all(line.startswith("gemb2:") for line in r.stderr.splitlines()), r.stderr  # gemb2's lines only
    return r.returncode, json.loads(r.stdout), r.stderr


def every_format(root) -> list[str]:
    """One valid file of each supported extension, made by real encoders (Pillow, soundfile, FFmpeg)."""
    made = []
    for ext in (".txt", ".md", ".markdown"):
        made.append(write_text(root / "text" / f"note{ext}", f"a note written as {ext} about the sea"))
    rng = np.random.default_rng(0)
    pixels = PILImage.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
    (root / "img").mkdir(parents=True)
    for ext in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"):
        pixels.save(root / "img" / f"pic{ext}")
        made.append(str(root / "img" / f"pic{ext}"))
    (root / "snd").mkdir()
    for ext, codec in ((".wav", []), (".flac", []), (".ogg", ["-c:a", "libvorbis"]), (".oga", ["-c:a", "libvorbis"]),
                       (".opus", ["-c:a", "libopus"]), (".mp3", ["-c:a", "libmp3lame"]), (".m4a", ["-c:a", "aac"]),
                       (".aac", ["-c:a", "aac"]), (".aiff", []), (".aif", [])):
        out = root / "snd" / f"tone{ext}"
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:duration=1.5", *codec, str(out))
        made.append(str(out))
    (root / "vid").mkdir()
    for ext, codec in ((".mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]), (".mkv", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
                       (".webm", ["-c:v", "libvpx", "-b:v", "200k"]), (".avi", ["-c:v", "mjpeg"]),
                       (".mov", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]), (".m4v", ["-c:v", "libx264", "-pix_fmt", "yuv420p"])):
        out = root / "vid" / f"clip{ext}"
        ffmpeg("-f", "lavfi", "-i", "testsrc=duration=2:size=96x64:rate=8", *codec, str(out))
        made.append(str(out))
    made.append(write_pdf(root / "doc" / "pages.pdf", [PdfPage("A page about the sea."), PdfPage(picture=True)]))
    return made


def broken_files(root, good: list[str]) -> list[str]:
    """Broken files of several kinds: cut copies of good ones, random bytes, wrong content, empty media."""
    bad = root / "bad"
    bad.mkdir()
    made = []
    for src in good:
        if src.endswith((".jpg", ".png", ".flac", ".mp4", ".webm", ".gif", ".pdf")):
            with open(src, "rb") as f:
                data = f.read()
            out = bad / ("cut-" + os.path.basename(src))
            out.write_bytes(data[: max(16, len(data) // 8)])
            made.append(str(out))
    (bad / "noise.mp4").write_bytes(np.random.default_rng(1).bytes(5000))
    (bad / "words.png").write_text("this is text, not a picture")
    (bad / "nothing.wav").write_bytes(b"")
    made += [str(bad / "noise.mp4"), str(bad / "words.png"), str(bad / "nothing.wav")]
    return made


def test_a_tree_of_every_format_good_and_broken_through_four_cron_runs(tmp_path):
    tree, db = tmp_path / "media", tmp_path / "db"
    good = every_format(tree)
    write_text(tree / "text" / "empty.txt", "")
    bad = broken_files(tree, good)

    code, first, _ = embed_json(tree, db)
    failed = {f["path"] for f in first["failures"]}
    assert code == 3
    assert failed <= set(bad)  # no good file failed
    # a cut file may still hold a decodable start (a FLAC's first frames): it is embedded, not lost
    assert first["files_added"] == len(good) + 1 + len(bad) - len(failed)
    assert {str(tree / "bad" / n) for n in ("noise.mp4", "words.png", "nothing.wav")} <= failed
    assert all(f["reason"] and "\n" not in f["reason"] and "Error:" not in f["reason"] for f in first["failures"])

    code, unchanged, _ = embed_json(tree, db)
    assert code == 0, "nothing failed in this run"
    assert (unchanged["files_added"], unchanged["files_failed"], unchanged["failures"]) == (0, 0, [])
    assert unchanged["files_failed_known"] == len(failed)  # remembered: not decoded, not reported again
    assert unchanged["files_unchanged"] == first["files_added"]

    write_text(tree / "text" / "note.md", "an edited note about mountains, not the sea")
    os.unlink(tree / "img" / "pic.webp")
    write_wav(tree / "snd" / "added.wav", seconds=1.0, freq=550.0)
    (tree / "bad" / "new-broken.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 300)
    code, third, _ = embed_json(tree, db)
    assert code == 3  # the new broken file failed in this run
    assert (third["files_updated"], third["files_removed"], third["files_added"]) == (1, 1, 1)
    assert [f["path"] for f in third["failures"]] == [str(tree / "bad" / "new-broken.mkv")]
    assert third["files_failed_known"] == len(failed)

    code, fourth, _ = embed_json(tree, db)
    assert code == 0 and fourth["files_failed_known"] == len(failed) + 1
    assert fourth["files_added"] + fourth["files_updated"] + fourth["files_removed"] == 0

    code, retried, _ = embed_json(tree, db, "--retry-failed")
    assert code == 3 and retried["files_failed"] == len(failed) + 1 and retried["files_failed_known"] == 0


def _rows(db) -> int:
    try:
        return LanceStore(str(db), "media").count()
    except Exception:
        return 0


def _committing_run(tmp_path, n: int = 600):
    """`gemb2 embed --json` started on n text files, committing every 4 rows; returned once it has committed."""
    tree, db = tmp_path / "m", tmp_path / "db"
    for i in range(n):
        write_text(tree / f"d{i // 100}" / f"t{i:04d}.txt", f"note {i}: " + "word " * (i % 40))
    p = gemb2_popen("embed", str(tree), "--model", "tiny", "--db", str(db), "--json", "--workers", "1",
                    "--batch-size", "1", "--commit-rows", "4", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _rows(db) == 0 and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert p.poll() is None, "the run ended before the signal: make the tree bigger"
    return tree, db, n, p


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_commits_what_is_embedded_says_so_and_the_rerun_continues(tmp_path, sig, code):
    tree, db, n, p = _committing_run(tmp_path)
    at_signal = _rows(db)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    assert "Traceback" not in err
    assert f"interrupted by {sig.name}" in err and "run the same command again" in err
    report = json.loads(out)
    assert report["interrupted"] == sig.name
    committed = _rows(db)
    assert at_signal <= committed < n and report["files_added"] == committed

    code2, rest, _ = embed_json(tree, db)
    assert code2 == 0 and rest["files_added"] == n - committed and rest["files_unchanged"] == committed
    keys = LanceStore(str(db), "media").table.to_arrow().column("key").to_pylist()
    assert len(keys) == len(set(keys)) == n


def test_files_of_unsupported_types_are_counted_by_extension(tmp_path):
    tree = tmp_path / "m"
    write_text(tree / "a.txt", "a note")
    for name in ("b.xyz", "c.xyz", "d.doc", "Makefile"):
        write_text(tree / name, "not for us")
    code, report, err = embed_json(tree, tmp_path / "db")
    assert code == 0 and report["files_added"] == 1
    assert report["files_unsupported"] == 4 and report["unsupported"] == {"": 1, ".doc": 1, ".xyz": 2}
    assert "4 files of unsupported types not embedded (2 .xyz, 1 without extension, 1 .doc)" in err
    assert str(tmp_path / "db") in err and report["store"] == f"table 'media' in {tmp_path / 'db'}"


def test_a_table_of_another_model_is_a_usage_error(tmp_path):
    db = tmp_path / "db"
    other = LanceStore(str(db), "media", model="other-model@0123", dim=8)
    other.write([EmbeddedFile(FileRecord("/x.txt", 1, 1, "h", "other-model@0123", 1),
                              [SegmentRow(0, "text", 0, 1, "x", np.eye(8, dtype=np.float32)[0])])])
    write_text(tmp_path / "m" / "a.txt", "a note")
    r = gemb2("embed", str(tmp_path / "m"), "--model", "tiny", "--db", str(db), timeout=300)
    assert r.returncode == 2 and "holds vectors of model 'other-model@0123'" in r.stderr and "--rebuild" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_failure_lines_are_not_glued_to_the_progress_bar(tmp_path):
    tree = tmp_path / "m"
    for i in range(40):
        write_text(tree / f"t{i:02d}.txt", f"note {i}")
        if i % 8 == 0:
            (tree / f"bad{i:02d}.png").write_text("not a picture")
    master, slave = pty.openpty()  # stderr is a terminal of 30 x 100: the bar is drawn
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    p = gemb2_popen("embed", str(tree), "--model", "tiny", "--db", str(tmp_path / "db"), "--workers", "1",
                    "--batch-size", "2", stdout=subprocess.DEVNULL, stderr=slave, env={"COLUMNS": "100"})
    os.close(slave)
    screen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        try:
            chunk = os.read(master, 65536) if ready else b""
        except OSError:  # the child closed the terminal
            chunk = b""
        if not chunk:
            break
        screen += chunk
    p.wait(timeout=60)
    os.close(master)
    text = screen.decode("utf-8", "replace")
    assert p.returncode == 3 and "embedding" in text  # the bar was drawn
    starts = [i for i in range(len(text)) if text.startswith("gemb2: failed:", i)]
    assert len(starts) == 5
    assert all(i == 0 or text[i - 1] in "\r\n" for i in starts), text


def test_a_second_sigint_stops_at_once_and_the_rerun_is_consistent(tmp_path):
    tree, db, n, p = _committing_run(tmp_path)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode in (-signal.SIGINT, 130) and "Traceback" not in err, err
    code, rest, _ = embed_json(tree, db)
    assert code == 0 and rest["files_added"] + rest["files_unchanged"] == n
    keys = LanceStore(str(db), "media").table.to_arrow().column("key").to_pylist()
    assert len(keys) == len(set(keys)) == n
