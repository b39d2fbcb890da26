"""The layering, read from the code's own imports (every import, also inside functions).

- ``chargeback/`` is the shared contract: it imports no deployable, no tooling, no composition root.
- The deployables (collectors, streams, billing_jobs, warehouse) import the contract, never each other.
- ``chargeback_cli`` and ``demo`` are composition roots: they may import the deployables, and nothing
  imports them (``chargeback_cli`` may import ``demo``, to offer its command group).
- ``devstack`` is tooling: it may import the contract, and only the composition roots import it.
- No import cycle between the project's modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = "chargeback"
DEPLOYABLES = ("collectors", "streams", "billing_jobs", "warehouse")
ROOTS = ("chargeback_cli", "demo")
TOOLING = ("devstack",)
PACKAGES = (CONTRACT, *DEPLOYABLES, *ROOTS, *TOOLING)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _sources()


def _imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every project module ``module`` imports, with the line: the module itself, not its parents."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _project(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    yield f"{base}.{alias.name}", node.lineno
                else:
                    yield from _project(base, node.lineno)


def _project(name: str, line: int) -> Iterator[tuple[str, int]]:
    # ``import a.b.c`` of a project module; a name from a package's __init__ is that package.
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    if name:
        yield name, line


GRAPH = {
    module: sorted({(target, line) for target, line in _imported(module, path) if target != module})
    for module, path in MODULES.items()
}


def _top(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def _violations(allowed: dict[str, tuple[str, ...]]) -> list[str]:
    found = []
    for module, targets in GRAPH.items():
        top = _top(module)
        for target, line in targets:
            if _top(target) != top and _top(target) not in allowed[top]:
                found.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {module} imports {target}")
    return found


def test_the_sources_are_found() -> None:
    assert {"chargeback.events", "chargeback_cli.main", "warehouse.migrations", "demo.cli"} <= set(MODULES)
    assert ("chargeback.errors", 15) in GRAPH["chargeback_cli.main"]


# What each top-level package may import besides itself.
ALLOWED: dict[str, tuple[str, ...]] = {
    CONTRACT: (),
    **{name: (CONTRACT,) for name in DEPLOYABLES},
    **{name: (CONTRACT,) for name in TOOLING},
    "demo": (CONTRACT, *DEPLOYABLES, *TOOLING),
    "chargeback_cli": (CONTRACT, *DEPLOYABLES, *TOOLING, "demo"),
}


def test_the_contract_imports_no_deployable_and_no_deployable_imports_another() -> None:
    assert _violations(ALLOWED) == []


def test_a_forbidden_import_is_reported_with_its_place() -> None:
    saved = dict(GRAPH)
    try:
        GRAPH["chargeback.events"] = [*GRAPH["chargeback.events"], ("collectors.cli", 7)]
        GRAPH["streams.cli"] = [*GRAPH["streams.cli"], ("billing_jobs.cli", 9)]
        GRAPH["warehouse.cli"] = [*GRAPH["warehouse.cli"], ("demo.cli", 11)]
        assert _violations(ALLOWED) == [
            "chargeback/events.py:7: chargeback.events imports collectors.cli",
            "streams/cli.py:9: streams.cli imports billing_jobs.cli",
            "warehouse/cli.py:11: warehouse.cli imports demo.cli",
        ]
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def _cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for start, start_edges in GRAPH.items():
        if start in index:
            continue
        work = [(start, iter(start_edges))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target, _ in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(GRAPH[target])))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    return sorted(cycles)


def test_the_cycle_finder_finds_a_cycle() -> None:
    saved = dict(GRAPH)
    try:
        GRAPH["chargeback.errors"] = [("chargeback.settings", 1)]
        assert ["chargeback.errors", "chargeback.settings"] in _cycles()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def test_no_import_cycles() -> None:
    cycles = _cycles()
    assert cycles == [], "modules that import each other, directly or around a loop: " + "; ".join(
        " <-> ".join(cycle) for cycle in cycles
    )
