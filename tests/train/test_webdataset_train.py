"""Training from WebDataset shards: an epoch is exactly the manifest's examples, ranks and loader workers read disjoint
shares, the loss agrees with the JSONL run's, a bad shard stops the run in one line, and a killed run resumes exactly.
"""

from __future__ import annotations

import functools
import json
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from gemb2.cli.main import app
from gemb2.data.shard_write import to_shards
from gemb2.train.loop import TrainSettings, train_stage
from gemb2.train.shard_feed import ShardFeed, ShardSource, TaskStream
from gemb2.train.tasks import TaskSpec
from tests import cli_run

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["river", "stone", "night", "city", "music", "paper", "light", "blue", "red", "cat", "dog", "boat", "sea"]
TASK = {"pairs": TaskSpec("pairs", symmetric=True)}


def text_manifest(path: Path, n: int) -> Path:
    """n text pairs (a phrase and its reversal with a number): distinct, cheap to embed."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(n):
        words = [WORDS[j] for j in rng.integers(0, len(WORDS), 4)]
        rows.append(
            {
                "task": "pairs",
                "query": [{"text": f"{' '.join(words)} {i}"}],
                "positive": [{"text": f"{i} {' '.join(reversed(words))}"}],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def shards(tmp: Path, n: int, size: int) -> tuple[Path, str]:
    manifest = text_manifest(tmp / "m.jsonl", n)
    return manifest, to_shards(manifest, tmp / "shards", size)["tasks"]["pairs"]["pattern"]


def seen(feed: ShardFeed, steps: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(steps):
        b = feed.next()
        out += [(q[-1].text, d[-1].text) for q, d in zip(b.queries, b.positives)]  # the last part: after the prompt
    feed.close()
    return out


def manifest_pairs(path: Path) -> set[tuple[str, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {(r["query"][0]["text"], r["positive"][0]["text"]) for r in rows}


def feed(pattern: str, rank=0, world=1, workers=0, seed=0, batch=6, steps=4, buffer=5) -> ShardFeed:
    from gemb2.pipeline.loadspec import load_spec_for

    model = _tiny()
    s = TrainSettings(steps=steps, batch_size=batch, seed=seed, data_workers=workers)
    src = ShardSource((pattern,), "pairs", shuffle_buffer=buffer)
    return ShardFeed([src], TASK, s, load_spec_for(model), model.config, rank, world)


@functools.cache
def _tiny():
    from gemb2 import load_model

    return load_model("tiny")


def test_one_epoch_is_exactly_the_manifest_in_a_seeded_order(tmp_path):
    manifest, pattern = shards(tmp_path, 24, 3)  # 8 shards
    a = seen(feed(pattern), 4)  # 4 steps x 6 = one epoch
    assert len(a) == 24 and set(a) == manifest_pairs(manifest)
    assert seen(feed(pattern), 4) == a  # the seed fixes the order
    b = seen(feed(pattern, seed=1), 4)
    assert set(b) == set(a) and b != a
    rows = [json.loads(x) for x in manifest.read_text().splitlines()]
    assert [p[0] for p in a] != [r["query"][0]["text"] for r in rows]  # shuffled: not the manifest's order


@pytest.mark.parametrize("workers", [0, 2])
def test_ranks_and_workers_read_disjoint_shares_whose_union_is_everything(tmp_path, workers):
    manifest, pattern = shards(tmp_path, 24, 3)  # 8 shards over 2 ranks x 2 workers: 2 shards per slot
    r0 = seen(feed(pattern, rank=0, world=2, workers=workers), 4)
    r1 = seen(feed(pattern, rank=1, world=2, workers=workers), 4)
    assert len(r0) == len(r1) == 12
    assert not set(r0) & set(r1) and set(r0) | set(r1) == manifest_pairs(manifest)


def test_fewer_shards_than_slots_split_by_sample(tmp_path):
    _, pattern = shards(tmp_path, 12, 6)  # 2 shards of 6 for 4 slots: each slot keeps every other sample of one
    from gemb2.data.shards import expand

    urls = expand(pattern)
    shares = [[s.key for s in TaskStream(urls, "pairs", 0, g, 4, 1).take(3)] for g in range(4)]
    flat = [(k, i) for i, share in enumerate(shares) for k in share]
    assert len({k for k, _ in flat}) == 12 == len(flat)  # disjoint, and every sample of both shards


def test_a_resumed_stream_continues_exactly(tmp_path):
    _, pattern = shards(tmp_path, 30, 4)  # uneven last shard, blocks of 5 that cross shards, two epochs
    from gemb2.data.shards import expand

    urls = expand(pattern)
    whole = TaskStream(urls, "pairs", 3, 0, 1, 5)
    ref = [s.key for s in whole.take(70)]
    for cut in (1, 5, 13, 29, 30, 31, 44):
        first = TaskStream(urls, "pairs", 3, 0, 1, 5)
        head = [s.key for s in first.take(cut)]
        tail = [
            s.key for s in TaskStream(urls, "pairs", 3, 0, 1, 5, json.loads(json.dumps(first.state()))).take(70 - cut)
        ]
        assert head + tail == ref, cut
    assert sorted(ref[:30]) == sorted(ref[30:60])  # epoch 1 repeats epoch 0's examples, in another order
    assert ref[:30] != ref[30:60]


def losses(log: list[str]) -> list[float]:
    return [float(m.group(1)) for line in log if (m := re.search(r" loss ([0-9.]+)", line))]


def test_the_loss_agrees_with_the_jsonl_run(tmp_path):
    """Every step's batch is the whole epoch (24 examples) and dropout is off, so both runs compute InfoNCE over the
    same examples in another order: a permutation-invariant loss, and the same gradient, step after step. The tolerance, 1e-3
    relative on 4-decimal logged losses (and 1e-4 on the weights), covers fp32 sums taken in another order."""
    from gemb2.model import save_pretrained

    manifest, pattern = shards(tmp_path, 24, 4)
    init = tmp_path / "tiny-no-dropout"  # dropout masks follow row positions, which the orders change
    save_pretrained(_tiny(), init)
    config = json.loads((init / "config.json").read_text())
    config["config"]["dropout"] = 0.0
    del config["model_id"]  # (the id is of the weights and config as saved)
    (init / "config.json").write_text(json.dumps(config))
    s = TrainSettings(steps=3, batch_size=24, lr=2e-3, seed=0, log_every=1)
    runs, finals = {}, {}
    for name, data in (("jsonl", [str(manifest)]), ("shards", [ShardSource((pattern,), "pairs", shuffle_buffer=8)])):
        log: list[str] = []
        finals[name] = load_file(
            train_stage(str(init), tmp_path / name, TASK, data, s, log=log.append) / "model.safetensors"
        )
        runs[name] = losses(log)
    assert len(runs["jsonl"]) == 3 and runs["jsonl"][0] > runs["jsonl"][-1]  # it learns
    np.testing.assert_allclose(runs["shards"], runs["jsonl"], rtol=1e-3)
    for k, v in finals["jsonl"].items():
        assert (finals["shards"][k] - v).abs().max() <= 1e-4, k


def recipe(path: Path, pattern: str, output: Path, **stage) -> Path:
    lines = [
        f"# gemb2 train {path}",
        "name: test",
        "model: tiny",
        f"output: {output}",
        "seed: 3",
        "tasks:",
        "  pairs: {symmetric: true}",
        "stages:",
        "  - name: finetune",
        f"    data: {{shards: '{pattern}', shuffle_buffer: 4}}",
    ] + [f"    {k}: {v}" for k, v in stage.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_corrupt_shard_stops_the_run_in_one_line(tmp_path):
    _, pattern = shards(tmp_path, 12, 6)
    first = tmp_path / "shards" / "pairs-000000.tar"
    first.write_bytes(first.read_bytes()[:1300])
    rec = recipe(tmp_path / "r.yaml", pattern, tmp_path / "out", steps=4, batch_size=6)
    r = CliRunner().invoke(app, ["train", str(rec), "-q"])
    assert r.exit_code == 3, r.output
    assert re.fullmatch(
        r"gemb2: error: \S+pairs-000000\.tar: truncated (header|member '\S+') at byte \d+ \(re-copy the shard\)\n",
        r.output,
    ), r.output
    missing = recipe(
        tmp_path / "m.yaml",
        str(tmp_path / "shards" / "pairs-{000000..000002}.tar"),
        tmp_path / "o2",
        steps=4,
        batch_size=6,
    )
    r = CliRunner().invoke(app, ["train", "--check", str(missing)])
    assert r.exit_code == 2 and "shard not found: " in r.output and "pairs-000002.tar (of 3 named by" in r.output


ONE_THREAD = {"OMP_NUM_THREADS": "1"}
gemb2 = functools.partial(cli_run.gemb2, env=ONE_THREAD, cwd=ROOT, timeout=None)


@pytest.mark.slow
def test_a_killed_shard_run_resumes_to_the_uninterrupted_weights(tmp_path):
    _, pattern = shards(tmp_path, 40, 5)  # 8 shards, 2 loader workers: the positions of both are checkpointed
    stage = dict(
        steps=10, batch_size=8, lr="1e-3", warmup=2, checkpoint_every=3, log_every=1, prompt_dropout=0.3, data_workers=2
    )
    full = recipe(tmp_path / "full.yaml", pattern, tmp_path / "full", **stage)
    whole = gemb2("train", str(full))
    assert whole.returncode == 0, whole.stderr

    killed = recipe(tmp_path / "killed.yaml", pattern, tmp_path / "killed", **stage)
    proc = cli_run.gemb2_popen(
        "train", killed, cwd=ROOT, env=ONE_THREAD, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:  # kill it right after step 5 (a checkpoint was written at step 3)
        lines.append(line)
        if "step 5/10" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    ckpt = tmp_path / "killed/finetune/checkpoints/step-000003"
    assert set(json.loads((ckpt / "data-0.json").read_text())["streams"]) == {"0", "1"}
    r = gemb2("train", "--resume", str(killed))
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stderr
    assert losses(r.stderr.splitlines()) == losses(whole.stderr.splitlines())[3:]  # steps 4..10, to 4 decimals
    a = load_file(tmp_path / "full/finetune/final/model.safetensors")
    b = load_file(tmp_path / "killed/finetune/final/model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() <= 1e-5, k


def test_shards_on_an_object_store_stream_the_same_epoch(tmp_path, monkeypatch):
    """s3:// shards on moto's S3 server (a real HTTP server on loopback), read through pyarrow's S3 filesystem."""
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    manifest, pattern = shards(tmp_path, 24, 3)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for k, v in dict(
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=f"http://{host}:{port}",
        ).items():
            monkeypatch.setenv(k, v)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="train")
        for p in sorted((tmp_path / "shards").glob("*.tar")):
            s3.upload_file(str(p), "train", f"shards/{p.name}")
        remote = "s3://train/shards/" + Path(pattern).name
        a = seen(feed(remote), 4)
        assert len(a) == 24 and set(a) == manifest_pairs(manifest)
        assert a == seen(feed(pattern), 4)  # the same order as the local copy: the URL does not change the shuffle
    finally:
        server.stop()
