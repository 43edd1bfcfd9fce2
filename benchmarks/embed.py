"""Embedding throughput, incremental-rerun cost and memory of `gemb2 embed`, with the tiny model on this CPU.

`--only throughput --model gemb2-mini-v1 --model gemb2-mini-v2 --speech 8` compares models (each row against the
first model's): what recognition (gemb2-mini-v2: class names, Whisper's decoding) costs per modality.

    python benchmarks/embed.py [--quick] [--model NAME ...] [--speech N]

Prints, each against a baseline measured in the same run:
  1. files/s and segments/s per modality (text, image, audio, video) through the whole pipeline
     (discovery, loader processes, model, LanceDB writes);
  2. rerun time on an unchanged 10,000-file tree (with remembered failures and empty files), as a ratio to a
     walk that stats every file (what a rerun must do to see in-place edits), in-process and whole-process;
  3. peak RSS of `gemb2 embed` (all processes) on a 30-minute video with sound (goal < 1.5 GB).
Results go in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("LANCE_LOG", "error")

from benchmarks._util import PeakRSS
from tests.media import write_image, write_text, write_wav


def make_corpus(root: str, n_text: int, n_image: int, n_audio: int, n_video: int) -> None:
    import numpy as np

    words = [
        "the",
        "a",
        "cat",
        "dog",
        "car",
        "red",
        "blue",
        "sea",
        "boat",
        "music",
        "river",
        "city",
        "night",
        "light",
        "stone",
        "paper",
    ]
    rng = np.random.default_rng(0)
    for i in range(n_text):
        write_text(os.path.join(root, "text", f"t{i:05d}.txt"), " ".join(rng.choice(words, size=rng.integers(20, 400))))
    for i in range(n_image):  # 640x480 JPEGs
        write_image(os.path.join(root, "image", f"i{i:05d}.jpg"), seed=i, size=(480, 640))
    for i in range(n_audio):  # 60 s at 44.1 kHz -> 2 windows each
        write_wav(os.path.join(root, "audio", f"a{i:03d}.wav"), seconds=60, freq=220 + 10 * i, sr=44100)
    os.makedirs(os.path.join(root, "video"), exist_ok=True)
    for i in range(n_video):  # 60 s, 320x240 @ 25 fps, H.264 + AAC -> 2 windows each
        ffmpeg_testsrc(os.path.join(root, "video", f"v{i:03d}.mp4"), 60, "320x240", 25)


def ffmpeg_testsrc(path: str, seconds: int, size: str, fps: int) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={size}:rate={fps}",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            path,
        ],
        check=True,
    )


SENTENCES = [
    "Please open the front door and turn on the kitchen light.",
    "The meeting moved to Thursday afternoon at three o'clock.",
    "Remember to water the tomatoes before you leave for work.",
    "Our train was late because of snow on the northern line.",
]


def make_speech(root: str, n: int) -> None:
    """`n` spoken sentences (espeak-ng, then 16 kHz WAV), in root/speech: what a model that reads speech decodes."""
    if n == 0 or shutil.which("espeak-ng") is None:
        return
    os.makedirs(os.path.join(root, "speech"), exist_ok=True)
    for i in range(n):
        raw = os.path.join(root, f"raw{i}.wav")
        subprocess.run(["espeak-ng", "-w", raw, SENTENCES[i % len(SENTENCES)]], check=True, capture_output=True)
        out = os.path.join(root, "speech", f"{i:03d}.wav")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", raw, "-ar", "16000", out], check=True)
        os.remove(raw)


def throughput(root: str, workers: int, source: str = "tiny", base: dict[str, float] | None = None) -> dict[str, float]:
    """files/s per modality of `source` through the whole pipeline; with `base` (the first model's), the ratios."""
    from gemb2 import load_model
    from gemb2.pipeline.embed import EmbedOptions, run_embed
    from gemb2.store import LanceStore

    model = load_model(source)
    rates: dict[str, float] = {}
    print(
        f"\n## 1. Throughput per modality ({model.model_id}, {workers} loader processes, CPU threads {os.cpu_count()})"
    )
    print(
        f"{'modality':<8} {'files':>6} {'segments':>9} {'seconds':>8} {'files/s':>9} {'segments/s':>11} {'vs first':>9}"
    )
    for modality in ("text", "image", "audio", "speech", "video"):
        if not os.path.isdir(os.path.join(root, modality)):
            continue
        db = tempfile.mkdtemp(prefix="gemb2-bench-db-")
        store = LanceStore(db, model=model.model_id, dim=model.config.out_dim)
        t0 = time.perf_counter()
        r = run_embed(
            [os.path.join(root, modality)],
            store,
            model_id=model.model_id,
            get_model=lambda: model,
            options=EmbedOptions(workers=workers),
        )
        dt = time.perf_counter() - t0
        assert r.files_failed == 0, r.failures
        n = r.files_added
        rates[modality] = n / dt
        ratio = f"{rates[modality] / base[modality]:>9.2f}" if base and modality in base else f"{'':>9}"
        print(f"{modality:<8} {n:>6} {r.rows_added:>9} {dt:>8.2f} {n / dt:>9.1f} {r.rows_added / dt:>11.1f} {ratio}")
        shutil.rmtree(db)
    return rates


def recognition_cost(root: str, rounds: int = 3) -> None:
    """model.encode of the same images and spoken sentences by gemb2-mini-v1 and -v2, interleaved round by round
    (v1, v2, v1, v2, ...: contention on a shared machine hits both alike); v2 - v1 is what recognition costs."""
    import numpy as np

    from gemb2 import load_model
    from gemb2.data.discover import modality_of
    from gemb2.data.load import load_file
    from gemb2.pipeline.loadspec import load_spec_for

    v1, v2 = load_model("gemb2-mini-v1"), load_model("gemb2-mini-v2")
    spec = load_spec_for(v1)
    print(f"\n## Recognition cost: {v1.model_id} vs {v2.model_id}, model.encode, best of {rounds} interleaved rounds")
    print(f"{'modality':<8} {'items':>6} {'v1 s/item':>10} {'v2 s/item':>10} {'added s/item':>13} {'v2 / v1':>8}")
    for kind in ("image", "speech"):
        folder = os.path.join(root, kind)
        paths = sorted(os.path.join(folder, f) for f in os.listdir(folder))[:8]
        parts = [next(iter(load_file(p, modality_of(p) or kind, spec))).parts for p in paths]
        v2.encode(parts[:1])  # loads Whisper once, outside the timing
        best = {1: np.inf, 2: np.inf}
        for _ in range(rounds):
            for k, m in ((1, v1), (2, v2)):
                t0 = time.perf_counter()
                m.encode(parts)
                best[k] = min(best[k], (time.perf_counter() - t0) / len(parts))
        added, ratio = best[2] - best[1], best[2] / best[1]
        print(f"{kind:<8} {len(parts):>6} {best[1]:>10.3f} {best[2]:>10.3f} {added:>13.3f} {ratio:>8.2f}")


def walk(root: str, stat: bool = False) -> int:
    """Count the files under root with os.scandir; with stat=True, also stat each one (what a rerun must do)."""
    n, todo = 0, [root]
    while todo:
        with os.scandir(todo.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    todo.append(e.path)
                else:
                    if stat:
                        e.stat(follow_symlinks=False)
                    n += 1
    return n


# the whole-process baseline: a bare Python process running `walk(root, stat=True)`, nothing else imported
STAT_WALK = "import os, sys\n" + inspect.getsource(walk) + "walk(sys.argv[1], stat=True)\n"


def best_of(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def rerun(n_files: int, workers: int) -> None:
    """An unchanged tree of `n_files` files, 1 % of them broken (remembered failures) and 1 % empty texts."""
    from gemb2 import load_model
    from gemb2.pipeline.embed import EmbedOptions, run_embed
    from gemb2.store import LanceStore

    root = tempfile.mkdtemp(prefix="gemb2-bench-tree-")
    for i in range(n_files):
        path = os.path.join(root, f"d{i // 100:03d}", f"f{i:05d}.txt")
        if i % 100 == 1:
            write_text(path, "")  # nothing to embed: recorded without rows
        elif i % 100 == 2:
            write_text(path[:-4] + ".png", "not a picture")  # fails once, then is remembered
        else:
            write_text(path, f"file number {i}")
    model = load_model("tiny")
    db = tempfile.mkdtemp(prefix="gemb2-bench-db-")
    store = LanceStore(db, model=model.model_id, dim=model.config.out_dim)
    t0 = time.perf_counter()
    first = run_embed(
        [root], store, model_id=model.model_id, get_model=lambda: model, options=EmbedOptions(workers=workers)
    )
    t_first = time.perf_counter() - t0

    def never():
        raise AssertionError("model loaded on an unchanged tree")

    def again():
        r = run_embed(
            [root], LanceStore(db), model_id=model.model_id, get_model=never, options=EmbedOptions(workers=workers)
        )
        assert r.files_unchanged + r.files_failed_known == n_files and r.files_failed == 0, r

    walk(root)  # warm the dentry cache for every contender alike
    t_rerun, t_bare, t_stat = best_of(again), best_of(lambda: walk(root)), best_of(lambda: walk(root, stat=True))
    print(
        f"\n## 2. Rerun on an unchanged {n_files}-file tree (best of 5, warm cache; 1 % remembered failures, 1 % empty)"
    )
    print(f"first run: {first.files_added} files added, {first.files_failed} failed in {t_first:.1f}s")
    print(f"os.scandir walk + stat (baseline): {t_stat * 1e3:8.1f} ms")
    print(f"bare os.scandir walk:              {t_bare * 1e3:8.1f} ms   ({t_bare / t_stat:.2f}x baseline)")
    print(f"gemb2 rerun (walk, stat, diff):    {t_rerun * 1e3:8.1f} ms   ({t_rerun / t_stat:.2f}x baseline)")

    # Whole processes, as a user runs them: the CLI against a Python process that walks and stats the tree.
    env = dict(os.environ, HF_HUB_OFFLINE="1", LANCE_LOG="error")
    cli = [sys.executable, "-m", "gemb2", "embed", root, "--db", db, "--model", "tiny", "--quiet", "--json"]
    stat_walk = [sys.executable, "-c", STAT_WALK, root]
    t_cli = best_of(lambda: subprocess.run(cli, check=True, capture_output=True, env=env), repeat=3)
    t_py = best_of(lambda: subprocess.run(stat_walk, check=True, capture_output=True, env=env), repeat=3)
    print(f"whole process: python walk + stat {t_py:6.2f} s; `gemb2 embed` rerun {t_cli:6.2f} s ({t_cli / t_py:.2f}x)")
    shutil.rmtree(root)
    shutil.rmtree(db)


def long_video_rss(minutes: int) -> None:
    tmp = tempfile.mkdtemp(prefix="gemb2-bench-video-")
    path = os.path.join(tmp, "media", "long.mp4")
    os.makedirs(os.path.dirname(path))
    t0 = time.perf_counter()
    ffmpeg_testsrc(path, minutes * 60, "1280x720", 25)
    print(
        f"\n## 3. Peak RSS embedding one {minutes}-minute 1280x720 H.264+AAC video "
        f"({os.path.getsize(path) / 1e6:.0f} MB, made in {time.perf_counter() - t0:.0f}s)"
    )
    base = subprocess.Popen(
        [sys.executable, "-c", "import gemb2.model, gemb2.pipeline.embed, lancedb, torch, time; time.sleep(3)"]
    )
    with PeakRSS(base.pid) as idle:
        base.wait()
    cmd = [
        sys.executable,
        "-m",
        "gemb2",
        "embed",
        os.path.join(tmp, "media"),
        "--model",
        "tiny",
        "--db",
        os.path.join(tmp, "db"),
        "--json",
        "--quiet",
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakRSS(proc.pid) as peak:
        out, err = proc.communicate()
    dt = time.perf_counter() - t0
    assert proc.returncode == 0, err
    print(f"baseline: a process that imports gemb2, torch and lancedb: {idle.peak / 2**20:7.0f} MiB")
    print(
        f"gemb2 embed (all processes), peak RSS:                   {peak.peak / 2**20:7.0f} MiB "
        f"({peak.peak / idle.peak:.2f}x baseline; goal < 1536 MiB) in {dt:.0f}s; {out.strip()}"
    )
    shutil.rmtree(tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller corpora, a 3-minute video")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--only", choices=["throughput", "rerun", "rss", "recognition"])
    ap.add_argument(
        "--model", action="append", help="throughput of these models, each against the first (default tiny)"
    )
    ap.add_argument("--speech", type=int, default=0, help="also this many espeak-ng sentences (a 'speech' row)")
    a = ap.parse_args()
    if a.only in (None, "throughput"):
        root = tempfile.mkdtemp(prefix="gemb2-bench-corpus-")
        make_corpus(root, *((100, 50, 4, 2) if a.quick else (1000, 300, 20, 6)))
        make_speech(root, a.speech)
        base = None
        for source in a.model or ["tiny"]:
            rates = throughput(root, a.workers, source, base)
            base = base or rates
        shutil.rmtree(root)
    if a.only == "recognition":  # gemb2-mini v2's recognition against v1, on 8 images and 8 spoken sentences
        root = tempfile.mkdtemp(prefix="gemb2-bench-corpus-")
        make_corpus(root, 0, 8, 0, 0)
        make_speech(root, 8)
        recognition_cost(root)
        shutil.rmtree(root)
    if a.only in (None, "rerun"):
        rerun(1000 if a.quick else 10_000, a.workers)
    if a.only in (None, "rss"):
        long_video_rss(3 if a.quick else 30)


if __name__ == "__main__":
    main()
