"""Manifests, loading items through the embed loaders, the task sampler and batch building."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from PIL import Image as PILImage

from gemb2.data.manifest import Manifest, ManifestError, content_id
from gemb2.data.manifest_items import ItemLoadError, load_item
from gemb2.model import Gemb2Model, tiny
from gemb2.parts import Audio, Image, Text
from gemb2.pipeline.loadspec import load_spec_for
from gemb2.train.batches import build_batch
from gemb2.train.sampler import TaskSampler
from gemb2.train.tasks import TaskSpec


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def text_rows(task, n, negatives=0):
    return [{"task": task, "query": [{"text": f"q{i}"}], "positive": [{"text": f"d{i}"}],
             **({"negatives": [[{"text": f"n{i}-{k}"}] for k in range(negatives)]} if negatives else {})}
            for i in range(n)]


@pytest.mark.parametrize("line, message", [
    ("not json", "invalid JSON"),
    ('["a"]', "must be a JSON object"),
    ('{"task": "t", "query": [{"text": "a"}], "positive": [{"text": "b"}], "extra": 1}', "unknown key(s) 'extra'"),
    ('{"task": "", "query": [{"text": "a"}], "positive": [{"text": "b"}]}', "'task' must be a non-empty string"),
    ('{"task": "t", "query": [{"text": "a"}]}', "missing 'positive'"),
    ('{"task": "t", "query": [], "positive": [{"text": "b"}]}', "'query' must be a non-empty list"),
    ('{"task": "t", "query": [{"txt": "a"}], "positive": [{"text": "b"}]}', 'needs "text" or "path"'),
    ('{"task": "t", "query": [{"text": 3}], "positive": [{"text": "b"}]}', "a text part is exactly"),
    ('{"task": "t", "query": [{"path": "a.wav", "start": 2, "end": 1}], "positive": [{"text": "b"}]}',
     "end (1) must be after start (2)"),
    ('{"task": "t", "query": [{"path": "a.wav", "start": -1}], "positive": [{"text": "b"}]}', "'start' must be"),
    ('{"task": "t", "query": [{"path": "a.wav", "fps": 1}], "positive": [{"text": "b"}]}', "unknown key(s) 'fps'"),
    ('{"task": "t", "query": [{"text": "a"}], "positive": [{"text": "b"}], "negatives": {}}', "'negatives' must be"),
])
def test_manifest_errors_name_the_line_and_the_problem(tmp_path, line, message):
    path = tmp_path / "m.jsonl"
    path.write_text('{"task": "t", "query": [{"text": "ok"}], "positive": [{"text": "ok"}]}\n' + line + "\n")
    with pytest.raises(ManifestError) as e:
        Manifest(path)
    assert f"{path}:2" in str(e.value) and message in str(e.value)


def test_manifest_indexes_tasks_across_files_and_reads_by_offset(tmp_path):
    a = write(tmp_path / "a.jsonl", text_rows("x", 3) + text_rows("y", 2))
    b = write(tmp_path / "b.jsonl", text_rows("x", 2))
    m = Manifest([a, b])
    assert m.tasks == {"x": 5, "y": 2}
    got = m.examples("x", [4, 0, 3])
    assert [e.query[0].text for e in got] == ["q1", "q0", "q0"]  # b.jsonl's rows come after a.jsonl's
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        Manifest(tmp_path / "nope.jsonl")


def test_content_ids_follow_content_not_identity(tmp_path):
    m = Manifest(write(tmp_path / "m.jsonl", text_rows("t", 2) + [text_rows("t", 1)[0]]))
    e = m.examples("t", [0, 1, 2])
    assert content_id(e[0].query) == content_id(e[2].query) != content_id(e[1].query)


def test_sampler_is_weighted_homogeneous_and_resumes_exactly():
    sizes = {"a": 40, "b": 10}
    s = TaskSampler(sizes, {"a": 3.0, "b": 1.0}, batch_size=4, seed=1, prompt_dropout=0.5)
    plans = [s.next() for _ in range(200)]
    share = np.mean([p.task == "a" for p in plans])
    assert 0.65 < share < 0.85  # p = 0.75
    for p in plans:
        assert p.indices.shape == (4,) and p.indices.max() < sizes[p.task]
    # each task walks through a permutation: one epoch covers every example once
    b_rows = np.concatenate([p.indices for p in plans if p.task == "b"])[:10]
    assert sorted(b_rows) == list(range(10))
    assert 0.3 < np.mean([p.keep_query_prompt for p in plans]) < 0.7
    # resume from the state after 37 steps: the same next batches
    s1 = TaskSampler(sizes, {"a": 3.0, "b": 1.0}, batch_size=4, seed=1, prompt_dropout=0.5)
    for _ in range(37):
        s1.next()
    state = json.loads(json.dumps(s1.state()))
    s2 = TaskSampler(sizes, {"a": 3.0, "b": 1.0}, batch_size=4, seed=1, prompt_dropout=0.5)
    s2.load_state(state)
    for p in plans[37:60]:
        q = s2.next()
        assert (q.task, q.step, list(q.indices), list(q.keep_query_prompt)) == \
            (p.task, p.step, list(p.indices), list(p.keep_query_prompt))


def test_sampler_validation_names_the_task():
    with pytest.raises(ValueError, match="task 'b' has 2 examples, fewer than the batch size 4"):
        TaskSampler({"a": 10, "b": 2}, {"a": 1, "b": 1}, 4, 0)
    with pytest.raises(ValueError, match="c have no examples"):
        TaskSampler({"a": 10}, {"a": 1, "c": 1}, 4, 0)


def test_items_load_through_the_embed_loaders_with_windows(tmp_path):
    model = Gemb2Model(tiny())
    spec = load_spec_for(model)
    tone = (0.1 * np.sin(np.arange(16000 * 3) / 16000 * 2 * np.pi * 440)).astype(np.float32)
    sf.write(tmp_path / "tone.wav", tone, 16000)
    PILImage.new("RGB", (40, 30), "red").save(tmp_path / "red.png")
    m = Manifest(write(tmp_path / "m.jsonl", [{
        "task": "t", "query": [{"text": "a caption"}, {"path": "red.png"}],
        "positive": [{"path": "tone.wav", "start": 1.0, "end": 2.5}],
        "negatives": [[{"path": "missing.wav"}]]}]))
    ex = m.examples("t", [0])[0]
    q = load_item(ex.query, spec)
    assert isinstance(q[0], Text) and isinstance(q[1], Image) and q[1].pixels.shape == (64, 64, 3)
    (a,) = load_item(ex.positive, spec)
    assert isinstance(a, Audio) and len(a.samples) == 24000  # [1.0, 2.5) s at 16 kHz
    np.testing.assert_allclose(a.samples, tone[16000:40000], atol=1e-3)
    with pytest.raises(ItemLoadError, match="missing.wav"):
        load_item(ex.negatives[0], spec)


def test_build_batch_prompts_dropout_negatives_and_rank_slices(tmp_path):
    model = Gemb2Model(tiny())
    spec = load_spec_for(model)
    m = Manifest(write(tmp_path / "m.jsonl", text_rows("t", 8, negatives=2)))
    s = TaskSampler(m.tasks, {"t": 1.0}, batch_size=4, seed=0, prompt_dropout=0.5)
    plan = s.next()
    task = TaskSpec("t", negatives=1, document_prompt="")
    b = build_batch(plan, m, task, spec, model.config)
    for item, keep in zip(b.queries, plan.keep_query_prompt):
        assert (item[0] == Text(model.config.query_prompt)) == bool(keep)
    assert all(len(item) == 1 for item in b.positives)  # "" = no document prompt
    assert len(b.negatives) == 4 and b.n_ids.shape == (4,)  # one per query
    halves = [build_batch(plan, m, task, spec, model.config, rank=r, world=2) for r in (0, 1)]
    assert [x for h in halves for x in h.d_ids.tolist()] == b.d_ids.tolist()
    # the prompt part gives the model's own query tokens
    assert b.queries and model.collate([(Text("x"),)], "query").input_ids.tolist() == \
        model.collate([(Text(model.config.query_prompt), Text("x"))], None).input_ids.tolist()
