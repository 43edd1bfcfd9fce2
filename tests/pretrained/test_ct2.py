"""gemb2.pretrained.ct2: our CTranslate2 model.bin reader, against files that CTranslate2 itself writes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from gemb2.pretrained.ct2 import Ct2FormatError, read_ct2
from tests.pretrained.ct2_writer import ct2_bytes, write_ct2
from tests.pretrained.unsafe import write_text

HAS_CT2 = importlib.util.find_spec("ctranslate2") is not None


def _ct2_saved(tmp_path, quantization: str, w: np.ndarray, b: np.ndarray):
    """Save a one-linear model with CTranslate2's own ModelSpec writer and quantization."""
    from ctranslate2.specs import common_spec, model_spec

    class OneLinear(model_spec.ModelSpec):
        def __init__(self):
            super().__init__()
            self.dense = common_spec.LinearSpec()

        @property
        def name(self):
            return "OneLinearSpec"

        @property
        def revision(self):
            return 2

    spec = OneLinear()
    spec.dense.weight, spec.dense.bias = w.copy(), b.copy()  # ct2 quantizes in place
    spec.validate()
    spec.optimize(quantization=quantization)
    spec.save(str(tmp_path))
    return tmp_path


@pytest.mark.skipif(not HAS_CT2, reason="pip install ctranslate2 (test-only reference writer)")
@pytest.mark.parametrize(
    "quantization, stored, tol",
    [
        ("float32", torch.float32, 0.0),
        ("float16", torch.float16, 1e-3),
        ("bfloat16", torch.bfloat16, 1e-2),
        ("int8", torch.int8, None),
        ("int8_float16", torch.int8, None),
        ("int16", torch.int16, None),
    ],
)
def test_reads_what_ctranslate2_writes(tmp_path, quantization, stored, tol):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    folder = _ct2_saved(tmp_path, quantization, w, b)
    raw = read_ct2(folder, dtype=None)
    assert (raw.spec, raw.revision, raw.binary_version) == ("OneLinearSpec", 2, 6)
    assert raw.variables["dense/weight"].dtype == stored
    model = read_ct2(folder / "model.bin")
    assert sorted(model.variables) == ["dense/bias", "dense/weight"]  # scales consumed
    got = model.variables["dense/weight"]
    assert got.dtype == torch.float32 and got.shape == (16, 8)
    if tol is None:  # quantized: within half a quantization step of each row (int8) or tensor (int16)
        levels = 127 if stored == torch.int8 else 2**10
        amax = np.abs(w).max(axis=1, keepdims=True) if stored == torch.int8 else np.abs(w).max()
        assert np.all(np.abs(got.numpy() - w) <= amax / levels * 0.5 + 1e-6)
    else:
        np.testing.assert_allclose(got.numpy(), w, atol=tol * np.abs(w).max(), rtol=0)


def test_hand_written_file_with_alias_and_scalars(tmp_path):
    w = np.arange(12, dtype=np.float16).reshape(3, 4)
    path = write_ct2(
        tmp_path / "model.bin",
        {"emb/weight": w, "num_heads": np.array(6, dtype=np.int16), "flag": np.array(1, dtype=np.int8)},
        aliases=[("proj/weight", "emb/weight")],
    )
    m = read_ct2(path, dtype=torch.float32)
    assert torch.equal(m.variables["proj/weight"], torch.from_numpy(w.astype(np.float32)))
    assert m.variables["num_heads"].dtype == torch.int16 and int(m.variables["num_heads"]) == 6
    assert m.variables["flag"].shape == () and int(m.variables["flag"]) == 1


@pytest.mark.parametrize("cut", [1, 7, 40, 100])
def test_split_parts_read_as_one_file(tmp_path, cut):
    data = ct2_bytes({"a": np.ones((4, 4), np.float32), "b": np.arange(5, dtype=np.int32)})
    (tmp_path / "p1").write_bytes(data[:cut])
    (tmp_path / "p2").write_bytes(data[cut:])
    whole = read_ct2(
        write_ct2(tmp_path / "whole.bin", {"a": np.ones((4, 4), np.float32), "b": np.arange(5, dtype=np.int32)})
    )
    parts = read_ct2([tmp_path / "p1", tmp_path / "p2"])
    assert all(torch.equal(whole.variables[k], parts.variables[k]) for k in ("a", "b"))


def test_one_part_of_a_split_file_is_reported_as_truncated(tmp_path):
    data = ct2_bytes({"a": np.ones((64, 64), np.float32)})
    (tmp_path / "model.bin.part1").write_bytes(data[: len(data) // 2])
    with pytest.raises(Ct2FormatError, match="truncated.*one part of a split model"):
        read_ct2(tmp_path / "model.bin.part1")


def test_parts_in_the_wrong_order_are_refused(tmp_path):
    data = ct2_bytes({"a": np.ones((64, 64), np.float32)})
    (tmp_path / "p1").write_bytes(data[:100])
    (tmp_path / "p2").write_bytes(data[100:])
    with pytest.raises(Ct2FormatError, match="not a CTranslate2 model.bin"):
        read_ct2([tmp_path / "p2", tmp_path / "p1"])


def test_text_file_is_refused(tmp_path):
    with pytest.raises(Ct2FormatError, match="not a CTranslate2 model.bin"):
        read_ct2(write_text(tmp_path / "model.bin"))


def test_future_binary_version_is_refused(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(ct2_bytes({"a": np.ones(2, np.float32)}, version=7))
    with pytest.raises(Ct2FormatError, match="binary version 7"):
        read_ct2(path)


def test_unknown_dtype_code_is_refused(tmp_path):
    data = bytearray(ct2_bytes({"a": np.ones(2, np.float32)}))
    header = len(ct2_bytes({}))  # version, spec, revision, count, alias count
    pos = header - 4 + 2 + 2 + 1 + 4  # after name "a\0" (u16 + 2 bytes), rank (u8), dim (u32)
    data[pos] = 9
    (tmp_path / "model.bin").write_bytes(bytes(data))
    with pytest.raises(Ct2FormatError, match="'a' has unknown dtype id 9"):
        read_ct2(tmp_path / "model.bin")


def test_trailing_bytes_are_refused(tmp_path):
    (tmp_path / "model.bin").write_bytes(ct2_bytes({"a": np.ones(2, np.float32)}) + b"junk")
    with pytest.raises(Ct2FormatError, match="trailing bytes"):
        read_ct2(tmp_path / "model.bin")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.bin"):
        read_ct2(tmp_path)


def test_a_prefix_keeps_its_variables_and_reads_past_the_others(tmp_path):
    variables = {
        "encoder/w": np.arange(6, dtype=np.float16).reshape(2, 3),
        "decoder/embeddings": np.ones((300, 64), np.float16),
        "encoder/num_heads": np.array(6, dtype=np.int16),
    }
    path = write_ct2(tmp_path / "model.bin", variables, aliases=[("decoder/proj", "decoder/embeddings")])
    whole, enc = read_ct2(path), read_ct2(path, prefix="encoder/")
    assert set(enc.variables) == {"encoder/w", "encoder/num_heads"} and enc.spec == whole.spec
    assert all(torch.equal(enc.variables[k], whole.variables[k]) for k in enc.variables)
    (tmp_path / "short.bin").write_bytes(path.read_bytes()[:-100])  # cut inside the skipped decoder tensor
    with pytest.raises(Ct2FormatError, match="truncated"):
        read_ct2(tmp_path / "short.bin", prefix="encoder/")
