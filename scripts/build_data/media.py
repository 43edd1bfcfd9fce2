"""Shared by the media data builders: the emoji list, emoji rendering, WordNet glosses, espeak-ng speech.

Sources (Debian packages, offline): unicode-data (emoji-test.txt), unicode-cldr-core (CLDR keyword
annotations), fonts-noto-color-emoji, wordnet, espeak-ng. Everything here is deterministic: a clip's
voice and speed come from a hash of its key, so two builders that speak the same key write the same
samples (and a frozen audio encoder's features cached during training are shared between them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass

import numpy as np

from gemb2.parts import SAMPLE_RATE  # the builders write audio at the rate the model reads

# Where Debian's data packages put their files. GEMB2_DEBIAN_SHARE points the builders elsewhere (the tests point
# it at an empty folder to check what a machine without the packages is told).
SHARE = os.environ.get("GEMB2_DEBIAN_SHARE") or "/usr/share"
EMOJI_TEST = os.path.join(SHARE, "unicode/emoji/emoji-test.txt")
CLDR_EN = os.path.join(SHARE, "unicode/cldr/common/annotations/en.xml")
EMOJI_FONT = os.path.join(SHARE, "fonts/truetype/noto/NotoColorEmoji.ttf")
WORDNET = os.path.join(SHARE, "wordnet")
# Debian package -> the file it installs that the builders read, or the command they run
DEBIAN = {"unicode-data": EMOJI_TEST, "unicode-cldr-core": CLDR_EN, "fonts-noto-color-emoji": EMOJI_FONT,
          "wordnet": os.path.join(WORDNET, "data.noun"), "espeak-ng": "espeak-ng", "ffmpeg": "ffmpeg"}
SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}
# espeak-ng's own (gmw) English voices x classic variants: 7 x 8 voices, chosen per clip by a hash
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
VARIANTS = ["m1", "m3", "m5", "m7", "f1", "f2", "f3", "f4"]
SPEEDS = [135, 150, 165, 180]  # words per minute


class MissingPackage(SystemExit):
    """A Debian package a builder needs is not installed: the builder exits 1 with this one line."""


def require(*packages: str) -> None:
    """Exit (MissingPackage) with the apt-get line if a package's file or command is not there."""
    for p in packages:
        probe = DEBIAN[p]
        if not (os.path.exists(probe) if os.sep in probe else shutil.which(probe)):
            raise MissingPackage(f"{os.path.basename(sys.argv[0]) or 'build_data'}: needs the Debian package {p} "
                                 f"({probe} not found): apt-get install -y --no-install-recommends {p}")


def stable_hash(key: str) -> int:
    return zlib.crc32(key.encode("utf-8"))


def order_by_hash(keys: list[str]) -> list[str]:
    """A fixed, well-mixed order (so `--limit N` takes a varied subset, not the first Unicode group)."""
    return sorted(keys, key=lambda k: (stable_hash("order:" + k), k))


@dataclass(frozen=True)
class Emoji:
    char: str
    name: str  # the CLDR short name, e.g. "grinning face"
    group: str  # e.g. "Smileys & Emotion"
    keywords: tuple[str, ...]  # CLDR keywords other than the name


def emoji_list() -> list[Emoji]:
    """Fully-qualified emoji without skin-tone modifiers, with their CLDR keywords, in file order."""
    require("unicode-data")
    keywords = cldr_keywords()
    out, group = [], ""
    with open(EMOJI_TEST, encoding="utf-8") as f:
        for line in f:
            if line.startswith("# group:"):
                group = line.split(":", 1)[1].strip()
            if line.startswith("#") or "; fully-qualified" not in line:
                continue
            m = re.match(r"^[0-9A-F ]+; fully-qualified\s+# (\S+) E\d+\.\d+ (.+)$", line.strip())
            if not m or SKIN_TONES & set(m.group(1)):
                continue
            char, name = m.group(1), m.group(2).strip()
            kws = keywords.get(char) or keywords.get(char.replace("\ufe0f", "")) or ()
            out.append(Emoji(char, name, group, tuple(k for k in kws if k.lower() != name.lower())))
    return out


