"""Media throughput of `gemb2 embed` on a GPU (or the CPU): is the model kept fed?

    python benchmarks/gpu_media.py [--model gemb2-mini] [--device auto] [--workers N] [--quick]

For images (640x480 JPEGs), audio (60 s 44.1 kHz WAVs) and video (60 s 640x360 H.264 + AAC, 25 fps,
sampled at 1 frame/s) it measures, in the same run:

    baseline   the model alone: `encode` on items already decoded into memory (what the device can do)
    pipeline   `gemb2 embed`'s whole path (discovery, loader processes decoding the files, the model,
               LanceDB writes) on the same files

and prints images/s, audio-seconds/s and video-seconds/s of each, and the ratio pipeline / model alone:
near 1.0 means the loaders keep the device busy; far below means decoding is the bottleneck (add
--workers). Needs ffmpeg for the videos. benchmarks/gpu.sh runs it with gemb2-mini on the GPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("LANCEDB_LOG", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.embed import ffmpeg_testsrc  # noqa: E402
from tests.media import write_image, write_wav  # noqa: E402


def make_corpus(root: str, n_image: int, n_audio: int, n_video: int) -> dict[str, float]:
    """Writes the files; returns the seconds of media per modality (images count 1 each)."""
    for i in range(n_image):
        write_image(os.path.join(root, "image", f"i{i:05d}.jpg"), seed=i, size=(480, 640))
    for i in range(n_audio):
        write_wav(os.path.join(root, "audio", f"a{i:03d}.wav"), seconds=60, freq=220 + 10 * i, sr=44100)
    os.makedirs(os.path.join(root, "video"), exist_ok=True)
    for i in range(n_video):
        ffmpeg_testsrc(os.path.join(root, "video", f"v{i:03d}.mp4"), 60, "640x360", 25)
    return {"image": float(n_image), "audio": 60.0 * n_audio, "video": 60.0 * n_video}


def decoded_items(folder: str, model) -> list:
    """Every segment of every file under `folder`, decoded in this process as `gemb2 embed` would (not timed)."""
    from gemb2.data.discover import FileEntry, discover
    from gemb2.data.load import load_file
    from gemb2.pipeline.loadspec import load_spec_for

    spec = load_spec_for(model)
    return [seg.parts for f in discover([folder]) if isinstance(f, FileEntry)
            for seg in load_file(f, f.modality, spec)]


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gemb2-mini")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="loader processes")
    ap.add_argument("--batch-size", type=int, default=None, help="segments per model call [default: gemb2 embed's]")
    ap.add_argument("--quick", action="store_true", help="a tenth of the files")
    args = ap.parse_args()

    import torch

    from gemb2 import load_model
    from gemb2.pipeline.embed import EmbedOptions, run_embed
    from gemb2.store import LanceStore

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    batch_size = args.batch_size or (256 if device.type == "cuda" else 32)
    scale = 10 if args.quick else 1
    root = tempfile.mkdtemp(prefix="gemb2-gpu-media-")
    try:
        seconds = make_corpus(root, 2000 // scale, 40 // scale or 1, 10 // scale or 1)
        model = load_model(args.model).to(device)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"model {args.model} on {name}, {args.workers} loader processes, batch {batch_size}, "
              f"torch {torch.__version__}")
        unit = {"image": "images/s", "audio": "audio-s/s", "video": "video-s/s"}
        print(f"{'modality':<8} {'model alone':>14} {'gemb2 embed':>14} {'ratio':>7}   unit")
        for modality in ("image", "audio", "video"):
            folder = os.path.join(root, modality)
            items = decoded_items(folder, model)
            model.encode(items[: batch_size], batch_size=batch_size)  # warm-up: kernels, allocator, caches
            sync(device)
            t0 = time.perf_counter()
            model.encode(items, batch_size=batch_size)
            sync(device)
            alone = seconds[modality] / (time.perf_counter() - t0)
            db = tempfile.mkdtemp(prefix="gemb2-gpu-media-db-")
            store = LanceStore(db, model=model.model_id, dim=model.config.out_dim)
            t0 = time.perf_counter()
            r = run_embed([folder], store, model_id=model.model_id, get_model=lambda: model,
                          options=EmbedOptions(workers=args.workers, batch_size=batch_size))
            sync(device)
            piped = seconds[modality] / (time.perf_counter() - t0)
            shutil.rmtree(db)
            assert r.files_failed == 0, r.failures
            print(f"{modality:<8} {alone:>14.1f} {piped:>14.1f} {piped / alone:>7.2f}   {unit[modality]}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
