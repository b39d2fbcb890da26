"""One error root: every user-facing error is a ChargebackError with its own stable code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import click
import pytest

from chargeback.errors import ChargebackError, UserError
from chargeback_cli import main as cli_main

PACKAGES = (
    "chargeback",
    "chargeback_cli",
    "collectors",
    "streams",
    "billing_jobs",
    "warehouse",
    "demo",
    "devstack",
)


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


def _error_classes() -> list[type[ChargebackError]]:
    for name in _modules():
        importlib.import_module(name)
    found: list[type[ChargebackError]] = []
    todo: list[type[ChargebackError]] = [ChargebackError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


ERRORS = _error_classes()


def test_every_error_class_has_its_own_unique_code() -> None:
    codes: dict[str, str] = {}
    for cls in ERRORS:
        name = f"{cls.__module__}.{cls.__qualname__}"
        assert "code" in vars(cls), f"{name} does not set its own code"
        assert re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", cls.code), f"{name}: {cls.code!r} is not kind.detail"
        assert cls.code not in codes, f"{name} and {codes[cls.code]} share the code {cls.code!r}"
        codes[cls.code] = name
    assert codes["user.invalid"] == "chargeback.errors.UserError"
    assert codes["catalogue.invalid"] == "chargeback.catalogue.CatalogueError"
    assert codes["clickhouse.failed"] == "chargeback.clickhouse.ClickHouseError"
    assert codes["migration.failed"] == "warehouse.migrations.MigrationError"


def test_every_public_exception_of_the_project_derives_from_the_root() -> None:
    outside = []
    for name in _modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == name
                and not attr.startswith("_")
                and not issubclass(value, ChargebackError)
            ):
                outside.append(f"{name}.{attr}")
    assert outside == []


def test_former_value_and_runtime_errors_keep_their_second_base() -> None:
    from chargeback.catalogue import CatalogueError
    from chargeback.clickhouse import ClickHouseError
    from chargeback.settings import SettingsError

    assert issubclass(CatalogueError, ValueError)
    assert issubclass(SettingsError, ValueError)
    assert issubclass(ClickHouseError, RuntimeError)
    assert issubclass(UserError, ChargebackError)


_RAISE: list[BaseException] = []


@click.command("boom")
def boom() -> None:
    """Raise the error the test put in _RAISE."""
    raise _RAISE[0]


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__qualname__)
def test_the_cli_prints_one_sentence_and_exits_1_for_any_chargeback_error(
    cls: type[ChargebackError], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli_main.GROUPS, "boom", (__name__, "boom"))
    _RAISE[:] = [cls("the catalogue has no service x")]
    with pytest.raises(SystemExit) as info:
        cli_main.main(["boom"])
    assert info.value.code == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", "error: the catalogue has no service x\n")


def test_other_exceptions_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli_main.GROUPS, "boom", (__name__, "boom"))
    _RAISE[:] = [KeyError("a bug")]
    with pytest.raises(KeyError):
        cli_main.main(["boom"])
