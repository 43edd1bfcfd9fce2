"""Every test that starts a process is marked `slow`, so `pytest -m "not slow"` stays a quick inner loop.

Read from the source, nothing run: a test starts a process when its body, a fixture it takes or a helper it uses (in
its own module, a conftest.py above it, or imported from tests.*) calls subprocess, os.system/fork/exec/spawn, a
multiprocessing or torch.multiprocessing process starter, or the CLI helpers of tests/cli_run.py (which call
subprocess). Such a test carries `@pytest.mark.slow` or its module's `pytestmark = pytest.mark.slow`.

FAST lists the helpers let through: each runs a short external tool (ffmpeg, espeak-ng) to make a test file, and
costs a fraction of a second, measured. Processes the code under test starts by itself (the loader pool's spawned
workers, with the default --workers) are the code being tested, not seen here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# module.function -> what it runs and what it costs (measured on a 2-core box, warm disk cache)
FAST = {
    "tests.media.ffmpeg": "one short encode of a generated file: 0.05-0.5 s",
    "tests.data.test_formats._has_encoder": "`ffmpeg -encoders`: 0.05 s",
    "tests.export.test_onnx_client._speech": "espeak-ng, then ffmpeg to M4A: 0.3 s",
    "tests.pretrained.test_whisper_parity.speech": "espeak-ng, then ffmpeg to 16 kHz: 0.3 s (once a module)",
    "tests.pretrained.test_recognise._speech": "espeak-ng, then ffmpeg to 16 kHz: 0.3 s (once a module)",
}
OS_STARTERS = {"system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp"}
PROCESS_STARTERS = {"Process", "Pool", "start_processes", "spawn"}  # on multiprocessing / torch.multiprocessing
MP_MODULES = {"multiprocessing", "torch.multiprocessing"}


@dataclass
class Module:
    name: str
    path: Path
    defs: dict[str, ast.AST] = field(default_factory=dict)  # top-level functions and `name = ...` assignments
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # alias -> (module, name or None)
    tree: ast.Module | None = None


def _module_name(path: Path) -> str:
    return ".".join(("tests", *path.relative_to(TESTS).with_suffix("").parts))


def _read(path: Path) -> Module:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    m = Module(_module_name(path), path, tree=tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                m.imports[a.asname or a.name.split(".")[0]] = (a.name if a.asname else a.name.split(".")[0], None)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                m.imports[a.asname or a.name] = (node.module, a.name)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            m.defs[node.name] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    m.defs[t.id] = node.value
    return m


class Scan:
    """Which functions of tests/ start a process, and through what (a chain of names ending in the call)."""

    def __init__(self) -> None:
        self.modules = {(m := _read(p)).name: m for p in sorted(TESTS.rglob("*.py"))}
        self.memo: dict[tuple[str, str], list[str] | None] = {}

    def _module_of(self, mod: Module, alias: str) -> str | None:
        """The dotted module an alias names (`import subprocess`, `from tests import cli_run`, `import x as y`)."""
        if alias not in mod.imports:
            return None
        module, name = mod.imports[alias]
        return module if name is None else f"{module}.{name}"

    def _resolve(self, mod: Module, name: str) -> tuple[str, str] | None:
        """(module, function) for a name used in `mod`: its own top-level def, or one imported from tests.*."""
        if name in mod.defs:
            return mod.name, name
        if name in mod.imports:
            module, orig = mod.imports[name]
            if orig is not None and module in self.modules:
                return module, orig
        return None

    def _fixture(self, mod: Module, name: str) -> tuple[str, str] | None:
        """Where fixture `name` comes from: `mod` itself, else the nearest conftest.py above it."""
        if isinstance(mod.defs.get(name), ast.FunctionDef):
            return mod.name, name
        folder = mod.path.parent
        while folder == TESTS or TESTS in folder.parents:
            conf = self.modules.get(_module_name(folder / "conftest.py"))
            if conf and name in conf.defs:
                return conf.name, name
            folder = folder.parent
        return None

    def _direct(self, mod: Module, call: ast.Call) -> str | None:
        """The process a call starts by itself, named, or None."""
        f = call.func
        if isinstance(f, ast.Name) and mod.imports.get(f.id, ("", None))[0] == "subprocess":
            return f"subprocess.{f.id}"
        if not isinstance(f, ast.Attribute):
            return None
        owner = self._module_of(mod, f.value.id) if isinstance(f.value, ast.Name) else None
        if owner == "subprocess":
            return f"subprocess.{f.attr}"
        if owner == "os" and (f.attr in OS_STARTERS or f.attr.startswith(("spawn", "exec"))):
            return f"os.{f.attr}"
        if f.attr in PROCESS_STARTERS and (owner in MP_MODULES or (owner is None and f.attr == "Process")):
            return f"{owner or '...'}.{f.attr}"
        return None

    def starts(self, module: str, name: str, seen: frozenset = frozenset()) -> list[str] | None:
        """The chain by which module.name starts a process (e.g. ['embed_json', 'tests.cli_run.gemb2',
        'subprocess.run']), or None."""
        key = (module, name)
        if key in self.memo:
            return self.memo[key]
        if f"{module}.{name}" in FAST or key in seen:
            return None
        mod = self.modules[module]
        if name not in mod.defs:  # imported there from another tests module
            target = self._resolve(mod, name)
            return self.starts(*target, seen | {key}) if target else None
        node = mod.defs[name]
        found = None
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):  # the fixtures it takes
            for arg in node.args.args:
                fix = self._fixture(mod, arg.arg)
                if fix and fix != key and (chain := self.starts(*fix, seen | {key})):
                    found = [f"fixture {arg.arg}", *chain]
                    break
        if found is None:
            found = self._in_body(mod, node, key, seen | {key})
        self.memo[key] = found
        return found

    def _in_body(self, mod: Module, node: ast.AST, key: tuple[str, str], seen: frozenset) -> list[str] | None:
        """The first process start in `node`'s body: a direct call, or a helper (by name or module.name) that does."""
        for sub in ast.walk(node):
            target = None
            if isinstance(sub, ast.Call) and (what := self._direct(mod, sub)):
                return [what]
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                target = self._resolve(mod, sub.id)
            elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
                owner = self._module_of(mod, sub.value.id)
                if owner in self.modules and sub.attr in self.modules[owner].defs:
                    target = (owner, sub.attr)
            if target and target != key and (chain := self.starts(*target, seen)):
                return [".".join(target), *chain]
        return None


