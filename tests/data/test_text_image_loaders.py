"""Text and image loaders, and the content check, on real files."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from gemb2.data.segments import LoadError
from gemb2.data.sniff import sniff
from gemb2.parts import Image, Text
from tests.data.readback import load
from tests.system import need_weights

TOKENIZER = str(Path(__file__).parents[2] / "gemb2" / "model" / "assets" / "wordpiece-uncased.json")


# --- text ---

def test_text_windows_by_words_with_overlap(tmp_path):
    words = [f"w{i}" for i in range(25)]
    (tmp_path / "a.txt").write_text(" ".join(words))
    segs = load(tmp_path / "a.txt", "text", text_window_tokens=10, text_overlap_tokens=2)
    texts = [s.parts[0].text for s in segs]
    assert texts == [" ".join(words[0:10]), " ".join(words[8:18]), " ".join(words[16:25])]
    assert [s.index for s in segs] == [0, 1, 2]
    full = (tmp_path / "a.txt").read_text()
    assert all(full[int(s.start):int(s.end)] == s.text == s.parts[0].text for s in segs)


def test_text_windows_by_tokenizer_cut_the_original_text(tmp_path):
    text = "Hello, World! Ünïcode stays as written.\n" * 40
    (tmp_path / "a.md").write_text(text)
    segs = load(tmp_path / "a.md", "text", text_window_tokens=32, text_overlap_tokens=4, tokenizer_file=TOKENIZER)
    assert len(segs) > 3
    assert all(s.parts[0].text == text[int(s.start):int(s.end)] for s in segs)
    assert "Ünïcode" in segs[0].text  # the original, not the tokenizer's lower-cased, accent-stripped form
    assert segs[0].start == 0 and segs[-1].end == len(text.rstrip())
    assert all(a.start < b.start < a.end for a, b in zip(segs, segs[1:]))  # overlapping, advancing


def _minilm_tokenizer() -> str:
    from gemb2.pretrained.weights import minilm_folder

    return str(need_weights(minilm_folder) / "tokenizer.json")


def _truncating_padding_tokenizer(tmp_path) -> str:
    """The test WordPiece tokenizer with what all-MiniLM-L6-v2's tokenizer.json carries: truncation to a
    max_length and fixed-length padding (here 16, so that any text longer than 16 tokens shows it)."""
    spec = json.loads(Path(TOKENIZER).read_text())
    spec["truncation"] = {"max_length": 16, "strategy": "LongestFirst", "stride": 0}
    spec["padding"] = {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": None,
                       "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}
    (tmp_path / "tok.json").write_text(json.dumps(spec))
    return str(tmp_path / "tok.json")


def _long_text(n_words: int, words_per_line: int) -> str:
    rng = np.random.default_rng(0)
    syllables = ["ka", "lo", "mi", "tre", "sun", "vel", "or", "pix", "dan", "qu"]
    words = ["".join(rng.choice(syllables, rng.integers(1, 4))) + rng.choice(["", "", ",", ".", "!"])
             for _ in range(n_words)]
    lines = [" ".join(words[i:i + words_per_line]) for i in range(0, n_words, words_per_line)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("which", ["all-MiniLM-L6-v2", "truncation+padding"])
@pytest.mark.parametrize("n_words,words_per_line", [(700, 700), (40_000, 12)])  # one block; ~250 KB, 4+ blocks
def test_text_windows_cover_a_long_file_whatever_the_tokenizer_files_truncation(tmp_path, which, n_words,
                                                                                 words_per_line):
    tokenizer = _minilm_tokenizer() if which == "all-MiniLM-L6-v2" else _truncating_padding_tokenizer(tmp_path)
    text = _long_text(n_words, words_per_line)
    (tmp_path / "long.txt").write_text(text)
    segs = load(tmp_path / "long.txt", "text", text_window_tokens=256, text_overlap_tokens=32,
                tokenizer_file=tokenizer)
    covered = np.zeros(len(text), bool)
    for s in segs:
        covered[int(s.start):int(s.end)] = True
    gaps = [i for i, c in enumerate(text) if not c.isspace() and not covered[i]]
    assert not gaps, f"{len(gaps)} characters in no window, first at {gaps[0]}"
    assert segs[-1].end == len(text.rstrip())
    # and no window spans more than its 256 tokens (a block cut to its first tokens would make the window
    # that follows reach into the next block, over all the text between)
    from tokenizers import Tokenizer

    full = Tokenizer.from_file(tokenizer)
    full.no_truncation()
    full.no_padding()
    n_tokens = len(full.encode(text, add_special_tokens=False).ids)
    assert len(segs) == math.ceil((n_tokens - 32) / (256 - 32))
    # a window's text re-tokenized alone may differ by a token where it starts inside a word ("##lo" -> "lo")
    sizes = [len(full.encode(s.parts[0].text, add_special_tokens=False).ids) for s in segs]
    assert max(sizes) <= 256 + 2, sizes
    assert all(a.start < b.start < a.end for a, b in zip(segs, segs[1:]))  # overlapping, advancing


@pytest.mark.parametrize("encoding,data", [
    ("utf-8-sig", "café ☕".encode("utf-8-sig")),
    ("utf-16-le", b"\xff\xfe" + "café ☕".encode("utf-16-le")),
    ("utf-16-be", b"\xfe\xff" + "café ☕".encode("utf-16-be")),
])
def test_text_encodings_with_bom(tmp_path, encoding, data):
    (tmp_path / "a.txt").write_bytes(data)
    [seg] = load(tmp_path / "a.txt", "text")
    assert seg.parts == (Text("café ☕"),)


def test_text_cp1252_fallback(tmp_path):
    (tmp_path / "a.txt").write_bytes("“smart quotes” café".encode("cp1252"))
    [seg] = load(tmp_path / "a.txt", "text")
    assert seg.text == "“smart quotes” café"


def test_text_empty_is_zero_segments_and_binary_refused(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b"  \n\t ")
    assert load(tmp_path / "empty.txt", "text") == [] and load(tmp_path / "blank.txt", "text") == []
    (tmp_path / "bin.txt").write_bytes(b"abc\x00\x01\x02" * 10)
    with pytest.raises(LoadError, match="content is not text"):
        load(tmp_path / "bin.txt", "text")


def test_text_too_large_refused(tmp_path):
    (tmp_path / "a.txt").write_text("word " * 100)
    with pytest.raises(LoadError, match="too large: 500 bytes > max_text_bytes 100"):
        load(tmp_path / "a.txt", "text", max_text_bytes=100)


# --- content check ---

def test_content_mismatch_is_a_load_error(tmp_path):
    (tmp_path / "fake.png").write_text("I am text")
    with pytest.raises(LoadError, match=r"content is not an image \(extension \.png, looks like text\)"):
        load(tmp_path / "fake.png", "image")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    with pytest.raises(LoadError, match=r"content is not a video \(extension \.mp4"):
        load(tmp_path / "noise.mp4", "video")


def test_png_named_jpg_is_fine(tmp_path):
    PILImage.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "x.png")
    os.rename(tmp_path / "x.png", tmp_path / "x.jpg")
    assert sniff(str(tmp_path / "x.jpg")) == "image"
    [seg] = load(tmp_path / "x.jpg", "image", image_size=16)
    assert seg.parts[0].pixels.shape == (16, 16, 3)
    assert tuple(seg.parts[0].pixels[8, 8]) == (10, 200, 30)


# --- images ---

def test_jpeg_loads_at_reduced_scale_to_image_size(tmp_path):
    rng = np.random.default_rng(0)
    PILImage.fromarray(rng.integers(0, 256, (600, 800, 3), np.uint8)).save(tmp_path / "a.jpg", quality=90)
    [seg] = load(tmp_path / "a.jpg", "image", image_size=64)
    assert (seg.index, seg.start, seg.end) == (0, 0.0, 0.0)
    assert isinstance(seg.parts[0], Image) and seg.parts[0].pixels.shape == (64, 64, 3)


def test_exif_orientation_applied(tmp_path):
    # top half red, bottom half blue, stored 80 wide x 40 high; orientation 6 = rotate 90 degrees clockwise to view
    arr = np.zeros((40, 80, 3), np.uint8)
    arr[:20] = (255, 0, 0)
    arr[20:] = (0, 0, 255)
    img = PILImage.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    from gemb2.data.image import read_rgb

    px = read_rgb(str(tmp_path / "r.jpg"), 10**8)
    assert px.shape == (80, 40, 3)  # portrait after rotation
    # rotating clockwise puts the (red) top on the right and the (blue) bottom on the left
    assert px[40, 35, 0] > 200 and px[40, 35, 2] < 60
    assert px[40, 4, 2] > 200 and px[40, 4, 0] < 60


def test_truncated_jpeg_refused(tmp_path):
    rng = np.random.default_rng(1)
    PILImage.fromarray(rng.integers(0, 256, (200, 200, 3), np.uint8)).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match="truncated or corrupt JPEG"):
        load(tmp_path / "t.jpg", "image", image_size=32)


def test_decompression_bomb_refused_before_decoding(tmp_path):
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))
    (tmp_path / "bomb.png").write_bytes(png)
    assert len(png) < 200
    # our check from the header: over the limit
    with pytest.raises(LoadError, match=r"image too large: 30000x30000 = 900000000 pixels > max_image_pixels"):
        load(tmp_path / "bomb.png", "image", max_image_pixels=500_000_000)
    # Pillow's own guard, set to the same limit, fires inside open() beyond twice the limit
    with pytest.raises(LoadError, match=r"image too large \(decompression-bomb guard\).*900000000 pixels"):
        load(tmp_path / "bomb.png", "image", max_image_pixels=100_000_000)


def test_16bit_png_scaled_to_8bit(tmp_path):
    arr = np.full((20, 30), 65535 // 2, np.uint16)
    arr[:, 15:] = 65535
    PILImage.fromarray(arr).save(tmp_path / "g16.png")
    assert PILImage.open(tmp_path / "g16.png").mode.startswith("I")
    [seg] = load(tmp_path / "g16.png", "image", image_size=20)
    px = seg.parts[0].pixels
    assert tuple(px[10, 2]) == (127, 127, 127) and tuple(px[10, 18]) == (255, 255, 255)


def test_gif_first_frame(tmp_path):
    frames = [PILImage.new("P", (20, 20), i) for i in range(3)]
    for f, colour in zip(frames, [(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        f.putpalette([c for i in range(256) for c in (colour if i < 3 else (0, 0, 0))])
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    [seg] = load(tmp_path / "a.gif", "image", image_size=10)
    assert tuple(seg.parts[0].pixels[5, 5]) == (255, 0, 0)


def test_grayscale_alpha_composited_on_white(tmp_path):
    la = np.zeros((10, 10, 2), np.uint8)
    la[:, :, 0] = 0  # black
    la[:, :5, 1] = 0  # left half transparent -> white
    la[:, 5:, 1] = 255  # right half opaque black
    PILImage.fromarray(la, "LA").save(tmp_path / "la.png")
    [seg] = load(tmp_path / "la.png", "image", image_size=10)
    px = seg.parts[0].pixels
    assert tuple(px[5, 1]) == (255, 255, 255) and tuple(px[5, 8]) == (0, 0, 0)


def test_cmyk_and_webp_bmp_tiff(tmp_path):
    PILImage.new("CMYK", (12, 12), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # CMYK red
    [seg] = load(tmp_path / "c.jpg", "image", image_size=12)
    r, g, b = seg.parts[0].pixels[6, 6].astype(int)
    assert r > 200 and g < 60 and b < 60
    for ext in ("webp", "bmp", "tiff"):
        PILImage.new("RGB", (12, 12), (0, 0, 250)).save(tmp_path / f"x.{ext}")
        [seg] = load(tmp_path / f"x.{ext}", "image", image_size=12)
        assert seg.parts[0].pixels[6, 6, 2] > 240, ext
