"""The folder layout is the architecture: a test walks every import of ``iaalib`` (at module level
and inside functions) and checks that there is no import cycle and that each layer imports only
the layers below it (DEVELOPING.md, "Dependency rules")."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "iaalib"

#: layer -> the iaalib layers it must never import (the rest of the rule is "anything below").
FORBIDDEN = {
    "data": {"synth", "models", "tasks", "engine", "studies", "book", "cli", "datasets",
             "profiles", "viz", "gradcam"},
    "synth": {"models", "tasks", "engine", "studies", "book", "cli", "datasets", "profiles"},
    "models": {"data", "synth", "tasks", "engine", "studies", "book", "cli", "datasets",
               "profiles"},
    "losses": {"data", "synth", "tasks", "engine", "studies", "book", "cli"},
    "metrics": {"data", "synth", "models", "tasks", "engine", "studies", "book", "cli"},
    "tasks": {"data", "synth", "studies", "book", "cli", "datasets", "profiles"},
    "engine": {"synth", "studies", "book", "cli", "datasets", "profiles"},
    "studies": {"book", "cli"},
    "viz": {"engine", "studies", "book", "cli"},
    "book": {"cli"},
    "profiles": {"engine", "studies", "book", "cli", "models", "tasks"},
    "datasets": {"engine", "studies", "book", "cli", "models", "tasks"},
}
#: the one part of the engine a task reads: the experiment config it is built from
ALLOWED = {("tasks", "iaalib.engine.config")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported iaalib module, line, at module level?) for every import in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` blocks do not run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            top.discard(id(node))
    out = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            if t.startswith("iaalib"):
                out.append((t, node.lineno, False))
    # mark module-level statements
    level = set()
    for node in tree.body:
        if id(node) in top and isinstance(node, (ast.Import, ast.ImportFrom)):
            level.add(node.lineno)
    return [(t, line, line in level) for t, line, _ in out]


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in files}
    graph: dict[str, set[str]] = {}
    for p in files:
        deps = set()
        for target, _line, at_top in _imports(p):
            if module_level_only and not at_top:
                continue
            while target and target not in modules:  # `from pkg import name` → pkg
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != _module_name(p):
                deps.add(target)
        graph[_module_name(p)] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if colour.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if not colour.get(m):
                found = visit(m)
                if found:
                    return found
        colour[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if not colour.get(n):
            found = visit(n)
            if found:
                return found
    return None


def test_the_walk_sees_the_packages():
    graph = _graph(module_level_only=False)
    assert {"iaalib.engine.trainer", "iaalib.tasks.kao", "iaalib.studies.runner",
            "iaalib.data.tid", "iaalib.synth.ava", "iaalib.cli.data"} <= set(graph)
    assert "iaalib.tasks" in graph["iaalib.engine.trainer"]
    assert "iaalib.data.tid" in graph["iaalib.synth.tid"]


@pytest.mark.parametrize("module_level_only", [True, False], ids=["module level", "all imports"])
def test_no_import_cycle(module_level_only):
    """Also with the imports inside functions: a lazy import must not hide a cycle."""
    cycle = _cycle(_graph(module_level_only))
    assert cycle is None, " → ".join(cycle)


def test_each_layer_imports_only_the_layers_below_it():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        layer = name.split(".")[1] if name.count(".") >= 1 else ""
        for target, line, _top in _imports(path):
            parts = target.split(".")
            if len(parts) < 2 or (layer, ".".join(parts[:3])) in ALLOWED:
                continue
            if parts[1] in FORBIDDEN.get(layer, set()):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {layer} imports {target}")
    assert not bad, "\n".join(bad)


def test_only_the_cli_parses_arguments():
    users = sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                   if "argparse" in p.read_text(encoding="utf-8") and "cli" not in p.parts)
    assert users == [], users
