"""WebDataset shards: the converter writes what the reader reads back (the manifest's examples, decoded to the same
parts), brace patterns, img2dataset's layout, resume offsets, corrupt shards, and pickle members never loaded."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gemb2.cli.main import app
from gemb2.data.manifest import Manifest, content_id
from gemb2.data.manifest_items import load_item
from gemb2.data.shard_examples import PlainLayout, load_shard_item, to_example
from gemb2.data.shards import ShardError, ShardPatternError, expand, iter_samples
from tests.media import write_image, write_wav


def mixed_manifest(root: Path, n: int = 12) -> Path:
    """n examples of two tasks: captions of images, an audio window with its words, code with hard negatives."""
    rows = []
    for i in range(n):
        if i % 3 == 0:
            write_image(root / "img" / f"{i}.png", seed=i, size=(24, 32))
            rows.append({"task": "pic", "query": [{"text": f"picture {i}"}], "positive": [{"path": f"img/{i}.png"}]})
        elif i % 3 == 1:
            write_wav(root / "wav" / f"{i}.wav", seconds=1.5, freq=200.0 + 50 * i)
            rows.append(
                {
                    "task": "pic",
                    "query": [{"path": f"wav/{i}.wav", "start": 0.5, "end": 1.25}],
                    "positive": [{"text": f"tone {i}"}, {"path": f"img/{i - 1}.png"}],
                }
            )
        else:
            rows.append(
                {
                    "task": "code",
                    "query": [{"text": f"adds {i}"}],
                    "positive": [{"text": f"x + {i}"}],
                    "negatives": [[{"text": f"x - {i}"}]],
                }
            )
    path = root / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def convert(manifest: Path, out: Path, size: int) -> dict:
    r = CliRunner().invoke(app, ["data", "to-shards", str(manifest), str(out), "--shard-size", str(size), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def shard_examples(pattern: str, task: str):
    return [to_example(s, task, PlainLayout()) for url in expand(pattern) for s in iter_samples(url)]


def test_converted_shards_hold_the_manifest_examples_decoded_to_the_same_parts(tmp_path, tiny):
    from gemb2.pipeline.loadspec import load_spec_for

    manifest = mixed_manifest(tmp_path)
    summary = convert(manifest, tmp_path / "shards", 3)
    assert summary["examples"] == 12
    assert {t: (v["examples"], v["shards"]) for t, v in summary["tasks"].items()} == {"pic": (8, 3), "code": (4, 2)}
    m, spec = Manifest(manifest), load_spec_for(tiny)
    for task, info in summary["tasks"].items():
        assert len(expand(info["pattern"])) == info["shards"]
        ours = shard_examples(info["pattern"], task)
        theirs = m.examples(task, range(m.tasks[task]))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):  # the converter keeps manifest order
            qa, qb = load_shard_item(a.query, spec), load_item(b.query, spec)
            pa, pb = load_shard_item(a.positive, spec), load_item(b.positive, spec)
            for x, y in zip(qa + pa, qb + pb):
                assert type(x) is type(y)
                for field in ("text", "pixels", "samples"):
                    if hasattr(x, field):
                        np.testing.assert_array_equal(getattr(x, field), getattr(y, field))
            assert len(a.negatives) == len(b.negatives)
            if task == "code":  # texts: the same content ids as the manifest's (false-negative masking agrees)
                assert content_id(a.query) == content_id(b.query) and content_id(a.positive) == content_id(b.positive)
                assert [p.text for p in a.negatives[0]] == [p.text for p in b.negatives[0]]


def test_conversion_is_deterministic_and_refuses_a_folder_with_shards(tmp_path):
    manifest = mixed_manifest(tmp_path, 6)
    a, b = convert(manifest, tmp_path / "a", 4), convert(manifest, tmp_path / "b", 4)
    for task in a["tasks"]:
        for x, y in zip(expand(a["tasks"][task]["pattern"]), expand(b["tasks"][task]["pattern"])):
            assert Path(x).read_bytes() == Path(y).read_bytes()
    again = CliRunner().invoke(app, ["data", "to-shards", str(manifest), str(tmp_path / "a")])
    assert again.exit_code == 2 and "already holds shards" in again.output
    (tmp_path / "bad.jsonl").write_text('{"task": "t", "query": [{"text": "q"}], "positive": [{"path": "gone.png"}]}\n')
    r = CliRunner().invoke(app, ["data", "to-shards", str(tmp_path / "bad.jsonl"), str(tmp_path / "c")])
    assert r.exit_code == 3 and "bad.jsonl:1" in r.output and "gone.png" in r.output
    assert not list((tmp_path / "c").glob("*.tar*"))  # nothing half-written is left


def test_brace_patterns():
    assert expand("s/a-{008..011}.tar") == ["s/a-008.tar", "s/a-009.tar", "s/a-010.tar", "s/a-011.tar"]
    assert expand("{x,y}-{0..1}") == ["x-0", "x-1", "y-0", "y-1"]
    assert expand("s3://b/plain.tar") == ["s3://b/plain.tar"]
    with pytest.raises(ShardPatternError, match="backwards"):
        expand("a-{3..1}.tar")


def write_tar(path: Path, members: list[tuple[str, bytes]], fmt=tarfile.PAX_FORMAT) -> Path:
    with tarfile.open(path, "w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_img2dataset_layout_long_names_and_resume_offsets(tmp_path):
    jpg = _jpeg(tmp_path)
    long = "d/" + "k" * 120  # a GNU/pax long name
    shard = write_tar(
        tmp_path / "s.tar",
        [
            ("000.jpg", jpg),
            ("000.txt", b"a cat"),
            ("000.json", b'{"url": "http://x", "width": 8}'),
            (f"{long}.txt", b"a dog"),
            (f"{long}.png", jpg),
            ("002.txt", b"a bird"),
            ("002.jpg", jpg),
            ("002.pyd", b"ignored"),
        ],
    )
    samples = list(iter_samples(str(shard)))
    assert [s.key for s in samples] == ["000", long, "002"]
    layout = PlainLayout(query=("txt",), positive=("jpg;png",))
    ex = [to_example(s, "cap", layout) for s in samples]
    assert [e.query[0].text for e in ex] == ["a cat", "a dog", "a bird"]
    assert [e.positive[0].suffix for e in ex] == ["jpg", "png", "jpg"]
    rest = list(iter_samples(str(shard), samples[1].offset, samples[1].index))  # a resumed reader
    assert [(s.key, s.index, s.members) for s in rest] == [(s.key, s.index, s.members) for s in samples[1:]]
    with pytest.raises(ShardError, match=r"s.tar#000: no webp member for the positive \(members: jpg, json, txt\)"):
        to_example(samples[0], "cap", PlainLayout(positive=("webp",)))


def _jpeg(tmp_path: Path) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


class _Boom:
    """Unpickling this writes a marker file: the test proves no reader ever unpickles a member."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "unpickled"))


