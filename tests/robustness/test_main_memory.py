"""The main process of `gemb2 embed` stays within a stated memory bound on many videos (RELIABILITY.md).

Before the bound, the main process held up to `max_pending_segments` (256) loaded segments, batches of
`batch_size` (32) segments, and ran the image stem on every frame of a batch at once: on video, where one
segment is a window of up to max_frames frames, that was gigabytes (4.4 GB on 61 small videos with
gemb2-mini). Here a tiny model with large frames (448 px, 32 frames a window: 19 MB a segment) makes the
same pressure cheaply; the bound is the process's size with the model loaded (measured in the same run)
plus gemb2.data.limits.MAIN_MEMORY_BUDGET_MB.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from benchmarks.memory import PerProcessPeak
from tests.cli_run import ROOT_DIR, cli_cmd, cli_env
from tests.media import write_video

pytestmark = pytest.mark.slow


def _model_folder(tmp_path) -> str:
    from gemb2.model.config import tiny
    from gemb2.model.io import save_pretrained
    from gemb2.model.model import Gemb2Model

    cfg = dataclasses.replace(tiny(), name="tiny-bigframes", image_size=448, max_frames=32, video_fps=4.0)
    folder = tmp_path / "model"
    save_pretrained(Gemb2Model(cfg), folder)
    return str(folder)


def _peak(cmd: list[str]) -> tuple[subprocess.CompletedProcess, dict[int, int], int]:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=ROOT_DIR)
    with PerProcessPeak(p.pid, interval=0.02) as peak:
        out, err = p.communicate(timeout=300)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err), peak.peaks, p.pid


def test_main_process_stays_within_its_bound_on_many_videos(tmp_path):
    from gemb2.data.limits import MAIN_MEMORY_BUDGET_MB

    model = _model_folder(tmp_path)
    for i in range(40):  # 30 s each: one full window of 32 frames, upscaled to 448x448
        write_video(tmp_path / "media" / f"d{i % 3}" / f"v{i:02d}.mp4", seconds=30, fps=4, size=(96, 64), seed=i)

    # what any run costs: imports, the model loaded, nothing embedded
    idle_code = ("import gemb2.pipeline.embed, lancedb, torch, time; from gemb2 import load_model; "
                 f"load_model({model!r}); time.sleep(1)")
    _, idle, idle_pid = _peak([sys.executable, "-c", idle_code])
    base = idle[idle_pid]

    r, peaks, pid = _peak(cli_cmd("embed", str(tmp_path / "media"), "--model", model, "--db", str(tmp_path / "db"),
                                    "--workers", "2", "--json", "--quiet"))
    assert r.returncode == 0, r.stderr
    assert '"files_added": 40' in r.stdout
    main = peaks[pid]
    bound = base + (MAIN_MEMORY_BUDGET_MB << 20)
    assert main <= bound, (f"main process peaked at {main >> 20} MiB; bound {bound >> 20} MiB "
                           f"(idle with the model {base >> 20} MiB + {MAIN_MEMORY_BUDGET_MB} MiB)")
    workers = [v for p, v in peaks.items() if p != pid and v > 50 << 20]
    assert workers and max(workers) <= 2048 << 20  # max_worker_memory_mb: the workers' own bound still holds
