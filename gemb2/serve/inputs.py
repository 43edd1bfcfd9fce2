"""Request JSON -> what the model embeds. Every rejection is an `ApiError`: an HTTP status, a type, one line.

An input item is a string (text) or a list of parts, one interleaved item:

    "a red car"
    [{"type": "text", "text": "a red car"}, {"type": "image", "data": "<base64>", "format": "jpg"}]

Media parts (`image`, `audio`, `video`, `document`) carry the file's bytes in `data`, as base64 or a data URL
(`data:image/png;base64,...`); `format` (an extension: `png`, `wav`, `mp4`, `pdf`...) is optional: the loaders
read the content whatever the name. The bytes are written to a temporary file and read by the same loader
`gemb2 embed` uses, so a part's vector is the file's (an audio or video part: its first window, as in a query).
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from dataclasses import dataclass

from gemb2.data.discover import modality_of
from gemb2.data.segments import LoadError
from gemb2.parts import Part, Text

MEDIA = {"image": ".png", "audio": ".wav", "video": ".mp4", "document": ".pdf"}  # the name when `format` is absent
TASKS = {"query": "query", "document": "document", "none": None}


class ApiError(Exception):
    """A request the server rejects: `status` (4xx), `type` (OpenAI's error types where one fits), one line."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error") -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the reason held
        self.status, self.type = status, type


@dataclass
class EmbeddingsRequest:
    items: list[list[Part]]
    model: str | None
    task: str | None
    dim: int | None
    base64: bool


def embeddings_request(body: object, spec_for, max_inputs: int) -> EmbeddingsRequest:
    """Check a /v1/embeddings body and decode its inputs; `spec_for(model)` gives the loader spec of the model
    a media part is decoded for (called only when there is one)."""
    body = _object(body)
    raw = body.get("input")
    if raw is None:
        raise ApiError(400, "'input' is required: a string, or a list of strings and part lists")
    raw_items = [raw] if isinstance(raw, (str, dict)) else raw
    if not isinstance(raw_items, list) or not raw_items:
        raise ApiError(400, "'input' must be a non-empty string or list")
    if len(raw_items) > max_inputs:
        raise ApiError(400, f"'input' has {len(raw_items)} items; at most {max_inputs} per request")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise ApiError(400, f"'encoding_format' must be 'float' or 'base64', not {fmt!r}")
    task = body.get("task", body.get("input_type", "document"))
    if task not in TASKS:
        raise ApiError(400, f"'task' must be query, document or none, not {task!r}")
    items = [item_parts(x, f"input[{i}]", spec_for) for i, x in enumerate(raw_items)]
    return EmbeddingsRequest(items, model_field(body), TASKS[task], dim_field(body, "dimensions"), fmt == "base64")


def _object(body: object) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def model_field(body: dict) -> str | None:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "'model' must be a string")
    return model or None


def dim_field(body: dict, key: str) -> int | None:
    dim = body.get(key)
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 1):
        raise ApiError(400, f"'{key}' must be a positive integer, not {dim!r}")
    return dim


def item_parts(x: object, where: str, spec_for) -> list[Part]:
    """One input item (a string, a part, or a list of parts) -> its parts, media decoded."""
    if isinstance(x, str):
        return [Text(x)]
    if isinstance(x, dict):
        x = [x]
    if isinstance(x, int) or (isinstance(x, list) and x and all(isinstance(v, int) for v in x)):
        raise ApiError(400, f"{where}: token ids are not accepted; send text or parts")
    if not isinstance(x, list) or not x:
        raise ApiError(400, f"{where}: must be a string or a non-empty list of parts")
    parts: list[Part] = []
    for j, p in enumerate(x):
        parts.extend(part(p, f"{where}[{j}]", spec_for))
    return parts


def part(p: object, where: str, spec_for) -> list[Part]:
    """One part dict -> the parts it stands for (a media file's first segment may be several: a PDF page)."""
    if isinstance(p, str):
        return [Text(p)]
    if not isinstance(p, dict):
        raise ApiError(400, f"{where}: a part must be an object with a 'type', not {type(p).__name__}")
    kind = p.get("type")
    if kind == "text":
        if not isinstance(p.get("text"), str):
            raise ApiError(400, f"{where}: a text part needs 'text', a string")
        return [Text(p["text"])]
    if kind not in MEDIA:
        raise ApiError(400, f"{where}: 'type' must be text, image, audio, video or document, not {kind!r}")
    data, mime = _data(p.get("data"), where)
    suffix = _suffix(kind, p.get("format"), mime, where)
    return decode_media(data, kind, suffix, spec_for(), where)


def _data(data: object, where: str) -> tuple[bytes, str | None]:
    """A part's bytes from base64 or a data URL (`data:image/png;base64,...`) and the URL's MIME type."""
    if not isinstance(data, str) or not data:
        raise ApiError(400, f"{where}: a media part needs 'data', the file's bytes as base64")
    mime = None
    if data.startswith("data:"):
        head, sep, data = data.partition(",")
        if not sep or not head.endswith(";base64"):
            raise ApiError(400, f"{where}: a data URL must be 'data:<type>;base64,<data>'")
        mime = head[5:-7] or None
    try:
        return base64.b64decode(data, validate=True), mime
    except (binascii.Error, ValueError) as e:
        raise ApiError(400, f"{where}: 'data' is not valid base64 ({e})") from None


def _suffix(kind: str, fmt: object, mime: str | None, where: str) -> str:
    """The temporary file's extension: `format`, else the data URL's subtype, else the modality's default."""
    if fmt is None and mime and "/" in mime:
        fmt = mime.split("/", 1)[1].split("+")[0]
        if modality_of("x." + fmt) != kind:
            fmt = None
    if fmt is None:
        return MEDIA[kind]
    if not isinstance(fmt, str) or not fmt.isalnum():
        raise ApiError(400, f"{where}: 'format' must be a file extension such as png or wav, not {fmt!r}")
    found = modality_of("x." + fmt)
    if found != kind:
        raise ApiError(400, f"{where}: format {fmt!r} is not a supported {kind} format (it says {found or 'unknown'})")
    return "." + fmt.lower()


def decode_media(data: bytes, kind: str, suffix: str, spec, where: str) -> list[Part]:
    """Media bytes -> the parts of the file's first segment, read by gemb2's loader for `kind`."""
    from gemb2.data.load import load_file

    with tempfile.TemporaryDirectory(prefix="gemb2-serve-") as tmp:
        path = os.path.join(tmp, "part" + suffix)
        with open(path, "wb") as f:
            f.write(data)
        segments = load_file(path, kind, spec)
        try:
            first = next(iter(segments), None)
        except LoadError as e:
            raise ApiError(400, f"{where}: cannot read the {kind}: {e}") from None
        except (OSError, ValueError) as e:
            raise ApiError(400, f"{where}: cannot read the {kind}: {e}") from None
        finally:
            getattr(segments, "close", lambda: None)()  # the loader's generator lets go of the file
    if first is None:
        raise ApiError(400, f"{where}: nothing to embed in the {kind}")
    return list(first.parts)
