"""The model as ONNX graphs for serving: one graph per input kind, plus a manifest a client in any language can follow.

    export_onnx(model, "out/", dim=None, force=False)
        -> out/{text,image,audio,video,video_frames}.onnx, tokenizer.json, manifest.json

Each graph is the whole model for items of one kind, from model-ready inputs to the L2-normalised vector,
the task prompt baked in where the model would add one:

    text          input_ids (B, T) int64, attention_mask (B, T) int64  ->  embedding (B, D)
                  the caller tokenises: [CLS] + prompt ids + text ids + [SEP], right-padded with [PAD] (manifest)
    image         pixels (B, 3, S, S) uint8 RGB  ->  embedding (B, D)     sequence [CLS] doc-prompt <image> [SEP]
    audio         samples (B, N) float32, 16 kHz mono, N a multiple of samples_per_token  ->  embedding (B, D)
    video         frames (B, F, 3, S, S) uint8, times (B, F) float32 s, samples (B, N) float32  ->  embedding (B, D)
    video_frames  frames, times  ->  embedding (B, D): a video window without sound (no audio track, or past
                  its end), and every video of a model without an audio stem

The graphs (graphs.py) are the model's own pieces (`Gemb2Model.text_tokens`, `image_tokens`, `audio_tokens`,
`video_tokens`, `sequence`, `head`), so they cannot drift from `forward`, and a new stem exports if it traces. Two
of the model's functions take an ONNX-friendly form while exporting (torch.onnx.is_in_onnx_export): the STFT of
the log-mel (audio_features._power_spectrum: a strided convolution against cos/sin kernels) and the adaptive
average pooling of a frame's grid (model.pool_grid: two matmuls with a constant bin matrix; 7x7 -> 2x2 has
overlapping bins the exporter cannot convert).

What a client must do before the graphs (decode, resize, resample, sample frames, tokenise) is written in
manifest.json (manifest.py) as numbers and exact rules, taken from gemb2's loaders; tests/export/client.py is a client built
from the manifest alone (numpy, OpenCV, PyAV, tokenizers) that matches `gemb2 embed`.

Every graph is checked after export (onnx_check.py): onnxruntime (when installed) runs it on inputs of other shapes than the
traced ones and it must match `model.encode` on the same items (max abs difference <= CHECK_TOL); the
difference is in the manifest. A graph that fails to export or to match is left out and named, with the
reason, in the manifest's `not_exported`; the others are written.

Writing is all or nothing: everything goes into a hidden temporary folder beside OUT
(`.OUT.<random>.tmp`), renamed to OUT at the end. An existing non-empty OUT is refused unless `force`;
with `force` the old folder is moved aside, the new one renamed in, then the old one deleted (on a failed
rename the old one is put back). An error, SIGINT or SIGTERM (raised as `Interrupted` by
gemb2/pipeline/interrupt.py's StopSignal) removes the temporary folder; only a killed process (SIGKILL) can
leave it behind, never a half-written OUT.

Reference for the graph format: ONNX (onnx.ai) with the TorchScript-based `torch.onnx.export(dynamo=False)`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gemb2.errors import Interrupted
from gemb2.export import ExportError
from gemb2.model.model import Gemb2Model
from gemb2.pipeline.interrupt import StopSignal

from .graphs import GRAPHS, OPSET, Examples, GraphSpec, describe_inputs, graph_specs
from .manifest import build_manifest, plain_tokenizer_json
from .onnx_check import check_graph


def _check_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        raise ExportError(
            "exporting to ONNX needs the onnx package: pip install 'gemb2[onnx]' (or pip install onnx)"
        ) from e


def export_onnx(
    model: Gemb2Model,
    out: str | os.PathLike,
    *,
    dim: int | None = None,
    modalities: tuple[str, ...] = GRAPHS,
    force: bool = False,
) -> dict[str, Any]:
    """Write the graphs `model` can have (of `modalities`), tokenizer.json and manifest.json as the folder `out`.

    All or nothing (see the module docstring): `out` appears complete or not at all. Returns the manifest.
    Raises ExportError for a `dim` that is not one of the model's Matryoshka dims, an unknown graph name, or an
    existing non-empty `out` without `force`; OSError when the folder cannot be written.
    """
    _check_onnx()
    try:
        dim = model.check_dim(dim)
    except ValueError as e:
        raise ExportError(f"--dim {dim}: {e}") from e
    unknown = [m for m in modalities if m not in GRAPHS]
    if unknown:
        raise ExportError(f"unknown graph(s) {', '.join(unknown)}: choose from {', '.join(GRAPHS)}")
    return write_folder(out, force, lambda folder, stop: _write(model, folder, dim, modalities, stop))


def write_folder(
    out: str | os.PathLike, force: bool, write: Callable[[Path, StopSignal], dict[str, Any]]
) -> dict[str, Any]:
    """Run `write(folder, stop)` into a temporary folder beside `out`, then rename it to `out` (all or nothing, see
    the module docstring); what `write` returns. ExportError for an `out` that is a file, or not empty without
    `force`."""
    target = Path(out).absolute()
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise ExportError(f"{out} exists and is not a folder")
        if any(target.iterdir()) and not force:
            raise ExportError(f"{out} exists and is not empty (use --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; OUT gets the permissions of a new folder
        with StopSignal() as stop, stop.waiting():  # SIGINT, SIGTERM raise Interrupted here at once
            manifest = write(tmp, stop)
            _move_into_place(tmp, target)
    except BaseException:  # an error or an interrupt: nothing half-written stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished folder to `target`; an existing `target` is swapped out, then deleted."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        os.replace(tmp, target)  # rename(2) replaces an empty folder
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, old)  # `old` is empty: the rename replaces it
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write(model: Gemb2Model, folder: Path, dim: int, names: tuple[str, ...], stop: StopSignal) -> dict[str, Any]:
    """Every graph of `names` the model can have, tokenizer.json and manifest.json into `folder`; `stop` knows the
    signals that arrived (checked between graphs: a KeyboardInterrupt raised in library code can be lost)."""
    model = model.eval().float().cpu()
    ex = Examples(model)
    specs = graph_specs(model, dim, ex)
    graphs: dict[str, dict[str, Any]] = {}
    skipped = recognition_not_exported(model.config, names)
    for name in names:
        if name in skipped:
            continue
        spec = specs[name]
        missing = [s for s in spec.needs if getattr(model, s, None) is None]
        if missing:
            skipped[name] = f"the model has no {' or '.join(m.replace('_', ' ') for m in missing)}"
            continue
        try:
            graphs[name] = _export_graph(name, spec, folder, model, dim, ex)
        except Exception as e:  # this graph only: the others are still exported
            if stop.signum is not None:  # a signal whose KeyboardInterrupt became another error
                raise Interrupted(stop.signum) from e
            for p in folder.iterdir():
                if p.name != "tokenizer.json" and p.stem.split(".")[0] == name:
                    p.unlink()
            skipped[name] = f"export failed: {_one_line(e)}"
            continue
        stop.raise_if_set()  # a KeyboardInterrupt library code swallowed
    (folder / "tokenizer.json").write_text(plain_tokenizer_json(model.tokenizer.to_str()), encoding="utf-8")
    manifest = build_manifest(model, dim, graphs, skipped)
    with open(folder / "manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
    stop.raise_if_set()
    return manifest


def recognition_not_exported(cfg, names: tuple[str, ...]) -> dict[str, str]:
    """A model that recognises (gemb2/model/recognise.py) reads words off its media before the graphs would run
    (ImageNet names, Whisper's greedy decoding): its media graphs would give other vectors than `gemb2 embed`, so
    they are not written; "recognition" and each such graph are named under `not_exported`, the text graph is."""
    if not cfg.recognises:
        return {}
    why = []
    if cfg.recognise_classes:
        why.append(f"the top {cfg.recognise_classes} ImageNet class names of the image stem's own head")
    if cfg.recognise_speech:
        why.append(f"{cfg.recognise_speech}'s greedy transcript (faster-whisper, a no-speech gate)")
    out = {
        "recognition": "the model puts the words it reads off each media part before it as text ("
        + "; ".join(why)
        + "): a search and a decoder loop, not one graph"
    }
    reads = {"image": cfg.recognise_classes > 0, "video_frames": cfg.recognise_classes > 0}
    reads |= {"audio": bool(cfg.recognise_speech), "video": cfg.recognises}
    for name in names:
        if reads.get(name):
            out[name] = "its vectors include recognised words (see recognition), which no graph computes"
    return out


def _export_graph(
    name: str, spec: GraphSpec, folder: Path, model: Gemb2Model, dim: int, ex: Examples
) -> dict[str, Any]:
    """Trace graph `name` to folder/name.onnx and check it; its record in the manifest."""
    path = folder / f"{name}.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that are constant for these inputs
        torch.onnx.export(
            spec.module,
            spec.example(),
            str(path),
            input_names=spec.inputs,
            output_names=["embedding"],
            dynamic_axes=spec.axes | {"embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return {
        "file": path.name,
        "inputs": describe_inputs(name, model.config, model.layout.samples_per_token or 0),
        "check": check_graph(name, path, model, dim, ex),
        "output": {"name": "embedding", "dtype": "float32", "shape": ["batch", dim], "l2_normalised": True},
    }


def _one_line(e: BaseException, limit: int = 300) -> str:
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
    text = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
