"""The one module that reaches inside Faust and aiokafka fails loudly on any other version."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from streams import bulk

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("package", "pinned"), sorted(bulk.PINNED.items()))
def test_the_installed_dependency_is_the_pinned_version(package: str, pinned: str) -> None:
    assert version(package) == pinned, f"streams/bulk.py was written for {package}=={pinned}: review it"


@pytest.mark.parametrize(("package", "pinned"), sorted(bulk.PINNED.items()))
def test_pyproject_pins_the_same_exact_version(package: str, pinned: str) -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf'"{re.escape(package)}(\[[^\]]*\])?=={re.escape(pinned)}"', text), package


@pytest.mark.parametrize(("module", "owner", "member"), bulk.PRIVATE_MEMBERS)
def test_every_private_member_the_adapter_uses_still_exists(module: str, owner: str, member: str) -> None:
    cls = getattr(importlib.import_module(module), owner)
    # A method or class-level default, or an attribute the class assigns in its own code.
    found = hasattr(cls, member) or any(
        f"self.{member} =" in inspect.getsource(klass)
        for klass in cls.__mro__
        if klass.__module__ != "builtins"
    )
    assert found, f"{module}.{owner}.{member} is gone: streams/bulk.py relies on it"


@pytest.mark.parametrize(("where", "digest"), sorted(bulk.MIRRORED.items()))
def test_the_upstream_loop_the_adapter_mirrors_is_unchanged(where: tuple[str, str, str], digest: str) -> None:
    module, owner, member = where
    source = inspect.getsource(getattr(getattr(importlib.import_module(module), owner), member))
    assert hashlib.sha256(source.encode()).hexdigest() == digest, (
        f"{module}.{owner}.{member} changed upstream"
    )


def test_no_other_module_of_the_worker_touches_a_private_member_of_a_dependency() -> None:
    # Names of the dependencies' private members, used anywhere in streams/ but bulk.py.
    private = {member for _, _, member in bulk.PRIVATE_MEMBERS}
    for path in sorted((ROOT / "streams").glob("*.py")):
        if path.name == "bulk.py":
            continue
        used = set(re.findall(r"\.(_[a-z][a-z_]*)", path.read_text()))
        assert not used & private, f"{path.name} uses {sorted(used & private)}"
