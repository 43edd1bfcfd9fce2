"""Every shipped recipe validates; each validation branch names the bad key and value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gemb2.train.recipe import RecipeError, load_recipe, parse_recipe

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


def test_there_are_recipes():
    assert len(RECIPES) >= 2


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipe_is_valid_and_names_its_command(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# gemb2 train recipes/{path.name}")
    r = load_recipe(path, check_files=False)  # the data is built by scripts/build_data, not shipped
    assert r.stages and all(s.type in ("train", "soup") for s in r.stages)


BASE = {"name": "x", "model": "tiny", "tasks": {"t": {}},
        "stages": [{"name": "a", "data": ["m.jsonl"], "steps": 2, "batch_size": 4}]}


def mutate(path: list, value):
    import copy

    doc = copy.deepcopy(BASE)
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize("path, value, message", [
    (["colour"], "red", "top level: unknown key(s) 'colour'"),
    (["tasks", "t"], {"wieght": 2}, "tasks.t: unknown key(s) 'wieght'"),
    (["tasks", "t"], {"weight": 0}, "tasks.t: task 't': weight must be > 0, got 0.0"),
    (["tasks", "t"], {"symmetric": "yes"}, "tasks.t.symmetric: must be bool, got 'yes'"),
    (["stages", 0, "lr"], "fast", "stages[0] (a).lr: must be a number, got 'fast'"),
    (["stages", 0, "steps"], 1.5, "stages[0] (a).steps: must be an integer, got 1.5"),
    (["stages", 0, "warmup"], 5, "stages[0] (a).warmup: must be in [0, steps=2), got 5"),
    (["stages", 0, "optimizer"], "sgd", "stages[0] (a): unknown key(s) 'optimizer'"),
    (["stages", 0, "tasks"], ["u"], "unknown task 'u'"),
    (["stages", 0, "type"], "distill", "stages[0] (a).type: must be one of train, soup, got 'distill'"),
    (["stages", 0, "data"], [], "stages[0] (a).data: must be a manifest path or a non-empty list"),
    (["stages", 0, "batch_size"], 1, "batch_size: must be >= 2"),
    (["stages", 0, "freeze"], 3, "stages[0] (a).freeze: must be a list, got 3"),
])
def test_bad_values_are_named(path, value, message):
    with pytest.raises(RecipeError) as e:
        parse_recipe(mutate(path, value), Path("r.yaml"), check_files=False)
    assert message in str(e.value)


def test_soup_needs_earlier_stages_and_files_are_checked(tmp_path):
    doc = mutate(["stages"], BASE["stages"] + [{"name": "s", "type": "soup", "from": ["a", "zz"]}])
    with pytest.raises(RecipeError, match="'zz' is not an earlier stage"):
        parse_recipe(doc, Path("r.yaml"), check_files=False)
    with pytest.raises(RecipeError, match="manifest not found: m.jsonl"):
        parse_recipe(BASE, Path("r.yaml"), check_files=True)
    with pytest.raises(RecipeError, match="'nope' is neither a preset"):
        parse_recipe(mutate(["model"], "nope"), Path("r.yaml"))


def test_yaml_cannot_construct_python_objects(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("name: !!python/object/apply:os.system ['echo hi']\nmodel: tiny\n")
    with pytest.raises(RecipeError, match="invalid YAML"):
        load_recipe(p)
    assert yaml.safe_load("a: 1e-3")["a"] == "1e-3"  # why float settings accept numeric strings
