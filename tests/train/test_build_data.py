"""The offline data builders: each runs with a tiny limit, is deterministic, and writes manifests the
training reader parses and files the training loaders decode (real espeak-ng, Pillow, ffmpeg output)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gemb2.data.manifest import Manifest
from gemb2.data.manifest_items import load_item
from gemb2.model import Gemb2Model, mini
from gemb2.parts import Audio, Image, Text, Video
from gemb2.pipeline.loadspec import load_spec_for
from tests.system import install_line, need_debian

ROOT = Path(__file__).resolve().parents[2]
EMOJI_DATA = ["unicode-data", "unicode-cldr-core"]
# builder -> the Debian packages it needs (scripts/build_data/media.py: DEBIAN says what each installs)
needs = {"emoji": EMOJI_DATA + ["fonts-noto-color-emoji"], "wordnet": ["wordnet"],
         "speech": ["espeak-ng", "wordnet"] + EMOJI_DATA,
         "image_audio": ["espeak-ng", "fonts-noto-color-emoji"] + EMOJI_DATA,
         "video": ["espeak-ng", "ffmpeg", "fonts-noto-color-emoji"] + EMOJI_DATA}
# builder -> (arguments, the tasks of train.jsonl, the tasks of test.jsonl, the part types of a test pair)
BUILDERS = {
    "emoji": (["--limit", "40"], {"emoji-image-name", "emoji-keywords-image"},
              {"emoji-image-name", "emoji-keywords-image", "emoji-name-image"}),
    "wordnet": (["--limit", "60"], {"wordnet-word-gloss"}, {"wordnet-word-gloss"}),
    "speech": (["--limit", "16"], {"speech-text"}, {"speech-text"}),
    "image_audio": (["--limit", "16"], {"image-audio"}, {"image-audio", "audio-image"}),
    "video": (["--limit", "6", "--emoji", "40"], {"video-caption"}, {"video-caption", "video-caption-reverse"}),
}
PARTS = {"emoji-image-name": (Image, Text), "emoji-keywords-image": (Text, Image), "emoji-name-image": (Text, Image),
         "wordnet-word-gloss": (Text, Text), "speech-text": (Audio, Text), "image-audio": (Image, Audio),
         "audio-image": (Audio, Image), "video-caption": (Text, Video), "video-caption-reverse": (Video, Text)}


def _builders_debian() -> dict[str, str]:
    """media.py's DEBIAN table (package -> the file or command the builders use), read from the script itself."""
    if "build_data_media" not in sys.modules:
        spec = importlib.util.spec_from_file_location("build_data_media", ROOT / "scripts/build_data/media.py")
        module = sys.modules["build_data_media"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
        spec.loader.exec_module(module)
    return sys.modules["build_data_media"].DEBIAN


def need_builder_packages(name: str) -> None:
    debian = _builders_debian()
    for package in needs[name]:
        need_debian(package, debian[package])


def build(name: str, out: Path) -> str:
    r = subprocess.run([sys.executable, str(ROOT / "scripts/build_data" / f"{name}.py"), "--out", str(out),
                        *BUILDERS[name][0]], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stderr


@pytest.fixture(scope="module")
def spec():
    return load_spec_for(Gemb2Model(mini()))  # the mini sizes: 1 frame per second, 30 s windows


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.slow
def test_builder_writes_parseable_decodable_manifests(name, tmp_path, spec):
    need_builder_packages(name)
    out = tmp_path / name
    log = build(name, out)
    assert "train" in log and "test" in log  # the counts
    train, test = Manifest(out / "train.jsonl"), Manifest(out / "test.jsonl")
    assert set(train.tasks) == BUILDERS[name][1], train.tasks
    assert set(test.tasks) == BUILDERS[name][2], test.tasks
    for task in test.tasks:
        e = test.examples(task, [0])[0]
        q, d = load_item(e.query, spec), load_item(e.positive, spec)
        assert (type(q[0]), type(d[0])) == PARTS[task]
        for p in (q[0], d[0]):
            if isinstance(p, Audio):
                assert 0.3 * 16000 < len(p.samples) < 12 * 16000 and np.abs(p.samples).max() > 0.05  # speech
            if isinstance(p, Video):
                assert len(p.frames) >= 2 and p.audio is not None and np.abs(p.audio.samples).max() > 0.05
            if isinstance(p, Image):
                assert p.pixels.std() > 10  # an emoji, not a blank or a missing-glyph box
    # held out by key: no query text of the test split is a query of the train split
    q_text = lambda m: {e.query[0].text for t in m.tasks for e in m.examples(t, range(m.tasks[t]))}  # noqa: E731
    assert not (q_text(train) - {None}) & (q_text(test) - {None})


@pytest.mark.slow
def test_builders_are_deterministic(tmp_path):
    need_builder_packages("speech")
    digests = []
    for run in ("a", "b"):
        build("speech", tmp_path / run)
        files = sorted(p for p in (tmp_path / run).rglob("*") if p.is_file())
        digests.append([(p.relative_to(tmp_path / run).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
                        for p in files])
    assert digests[0] == digests[1]


@pytest.mark.slow
def test_without_the_debian_packages_builders_say_which_and_their_tests_skip_with_the_apt_line(tmp_path):
    # a fresh machine: no data under /usr/share (GEMB2_DEBIAN_SHARE -> an empty folder) and no espeak-ng or
    # ffmpeg on PATH (an empty folder); the README's test command must skip these tests, not fail them
    empty = tmp_path / "empty"
    empty.mkdir()
    env = dict(os.environ, GEMB2_DEBIAN_SHARE=str(empty), PATH=str(empty))
    for name in BUILDERS:
        r = subprocess.run([sys.executable, str(ROOT / "scripts/build_data" / f"{name}.py"), "--out",
                            str(tmp_path / name), *BUILDERS[name][0]], capture_output=True, text=True, env=env,
                           timeout=300)
        lines = r.stderr.splitlines()
        assert r.returncode == 1 and len(lines) == 1, r.stderr
        assert "needs the Debian package" in lines[0] and "apt-get install -y --no-install-recommends " in lines[0]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", __file__,
                        "-k", "not without_the_debian"], capture_output=True, text=True, env=env, cwd=ROOT,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "failed" not in r.stdout and f"{len(BUILDERS) + 1} skipped" in r.stdout, r.stdout[-3000:]
    for package in ("unicode-data", "wordnet", "espeak-ng"):  # each builder's first missing package
        assert install_line(package) in r.stdout, r.stdout[-3000:]
