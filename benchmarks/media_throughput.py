"""Images and video through `gemb2 embed` (tiny model) against decoding alone, same worker processes, on this CPU.

    python benchmarks/media_throughput.py [--images 1000] [--videos 6] [--workers 2]

Prints, measured in the same run:
  images: images/s of the whole pipeline (loaders, tiny model, LanceDB) on N 1280x720 JPEGs, as a ratio to
          (a) OpenCV `imread` + `resize` alone and (b) gemb2's own decode path alone (Pillow draft + fit_image),
          each in a pool of the same number of spawned processes. Goal >= 0.8 of (a).
  video:  sampled frames/s of the pipeline on M 60-second 640x360 H.264 videos at 1 frame/s, as a ratio to
          OpenCV alone decoding those same sampled frames (grab every frame, retrieve the sampled ones).
          Goal >= 0.8.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("LANCE_LOG", "error")


def _cv2_decode_resize(path: str) -> int:
    import cv2

    cv2.setNumThreads(1)
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    s = 224 / min(h, w)
    cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return 1


def _gemb2_decode(path: str) -> int:
    from gemb2.data.image import read_rgb
    from gemb2.parts import fit_image

    fit_image(read_rgb(path, 100_000_000, 224), 224)
    return 1


def _cv2_sampled_frames(path: str) -> int:
    """OpenCV alone: grab every frame, retrieve (convert) one per second: the decode-only cost of 1 frame/s."""
    import cv2

    cv2.setNumThreads(1)
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS)
    n, got, next_t = 0, 0, 0.0
    while cap.grab():
        t = n / fps
        n += 1
        if t + 0.5 / fps >= next_t:
            ok, frame = cap.retrieve()
            got += ok
            next_t += 1.0
    cap.release()
    return got


def pool_rate(fn, paths, workers: int, chunksize: int = 4) -> tuple[float, int]:
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        pool.map(abs, range(workers))  # start the workers before the clock
        t0 = time.perf_counter()
        n = sum(pool.imap_unordered(fn, paths, chunksize=chunksize))
        dt = time.perf_counter() - t0
    return n / dt, n


def tiny_model(one_fps: bool = False):
    """The tiny preset; with one_fps its video sampling is 1 frame/s for whole 30 s windows (max_frames 32,
    as gemb2-mini) instead of tiny's 8 frames per window, so that it samples what the baseline decodes."""
    import dataclasses

    import torch

    from gemb2 import load_model
    from gemb2.model import Gemb2Model
    from gemb2.model.config import tiny

    if not one_fps:
        return load_model("tiny")
    torch.manual_seed(0)
    return Gemb2Model(dataclasses.replace(tiny(), max_frames=32, max_time_buckets=32)).eval()


def pipeline_rate(root: str, workers: int, one_fps: bool = False) -> tuple[float, int, int]:
    from gemb2.pipeline.embed import EmbedOptions, run_embed
    from gemb2.store import LanceStore

    model = tiny_model(one_fps)
    db = tempfile.mkdtemp(prefix="gemb2-bench-db-")
    store = LanceStore(db, model=model.model_id, dim=model.config.out_dim)
    t0 = time.perf_counter()
    r = run_embed([root], store, model_id=model.model_id, get_model=lambda: model, options=EmbedOptions(workers=workers))
    dt = time.perf_counter() - t0
    assert r.files_failed == 0, r.failures
    frames = 0
    if store.table is not None:
        rows = store.table.search().select(["modality", "start", "end"]).limit(None).to_arrow().to_pylist()
        frames = sum(1 for _ in rows)
    shutil.rmtree(db)
    return r.files_added / dt, r.files_added, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    a = ap.parse_args()
    import cv2
    import numpy as np

    tmp = tempfile.mkdtemp(prefix="gemb2-bench-media-")
    try:
        img_dir = os.path.join(tmp, "images")
        os.makedirs(img_dir)
        rng = np.random.default_rng(0)
        for i in range(a.images):  # photo-like: smooth colour fields plus noise, 1280x720 JPEG q90
            small = rng.integers(0, 256, size=(9, 16, 3), dtype=np.uint8)
            img = cv2.resize(small, (1280, 720), interpolation=cv2.INTER_CUBIC)
            img = cv2.add(img, rng.integers(0, 24, size=img.shape, dtype=np.uint8))
            cv2.imwrite(os.path.join(img_dir, f"{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths = sorted(os.path.join(img_dir, n) for n in os.listdir(img_dir))
        base_a, _ = pool_rate(_cv2_decode_resize, paths, a.workers)
        base_b, _ = pool_rate(_gemb2_decode, paths, a.workers)
        ours, n, _ = pipeline_rate(img_dir, a.workers)
        print(f"## Images: {n} 1280x720 JPEGs, {a.workers} worker processes, tiny model")
        print(f"(a) OpenCV imread + resize alone (baseline): {base_a:8.1f} images/s")
        print(f"(b) gemb2 decode path alone:                 {base_b:8.1f} images/s  ({base_b / base_a:.2f}x baseline)")
        print(f"gemb2 embed (decode, model, LanceDB):        {ours:8.1f} images/s  ({ours / base_a:.2f}x baseline; goal >= 0.8)")

        vid_dir = os.path.join(tmp, "videos")
        os.makedirs(vid_dir)
        for i in range(a.videos):
            subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                            f"testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", f"sine=frequency={300 + 50 * i}",
                            "-t", "60", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                            "-shortest", os.path.join(vid_dir, f"{i:03d}.mp4")], check=True)
        vpaths = sorted(os.path.join(vid_dir, n) for n in os.listdir(vid_dir))
        t0 = time.perf_counter()
        base_v, frames = pool_rate(_cv2_sampled_frames, vpaths, a.workers, chunksize=1)  # whole files: balanced
        t_base = frames / base_v
        t0 = time.perf_counter()
        ours_v, nv, _ = pipeline_rate(vid_dir, a.workers, one_fps=True)
        t_ours = nv / ours_v
        print(f"\n## Video: {nv} x 60 s 640x360 H.264+AAC at 25 fps, sampled at 1 frame/s ({frames} frames), "
              f"{a.workers} worker processes, tiny model sampling 1 frame/s too")
        print(f"OpenCV decode of the sampled frames alone (baseline): {frames / t_base:8.1f} frames/s")
        print(f"gemb2 embed (frames + audio track, model, LanceDB):   {frames / t_ours:8.1f} frames/s  "
              f"({t_base / t_ours:.2f}x baseline; goal >= 0.8)")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
