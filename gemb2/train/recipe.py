"""Recipes: a training run as data (YAML), validated before anything runs, run stage by stage.

A recipe (see recipes/*.yaml; torchtune's recipes are the model) is read with yaml.safe_load: it
names data files, models and numbers, never code, so a recipe cannot make `gemb2 train` import
anything. Paths are relative to the directory gemb2 runs in.

    name: tiny-stdlib                 # a label, used in the default output folder
    model: tiny                       # where the first stage starts: a preset, a model folder (gemb2's, or an
                                      # EmbeddingGemma 2 folder) or embeddinggemma-2 (the Hugging Face cache's)
    output: runs/tiny-stdlib          # each stage writes <output>/<stage>/ (checkpoints/, final/)
    seed: 0
    tasks:                            # every task a stage trains on
      docstring-code: {weight: 1.0, symmetric: false, query_prompt: null, document_prompt: null, negatives: 0}
    stages:                           # run in order; each starts from the previous stage's final model
      - name: finetune
        type: train                   # train | soup
        data: [data/stdlib/train.jsonl]   # JSONL manifests, or WebDataset shards (one mapping per task):
                                          # {shards: "s/train-{000000..000099}.tar", task: t, shuffle_buffer: 1000,
                                          #  query: [txt], positive: ["jpg;png"]}   (see shard_feed.py)
        tasks: [docstring-code]       # optional: a list, or {task: weight} overriding the weights
        init: null                    # optional: a stage name, a preset or a folder (default: previous stage)
        steps: 200                    # ... and any TrainSettings key (gemb2.train.loop)
        batch_size: 32
      - name: soup
        type: soup
        from: [finetune, other-stage] # the stages whose final models are averaged

Stages repeated by `--resume` are skipped once their final model exists; an unfinished stage
continues from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gemb2.errors import UsageError

from .loop import TrainSettings, train_stage
from .shard_feed import ShardSource
from .tasks import TaskSpec

RECIPE_KEYS = {"name", "model", "output", "seed", "tasks", "stages"}
STAGE_KEYS = {"name", "type", "data", "tasks", "init", "from"}
TASK_KEYS = {f.name for f in dataclasses.fields(TaskSpec)} - {"name"}
SETTINGS = {f.name: f for f in dataclasses.fields(TrainSettings)}
STAGE_TYPES = ("train", "soup")
SHARD_KEYS = {"shards", "task", "query", "positive", "shuffle_buffer"}


class RecipeError(UsageError, ValueError):
    """A recipe that cannot run; the message names the file, the key and the bad value."""


@dataclass(frozen=True)
class Stage:
    name: str
    type: str
    init: str | None = None  # None: the previous stage (or the recipe's model)
    data: tuple[str | ShardSource, ...] = ()
    tasks: dict[str, TaskSpec] | None = None
    settings: TrainSettings | None = None
    ingredients: tuple[str, ...] = ()  # soup: stage names


@dataclass(frozen=True)
class Recipe:
    path: Path
    name: str
    model: str
    output: Path
    seed: int
    stages: tuple[Stage, ...]


def load_recipe(path: str | Path, *, check_files: bool = True) -> Recipe:
    """Parse and validate a recipe file. RecipeError names the first problem (key path and value)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: invalid YAML ({e})") from None
    return parse_recipe(doc, path, check_files=check_files)


def parse_recipe(doc: Any, path: Path, *, check_files: bool = True) -> Recipe:
    def bad(where: str, msg: str) -> RecipeError:
        return RecipeError(f"{path}: {where}: {msg}")

    if not isinstance(doc, dict):
        raise bad("top level", f"a recipe is a mapping, got {type(doc).__name__}")
    _unknown(doc, RECIPE_KEYS, "top level", bad)
    for key in ("name", "model", "tasks", "stages"):
        if key not in doc:
            raise bad("top level", f"missing {key!r}")
    name = _typed(doc["name"], str, "name", bad)
    model = _typed(doc["model"], str, "model", bad)
    seed = _typed(doc.get("seed", 0), int, "seed", bad)
    output = Path(_typed(doc.get("output", f"runs/{name}"), str, "output", bad))
    if not isinstance(doc["tasks"], dict) or not doc["tasks"]:
        raise bad("tasks", "must be a non-empty mapping of task name -> settings")
    tasks = {t: _task(t, v, bad) for t, v in doc["tasks"].items()}
    if not isinstance(doc["stages"], list) or not doc["stages"]:
        raise bad("stages", "must be a non-empty list")
    stages: list[Stage] = []
    for i, st in enumerate(doc["stages"]):
        stages.append(_stage(st, i, tasks, seed, [s.name for s in stages], bad))
    if check_files:
        _check_files(model, stages, bad)
    return Recipe(path, name, model, output, seed, tuple(stages))


