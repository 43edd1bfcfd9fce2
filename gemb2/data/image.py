"""Image files -> one segment holding a (size, size, 3) uint8 RGB image.

Pillow decodes; the steps, in order:
1. The header gives width x height; more than `spec.max_image_pixels` is refused *before* decoding
   (a decompression bomb: a small PNG may declare 30000x30000). Pillow's own guard
   (`Image.MAX_IMAGE_PIXELS`) is set to the same limit. A big-endian BigTIFF, which Pillow cannot
   read, is decoded by OpenCV after the same check on its first image directory.
2. JPEGs are decoded at a reduced scale with `draft` (DCT scaling: 1/2, 1/4, 1/8), never below the
   target size: most of the decode time of a large photo is saved.
3. A truncated or corrupt file is a LoadError (Pillow's LOAD_TRUNCATED_IMAGES is never turned on).
4. EXIF orientation is applied (`ImageOps.exif_transpose`); animated files give their first frame.
5. Any mode -> RGB: alpha and palette transparency are composited on white, 16-bit grey is scaled to
   8 bits, CMYK and the rest go through Pillow's `convert`.
6. `gemb2.parts.fit_image`: shorter side to `spec.image_size`, centre crop.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator

import numpy as np

from gemb2.data.segments import LoadError, LoadSpec, Segment
from gemb2.parts import Image, fit_image

COMPOSITE_ROWS = 256  # rows composited on white at a time


def load_image(path: str, spec: LoadSpec) -> Iterator[Segment]:
    if spec.image_patches is not None:  # decoded whole: the model's processor resizes it (once, from the original)
        pixels = read_rgb(path, spec.max_image_pixels)
    else:
        pixels = fit_image(read_rgb(path, spec.max_image_pixels, spec.image_size), spec.image_size)
    yield Segment(index=0, start=0.0, end=0.0, parts=(Image(pixels),))


def read_rgb(path: str, max_pixels: int, min_side: int | None = None) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB, EXIF-oriented. JPEGs may come out reduced, but
    with both sides still >= `min_side` (or their full size when smaller)."""
    from PIL import Image as PILImage
    from PIL import ImageOps, UnidentifiedImageError

    PILImage.MAX_IMAGE_PIXELS = max_pixels
    fmt = "image"
    try:
        with warnings.catch_warnings():  # between 1x and 2x the limit Pillow only warns; our check below refuses
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            warnings.filterwarnings("ignore", "Corrupt EXIF data", UserWarning)  # Pillow misreading "MM\0+"
            img = PILImage.open(path)
        with img:
            fmt = img.format or fmt
            w, h = img.size
            if w * h > max_pixels:
                raise LoadError(
                    f"image too large: {w}x{h} = {w * h} pixels > max_image_pixels {max_pixels} "
                    "(decompression-bomb guard)"
                )
            if min_side and img.format == "JPEG":
                img.draft("RGB", (min_side, min_side))
            img.load()
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception:  # a malformed EXIF block: keep the image as stored
                oriented = img
            return _to_rgb(oriented)
    except LoadError:
        raise
    except PILImage.DecompressionBombError as e:
        raise LoadError(f"image too large (decompression-bomb guard): {e}") from None
    except UnidentifiedImageError:
        if _is_big_endian_bigtiff(path):
            return _read_big_endian_bigtiff(path, max_pixels)
        raise LoadError("cannot identify the image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise LoadError(f"truncated or corrupt {fmt}: {e}") from None


def _is_big_endian_bigtiff(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"MM\x00+"


def _read_big_endian_bigtiff(path: str, max_pixels: int) -> np.ndarray:
    """Pillow reads little-endian BigTIFF ("II+\\0") only: a big-endian one ("MM\\0+") is decoded by
    OpenCV's libtiff, after the same pixel-count guard on its first IFD's ImageWidth and ImageLength."""
    import cv2

    try:
        with open(path, "rb") as f:
            (ifd_at,) = struct.unpack(">Q", f.read(16)[8:16])
            f.seek(ifd_at)
            (count,) = struct.unpack(">Q", f.read(8))
            entries = f.read(20 * min(count, 4096))  # tag H, type H, count Q, value or offset 8 bytes
    except (OSError, struct.error):
        raise LoadError("truncated or corrupt BigTIFF: no image directory") from None
    size = {}
    for at in range(0, len(entries) - 19, 20):
        tag, kind = struct.unpack_from(">HH", entries, at)
        if tag in (256, 257) and kind in _TIFF_INTS:
            size[tag] = struct.unpack_from(_TIFF_INTS[kind], entries, at + 12)[0]
    if len(size) < 2:
        raise LoadError("truncated or corrupt BigTIFF: no image size")
    w, h = size[256], size[257]
    if w * h > max_pixels:
        raise LoadError(
            f"image too large: {w}x{h} = {w * h} pixels > max_image_pixels {max_pixels} (decompression-bomb guard)"
        )
    bgr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)  # (H, W, 3), 8 bits, oriented
    if bgr is None:
        raise LoadError("truncated or corrupt BigTIFF")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


_TIFF_INTS = {3: ">H", 4: ">I", 16: ">Q"}  # SHORT, LONG, LONG8


def _to_rgb(img) -> np.ndarray:
    """Any Pillow image -> (H, W, 3) uint8 RGB; transparency composited on white."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(img).astype(np.float32)  # (H, W)
        if mode == "I" and a.max(initial=0) <= 255:
            grey = np.clip(a, 0, 255)
        else:
            grey = np.clip(a, 0, 65535) / 257.0
        grey8 = np.round(grey).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[:, :, None], 3, axis=2))
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa") or (mode not in ("RGB", "RGBA") and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        rgba = np.asarray(img)  # (H, W, 4) uint8
        out = np.empty(rgba.shape[:2] + (3,), np.uint8)  # (H, W, 3)
        for y in range(0, rgba.shape[0], COMPOSITE_ROWS):  # in row blocks: float32 copies of a 80 MP image are GBs
            block = rgba[y : y + COMPOSITE_ROWS].astype(np.float32)  # (r, W, 4)
            alpha = block[:, :, 3:] / 255.0
            out[y : y + COMPOSITE_ROWS] = np.round(block[:, :, :3] * alpha + 255.0 * (1.0 - alpha))
        return out
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