def test_a_pickle_member_is_never_loaded(tmp_path, tiny):
    from gemb2.pipeline.loadspec import load_spec_for

    marker = tmp_path / "UNPICKLED"
    evil = pickle.dumps(_Boom(str(marker)))
    shard = write_tar(
        tmp_path / "p.tar",
        [
            ("000.txt", b"caption"),
            ("000.jpg", _jpeg(tmp_path)),
            ("000.pyd", evil),
            ("000.pickle", evil),
            ("000.json", b'{"note": 1}'),
        ],
    )
    (sample,) = iter_samples(str(shard))
    ex = to_example(sample, "cap", PlainLayout())
    load_shard_item(ex.query, load_spec_for(tiny)), load_shard_item(ex.positive, load_spec_for(tiny))
    for asked in ("pyd", "pickle"):  # asking for one by name is refused, not decoded
        with pytest.raises(ShardError, match="a pickle member; gemb2 never unpickles"):
            to_example(sample, "cap", PlainLayout(positive=(asked,)))
    assert not marker.exists()


def test_corrupt_and_truncated_shards_are_one_line_errors(tmp_path):
    good = write_tar(tmp_path / "g.tar", [(f"{i:03d}.txt", b"x" * 700) for i in range(3)])
    data = good.read_bytes()
    cases = {
        "mid-member": (data[:2200], "truncated member '001.txt' at byte"),
        "no end block": (data[:1536], "truncated at byte 1536 (no end-of-archive block"),
        "garbage": (data[:1536] + b"\x07" * 512 + data[2048:], "corrupt tar header at byte 1536"),
        "not a tar": (b"hello" * 300, "corrupt tar header at byte 0"),
    }
    for name, (blob, message) in cases.items():
        bad = tmp_path / f"{name}.tar"
        bad.write_bytes(blob)
        with pytest.raises(ShardError) as e:
            list(iter_samples(str(bad)))
        assert message in str(e.value) and str(bad) in str(e.value) and "\n" not in str(e.value), name
    with pytest.raises(ShardError, match="shard not found"):
        list(iter_samples(str(tmp_path / "missing.tar")))


