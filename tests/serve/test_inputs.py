"""The server's pieces in-process: request parts decoded as `gemb2 embed` decodes files, and the micro-batcher
(joined jobs get their own vectors, in order; one bad job does not fail the jobs it was joined with)."""

import base64

import numpy as np
import pytest

from gemb2.data.load import load_file
from gemb2.parts import Audio, Text
from gemb2.pipeline.loadspec import load_spec_for
from gemb2.serve.batcher import Batcher, _Job
from gemb2.serve.inputs import ApiError, embeddings_request
from tests.media import write_image, write_wav


def _b64(path) -> str:
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def test_media_parts_are_the_files_first_segment(tiny, tmp_path):
    spec = load_spec_for(tiny)
    wav, png = write_wav(tmp_path / "a.wav", seconds=1.0), write_image(tmp_path / "p.png", seed=4)
    body = {
        "input": [
            [{"type": "audio", "data": _b64(wav)}],  # no format: the content decides
            [{"type": "text", "text": "see"}, {"type": "image", "data": "data:image/png;base64," + _b64(png)}],
        ],
        "task": "query",
    }
    req = embeddings_request(body, lambda: spec, max_inputs=8)
    assert req.task == "query" and isinstance(req.items[0][0], Audio) and isinstance(req.items[1][0], Text)
    want = next(iter(load_file(wav, "audio", spec))).parts[0]
    np.testing.assert_array_equal(req.items[0][0].samples, want.samples)
    np.testing.assert_array_equal(req.items[1][1].pixels, next(iter(load_file(png, "image", spec))).parts[0].pixels)


@pytest.mark.parametrize(
    "body, words",
    [
        ({"input": [[{"type": "image", "data": "aGVsbG8=", "format": "wav"}]]}, "not a supported image format"),
        ({"input": [[{"type": "video", "data": "data:video/mp4,xyz"}]]}, "data URL"),
        ({"input": [[{"type": "sound", "data": "aGVsbG8="}]]}, "'type' must be"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "task": "passage"}, "'task'"),
        ({"input": []}, "non-empty"),
        ({"inputs": "x"}, "'input' is required"),
    ],
)
def test_bad_bodies_name_what_is_wrong(tiny, body, words):
    with pytest.raises(ApiError) as e:
        embeddings_request(body, lambda: load_spec_for(tiny), max_inputs=8)
    assert e.value.status == 400 and words in str(e.value)


def test_joined_jobs_get_their_own_vectors_and_a_bad_job_fails_alone(tiny):
    b = Batcher(tiny, batch_size=4)
    try:
        jobs = [
            _Job(["a red car", "x y z"], "query", None),
            _Job([object()], "query", None),
            _Job(["sea"], "query", None),
        ]
        b._embed(jobs)  # one joined call fails on the bad item; each job is then embedded alone
        assert isinstance(jobs[1].future.exception(), TypeError)
        got = np.concatenate([jobs[0].future.result(), jobs[2].future.result()])
        np.testing.assert_allclose(got, tiny.encode(["a red car", "x y z", "sea"], task="query"), atol=1e-6)
        fut = b.submit(["a red car"], task="document", dim=16)
        np.testing.assert_allclose(fut.result(30), tiny.encode(["a red car"], task="document", dim=16), atol=1e-6)
    finally:
        b.close(30)
