"""The command line: a user's mistake ends with one sentence and a non-zero exit, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from chargeback_cli.main import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_missing_catalogue_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        ["billing", "--catalogue", str(tmp_path / "none.yaml"), "run", "--period", "2026-10"], capsys
    )
    assert code == 1
    assert err == f"error: {tmp_path / 'none.yaml'}: cannot read the catalogue: No such file or directory\n"


def test_bad_period_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["billing", "run", "--period", "October"], capsys)
    assert code == 2
    assert "Invalid value: period must be YYYY-MM (for example 2026-10), not 'October'" in err
    assert "Traceback" not in err


def test_invalid_settings_are_all_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_DATABASE", "no-dashes")
    monkeypatch.setenv("CHARGEBACK_WORKER_BATCH_MAX_EVENTS", "0")
    code, _, err = run(["stream", "dead", "list"], capsys)
    assert code == 1
    assert err.splitlines() == [
        "error: invalid settings:",
        "  CHARGEBACK_CLICKHOUSE_DATABASE: String should match pattern '^[A-Za-z_][A-Za-z0-9_]*$'",
        "  CHARGEBACK_WORKER_BATCH_MAX_EVENTS: Input should be greater than or equal to 1",
    ]


def test_help_lists_the_command_groups(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for group in ("billing", "collect", "db", "demo", "stream"):
        assert f"  {group} " in out


def test_an_unreachable_clickhouse_server_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_URL", f"clickhouse://127.0.0.1:{port}")
    code, out, err = run(["db", "migrate"], capsys)
    assert (code, out) == (1, "")
    assert err == (
        f"error: ClickHouse server at 127.0.0.1:{port} unreachable: "
        f"Code: 210. Connection refused (127.0.0.1:{port})\n"
    )
