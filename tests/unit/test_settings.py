"""Settings: the README documents every one, typos are warned, bad URLs and dead servers are one sentence."""

from __future__ import annotations

import io
import re
import socket
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

import billing_jobs.einvoice.settings
import billing_jobs.settings
import chargeback.settings as settings_module
import collectors.settings
import streams.settings
from chargeback.settings import (
    Base,
    ClickHouseSettings,
    KafkaSettings,
    S3Settings,
    SettingsError,
    load_settings,
    redact_url,
    setting_name,
    warn_unknown,
)
from chargeback_cli.main import main
from collectors.settings import CollectorSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOYABLE_SETTINGS = (
    collectors.settings,
    streams.settings,
    billing_jobs.settings,
    billing_jobs.einvoice.settings,
)


def every_setting() -> set[str]:
    classes = [ClickHouseSettings, KafkaSettings, S3Settings, settings_module.CatalogueSettings]
    for module in DEPLOYABLE_SETTINGS:
        classes += [
            c for c in vars(module).values() if isinstance(c, type) and issubclass(c, Base) and c is not Base
        ]
    return {setting_name(f) for c in classes for f in c.model_fields}


def readme_settings() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Pointing it at real services", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `CHARGEBACK_")]
    names: set[str] = set()
    for row in rows:
        first_column = row.split("|")[1]
        assert "*" not in first_column, f"spell every setting out, no wildcards: {first_column}"
        names.update(re.findall(r"`(CHARGEBACK_[A-Z0-9_]+)`", first_column))
    return names


def test_the_readme_table_names_exactly_the_settings_of_the_classes() -> None:
    documented, declared = readme_settings(), every_setting()
    assert sorted(declared - documented) == [], "settings missing from the README table"
    assert sorted(documented - declared) == [], "README table names settings no class declares"


def test_the_settings_once_undocumented_are_in_the_table() -> None:
    for name in (
        "WORKER_LOG_LEVEL",
        "WORKER_METRICS_HOST",
        "WORKER_SESSION_TIMEOUT_S",
        "WORKER_HEARTBEAT_INTERVAL_S",
        "WORKER_REBALANCE_TIMEOUT_S",
        "COLLECTOR_CLIENT_ID",
    ):  # (SELLER_NAME and SELLER_ORG_NUMBER, the other two, gave way to the parties file)
        assert f"CHARGEBACK_{name}" in readme_settings()


def test_every_deployables_settings_class_is_an_entry_point() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "entry-points"
    ]["chargeback.settings"]
    named = set()
    for target in declared.values():
        module, _, attr = target.partition(":")
        named.add(getattr(import_module(module), attr))
    for module in DEPLOYABLE_SETTINGS:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Base) and value.__module__ == module.__name__:
                assert value in named, (
                    f"{value.__name__} is not in [project.entry-points.'chargeback.settings']"
                )


def test_the_command_loads_every_settings_module_the_entry_points_name() -> None:
    from chargeback_cli.main import SETTINGS_MODULES

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "entry-points"
    ]["chargeback.settings"]
    assert sorted(SETTINGS_MODULES) == sorted(target.partition(":")[0] for target in declared.values())
    assert sorted(SETTINGS_MODULES) == sorted(m.__name__ for m in DEPLOYABLE_SETTINGS)


def test_known_settings_include_every_loaded_class() -> None:
    assert every_setting() <= settings_module.known_settings()


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_module, "_warned", set())


@pytest.mark.usefixtures("fresh_warnings")
def test_a_misspelled_setting_is_warned_with_the_closest_real_name() -> None:
    out = io.StringIO()
    unknown = warn_unknown(
        {
            "CHARGEBACK_CLICKHOUSE_ULR": "clickhouse://x",
            "CHARGEBACK_WORKER_METRIC_PORT": "9100",
            "CHARGEBACK_NOTHING_LIKE_IT_AT_ALL": "1",
            "CHARGEBACK_CLICKHOUSE_URL": "chdb:x",
            "CHARGEBACK_WORKER_APP_ID": "w",  # another deployable's setting: known, not warned
            "CHARGEBACK_TEST_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # the test suite's own
            "PATH": "/bin",
        },
        stream=out,
    )
    assert unknown == [
        "CHARGEBACK_CLICKHOUSE_ULR",
        "CHARGEBACK_NOTHING_LIKE_IT_AT_ALL",
        "CHARGEBACK_WORKER_METRIC_PORT",
    ]
    assert out.getvalue().splitlines() == [
        "warning: CHARGEBACK_CLICKHOUSE_ULR is not a chargeback setting; "
        "did you mean CHARGEBACK_CLICKHOUSE_URL?",
        "warning: CHARGEBACK_NOTHING_LIKE_IT_AT_ALL is not a chargeback setting and is ignored.",
        "warning: CHARGEBACK_WORKER_METRIC_PORT is not a chargeback setting; "
        "did you mean CHARGEBACK_WORKER_METRICS_PORT?",
    ]
    again = io.StringIO()
    warn_unknown({"CHARGEBACK_CLICKHOUSE_ULR": "x"}, stream=again)
    assert again.getvalue() == ""  # once per process


