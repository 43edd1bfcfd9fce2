"""Build examples/media, the small mixed-media sample the README embeds, from offline Debian sources.

    python scripts/make_examples.py [--out examples/media]

Needs (Debian): fonts-noto-color-emoji, espeak-ng, ffmpeg, wordnet, sound-theme-freedesktop.
The output is committed (under 3 MB), so a fresh clone needs none of them to run the README.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
from PIL import Image, ImageDraw, ImageFont

EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
WORDNET = "/usr/share/wordnet/data.noun"
BELL = "/usr/share/sounds/freedesktop/stereo/bell.oga"

# (file stem, emoji, words spoken over it in the video)
EMOJI = [
    ("cat", "\U0001F431", "a cat face"),
    ("red-car", "\U0001F697", "a red car"),
    ("pizza", "\U0001F355", "a slice of pizza"),
    ("rocket", "\U0001F680", "a rocket flying to space"),
]


def render_emoji(ch: str, size: int = 160) -> Image.Image:
    """An emoji drawn by Noto Color Emoji (a bitmap font: drawn at 109 px, then scaled) on white."""
    font = ImageFont.truetype(EMOJI_FONT, 109)
    canvas = Image.new("RGBA", (136, 128), (255, 255, 255, 0))
    ImageDraw.Draw(canvas).text((0, 0), ch, font=font, embedded_color=True)
    canvas = canvas.crop(canvas.getbbox())
    out = Image.new("RGB", (size, size), "white")
    canvas.thumbnail((size - 16, size - 16), Image.LANCZOS)
    out.paste(canvas, ((size - canvas.width) // 2, (size - canvas.height) // 2), canvas)
    return out


def speak(text: str, path: str) -> None:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", path, text], check=True)


def wordnet_glosses(words: list[str]) -> dict[str, str]:
    """The first WordNet noun gloss of each word."""
    found: dict[str, str] = {}
    with open(WORDNET, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  ") or "|" not in line:
                continue
            head, gloss = line.split("|", 1)
            fields = head.split()
            lemma = fields[4].lower()
            if lemma in words and lemma not in found:
                found[lemma] = gloss.strip()
    return found


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "examples", "media"))
    out = os.path.abspath(ap.parse_args().out)
    shutil.rmtree(out, ignore_errors=True)
    for sub in ("images", "audio", "video", "text"):
        os.makedirs(os.path.join(out, sub))

    # Images: each emoji in a different format.
    formats = {"cat": "png", "red-car": "jpg", "pizza": "webp", "rocket": "gif"}
    slides = []
    for stem, ch, _ in EMOJI:
        img = render_emoji(ch)
        img.save(os.path.join(out, "images", f"{stem}.{formats[stem]}"), quality=90)
        slides.append(img)

    # Audio: a spoken sentence (WAV) and a real system sound (Ogg Vorbis).
    speak("The quick brown fox jumps over the lazy dog.", os.path.join(out, "audio", "fox.wav"))
    shutil.copy(BELL, os.path.join(out, "audio", "bell.ogg"))

    # Video: an H.264 + AAC slideshow of the emoji, each slide narrated.
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for i, ((stem, _, words), img) in enumerate(zip(EMOJI, slides)):
            img.save(os.path.join(tmp, f"{i}.png"))
            speak(f"This is {words}.", os.path.join(tmp, f"{i}.wav"))
            clip = os.path.join(tmp, f"{i}.mp4")
            ffmpeg("-loop", "1", "-i", os.path.join(tmp, f"{i}.png"), "-i", os.path.join(tmp, f"{i}.wav"),
                   "-t", "2.5", "-r", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ar", "16000",
                   "-af", "apad", "-shortest", clip)
            parts.append(clip)
        listing = os.path.join(tmp, "list.txt")
        with open(listing, "w") as f:
            f.writelines(f"file '{p}'\n" for p in parts)
        ffmpeg("-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", os.path.join(out, "video", "emoji-slideshow.mp4"))

    # Text: WordNet glosses (plain text) and a Python standard library docstring (Markdown).
    glosses = wordnet_glosses(["cat", "car", "pizza", "rocket", "fox"])
    with open(os.path.join(out, "text", "glossary.txt"), "w", encoding="utf-8") as f:
        for word, gloss in sorted(glosses.items()):
            f.write(f"{word}: {gloss}\n")
    with open(os.path.join(out, "text", "json-module.md"), "w", encoding="utf-8") as f:
        f.write("# The json module\n\n" + inspect.getdoc(json) + "\n")

    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(out) for n in ns)
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
