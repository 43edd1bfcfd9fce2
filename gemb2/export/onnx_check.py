"""The check every exported graph passes: onnxruntime runs it on inputs shaped unlike the traced ones, and its
vectors must match `model.encode` on the same items within CHECK_TOL (max abs difference on unit vectors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gemb2.model.model import Gemb2Model
from gemb2.parts import Audio, Image, Item, Video

from .graphs import Examples

CHECK_TOL = 1e-3  # max abs difference between a graph and model.encode on unit vectors, else the graph is dropped


def text_inputs(model: Gemb2Model, texts: list[str], task: str | None = "document") -> tuple[np.ndarray, np.ndarray]:
    """What the manifest says to feed the text graph, for `texts`: (input_ids, attention_mask) int64 (B, T). The
    model's own layout makes them (a text item's row is exactly the manifest's rule)."""
    batch = model.collate(texts, task)
    return batch.input_ids.numpy(), batch.mask.long().numpy()


def check_graph(name: str, path: Path, model: Gemb2Model, dim: int, ex: Examples) -> dict[str, Any]:
    """Run graph `name` (file `path`) with onnxruntime and compare with model.encode; a ValueError past CHECK_TOL.
    Returns the manifest's record of the check ({"checked": False, ...} without onnxruntime)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"checked": False, "why": "onnxruntime is not installed"}
    feed, items, task = _check_inputs(name, model, ex)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, feed)[0]
    want = model.encode(items, task=task, dim=dim, precision="fp32")
    diff = float(np.abs(got - want).max())
    if not diff <= CHECK_TOL:
        raise ValueError(
            f"the graph does not reproduce the model: max abs difference {diff:.3g} > {CHECK_TOL:g} "
            f"on a check batch of {len(items)}"
        )
    return {
        "checked": True,
        "max_abs_diff": diff,
        "batch": len(items),
        "against": "gemb2 model.encode on the same inputs, other shapes than the traced ones",
    }


def _check_inputs(
    name: str, model: Gemb2Model, ex: Examples
) -> tuple[dict[str, np.ndarray], list[Item | str], str | None]:
    """The graph's feed, the same inputs as items for model.encode, and the task."""
    if name == "text":
        texts: list[Item | str] = ["A photo of a dog running on the beach.", "x", "Ünïcödé, ∑ and 東京 " * 6]
        ids, mask = text_inputs(model, [str(t) for t in texts], "query")
        return {"input_ids": ids, "attention_mask": mask}, texts, "query"
    if name == "image":
        px = ex.pixels(3, seed=1)  # (3, 3, S, S)
        return (
            {"pixels": px.numpy()},
            [[Image(np.ascontiguousarray(p.permute(1, 2, 0).numpy()))] for p in px],
            "document",
        )
    if name == "audio":
        s = ex.audio(3, 2.3, 1)  # (3, N)
        return {"samples": s.numpy()}, [[Audio(np.ascontiguousarray(r.numpy()))] for r in s], "document"
    n = min(2, model.config.max_frames)  # video, video_frames; the model keeps max_frames of a longer item
    frames, times = ex.pixels(1, n, seed=1), torch.tensor([[0.4, 7.5][:n]])  # batch 1, 2 frames: not as traced
    feed = {"frames": frames.numpy(), "times": times.numpy()}
    tracks: list[Audio | None] = [None]
    if name == "video":
        s = ex.audio(1, 1.7, 1)
        feed["samples"] = s.numpy()
        tracks = [Audio(np.ascontiguousarray(r.numpy())) for r in s]
    items: list[Item | str] = [
        [Video(np.ascontiguousarray(f.permute(0, 2, 3, 1).numpy()), t.numpy(), a)]
        for f, t, a in zip(frames, times, tracks)
    ]
    return feed, items, "document"
