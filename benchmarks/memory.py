"""Peak resident memory of EACH process of `gemb2 embed` on many videos of mixed codecs and sizes.

    python benchmarks/memory.py [--videos 56] [--model gemb2-mini] [--workers 2] [--keep DIR]

Makes a corpus with ffmpeg (H.264/AAC mp4, MPEG-4 part 2 mp4, VP9/Opus and VP8/Vorbis webm, MJPEG/PCM avi,
HEVC mp4 when libx265 is there; with and without sound; 160p to 1080p; 2 to 90 s), runs the real CLI on it
and samples /proc every 50 ms for the main process and each loader worker separately.

Prints, against a baseline measured in the same run (a process that imports gemb2, torch and lancedb and
loads the model): the peak RSS of the main process, of each worker, and the bounds RELIABILITY.md states
(main: baseline + what `gemb2.data.limits.main_memory_budget` allows; each worker: max_worker_memory_mb).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._util import Sampler, tree_rss  # noqa: E402

# (video codec args, audio codec args or None, container extension)
CODECS = [
    (["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"], ["-c:a", "aac"], "mp4"),
    (["-c:v", "mpeg4", "-q:v", "5"], ["-c:a", "libmp3lame"], "mp4"),
    (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-pix_fmt", "yuv420p"], ["-c:a", "libopus"], "webm"),
    (["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-pix_fmt", "yuv420p"], ["-c:a", "libvorbis"], "webm"),
    (["-c:v", "mjpeg", "-q:v", "8", "-pix_fmt", "yuvj420p"], ["-c:a", "pcm_s16le"], "avi"),
    (["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"],
     ["-c:a", "aac"], "mp4"),
]
SIZES = ["284x160", "320x240", "480x360", "640x360", "854x480", "1280x720", "1920x1080"]
DURATIONS = [2, 5, 8, 12, 20, 31, 45, 61, 90]


def have_encoder(name: str) -> bool:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return f" {name} " in out


def make_video(path: str, vcodec: list[str], acodec: list[str] | None, size: str, seconds: int, seed: int) -> None:
    src = ["testsrc2", "smptebars", "rgbtestsrc", "testsrc"][seed % 4]
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"{src}=size={size}:rate=25"]
    if acodec:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={220 + 20 * seed}:sample_rate=44100"]
    cmd += ["-t", str(seconds), *vcodec]
    cmd += [*acodec, "-shortest"] if acodec else ["-an"]
    subprocess.run([*cmd, path], check=True)


def make_corpus(root: str, n: int) -> list[tuple[str, str, int, bool]]:
    """n videos cycling through codecs, sizes, durations and sound/no sound; returns (name, size, s, sound)."""
    codecs = [c for c in CODECS if have_encoder(c[0][1])]
    made = []
    for i in range(n):
        vcodec, acodec, ext = codecs[i % len(codecs)]
        size = SIZES[(i * 3) % len(SIZES)]
        seconds = DURATIONS[(i * 5) % len(DURATIONS)]
        if size == "1920x1080":
            seconds = min(seconds, 12)  # keep the corpus quick to make on a small machine
        sound = i % 3 != 2
        sub = os.path.join(root, f"d{i % 4}")
        os.makedirs(sub, exist_ok=True)
        name = os.path.join(sub, f"v{i:03d}.{ext}")
        make_video(name, vcodec, acodec if sound else None, size, seconds, i)
        made.append((name, size, seconds, sound))
    return made


class PerProcessPeak(Sampler):
    """Samples the RSS of a process and each of its descendants; peak RSS per pid, in bytes."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(interval)
        self.pid = pid
        self.peaks: dict[int, int] = {}
        self.names: dict[int, str] = {}

    def sample(self) -> None:
        for p, rss in tree_rss(self.pid).items():
            if p not in self.names:
                try:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        self.names[p] = f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
                except OSError:
                    continue
            self.peaks[p] = max(self.peaks.get(p, 0), rss)


def baseline_rss(model: str) -> int:
    """Peak RSS of a process that imports gemb2, torch and lancedb and loads `model` (what any run costs)."""
    code = ("import gemb2.pipeline.embed, lancedb, torch; from gemb2 import load_model; "
            f"load_model({model!r}); import time; time.sleep(2)")
    p = subprocess.Popen([sys.executable, "-c", code])
    with PerProcessPeak(p.pid) as peak:
        p.wait()
    return peak.peaks.get(p.pid, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=56)
    ap.add_argument("--model", default="gemb2-mini")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--keep", help="make (or reuse) the corpus in this folder and keep it")
    a = ap.parse_args()

    from gemb2.data.limits import MAIN_MEMORY_BUDGET_MB
    from gemb2.data.segments import LoadSpec

    root = a.keep or tempfile.mkdtemp(prefix="gemb2-bench-videos-")
    media = os.path.join(root, "media")
    t0 = time.perf_counter()
    if not os.path.isdir(media):
        made = make_corpus(media, a.videos)
        codecs = sorted({os.path.splitext(m[0])[1] for m in made})
        print(f"corpus: {len(made)} videos ({', '.join(codecs)}; {sum(m[3] for m in made)} with sound; "
              f"{min(m[2] for m in made)}-{max(m[2] for m in made)} s; "
              f"{sum(os.path.getsize(m[0]) for m in made) / 1e6:.0f} MB), made in {time.perf_counter() - t0:.0f}s")
    n_files = sum(len(fs) for _, _, fs in os.walk(media))

    base = baseline_rss(a.model)
    db = tempfile.mkdtemp(prefix="gemb2-bench-db-")
    cmd = [sys.executable, "-m", "gemb2", "embed", media, "--model", a.model, "--db", db, "--json", "--quiet",
           "--workers", str(a.workers)]
    if a.batch_size:
        cmd += ["--batch-size", str(a.batch_size)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PerProcessPeak(proc.pid) as peak:
        out, err = proc.communicate()
    dt = time.perf_counter() - t0
    shutil.rmtree(db)
    if not a.keep:
        shutil.rmtree(root)
    if proc.returncode != 0:
        print(err, file=sys.stderr)
        raise SystemExit(f"gemb2 embed exited {proc.returncode}")

    main_peak = peak.peaks.get(proc.pid, 0)
    workers = {p: r for p, r in peak.peaks.items() if p != proc.pid and "multiprocessing" in peak.names.get(p, "")}
    worker_bound = LoadSpec().max_worker_memory_mb << 20
    main_bound = base + (MAIN_MEMORY_BUDGET_MB << 20)
    mib = lambda b: f"{b / 2**20:7.0f} MiB"  # noqa: E731
    print(f"\n## Peak RSS per process: `gemb2 embed` of {n_files} videos, --model {a.model}, "
          f"--workers {a.workers}, {dt:.0f}s")
    print(f"baseline (imports + model loaded, nothing embedded): {mib(base)}")
    print(f"main process:                                        {mib(main_peak)}  "
          f"({main_peak / base:.2f}x baseline; bound baseline + {MAIN_MEMORY_BUDGET_MB} MiB = {mib(main_bound)})"
          f"  {'OK' if main_peak <= main_bound else 'OVER'}")
    for p, r in sorted(workers.items()):
        print(f"loader worker pid {p:<7}                             {mib(r)}  "
              f"(bound {mib(worker_bound)})  {'OK' if r <= worker_bound else 'OVER'}")
    print(f"summary: {out.strip()}")


if __name__ == "__main__":
    main()