def _unknown(d: dict, allowed: set, where: str, bad) -> None:
    unknown = sorted(map(str, set(d) - allowed))
    if unknown:
        raise bad(where, f"unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(allowed))})")


def _typed(value: Any, kind: type, where: str, bad) -> Any:
    """Check a scalar against int/float/bool/str; floats also accept YAML's '1e-3' (a string in YAML 1.1)."""
    if kind is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad(where, f"must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad(where, f"must be a number, got {value!r}")
        return float(value)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise bad(where, f"must be an integer, got {value!r}")
    if kind is not int and not isinstance(value, kind):
        raise bad(where, f"must be {kind.__name__}, got {value!r}")
    return value


def _task(name: Any, v: Any, bad) -> TaskSpec:
    where = f"tasks.{name}"
    if not isinstance(name, str) or not name:
        raise bad("tasks", f"task names must be non-empty strings, got {name!r}")
    v = {} if v is None else v
    if not isinstance(v, dict):
        raise bad(where, f"must be a mapping of settings, got {v!r}")
    _unknown(v, TASK_KEYS, where, bad)
    kw: dict[str, Any] = {}
    if "weight" in v:
        kw["weight"] = _typed(v["weight"], float, f"{where}.weight", bad)
    if "symmetric" in v:
        kw["symmetric"] = _typed(v["symmetric"], bool, f"{where}.symmetric", bad)
    if "negatives" in v:
        kw["negatives"] = _typed(v["negatives"], int, f"{where}.negatives", bad)
    for k in ("query_prompt", "document_prompt"):
        if v.get(k) is not None:
            kw[k] = _typed(v[k], str, f"{where}.{k}", bad)
    try:
        return TaskSpec(name, **kw)
    except ValueError as e:
        raise bad(where, str(e)) from None


def _stage(st: Any, i: int, tasks: dict[str, TaskSpec], seed: int, before: list[str], bad) -> Stage:
    where = f"stages[{i}]"
    if not isinstance(st, dict):
        raise bad(where, f"a stage is a mapping, got {st!r}")
    name = _typed(st.get("name"), str, f"{where}.name", bad) if "name" in st else None
    if not name:
        raise bad(where, "missing 'name'")
    where = f"stages[{i}] ({name})"
    if name in before:
        raise bad(where, f"the stage name {name!r} is used twice")
    if "/" in name or name.startswith("."):
        raise bad(where, f"a stage name is a folder name: no '/' nor leading '.', got {name!r}")
    kind = st.get("type", "train")
    if kind not in STAGE_TYPES:
        raise bad(f"{where}.type", f"must be one of {', '.join(STAGE_TYPES)}, got {kind!r}")
    init = st.get("init")
    if init is not None:
        _typed(init, str, f"{where}.init", bad)
    if kind == "soup":
        return _soup(st, name, where, before, bad)
    _unknown(st, (STAGE_KEYS - {"from"}) | set(SETTINGS), where, bad)
    stage_tasks = _stage_tasks(st.get("tasks", list(tasks)), tasks, where, bad)
    data = _data(st.get("data"), stage_tasks, f"{where}.data", bad)
    for key in ("steps", "batch_size"):
        if key not in st:
            raise bad(where, f"missing {key!r}")
    kw: dict[str, Any] = {"seed": seed}
    hints = typing.get_type_hints(TrainSettings)
    for key in set(st) & set(SETTINGS):
        kw[key] = _setting(st[key], hints[key], f"{where}.{key}", bad)
    try:
        settings = TrainSettings(**kw)
    except TypeError as e:
        raise bad(where, str(e)) from None
    _check_settings(settings, where, bad)
    if settings.data_workers and not isinstance(data[0], ShardSource):
        raise bad(f"{where}.data_workers", "only shard data is read by loader workers (a manifest is read in place)")
    return Stage(name, "train", init=init, data=tuple(data), tasks=stage_tasks, settings=settings)


def _data(data: Any, tasks: dict[str, TaskSpec], where: str, bad) -> list[str | ShardSource]:
    """A stage's `data`: manifest paths, or shard mappings (one per task; `task` may be left out for one task)."""
    if isinstance(data, (str, dict)):
        data = [data]
    if not isinstance(data, list) or not data:
        raise bad(where, f"must be a manifest path or a non-empty list of them (or of shards mappings), got {data!r}")
    if all(isinstance(d, str) and d for d in data):
        return data
    if not all(isinstance(d, dict) for d in data):
        raise bad(where, f"list manifest paths or {{shards: ...}} mappings, not both: got {data!r}")
    out: list[str | ShardSource] = []
    for j, d in enumerate(data):
        w = f"{where}[{j}]" if len(data) > 1 else where
        _unknown(d, SHARD_KEYS, w, bad)
        shards = _strings(d.get("shards"), f"{w}.shards", bad)
        task = d.get("task")
        if task is None and len(tasks) == 1:
            task = next(iter(tasks))
        if task not in tasks:
            raise bad(f"{w}.task", f"name one of the stage's tasks ({', '.join(tasks)}), got {task!r}")
        kw: dict[str, Any] = {"shards": tuple(shards), "task": task}
        for key in ("query", "positive"):
            if key in d:
                kw[key] = tuple(_strings(d[key], f"{w}.{key}", bad))
        if "shuffle_buffer" in d:
            kw["shuffle_buffer"] = _typed(d["shuffle_buffer"], int, f"{w}.shuffle_buffer", bad)
            if kw["shuffle_buffer"] < 0:
                raise bad(f"{w}.shuffle_buffer", f"must be >= 0, got {kw['shuffle_buffer']}")
        out.append(ShardSource(**kw))
    named = [s.task for s in out if isinstance(s, ShardSource)]
    for t in tasks:
        if named.count(t) != 1:
            raise bad(where, f"task {t!r} needs exactly one shards entry, has {named.count(t)}")
    return out


def _strings(value: Any, where: str, bad) -> list[str]:
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise bad(where, f"must be a string or a non-empty list of strings, got {value!r}")
    return value


def _soup(st: dict, name: str, where: str, before: list[str], bad) -> Stage:
    """A soup stage: `from` lists at least two earlier stages, whose final weights it averages."""
    _unknown(st, {"name", "type", "from"}, where, bad)
    ing = st.get("from")
    if not isinstance(ing, list) or len(ing) < 2:
        raise bad(f"{where}.from", f"a soup averages a list of at least two earlier stages, got {ing!r}")
    for s in ing:
        if s not in before:
            raise bad(f"{where}.from", f"{s!r} is not an earlier stage ({', '.join(before) or 'none'})")
    return Stage(name, "soup", ingredients=tuple(ing))


def _stage_tasks(chosen: Any, tasks: dict[str, TaskSpec], where: str, bad) -> dict[str, TaskSpec]:
    """A stage's `tasks`: a list of the recipe's task names, or a mapping name -> weight (None: the task's)."""
    if isinstance(chosen, list):
        chosen = {t: None for t in chosen}
    if not isinstance(chosen, dict) or not chosen:
        raise bad(f"{where}.tasks", f"must be a list of task names or a mapping name -> weight, got {chosen!r}")
    stage_tasks = {}
    for t, w in chosen.items():
        if t not in tasks:
            raise bad(f"{where}.tasks", f"unknown task {t!r} (the recipe's tasks: {', '.join(tasks)})")
        spec = tasks[t]
        if w is not None:
            w = _typed(w, float, f"{where}.tasks.{t}", bad)
            if not w > 0:
                raise bad(f"{where}.tasks.{t}", f"a weight must be > 0, got {w}")
            spec = dataclasses.replace(spec, weight=w)
        stage_tasks[t] = spec
    return stage_tasks


def _setting(value: Any, hint, where: str, bad):
    """A TrainSettings value: scalars by type; tuples from YAML lists (a single string is a one-item list)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    tup = next((a for a in options if typing.get_origin(a) is tuple), None)
    if tup is None:
        return _typed(value, options[0], where, bad)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise bad(where, f"must be a list, got {value!r}")
    inner = typing.get_args(tup)[0]
    return tuple(_typed(v, inner, f"{where}[{j}]", bad) for j, v in enumerate(value))


def _check_settings(s: TrainSettings, where: str, bad) -> None:
    checks = [
        (s.steps >= 1, "steps", "must be >= 1"),
        (s.batch_size >= 2, "batch_size", "must be >= 2 (in-batch negatives)"),
        (s.lr > 0, "lr", "must be > 0"),
        (s.weight_decay >= 0, "weight_decay", "must be >= 0"),
        (0 <= s.warmup < s.steps, "warmup", f"must be in [0, steps={s.steps})"),
        (0 <= s.lr_floor <= 1, "lr_floor", "must be in [0, 1]"),
        (s.clip >= 0, "clip", "must be >= 0"),
        (s.temperature > 0, "temperature", "must be > 0"),
        (0 <= s.prompt_dropout <= 1, "prompt_dropout", "must be in [0, 1]"),
        (s.lora_rank >= 0, "lora_rank", "must be >= 0"),
        (s.cache_chunk >= 0, "cache_chunk", "must be >= 0"),
        (s.feature_cache_mb >= 0, "feature_cache_mb", "must be >= 0"),
        (s.data_workers >= 0, "data_workers", "must be >= 0"),
        (s.checkpoint_every >= 0, "checkpoint_every", "must be >= 0"),
        (s.keep_checkpoints >= 0, "keep_checkpoints", "must be >= 0"),
        (all(0 <= b < 1 for b in s.betas) and len(s.betas) == 2, "betas", "must be two numbers in [0, 1)"),
        (
            s.matryoshka_dims is None or (len(s.matryoshka_dims) > 0 and min(s.matryoshka_dims) >= 1),
            "matryoshka_dims",
            "must be positive integers",
        ),
    ]
    for ok, key, msg in checks:
        if not ok:
            raise bad(f"{where}.{key}", f"{msg}, got {getattr(s, key)!r}")


def _check_files(model: str, stages: list[Stage], bad) -> None:
    from gemb2.pretrained import PRESETS
    from gemb2.pretrained.sources import GEMMA_NAME

    def model_ok(source: str, where: str) -> None:
        if source in (*PRESETS, GEMMA_NAME) or (Path(source).expanduser() / "config.json").is_file():
            return  # embeddinggemma-2: the Hugging Face cache's copy (`gemb2 pull`), checked when loaded
        raise bad(where, f"{source!r} is neither a preset ({', '.join(PRESETS)}) nor a model folder (no config.json)")

    model_ok(model, "model")
    names = [s.name for s in stages]
    for i, s in enumerate(stages):
        if s.type != "train":
            continue
        if s.init is not None and s.init not in names[:i]:
            model_ok(s.init, f"stages[{i}] ({s.name}).init")
        for d in s.data:
            if isinstance(d, ShardSource):
                _check_shards(d, f"stages[{i}] ({s.name}).data", bad)
            elif not Path(d).expanduser().is_file():
                raise bad(
                    f"stages[{i}] ({s.name}).data",
                    f"manifest not found: {d} (the scripts in scripts/build_data/ build the shipped recipes' data)",
                )


def _check_shards(src: ShardSource, where: str, bad) -> None:
    """Every local shard exists (object-store shards are found when read)."""
    from gemb2.data.shards import ShardPatternError, is_remote, local_path

    try:
        urls = src.urls()
    except ShardPatternError as e:
        raise bad(where, str(e)) from None
    for u in urls:
        if not is_remote(u) and not Path(local_path(u)).expanduser().is_file():
            raise bad(where, f"shard not found: {u} (of {len(urls)} named by {', '.join(src.shards)})")


def run_recipe(
    recipe: Recipe, *, output: Path | None = None, resume: bool = False, log: Callable[[str], None] = lambda m: None
) -> Path:
    """Run every stage in order; returns the last stage's final model folder."""
    from .soup import soup

    out = Path(output or recipe.output)
    finals: dict[str, Path] = {}
    previous: str | Path = recipe.model
    for s in recipe.stages:
        folder = out / s.name
        final = folder / "final"
        if (final / "config.json").is_file():
            if not resume:
                raise RecipeError(
                    f"{folder} already holds a finished stage; pass --resume to continue the "
                    "run, or choose another --output"
                )
            log(f"stage {s.name}: done already ({final})")
        elif s.type == "soup":
            log(f"stage {s.name}: soup of {', '.join(s.ingredients)}")
            from .distributed import barrier, is_main

            if is_main():  # under torchrun one rank writes the soup
                soup([finals[n] for n in s.ingredients], final)
            barrier()
        else:
            if folder.exists() and not resume and any(folder.iterdir()):
                raise RecipeError(
                    f"{folder} holds an unfinished stage; pass --resume to continue it, or choose another --output"
                )
            init = str(finals[s.init]) if s.init in finals else (s.init or str(previous))
            assert s.settings is not None and s.tasks is not None  # a train stage has both (_stage)
            log(f"stage {s.name}: {s.settings.steps} steps from {init}")
            train_stage(init, folder, s.tasks, list(s.data), s.settings, resume=resume, log=log)
        finals[s.name] = final
        previous = final
    return Path(previous)
