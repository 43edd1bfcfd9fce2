"""gemb2.pretrained.whisper: loaders (HF safetensors, CTranslate2) and their failure branches, on small
random encoders written by the tests; parity with CTranslate2 / faster-whisper is in test_whisper_parity.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gemb2.pretrained.weights import WeightsFileError
from gemb2.model.stems.whisper_encoder import WhisperEncoder, WhisperEncoderConfig, pad_or_trim, sinusoids
from gemb2.pretrained.whisper import encoder_from_ct2, encoder_from_hf_safetensors
from tests.pretrained.ct2_writer import write_ct2
from tests.pretrained.unsafe import write_code_pickle, write_text

SMALL = WhisperEncoderConfig(d_model=128, n_heads=2, n_layers=2, n_mels=80, n_ctx=50)


@pytest.fixture(scope="module")
def small() -> WhisperEncoder:
    torch.manual_seed(0)
    model = WhisperEncoder(SMALL).eval()
    with torch.no_grad():  # non-trivial norms and biases, so a mis-mapped tensor shows in the output
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def mel() -> torch.Tensor:
    return torch.randn(2, 80, 100, generator=torch.Generator().manual_seed(1))  # (B, 80, T)


def _hf_folder(tmp_path, model: WhisperEncoder, prefix="model.encoder.", drop=(), replace=None):
    state = {prefix + k: v.clone() for k, v in model.state_dict().items() if k not in drop}
    for k, v in (replace or {}).items():
        state[prefix + k] = v
    state["model.decoder.embed_tokens.weight"] = torch.zeros(4, model.config.d_model)  # ignored
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"encoder_attention_heads": model.config.n_heads}))
    return tmp_path


def _to_ct2(model: WhisperEncoder, key_bias: float = 0.0) -> dict[str, np.ndarray]:
    """HF names -> CTranslate2 names (fused QKV with a zero key bias), as ct2's WhisperLoader writes them."""
    s = {k: v.numpy().astype(np.float16) for k, v in model.state_dict().items()}
    d = model.config.d_model
    out = {"encoder/num_heads": np.array(model.config.n_heads, dtype=np.int16)}
    for c in ("conv1", "conv2"):
        out[f"encoder/{c}/weight"], out[f"encoder/{c}/bias"] = s[f"{c}.weight"], s[f"{c}.bias"]
    out["encoder/position_encodings/encodings"] = s["embed_positions.weight"]
    for i in range(model.config.n_layers):
        p, c = f"layers.{i}.", f"encoder/layer_{i}/"
        a = p + "self_attn."
        out[c + "self_attention/layer_norm/gamma"] = s[p + "self_attn_layer_norm.weight"]
        out[c + "self_attention/layer_norm/beta"] = s[p + "self_attn_layer_norm.bias"]
        out[c + "self_attention/linear_0/weight"] = np.concatenate([s[a + "q_proj.weight"], s[a + "k_proj.weight"], s[a + "v_proj.weight"]])
        kb = np.full(d, key_bias, dtype=np.float16)
        out[c + "self_attention/linear_0/bias"] = np.concatenate([s[a + "q_proj.bias"], kb, s[a + "v_proj.bias"]])
        out[c + "self_attention/linear_1/weight"], out[c + "self_attention/linear_1/bias"] = s[a + "out_proj.weight"], s[a + "out_proj.bias"]
        out[c + "ffn/layer_norm/gamma"], out[c + "ffn/layer_norm/beta"] = s[p + "final_layer_norm.weight"], s[p + "final_layer_norm.bias"]
        for j in (0, 1):
            out[c + f"ffn/linear_{j}/weight"], out[c + f"ffn/linear_{j}/bias"] = s[p + f"fc{j + 1}.weight"], s[p + f"fc{j + 1}.bias"]
    out["encoder/layer_norm/gamma"], out["encoder/layer_norm/beta"] = s["layer_norm.weight"], s["layer_norm.bias"]
    out["decoder/embeddings/weight"] = np.zeros((4, d), np.float16)  # the decoder is ignored
    return out


# ---- Hugging Face safetensors ---------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["model.encoder.", "encoder."])
def test_hf_round_trip(tmp_path, small, mel, prefix):
    loaded = encoder_from_hf_safetensors(_hf_folder(tmp_path, small, prefix))
    assert loaded.config == SMALL
    with torch.no_grad():
        assert torch.equal(loaded(mel), small(mel))


def test_hf_missing_tensor_is_named(tmp_path, small):
    folder = _hf_folder(tmp_path, small, drop=("layers.1.fc2.bias",))
    with pytest.raises(ValueError, match=r"'layers\.1\.fc2\.bias' is missing"):
        encoder_from_hf_safetensors(folder)


def test_hf_wrong_shape_is_named(tmp_path, small):
    folder = _hf_folder(tmp_path, small, replace={"layers.0.self_attn.k_proj.weight": torch.zeros(128, 64)})
    with pytest.raises(ValueError, match=r"'layers\.0\.self_attn\.k_proj\.weight' has shape \(128, 64\)"):
        encoder_from_hf_safetensors(folder)


