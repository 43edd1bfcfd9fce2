"""Shared by the data builders: the fixed held-out split and JSONL writing."""

from __future__ import annotations

import json
import os
import zlib

TEST_PERCENT = 20  # every builder holds out the same fraction, chosen by a hash of a stable key


def is_test(key: str, percent: int = TEST_PERCENT) -> bool:
    """Fixed held-out split: crc32 of a stable key (a name, not a position), so adding data never moves a row."""
    return zlib.crc32(key.encode("utf-8")) % 100 < percent


def write_splits(out: str, rows: list[tuple[str, dict]]) -> dict[str, int]:
    """rows: (split key, example) -> out/train.jsonl and out/test.jsonl, atomically. Returns the counts."""
    os.makedirs(out, exist_ok=True)
    counts = {"train": 0, "test": 0}
    files = {s: open(os.path.join(out, f".{s}.jsonl.tmp"), "w", encoding="utf-8") for s in counts}
    try:
        for key, example in rows:
            split = "test" if is_test(key) else "train"
            files[split].write(json.dumps(example, ensure_ascii=False) + "\n")
            counts[split] += 1
    finally:
        for f in files.values():
            f.close()
    for s in counts:
        os.replace(os.path.join(out, f".{s}.jsonl.tmp"), os.path.join(out, f"{s}.jsonl"))
    return counts
