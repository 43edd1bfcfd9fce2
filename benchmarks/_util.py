"""Shared by the benchmark scripts: a process-tree RSS sampler and a timer."""

from __future__ import annotations

import os
import threading
import time


def tree_rss(pid: int) -> dict[int, int]:
    """Resident memory in bytes of a process and each of its descendants, by pid, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
        rss[int(name)] = pages * page
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        out[p] = rss.get(p, 0)
        todo.extend(children.get(p, []))
    return out


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (Linux)."""
    return sum(tree_rss(pid).values())


class Sampler:
    """Calls `sample()` every `interval` seconds in a thread, from `with` until its end."""

    def __init__(self, interval: float):
        self.interval = interval
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


class PeakRSS(Sampler):
    """Samples the RSS of a process tree every `interval` seconds until stopped; `.peak` in bytes."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(interval)
        self.pid, self.peak = pid, 0

    def sample(self) -> None:
        self.peak = max(self.peak, tree_rss_bytes(self.pid))


# the vocabulary of the made-up documents the document benchmarks write
# fmt: off
WORDS = [
    "harbour", "tide", "keeper", "lamp", "storm", "fog", "vessel", "anchor", "chart", "compass", "signal", "beacon",
    "rock", "coast", "wave", "night", "light", "north", "bearing", "current", "wind", "sail", "rope", "deck", "hull",
    "mast", "cargo", "port", "starboard", "channel", "reef", "buoy",
]
# fmt: on