def cldr_keywords() -> dict[str, tuple[str, ...]]:
    """CLDR English annotations: character -> keywords (the `<annotation cp=...>` without type="tts")."""
    require("unicode-cldr-core")
    root = ET.parse(CLDR_EN).getroot()
    return {a.get("cp"): tuple(k.strip() for k in (a.text or "").split("|") if k.strip())
            for a in root.iter("annotation") if a.get("type") is None}


_FONT = None
_TOFU = None


def render_emoji(ch: str, size: int = 160):
    """An emoji drawn by Noto Color Emoji (a 109 px bitmap font, then scaled) on white; None if the font lacks it."""
    from PIL import Image, ImageDraw, ImageFont

    global _FONT, _TOFU
    if _FONT is None:
        require("fonts-noto-color-emoji")
        _FONT = ImageFont.truetype(EMOJI_FONT, 109)
        _TOFU = _draw("\U000F0000", _FONT).tobytes()  # a private-use char: what a missing glyph looks like
    canvas = _draw(ch, _FONT)
    if canvas.getbbox() is None or canvas.tobytes() == _TOFU:
        return None
    canvas = canvas.crop(canvas.getbbox())
    out = Image.new("RGB", (size, size), "white")
    canvas.thumbnail((size - 16, size - 16), Image.LANCZOS)
    out.paste(canvas, ((size - canvas.width) // 2, (size - canvas.height) // 2), canvas)
    return out


def _draw(ch, font):
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (136 * max(1, len(ch)), 128), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((0, 0), ch, font=font, embedded_color=True)
    return canvas


def wordnet_senses(pos: tuple[str, ...] = ("noun", "verb", "adj")) -> list[tuple[str, str, str]]:
    """(lemma, definition, synset key) of the FIRST synset of each lemma, quoted examples removed."""
    require("wordnet")
    seen: dict[str, tuple[str, str, str]] = {}
    for p in pos:
        with open(os.path.join(WORDNET, f"data.{p}"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                head, gloss = line.split("|", 1)
                fields = head.split()
                n = int(fields[3], 16)
                definition = gloss.split(";")[0].strip().strip('"').strip()
                if len(definition) < 10 or '"' in definition:
                    continue
                for i in range(n):
                    lemma = re.sub(r"\(.*\)$", "", fields[4 + 2 * i]).replace("_", " ").lower()
                    if lemma not in seen and lemma.isascii() and len(lemma) > 2:
                        seen[lemma] = (lemma, definition, f"{p}:{fields[0]}")
    return list(seen.values())


def voice_for(key: str) -> tuple[str, int]:
    """(espeak-ng voice, speed) for a clip, fixed by its key."""
    h = stable_hash("voice:" + key)
    return f"{VOICES[h % len(VOICES)]}+{VARIANTS[(h // 7) % len(VARIANTS)]}", SPEEDS[(h // 56) % len(SPEEDS)]


def speak(text: str, key: str) -> np.ndarray:
    """espeak-ng speech of `text` in the voice of `key`: (N,) float32 at 16 kHz."""
    import soundfile as sf
    from scipy.signal import resample_poly

    require("espeak-ng")
    voice, speed = voice_for(key)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", path, text], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        x, rate = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = np.gcd(rate, SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, rate // g).astype(np.float32)
    return np.clip(x, -1.0, 1.0)


def write_wav(path: str, samples: np.ndarray) -> None:
    import soundfile as sf

    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, samples, SAMPLE_RATE, subtype="PCM_16")


def clip_name(key: str) -> str:
    """A file name for a key: readable prefix + hash (keys may hold any character)."""
    slug = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:40]
    return f"{slug}-{stable_hash(key):08x}"


def speak_to(folder: str, text: str, key: str) -> str:
    """Speak `text` (voice by `key`) into folder/<clip_name(key)>.wav unless it exists. Returns the path."""
    path = os.path.join(folder, clip_name(key) + ".wav")
    if not os.path.exists(path):
        write_wav(path, speak(text, key))
    return path


def save_emoji(folder: str, e: Emoji, size: int = 160) -> str | None:
    """Render `e` to folder/<clip_name(name)>.png unless it exists; None when the font lacks it."""
    path = os.path.join(folder, clip_name(e.name) + ".png")
    if not os.path.exists(path):
        img = render_emoji(e.char, size)
        if img is None:
            return None
        os.makedirs(folder, exist_ok=True)
        img.save(path)
    return path
