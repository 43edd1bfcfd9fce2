"""A client of an ONNX export written from its manifest.json alone, as one in another language would be.

It imports nothing from gemb2: numpy, OpenCV, PyAV, Hugging Face tokenizers and onnxruntime only, and every
number and rule comes from the manifest (`m`), so a test that matches gemb2's vectors with it shows that the
manifest says enough.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np


class Client:
    def __init__(self, folder: str, manifest: dict):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder, self.m = folder, manifest
        self.tok = Tokenizer.from_file(os.path.join(folder, manifest["text"]["tokenizer"]["file"]))
        self.sessions = {name: ort.InferenceSession(os.path.join(folder, g["file"]), providers=["CPUExecutionProvider"])
                         for name, g in manifest["graphs"].items()}

    def run(self, graph: str, **feed) -> np.ndarray:
        return self.sessions[graph].run(None, feed)[0]

    # --- text ---------------------------------------------------------------------------------

    def text(self, texts: list[str], task: str) -> np.ndarray:
        t = self.m["text"]
        add = t["tokenizer"]["add_special_tokens"]
        prompt = t["prompt_ids"][task][: t["max_text_tokens"] - 2]
        rows = [([t["cls_id"]] + prompt + self.tok.encode(x, add_special_tokens=add).ids)[: t["max_text_tokens"] - 1]
                + [t["sep_id"]] for x in texts]
        T = max(map(len, rows))
        ids = np.full((len(rows), T), t["pad_id"], np.int64)
        mask = np.zeros((len(rows), T), np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)], mask[i, : len(r)] = r, 1
        return self.run("text", input_ids=ids, attention_mask=mask)

    # --- images -------------------------------------------------------------------------------

    def decode_image(self, path: str) -> np.ndarray:
        import cv2

        dec = self.m["preprocessing"]["image"]["decode"]
        with open(path, "rb") as f:
            head = f.read(4)
        if head[:3] == b"\xff\xd8\xff":  # JPEG: the reduced-size decode
            rule = dec["jpeg_reduced_decode"]
            h, w = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION).shape[:2]  # stored size
            S = rule["target"]
            s = next(s for s in rule["scales"] if s <= min(w // S, h // S) or s == 1)
            flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                    8: cv2.IMREAD_REDUCED_COLOR_8}[s]
            bgr = cv2.imread(path, flag)  # EXIF orientation applied
            assert bgr.shape[:2] in ((math.ceil(h / s), math.ceil(w / s)), (math.ceil(w / s), math.ceil(h / s)))
            return np.ascontiguousarray(bgr[:, :, ::-1])
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img.ndim == 2:
            return np.repeat(img[:, :, None], 3, axis=2)
        if img.shape[2] == 4:  # composited on white, as the manifest's to_rgb says
            rgb, a = img[:, :, 2::-1].astype(np.float32), img[:, :, 3:].astype(np.float32) / 255.0
            return np.round(rgb * a + 255.0 * (1.0 - a)).astype(np.uint8)
        return np.ascontiguousarray(img[:, :, ::-1])

    def fit(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        r = self.m["preprocessing"]["image"]["resize"]
        S = r["size"]
        h, w = rgb.shape[:2]
        if (h, w) == (S, S):
            return rgb
        scale = S / min(h, w)
        nh, nw = max(S, round(h * scale)), max(S, round(w * scale))
        interp = getattr(cv2, r["interpolation"]["shrink" if scale < 1 else "enlarge"])
        out = cv2.resize(rgb, (nw, nh), interpolation=interp)
        top, left = (nh - S) // 2, (nw - S) // 2
        return out[top : top + S, left : left + S]

    def image(self, paths: list[str]) -> np.ndarray:
        px = np.stack([self.fit(self.decode_image(p)) for p in paths]).transpose(0, 3, 1, 2)  # (B, 3, S, S)
        return self.run("image", pixels=np.ascontiguousarray(px))

    # --- audio --------------------------------------------------------------------------------

    def pcm(self, path: str) -> np.ndarray:
        """The whole file as mono float32 at the manifest's rate, decoded as the manifest says."""
        import av

        dec = self.m["preprocessing"]["audio"]["decode"]
        rate = self.m["preprocessing"]["audio"]["sample_rate"]
        out = []
        clean = lambda x: np.clip(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), -1, 1).astype(np.float32)  # noqa: E731
        with av.open(path) as c:
            stream = c.streams.audio[0]
            if os.path.splitext(path)[1].lower() in dec["soundfile_extensions"]:
                # libsndfile's float samples, channel mean, then the resampler
                to_float = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
                rs = av.AudioResampler(format="flt", layout="mono", rate=rate) if stream.rate != rate else None
                pts = 0

                def feed(block):
                    nonlocal pts
                    mono = clean(block.mean(axis=0))
                    if rs is None:
                        out.append(mono)
                        return
                    f = av.AudioFrame.from_ndarray(mono[None, :], format="flt", layout="mono")
                    f.sample_rate, f.time_base, f.pts = stream.rate, Fraction(1, stream.rate), pts
                    pts += len(mono)
                    out.extend(clean(o.to_ndarray().reshape(-1)) for o in rs.resample(f))

                for frame in c.decode(stream):
                    for fl in to_float.resample(frame):
                        feed(fl.to_ndarray())  # (channels, n)
                if rs is not None and pts:
                    out.extend(clean(o.to_ndarray().reshape(-1)) for o in rs.resample(None))
            else:
                rs = av.AudioResampler(format="flt", layout="mono", rate=rate)
                for frame in c.decode(stream):
                    out.extend(clean(o.to_ndarray().reshape(-1)) for o in rs.resample(frame))
                out.extend(clean(o.to_ndarray().reshape(-1)) for o in rs.resample(None))
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def pad(self, samples: np.ndarray) -> np.ndarray:
        a = self.m["preprocessing"]["audio"]
        s = samples[: a["windows"]["samples"]]
        per = a["samples_per_token"]
        n = max(1, -(-len(s) // per)) * per
        return np.pad(s, (0, n - len(s))).astype(np.float32)

    def audio_windows(self, path: str) -> list[np.ndarray]:
        pcm = self.pcm(path)
        a = self.m["preprocessing"]["audio"]
        W, tail = a["windows"]["samples"], a["windows"]["min_last_s"] * a["sample_rate"]
        return [pcm[i : i + W] for i in range(0, len(pcm), W) if i == 0 or len(pcm) - i >= tail]

    def audio(self, path: str) -> np.ndarray:
        return np.concatenate([self.run("audio", samples=self.pad(w)[None]) for w in self.audio_windows(path)])

    # --- video --------------------------------------------------------------------------------

    def video_windows(self, path: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """(frames (F, S, S, 3), times (F,), samples or None) per window, by the manifest's sampling rule."""
        import av

        v = self.m["preprocessing"]["video"]
        span, step, cap = v["windows"]["seconds"], v["sampling"]["step_s"], v["sampling"]["max_frames"]
        rate = self.m["preprocessing"]["audio"]["sample_rate"]
        windows: dict[int, tuple[list, list]] = {}
        last = 0.0
        with av.open(path) as c:
            st = c.streams.video[0]
            r = st.average_rate or st.guessed_rate
            d = 1.0 / float(r) if r and 0 < float(r) < 1000 else 0.04
            tb, origin = float(st.time_base), st.start_time
            nxt, cur = 0.0, 0
            for i, frame in enumerate(c.decode(st)):
                if origin is None:
                    origin = frame.pts
                t = max(0.0, (frame.pts - origin) * tb if frame.pts is not None else i * d)
                last = max(last, t + d)
                w = math.floor((t + d / 2) / span)
                if w > cur:
                    cur, nxt = w, w * span
                taken = windows.setdefault(w, ([], []))
                if t + d / 2 >= nxt and len(taken[0]) < cap:
                    rgb = frame.to_ndarray(format="rgb24")
                    k = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
                    taken[0].append(self.fit(np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb))
                    taken[1].append(t - w * span)
                    while nxt <= t + d / 2:
                        nxt += step
        with av.open(path) as c:
            track = self.pcm(path) if c.streams.audio else None
        out, done = [], 0
        for w in range(max(windows) + 1):
            end = (w + 1) * span if w < max(windows) else max(last, w * span)
            samples = None
            if track is not None:
                want = max(0, round(end * rate) - done)
                chunk, done = track[done : done + want], done + want
                samples = chunk if len(chunk) else None
            if w in windows and windows[w][0]:
                out.append((np.stack(windows[w][0]), np.asarray(windows[w][1], np.float32), samples))
        return out

    def video(self, path: str) -> np.ndarray:
        vecs = []
        for frames, times, samples in self.video_windows(path):
            feed = {"frames": np.ascontiguousarray(frames.transpose(0, 3, 1, 2))[None], "times": times[None]}
            if samples is not None and "video" in self.m["graphs"]:
                vecs.append(self.run("video", **feed, samples=self.pad(samples)[None]))
            else:
                vecs.append(self.run("video_frames", **feed))
        return np.concatenate(vecs)
