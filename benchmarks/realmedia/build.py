"""The real-media evaluation set of issue 13: materialise it into a folder, checking every source's sha256.

    python -m benchmarks.realmedia.build [--out ~/.cache/gemb2-bench/realmedia] [--check] [--json]

queries.json (next to this file) lists every item: a photo, icon or sound shipped by a Debian package (path under
GEMB2_DEBIAN_SHARE, default /usr/share) or by a PyPI package's sample data (path under site-packages; scikit-image's
and scikit-learn's photos are for evaluation only, never training), speech spoken by espeak-ng (voices and texts the
speech training set never used), a video assembled by ffmpeg from pictures and an espeak-ng narration, or a short
text document; and for each item the descriptions written by hand that should find it. The set is fixed: SHA256
next to this file pins queries.json (tests/benchmarks/test_realmedia.py checks it), and every source file's sha256
is checked here before it is used. Items split into a dev half (looked at while building) and a test half (scored
at the end only), per modality, by the sha256 of their id.

The folder gets one file per item and manifest.json ({set_sha256, items: [{id, modality, split, path,
descriptions}], skipped: [{id, reason}]}). An item whose package is missing is skipped with the line that installs
it (--check: exit 1 instead). Built files are kept and reused while their recipe is unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUERIES = HERE / "queries.json"
DEFAULT_OUT = Path(os.path.expanduser("~/.cache/gemb2-bench/realmedia"))
FRAME = (320, 240)  # video frame size (w, h)
EXT = {"image": None, "audio": None, "speech": ".wav", "video": ".mp4", "text": ".txt"}


class Missing(Exception):
    """A source's package (or a tool) is not installed; the message names the line that installs it."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def set_sha256() -> str:
    """The hash that pins the set: queries.json's bytes."""
    return sha256_file(QUERIES)


def load_items() -> list[dict]:
    with open(QUERIES, encoding="utf-8") as f:
        return json.load(f)["items"]


def splits(items: list[dict]) -> dict[str, str]:
    """id -> "dev" | "test": within each kind (the id's prefix: photo, icon, sound, speech, video, doc), items
    ordered by sha256(id), alternately dev and test."""
    out: dict[str, str] = {}
    kinds = {it["id"].split("/")[0] for it in items}
    for kind in sorted(kinds):
        ids = sorted(
            (it["id"] for it in items if it["id"].split("/")[0] == kind),
            key=lambda i: hashlib.sha256(i.encode()).hexdigest(),
        )
        out.update({i: ("dev", "test")[k % 2] for k, i in enumerate(ids)})
    return out


def locate(source: dict) -> str:
    """The installed path of a {debian|pypi, path, sha256} source, its hash checked."""
    if "debian" in source:
        share = os.environ.get("GEMB2_DEBIAN_SHARE") or "/usr/share"
        path = os.path.join(share, source["path"])
        install = f"apt-get install -y --no-install-recommends {source['debian']}"
    else:
        top = source["path"].split("/")[0]
        spec = importlib.util.find_spec(top)
        roots = list(spec.submodule_search_locations or []) if spec else []
        path = os.path.join(os.path.dirname(roots[0]), source["path"]) if roots else source["path"]
        install = f"pip install {source['pypi']}"
    if not os.path.isfile(path):
        raise Missing(f"{path} is missing: {install}")
    got = sha256_file(path)
    if got != source["sha256"]:
        raise ValueError(
            f"{path}: sha256 {got} != {source['sha256']} pinned in {QUERIES.name} (another version "
            f"of {source.get('debian') or source.get('pypi')}?)"
        )
    return path


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise Missing(f"{name} is missing: apt-get install -y --no-install-recommends {name}")
    return path


