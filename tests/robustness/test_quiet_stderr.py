"""stderr of `gemb2 embed` carries gemb2's lines only: what codecs and libraries print while a file loads
(Pillow's UserWarnings with their source lines, C-level messages) is captured per file in the workers,
kept on the file's events (`notes`, for --verbose) and, for a failed file, its likeliest line joins the reason."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from tests.cli_run import cli_cmd
from tests.media import ffmpeg
from tests.robustness._run import run


def _noisy_tree(root) -> None:
    from PIL import Image

    os.makedirs(root / "m", exist_ok=True)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    j = buf.getvalue()
    # an EXIF block whose tag 271 points past its end: Pillow warns "Tag data larger than file" (UserWarning)
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x0f\x01\x02\x00\xff\x00\x00\x00\x40\x00\x00\x00\x00\x00\x00\x00"
    (root / "m" / "exif.jpg").write_bytes(j[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + j[2:])
    img.save(root / "m" / "plain.tif", compression="tiff_lzw")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "4", "-c:a", "libmp3lame", root / "clean.mp3")
    d = (root / "clean.mp3").read_bytes()
    junk = (b"\xff\xfb\x10\x00" + b"\x00" * 60) * 40  # false frame headers in the middle
    (root / "m" / "junk.mp3").write_bytes(d[: len(d) // 2] + junk + d[len(d) // 2 :])
    (root / "m" / "note.txt").write_text("a quiet text file")


def test_library_warnings_go_on_the_files_events_not_stderr(tmp_path, capfd):
    from gemb2.data.pool import FileDone, load_file_events, with_note
    from gemb2.data.segments import LoadSpec

    _noisy_tree(tmp_path)
    capfd.readouterr()
    events = list(load_file_events(0, str(tmp_path / "m" / "exif.jpg"), "image", LoadSpec()))
    assert capfd.readouterr().err == ""  # in-process loading (workers=0) prints no Python warning either
    done = events[-1]
    assert isinstance(done, FileDone) and any("Tag data larger than file" in n for n in done.notes)
    assert with_note("cannot decode", ["Note: resync", "[mp3 @ 0x1] Header missing error"]) == \
        "cannot decode ([mp3 @ 0x1] Header missing error)"
    assert with_note("cannot decode", []) == "cannot decode"


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["2", "0"])
def test_stderr_holds_only_gemb2_lines(tmp_path, workers):
    _noisy_tree(tmp_path)
    r = run(cli_cmd("embed", str(tmp_path / "m"), "--model", "tiny", "--db", str(tmp_path / "db"),
                      "--workers", workers), timeout=240)
    assert r.returncode in (0, 3), r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("gemb2:") for ln in lines), r.stderr


@pytest.mark.slow
def test_verbose_shows_what_the_decoders_said_as_gemb2_lines(tmp_path):
    _noisy_tree(tmp_path)
    r = run(cli_cmd("embed", str(tmp_path / "m"), "--model", "tiny", "--db", str(tmp_path / "db"),
                      "--workers", "1", "--verbose"), timeout=240)
    assert r.returncode in (0, 3), r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert all(ln.startswith("gemb2:") for ln in lines), r.stderr
    assert any(ln.startswith("gemb2: note: ") and "exif.jpg: " in ln and "Tag data larger than file" in ln
               for ln in lines), r.stderr
