"""What a process opened, from an `strace -f -e trace=open,openat,openat2 -o FILE` log (tests that check a run
reads no model weights), and which files are gemb2-mini's weights."""

from __future__ import annotations

import os
import re

_OPEN = re.compile(r'open(?:at2?)?\((?:AT_FDCWD|\d+), "((?:[^"\\]|\\.)*)"|open\("((?:[^"\\]|\\.)*)"')


def opened(trace) -> set[str]:
    """Real paths of the files the traced processes opened successfully."""
    found = set()
    for line in open(trace, encoding="utf-8", errors="replace"):
        m = _OPEN.search(line)
        if m and not re.search(r"= -1 E", line):
            found.add(os.path.realpath(m.group(1) or m.group(2)))
    return found


def weight_files() -> set[str]:
    """gemb2-mini's weights: the files of its pretrained parts and the tensors the release adds."""
    from gemb2.pretrained.release import release_folder
    from gemb2.pretrained.weights import efficientnet_lite_file, minilm_folder, whisper_ct2_files

    files = [minilm_folder() / "model.safetensors", efficientnet_lite_file("lite0"), *whisper_ct2_files("tiny.en"),
             release_folder("gemb2-mini") / "adds.safetensors"]
    return {os.path.realpath(f) for f in files}