def test_hf_unexpected_tensor_is_named(tmp_path, small):
    folder = _hf_folder(tmp_path, small, replace={"layers.0.self_attn.k_proj.bias": torch.zeros(128)})
    with pytest.raises(ValueError, match=r"unexpected Whisper encoder tensor 'layers\.0\.self_attn\.k_proj\.bias'"):
        encoder_from_hf_safetensors(folder)


def test_hf_without_encoder_tensors(tmp_path):
    save_file({"model.decoder.embed_tokens.weight": torch.zeros(4, 8)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="no Whisper encoder tensors"):
        encoder_from_hf_safetensors(tmp_path)


def test_hf_text_file_is_refused(tmp_path):
    write_text(tmp_path / "model.safetensors")
    with pytest.raises(WeightsFileError, match="not a safetensors file"):
        encoder_from_hf_safetensors(tmp_path)


def test_hf_pickle_is_refused_without_running(tmp_path):
    write_code_pickle(tmp_path / "model.safetensors", tmp_path / "pwned")
    with pytest.raises(WeightsFileError):
        encoder_from_hf_safetensors(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_hf_pytorch_bin_is_not_taken_as_safetensors(tmp_path, small):
    torch.save({"model.encoder." + k: v for k, v in small.state_dict().items()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(WeightsFileError, match="must be a .safetensors file"):
        encoder_from_hf_safetensors(tmp_path / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        encoder_from_hf_safetensors(tmp_path)


# ---- CTranslate2 ----------------------------------------------------------------------------


def test_ct2_mapping_gives_the_same_encoder(tmp_path, small, mel):
    path = write_ct2(tmp_path / "model.bin", _to_ct2(small), spec="WhisperSpec")
    loaded = encoder_from_ct2(tmp_path)  # the folder
    assert loaded.config == SMALL
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel), small(mel), atol=2e-2, rtol=0)  # fp16 storage
    half = encoder_from_ct2(path)
    for k, v in small.state_dict().items():
        torch.testing.assert_close(half.state_dict()[k], v.half().float(), atol=0, rtol=0)


def test_ct2_non_zero_key_bias_is_refused(tmp_path, small):
    write_ct2(tmp_path / "model.bin", _to_ct2(small, key_bias=0.5), spec="WhisperSpec")
    with pytest.raises(ValueError, match="non-zero key bias"):
        encoder_from_ct2(tmp_path / "model.bin")


def test_ct2_missing_tensor_is_named(tmp_path, small):
    v = _to_ct2(small)
    v.pop("encoder/layer_1/ffn/layer_norm/beta")
    write_ct2(tmp_path / "model.bin", v, spec="WhisperSpec")
    with pytest.raises(ValueError, match=r"'layers\.1\.final_layer_norm\.bias' is missing"):
        encoder_from_ct2(tmp_path / "model.bin")


def test_ct2_wrong_shape_is_named(tmp_path, small):
    v = _to_ct2(small)
    v["encoder/conv2/weight"] = np.zeros((128, 128, 5), np.float16)
    write_ct2(tmp_path / "model.bin", v, spec="WhisperSpec")
    with pytest.raises(ValueError, match=r"'conv2\.weight' has shape \(128, 128, 5\)"):
        encoder_from_ct2(tmp_path / "model.bin")


def test_ct2_other_model_is_refused(tmp_path):
    write_ct2(tmp_path / "model.bin", {"encoder/embeddings/weight": np.zeros((4, 8), np.float32)}, spec="TransformerSpec")
    with pytest.raises(ValueError, match="'TransformerSpec' model, not Whisper"):
        encoder_from_ct2(tmp_path / "model.bin")


def test_ct2_text_file_is_refused(tmp_path):
    from gemb2.pretrained.ct2 import Ct2FormatError

    with pytest.raises(Ct2FormatError):
        encoder_from_ct2(write_text(tmp_path / "model.bin"))


# ---- the module itself ----------------------------------------------------------------------


def test_input_checks(small):
    with pytest.raises(ValueError, match=r"expected log-mel \(B, 80, T\), got shape \(1, 64, 100\)"):
        small(torch.zeros(1, 64, 100))
    with pytest.raises(ValueError, match="102 frames, more than this encoder's 100"):
        small(torch.zeros(1, 80, 102))


def test_output_length_and_pad_or_trim(small):
    with torch.no_grad():
        assert small(torch.zeros(1, 80, 99)).shape == (1, 50, 128)
    assert pad_or_trim(torch.ones(10), 16).tolist() == [1.0] * 10 + [0.0] * 6
    assert pad_or_trim(torch.ones(2, 20), 16).shape == (2, 16)


def test_sinusoids_are_whispers():
    pos = sinusoids(1500, 384)  # (1500, 384)
    assert torch.equal(pos[0, :192], torch.zeros(192)) and torch.equal(pos[0, 192:], torch.ones(192))
    assert torch.allclose(pos[7, 0], torch.tensor(7.0).sin())  # timescale 1 for the first channel
