"""The layering holds: no import cycle in the kit (also inside functions), query code never
imports lifecycle code, ``pkg`` never imports ``internal``, and the application, scripts,
benchmarks and README examples use only the public API."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "pkg" / "database"
PUBLIC_MODULES = (
    "pkg.database",
    "pkg.database.errors",
    "pkg.database.lifecycle",
    "pkg.database.metrics",
    "pkg.database.routing",
    "pkg.database.testing",
)
MAX_MODULE_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _kit_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in KIT.rglob("*.py")}


def _imports(path: Path) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Every import in the file, at any depth: (module, imported names)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, tuple(a.name for a in node.names)


def _edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Kit module -> kit modules it imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for module, names in _imports(path):
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            if not targets and module in modules:
                targets = [module]
            graph[name].update(t for t in targets if t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = 1, stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node], _ = 2, stack.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle_hidden_behind_a_function() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_kit_has_no_import_cycle() -> None:
    assert find_cycle(_edges(_kit_modules())) is None


def test_pkg_never_imports_internal() -> None:
    offenders = [
        f"{name} imports {module}"
        for name, path in _kit_modules().items()
        for module, _ in _imports(path)
        if module.split(".")[0] == "internal"
    ]
    assert offenders == []


def test_pkg_never_names_internal_even_in_strings() -> None:
    offenders = [
        f"{name}: {node.value!r}"
        for name, path in _kit_modules().items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if re.match(r"internal(\.|$)", node.value)
    ]
    assert offenders == []


def test_query_code_never_imports_lifecycle_code() -> None:
    modules = _kit_modules()
    graph = _edges(modules)
    offenders = [
        f"{name} -> {target}"
        for name in modules
        if name.startswith("pkg.database.query")
        for target in graph[name]
        if target.startswith("pkg.database.lifecycle")
    ]
    assert offenders == []


def test_lifecycle_depends_only_on_itself_and_the_leaves() -> None:
    # pgbouncer: whether an engine sits behind a pooler (it imports only errors)
    allowed = (
        "pkg.database.lifecycle",
        "pkg.database.utils",
        "pkg.database.errors",
        "pkg.database.pgbouncer",
    )
    graph = _edges(_kit_modules())
    offenders = [
        f"{name} -> {target}"
        for name, targets in graph.items()
        if name.startswith("pkg.database.lifecycle")
        for target in targets
        if not target.startswith(allowed)
    ]
    assert offenders == []


def test_the_leaf_module_imports_nothing_of_the_kit() -> None:
    assert _edges(_kit_modules())["pkg.database.utils"] == set()


def test_every_kit_module_is_small() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _kit_modules().items()}
    assert {n: s for n, s in sizes.items() if s >= MAX_MODULE_LINES} == {}


def _public_names() -> dict[str, set[str]]:
    return {m: set(importlib.import_module(m).__all__) for m in PUBLIC_MODULES}


def _private_uses(imports: Iterator[tuple[str, tuple[str, ...]]], where: str) -> list[str]:
    public = _public_names()
    bad = []
    for module, names in imports:
        if not (module == "pkg" or module.startswith("pkg.")):
            continue
        if module not in public:
            bad.append(f"{where}: imports private module {module}")
            continue
        bad.extend(f"{where}: {module}.{n} is not public" for n in names if n not in public[module])
    return bad


@pytest.mark.parametrize("folder", ["internal", "scripts", "bench"])
def test_application_code_uses_only_the_public_api(folder: str) -> None:
    bad = [
        problem
        for path in sorted((ROOT / folder).rglob("*.py"))
        for problem in _private_uses(_imports(path), str(path.relative_to(ROOT)))
    ]
    assert bad == []


def test_readme_examples_use_only_the_public_api() -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README has no python examples to check"
    imports = []
    for block in blocks:
        for line in block.splitlines():
            match = re.match(r"\s*from (pkg[\w.]*) import (.+)", line)
            if match:
                names = tuple(n.strip().split(" as ")[0] for n in match.group(2).strip("()").split(","))
                imports.append((match.group(1), tuple(n for n in names if n)))
    assert imports, "README examples import nothing from pkg"
    assert _private_uses(iter(imports), "README.md") == []


def test_private_use_is_reported() -> None:
    found = _private_uses(iter([("pkg.database.dao", ("BaseDao",)), ("pkg.database", ("nope",))]), "x")
    assert found == ["x: imports private module pkg.database.dao", "x: pkg.database.nope is not public"]