def _is_slow(expr: ast.AST | None) -> bool:
    """Whether an expression (a decorator, a pytestmark value) holds `pytest.mark.slow` outside a pytest.param."""
    if expr is None:
        return False
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "param":
        return False  # one parametrized case marked slow: the others still run in the quick loop
    if isinstance(expr, ast.Attribute) and expr.attr == "slow":
        return True
    return any(_is_slow(child) for child in ast.iter_child_nodes(expr))


def _unmarked_starters(scan: Scan) -> tuple[list[str], int]:
    """('path::test: chain' for each test that starts a process without the slow marker, how many start one)."""
    bad, starting = [], 0
    for mod in scan.modules.values():
        if not mod.path.name.startswith("test_"):
            continue
        module_slow = _is_slow(mod.defs.get("pytestmark"))
        for name, node in mod.defs.items():
            if not (name.startswith("test_") and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)):
                continue
            chain = scan.starts(mod.name, name)
            if chain is None:
                continue
            starting += 1
            if not (module_slow or any(_is_slow(d) for d in node.decorator_list)):
                bad.append(f"{mod.path.relative_to(TESTS.parent)}::{name}: {' -> '.join(chain)}")
    return bad, starting


def test_every_test_that_starts_a_process_is_marked_slow():
    bad, _ = _unmarked_starters(Scan())
    assert not bad, (
        "mark these @pytest.mark.slow (or list a fast helper in FAST, with its measured cost):\n" + "\n".join(bad)
    )


def test_the_scan_sees_the_processes_tests_start():
    scan = Scan()
    assert scan.starts("tests.cli.test_cli", "test_embed_json_summary_then_query_finds_the_file_itself") == [
        "tests.cli_run.gemb2",
        "subprocess.run",
    ]
    assert scan.starts("tests.cli.test_cron", "test_a_second_sigint_stops_at_once_and_the_rerun_is_consistent")
    assert (
        scan.starts("tests.train.test_gather", "test_two_gloo_processes_compute_the_one_process_loss_and_gradients")
        is not None
    )
    assert scan.starts("tests.media", "ffmpeg") is None  # FAST
    for helper in FAST:  # each still names a helper that exists
        module, name = helper.rsplit(".", 1)
        assert name in scan.modules[module].defs, f"FAST lists {helper}, which is gone"
    assert _unmarked_starters(scan)[1] >= 40
