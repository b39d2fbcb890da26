"""Billing's layers, read from the code's own imports: the model and the parties depend on nothing in
billing, the store only on the model, formats and destinations never on the store or the service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "billing_jobs"


def billing_imports(path: Path) -> set[str]:
    """The billing_jobs modules a file imports (at any depth: lazy imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("billing_jobs"):
            if node.module == "billing_jobs":
                found |= {f"billing_jobs.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("billing_jobs")}
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


ALLOWED = {
    "billing_jobs.model": set(),
    "billing_jobs.parties": set(),
    "billing_jobs.store": {"billing_jobs.model"},
    "billing_jobs.corrections": {"billing_jobs.model"},
    "billing_jobs.metering": {"billing_jobs.model"},
    "billing_jobs.pricing": {"billing_jobs.model"},
    "billing_jobs.explain": {"billing_jobs.model", "billing_jobs.metering", "billing_jobs.pricing"},
    "billing_jobs.lock": {"billing_jobs.store", "billing_jobs.settings"},
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_lower_layers_import_only_what_is_below_them(name: str) -> None:
    path = ROOT.joinpath(*name.split(".")[1:]).with_suffix(".py")
    assert billing_imports(path) <= ALLOWED[name]


def test_formats_and_destinations_never_touch_the_database_or_the_service() -> None:
    files = [*sorted((ROOT / "formats").glob("*.py")), ROOT / "destinations.py"]
    # __init__, csv, html, json, kid, local, pdf, peppol, report, saft, sie, specification,
    # summary, xlsx; destinations
    assert len(files) == 15
    for path in files:
        imported = billing_imports(path)
        assert imported <= {"billing_jobs.model", "billing_jobs.parties", "billing_jobs.formats"} | {
            f"billing_jobs.formats.{p.stem}" for p in (ROOT / "formats").glob("*.py")
        }, module_name(path)


def test_no_import_cycle_within_billing() -> None:
    graph = {module_name(p): billing_imports(p) for p in ROOT.rglob("*.py")}

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join([*path, name])
        for target in sorted(graph.get(name, set())):
            if target != name and not name.startswith(target + "."):  # a package's own __init__
                visit(target, (*path, name))

    for name in sorted(graph):
        visit(name, ())
