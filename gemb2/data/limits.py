"""Resource limits of loader worker processes: an address-space cap set by a worker on itself, and the
resident-memory reading the pool's watchdog uses (Linux /proc; elsewhere the limits are not enforced).

References: setrlimit(2) (RLIMIT_AS: "the maximum size of the process's virtual memory"); proc(5)
(/proc/PID/statm, field 2: resident pages); mallopt(3) (M_ARENA_MAX).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_ARENA_MAX = -8  # mallopt parameter number (glibc malloc.h)


def limit_address_space(extra_bytes: int) -> int | None:
    """Cap this process's address space at its present size plus `extra_bytes`; the cap, or None if unsupported.

    A larger allocation then fails (MemoryError in Python, NULL in C) instead of growing until the OOM
    killer picks a victim. glibc's per-thread malloc arenas (64 MiB of address space each) are first
    limited to 2, so that a decoder starting many threads does not hit the cap without using memory.
    """
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    _limit_malloc_arenas(2)
    vm = _vm_size_bytes()
    if vm is None:
        return None
    cap = vm + int(extra_bytes)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):
        return None
    return cap


MAIN_MEMORY_BUDGET_MB = 1024  # the main process of `gemb2 embed`: at most its size with the model loaded + this
#   (with the default options: loader buffer 128 MiB (pool.MAX_PENDING_BYTES) + one batch of segments 64 MiB
#   (EmbedOptions.max_batch_bytes) + one model call: at most MAX_MEDIA images/frames collated and the stems
#   run STEM_CHUNK items at a time (gemb2.model.model); glibc's free memory handed back after each media batch)


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc malloc_trim(3)); a no-op elsewhere.

    After a model call on video the freed activations stay resident in malloc's heap unless trimmed, and
    fragmentation makes the process's size ratchet up from batch to batch."""
    global _TRIM
    if _TRIM is None:
        name = ctypes.util.find_library("c")
        try:
            _TRIM = ctypes.CDLL(name).malloc_trim if name else False
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM = None


def preload_decoders() -> None:
    """Import the loaders and the codec libraries they use (those installed), so that their code and
    static buffers are mapped before `limit_address_space` measures the process."""
    import importlib

    for name in (
        "numpy",
        "PIL.Image",
        "cv2",
        "av",
        "pypdfium2",
        "soundfile",
        "tokenizers",
        "gemb2.data.text",
        "gemb2.data.image",
        "gemb2.data.audio",
        "gemb2.data.video",
        "gemb2.data.pdf",
    ):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def resident_bytes(pid: int) -> int | None:
    """Resident memory of process `pid` in bytes (/proc/PID/statm), or None if unknown or gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _vm_size_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _limit_malloc_arenas(n: int) -> None:
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        ctypes.CDLL(name).mallopt(_M_ARENA_MAX, n)
    except (OSError, AttributeError):
        pass
