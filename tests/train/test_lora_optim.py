"""LoRA (a no-op at init, merged on save into a plain model) and pickle-free optimizer state."""

from __future__ import annotations

import json

import pytest
import torch

from gemb2 import load_model
from gemb2.model import Gemb2Model, save_pretrained, tiny
from gemb2.train.lora import LoRALinear, apply_lora, merged
from gemb2.train.optim_state import load_optimizer, save_optimizer
from gemb2.train.schedule import lr_at


def test_lora_starts_as_identity_trains_only_adapters_and_saves_a_plain_merged_model(tmp_path):
    model = Gemb2Model(tiny().replace(dropout=0.0))
    texts = ["a red car", "a cat"]
    before = model.encode(texts)
    names = apply_lora(model.backbone, rank=4, alpha=8)
    assert "encoder.layer.0.attention.self.query" in names and len(names) == 2 * 6
    torch.testing.assert_close(torch.from_numpy(model.encode(texts)), torch.from_numpy(before))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(std=0.05)
    adapted = model.encode(texts)
    assert (abs(adapted - before)).max() > 1e-3
    assert not model.backbone.encoder.layer[0].attention.self.query.base.weight.requires_grad
    with merged(model):
        save_pretrained(model, tmp_path / "m")
    assert isinstance(model.backbone.encoder.layer[0].attention.self.query, LoRALinear)  # put back
    plain = load_model(str(tmp_path / "m"))
    torch.testing.assert_close(torch.from_numpy(plain.encode(texts)), torch.from_numpy(adapted),
                               atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="no linear layer named nope"):
        apply_lora(model.backbone, 4, 8, targets=("nope",))


def test_optimizer_state_round_trips_without_pickle(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, betas=(0.8, 0.95))
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    save_optimizer(opt, tmp_path)
    doc = json.loads((tmp_path / "optimizer.json").read_text())
    assert doc["state"]["0"]["exp_avg"] == {"tensor": "state.0.exp_avg"}
    opt2 = torch.optim.AdamW(net.parameters(), lr=5.0)
    load_optimizer(opt2, tmp_path)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in a["state"]:
        for k in a["state"][i]:
            torch.testing.assert_close(b["state"][i][k], a["state"][i][k])
    with pytest.raises(ValueError, match="optimizer state is for 'AdamW', not SGD"):
        load_optimizer(torch.optim.SGD(net.parameters(), lr=1), tmp_path)


def test_schedule_warms_up_then_decays_to_the_floor():
    lrs = [lr_at(s, total=100, warmup=10, peak=1.0, floor_ratio=0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lr_at(100, total=100, warmup=10, peak=1.0, floor_ratio=0.1) == pytest.approx(0.1)