def speak(spec: dict, path: str) -> None:
    """espeak-ng's WAV of spec {voice, speed, text}."""
    subprocess.run(
        [tool("espeak-ng"), "-v", spec["voice"], "-s", str(spec["speed"]), "-w", path, spec["text"]],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def assemble_video(spec: dict, path: str) -> None:
    """An H.264/AAC MP4: the pictures in turn, letterboxed to FRAME at 10 fps, as long as the narration + 0.5 s."""
    import soundfile as sf

    pictures = [locate(f) for f in spec["frames"]]
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "narration.wav")
        speak(spec["narration"], wav)
        each = (sf.info(wav).duration + 0.5) / len(pictures)
        args, chains = [], []
        w, h = FRAME
        for k, pic in enumerate(pictures):
            args += ["-loop", "1", "-t", f"{each:.3f}", "-i", pic]
            chains.append(
                f"[{k}]scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,"
                f"setsar=1,fps=10,format=yuv420p[v{k}]"
            )
        graph = ";".join(chains) + ";" + "".join(f"[v{k}]" for k in range(len(pictures)))
        graph += f"concat=n={len(pictures)}:v=1:a=0[v]"
        subprocess.run(
            [
                tool("ffmpeg"),
                "-nostdin",
                "-y",
                "-loglevel",
                "error",
                *args,
                "-i",
                wav,
                "-filter_complex",
                graph,
                "-map",
                "[v]",
                "-map",
                f"{len(pictures)}:a",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-c:a",
                "aac",
                "-ar",
                "16000",
                path,
            ],
            check=True,
        )


def recipe_key(item: dict) -> str:
    """What a built file depends on: the item's recipe, without its descriptions."""
    recipe = {k: v for k, v in item.items() if k not in ("descriptions",)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def build_item(item: dict, out: Path) -> str:
    """Materialise one item under `out`; returns its path relative to `out`."""
    stem = item["id"].replace("/", "__")
    if "source" in item:
        src = locate(item["source"])
        name = stem + os.path.splitext(src)[1].lower()
    else:
        kind = "speech" if "espeak" in item else "video" if "video" in item else "text"
        name, src = stem + (EXT[kind] or ""), None
    path = out / name
    stamp = out / ".stamps" / (name + ".key")
    if path.is_file() and stamp.is_file() and stamp.read_text() == recipe_key(item):
        return name
    tmp = str(path) + ".part" + os.path.splitext(name)[1]
    if src is not None:
        shutil.copyfile(src, tmp)
    elif "espeak" in item:
        speak(item["espeak"], tmp)
    elif "video" in item:
        assemble_video(item["video"], tmp)
    else:
        Path(tmp).write_text(item["text"] + "\n", encoding="utf-8")
    os.replace(tmp, path)
    stamp.parent.mkdir(exist_ok=True)
    stamp.write_text(recipe_key(item))
    return name


def build(out: Path, log=None, kinds: set[str] | None = None) -> dict:
    """Materialise the set (only the items of `kinds`, id prefixes, if given); returns the manifest (also written to
    out/manifest.json)."""
    out.mkdir(parents=True, exist_ok=True)
    items = load_items()
    split = splits(items)
    items = [it for it in items if kinds is None or it["id"].split("/")[0] in kinds]
    rows, skipped = [], []
    for k, item in enumerate(items):
        try:
            name = build_item(item, out)
        except Missing as e:
            skipped.append({"id": item["id"], "reason": str(e)})
            continue
        rows.append(
            {
                "id": item["id"],
                "modality": item["modality"],
                "split": split[item["id"]],
                "path": name,
                "descriptions": item["descriptions"],
            }
        )
        if log and (k + 1) % 20 == 0:
            log(f"{k + 1}/{len(items)} items")
    manifest = {"set_sha256": set_sha256(), "items": rows, "skipped": skipped}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def summary(manifest: dict) -> dict:
    counts: dict[str, dict[str, list[int]]] = {}
    for row in manifest["items"]:
        c = counts.setdefault(row["id"].split("/")[0], {}).setdefault(row["split"], [0, 0])
        c[0] += 1
        c[1] += len(row["descriptions"])
    return {"set_sha256": manifest["set_sha256"], "items_queries": counts, "skipped": manifest["skipped"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder to build into (default {DEFAULT_OUT})")
    ap.add_argument("--check", action="store_true", help="exit 1 if any item had to be skipped")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)
    try:
        manifest = build(args.out, log=lambda m: print(m, file=sys.stderr, flush=True))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    info = summary(manifest)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        print(f"set sha256 {info['set_sha256']} -> {args.out}")
        for kind, by_split in sorted(info["items_queries"].items()):
            print(f"  {kind}: " + ", ".join(f"{s} {n} items / {q} queries" for s, (n, q) in sorted(by_split.items())))
        for s in info["skipped"]:
            print(f"  skipped {s['id']}: {s['reason']}", file=sys.stderr)
    return 1 if args.check and info["skipped"] else 0


if __name__ == "__main__":
    sys.exit(main())