@pytest.mark.usefixtures("fresh_warnings")
def test_the_command_warns_of_a_typo_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_URL", "postgres://x")
    monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_DATABSE", "billing")
    with pytest.raises(SystemExit) as info:
        main(["db", "migrate"])
    assert info.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "warning: CHARGEBACK_CLICKHOUSE_DATABSE is not a chargeback setting; "
        "did you mean CHARGEBACK_CLICKHOUSE_DATABASE?",
        "error: invalid setting CHARGEBACK_CLICKHOUSE_URL: must be chdb:PATH or "
        "clickhouse://[user[:password]@]host[:port], not 'postgres://x'",
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgres://x", "'postgres://x'"),
        ("postgres://analyst:s3cret-pw@db:5432/x", "'postgres://analyst:***@db:5432/x'"),
        ("clickhouse://chargeback:s3cret-pw@ch:90x0", "'clickhouse://chargeback:***@ch:90x0'"),
        ("clickhouse:///nohost", "'clickhouse:///nohost'"),
        ("chdb:", "'chdb:'"),
    ],
)
def test_a_bad_clickhouse_url_is_one_sentence_without_its_password(
    url: str, shown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_URL", url)
    with pytest.raises(SettingsError) as info:
        load_settings(ClickHouseSettings)
    message = str(info.value)
    assert "\n" not in message
    assert "s3cret-pw" not in message
    if url == "chdb:":
        assert message == (
            "invalid setting CHARGEBACK_CLICKHOUSE_URL: chdb URL needs a data folder, e.g. chdb:var/chdb"
        )
    else:
        assert message == (
            "invalid setting CHARGEBACK_CLICKHOUSE_URL: must be chdb:PATH or "
            f"clickhouse://[user[:password]@]host[:port], not {shown}"
        )


def test_good_urls_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_URL", "clickhouse://u:p@ch.example:9440")
    monkeypatch.setenv("CHARGEBACK_KAFKA_BOOTSTRAP", "k1.example:9093, k2.example:9093")
    monkeypatch.setenv("CHARGEBACK_S3_ENDPOINT_URL", "https://s3.example:9000")
    assert load_settings(ClickHouseSettings).clickhouse_url == "clickhouse://u:p@ch.example:9440"
    assert load_settings(KafkaSettings).kafka_bootstrap == "k1.example:9093, k2.example:9093"
    assert load_settings(S3Settings).s3_endpoint_url == "https://s3.example:9000"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "CHARGEBACK_KAFKA_BOOTSTRAP",
            "kafka://broker:9092",
            "must be host:port, or several separated by commas, not 'kafka://broker:9092'",
        ),
        (
            "CHARGEBACK_KAFKA_BOOTSTRAP",
            "a:9092,broker",
            "must be host:port, or several separated by commas, not 'broker'",
        ),
        (
            "CHARGEBACK_S3_ENDPOINT_URL",
            "minio:9000",
            "must be an http:// or https:// address, not 'minio:9000'",
        ),
        (
            "CHARGEBACK_TOPDESK_URL",
            "https://op:pw@topdesk.example:x/",
            "must be an http:// or https:// address, not 'https://op:***@topdesk.example:x/'",
        ),
    ],
)
def test_other_bad_addresses_are_one_sentence(
    name: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(CollectorSettings)
    assert str(info.value) == f"invalid setting {name}: {message}"


def test_redact_url() -> None:
    assert redact_url("clickhouse://u:pw@h:9000") == "clickhouse://u:***@h:9000"
    assert redact_url("clickhouse://u@h:9000") == "clickhouse://u@h:9000"
    assert redact_url("https://h/x?y=1") == "https://h/x?y=1"


@pytest.mark.usefixtures("fresh_warnings")
def test_an_unreachable_server_is_one_sentence_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_URL", f"clickhouse://chargeback:s3cret-pw@127.0.0.1:{port}")
    with pytest.raises(SystemExit) as info:
        main(["db", "migrate"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    refused = f"Code: 210. Connection refused (127.0.0.1:{port})"
    assert err == f"error: ClickHouse server at 127.0.0.1:{port} unreachable: {refused}\n"


def test_secrets_come_from_files_stripped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ch").write_text("  ch-secret\n", encoding="utf-8")
    (tmp_path / "s3").write_text("s3-secret\n", encoding="utf-8")
    monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_PASSWORD_FILE", str(tmp_path / "ch"))
    monkeypatch.setenv("CHARGEBACK_S3_SECRET_ACCESS_KEY_FILE", str(tmp_path / "s3"))
    assert load_settings(ClickHouseSettings).clickhouse_password_value() == "ch-secret"
    secret = load_settings(S3Settings).s3_secret_access_key
    assert secret is not None and secret.get_secret_value() == "s3-secret"


@pytest.mark.parametrize(
    ("content", "both", "message"),
    [
        (
            None,
            False,
            "invalid settings: CHARGEBACK_CLICKHOUSE_PASSWORD_FILE: cannot read {f}: "
            "No such file or directory",
        ),
        ("  \n", False, "invalid settings: CHARGEBACK_CLICKHOUSE_PASSWORD_FILE: {f} is empty"),
        (
            "x",
            True,
            "invalid settings: set CHARGEBACK_CLICKHOUSE_PASSWORD or "
            "CHARGEBACK_CLICKHOUSE_PASSWORD_FILE, not both",
        ),
    ],
)
def test_a_secrets_file_mistake_is_one_sentence(
    content: str | None, both: bool, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pw"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_PASSWORD_FILE", str(path))
    if both:
        monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_PASSWORD", "y")
    with pytest.raises(SettingsError) as info:
        load_settings(ClickHouseSettings)
    assert str(info.value) == message.format(f=path)


def test_every_setting_the_documentation_names_exists() -> None:
    known = settings_module.known_settings() | every_setting()
    files = [
        ROOT / "README.md",
        ROOT / "docker-compose.yml",
        ROOT / "Dockerfile",
        *sorted((ROOT / "docs").glob("*.md")),
    ]
    unknown = {}
    for path in files:
        for name in re.findall(r"CHARGEBACK_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")):
            if name not in known and not name.startswith("CHARGEBACK_TEST_"):
                unknown.setdefault(path.name, set()).add(name)
    assert unknown == {}