def test_a_member_that_does_not_decode_is_named_by_shard_and_key(tmp_path, tiny):
    from gemb2.data.manifest_items import ItemLoadError
    from gemb2.pipeline.loadspec import load_spec_for

    shard = write_tar(tmp_path / "s.tar", [("007.txt", b"caption"), ("007.png", b"not a png at all")])
    (sample,) = iter_samples(str(shard))
    ex = to_example(sample, "cap", PlainLayout(positive=("png",)))
    with pytest.raises(ItemLoadError) as e:
        load_shard_item(ex.positive, load_spec_for(tiny))
    assert str(e.value).startswith(f"{shard}#007.png: ") and "gemb2-member-" not in str(e.value)


BASE = {
    "name": "x",
    "model": "tiny",
    "tasks": {"a": {}, "b": {}},
    "stages": [
        {
            "name": "s",
            "data": [{"shards": "a-{0..1}.tar", "task": "a"}, {"shards": ["b.tar"], "task": "b"}],
            "steps": 2,
            "batch_size": 4,
            "data_workers": 2,
        }
    ],
}


@pytest.mark.parametrize(
    "data, message",
    [
        (
            [{"shards": "a.tar"}, {"shards": "b.tar", "task": "b"}],
            ".data[0].task: name one of the stage's tasks (a, b)",
        ),
        (
            [{"shards": "a.tar", "task": "a", "shufle_buffer": 3}, {"shards": "b.tar", "task": "b"}],
            "unknown key(s) 'shufle_buffer'",
        ),
        ([{"shards": "a.tar", "task": "a"}], "task 'b' needs exactly one shards entry, has 0"),
        (["m.jsonl", {"shards": "a.tar", "task": "a"}], "list manifest paths or {shards: ...} mappings, not both"),
        (
            [{"shards": [], "task": "a"}, {"shards": "b.tar", "task": "b"}],
            ".data[0].shards: must be a string or a non-empty list",
        ),
        (
            [{"shards": "a.tar", "task": "a", "shuffle_buffer": -1}, {"shards": "b.tar", "task": "b"}],
            "shuffle_buffer: must be >= 0",
        ),
        (["m.jsonl"], "stages[0] (s).data_workers: only shard data is read by loader workers"),
    ],
)
def test_recipe_shard_entries_are_validated(data, message):
    import copy

    from gemb2.train.recipe import RecipeError, parse_recipe

    doc = copy.deepcopy(BASE)
    assert parse_recipe(doc, Path("r.yaml"), check_files=False).stages[0].data[0].shards == ("a-{0..1}.tar",)
    doc["stages"][0]["data"] = data
    with pytest.raises(RecipeError) as e:
        parse_recipe(doc, Path("r.yaml"), check_files=False)
    assert message in str(e.value)
