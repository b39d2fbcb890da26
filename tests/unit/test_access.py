"""Logins and member databases: the exact SQL and users file that ``chargeback db users`` emits."""

from __future__ import annotations

from pathlib import Path

import pytest

from chargeback_cli.main import main
from warehouse.access import AccessConfig, AccessError, Login, Member, load_access, sql_statements, users_xml
from warehouse.member_databases import (
    COPIED_TABLES,
    MemberDatabase,
    backfill_statements,
    copy_statements,
    feed_statements,
    snapshot_statements,
    view_statements,
)

ENV = {"BOLLNAS_PW": "b-secret", "ANALYST_PW": "a-secret"}
CONFIG = AccessConfig(
    analysts=(Login(name="analyst", password_env="ANALYST_PW", networks=("127.0.0.1",)),),
    members=(Member(name="bollnas", municipality="2183", password_env="BOLLNAS_PW"),),
)
# Two columns per table keep the expected text short; the real lists come from DESCRIBE TABLE.
COLUMNS = {
    "usage_events": ["event_id", "municipality"],
    "billing_lines": ["run_id", "municipality"],
    "dead_letters": ["kafka_offset", "message_key"],
    "billing_runs": ["run_id", "municipalities"],
    "catalogue_services": ["service", "synced_at"],
    "catalogue_municipalities": ["municipality", "synced_at"],
    "catalogue_prices": ["price_list", "synced_at"],
}


def test_sql_for_current_servers_has_users_grants_and_row_policies() -> None:
    assert sql_statements(CONFIG, "chargeback", ENV) == [
        "CREATE USER IF NOT EXISTS analyst IDENTIFIED WITH sha256_hash BY "
        "'b4d87524393b45e7793e23f192e6a85a10bae6fb2679e996a7acb8ca60b4c88d' SETTINGS readonly = 1",
        "GRANT SELECT ON chargeback.* TO analyst",
        "CREATE USER IF NOT EXISTS bollnas IDENTIFIED WITH sha256_hash BY "
        "'60a8476a0e58815b61bbcdcdb8db2c1ec1b4f339897f4af2a0401b4115f5d662' SETTINGS readonly = 1",
        "GRANT SELECT ON chargeback.* TO bollnas",
        "CREATE ROW POLICY IF NOT EXISTS bollnas_usage_events ON chargeback.usage_events FOR SELECT "
        "USING municipality = '2183' TO bollnas",
        "CREATE ROW POLICY IF NOT EXISTS bollnas_billing_lines ON chargeback.billing_lines FOR SELECT "
        "USING municipality = '2183' TO bollnas",
        "CREATE ROW POLICY IF NOT EXISTS bollnas_dead_letters ON chargeback.dead_letters FOR SELECT "
        "USING message_key = '2183' TO bollnas",
        "CREATE ROW POLICY IF NOT EXISTS bollnas_billing_runs ON chargeback.billing_runs FOR SELECT "
        "USING has(municipalities, '2183') OR empty(municipalities) TO bollnas",
    ]


def test_a_missing_password_is_one_clear_sentence() -> None:
    with pytest.raises(AccessError, match=r"^user bollnas: environment variable BOLLNAS_PW is not set$"):
        sql_statements(CONFIG, "chargeback", {"ANALYST_PW": "x"})


def test_copies_are_made_like_the_main_tables() -> None:
    assert copy_statements("chargeback", "chargeback_m2183") == [
        f"CREATE TABLE IF NOT EXISTS chargeback_m2183.{t} AS chargeback.{t}"
        for t in (
            "usage_events",
            "billing_lines",
            "dead_letters",
            "billing_runs",
            "catalogue_services",
            "catalogue_municipalities",
            "catalogue_prices",
        )
    ]


def test_feeds_copy_each_members_rows_and_every_catalogue_row() -> None:
    assert feed_statements("chargeback", "chargeback_m2183", "2183", COLUMNS) == [
        "CREATE MATERIALIZED VIEW IF NOT EXISTS chargeback_m2183.usage_events_feed TO "
        "chargeback_m2183.usage_events AS SELECT event_id, municipality FROM chargeback.usage_events "
        "WHERE municipality = '2183'",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS chargeback_m2183.billing_lines_feed TO "
        "chargeback_m2183.billing_lines AS SELECT run_id, municipality FROM chargeback.billing_lines "
        "WHERE municipality = '2183'",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS chargeback_m2183.dead_letters_feed TO "
        "chargeback_m2183.dead_letters AS SELECT kafka_offset, message_key FROM chargeback.dead_letters "
        "WHERE message_key = '2183'",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS chargeback_m2183.billing_runs_feed TO "
        "chargeback_m2183.billing_runs AS SELECT run_id, municipalities FROM chargeback.billing_runs "
        "WHERE has(municipalities, '2183') OR empty(municipalities)",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS chargeback_m2183.catalogue_services_feed TO "
        "chargeback_m2183.catalogue_services AS SELECT service, synced_at FROM chargeback.catalogue_services",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS chargeback_m2183.catalogue_municipalities_feed TO "
        "chargeback_m2183.catalogue_municipalities AS SELECT municipality, synced_at FROM "
        "chargeback.catalogue_municipalities",
        "CREATE MATERIALIZED VIEW IF NOT EXISTS chargeback_m2183.catalogue_prices_feed TO "
        "chargeback_m2183.catalogue_prices AS SELECT price_list, synced_at FROM chargeback.catalogue_prices",
    ]


def test_the_backfill_snapshots_then_adds_only_rows_the_copy_lacks() -> None:
    assert snapshot_statements("chargeback", "chargeback_m2183", "2183", COLUMNS)[:3] == [
        "DROP TABLE IF EXISTS chargeback_m2183.usage_events_backfill",
        "CREATE TABLE chargeback_m2183.usage_events_backfill AS chargeback.usage_events "
        "ENGINE = MergeTree() ORDER BY tuple()",
        "INSERT INTO chargeback_m2183.usage_events_backfill (event_id, municipality) "
        "SELECT event_id, municipality FROM chargeback.usage_events WHERE municipality = '2183'",
    ]
    backfill = backfill_statements("chargeback_m2183", COLUMNS)
    assert backfill[:2] == [
        "INSERT INTO chargeback_m2183.usage_events (event_id, municipality) SELECT event_id, municipality "
        "FROM chargeback_m2183.usage_events_backfill WHERE (kafka_topic, kafka_partition, kafka_offset, "
        "event_id) NOT IN (SELECT kafka_topic, kafka_partition, kafka_offset, event_id FROM "
        "chargeback_m2183.usage_events)",
        "DROP TABLE chargeback_m2183.usage_events_backfill",
    ]
    assert backfill[6] == (
        "INSERT INTO chargeback_m2183.billing_runs (run_id, municipalities) SELECT run_id, municipalities "
        "FROM chargeback_m2183.billing_runs_backfill WHERE (run_id, revision) NOT IN (SELECT run_id, "
        "revision FROM chargeback_m2183.billing_runs)"
    )
    assert len(backfill) == 2 * len(COPIED_TABLES)


def test_member_databases_get_the_migrations_views_in_order() -> None:
    names = [s.split()[5] for s in view_statements()]
    assert names == [
        "v_usage_daily",
        "v_usage_monthly",
        "v_charges",
        "v_charges_final",
        "v_dead_letters",
        "v_usage_events",
        "v_late_usage",
        "v_municipalities",
        "v_cost_per_inhabitant",
        "v_services",
        "v_subjects_monthly",
        "v_line_subjects",
        "v_line_explanations",
    ]
    assert all(s.startswith("CREATE VIEW IF NOT EXISTS ") for s in view_statements())


def test_users_file_allows_members_only_their_own_database() -> None:
    assert users_xml(CONFIG, "chargeback", ENV) == (
        '<?xml version="1.0"?>\n<!-- Written by chargeback db users: do not edit by hand. -->\n<yandex>\n'
        "<profiles><chargeback_readonly><readonly>1</readonly></chargeback_readonly></profiles>\n"
        "<users>\n"
        "<analyst><password_sha256_hex>b4d87524393b45e7793e23f192e6a85a10bae6fb2679e996a7acb8ca60b4c88d"
        "</password_sha256_hex><networks><ip>127.0.0.1</ip></networks><profile>chargeback_readonly</profile>"
        "<quota>default</quota><allow_databases><database>chargeback</database></allow_databases></analyst>\n"
        "<bollnas><password_sha256_hex>60a8476a0e58815b61bbcdcdb8db2c1ec1b4f339897f4af2a0401b4115f5d662"
        "</password_sha256_hex><networks><ip>::/0</ip></networks><profile>chargeback_readonly</profile>"
        "<quota>default</quota><allow_databases><database>chargeback_m2183</database></allow_databases>"
        "</bollnas>\n"
        "</users>\n</yandex>\n"
    )


def test_member_databases_are_named_by_code_or_configured() -> None:
    config = AccessConfig(
        members=(
            Member(name="bollnas", municipality="2183", password_env="X"),
            Member(name="bollnas_ekonomi", municipality="2183", password_env="X"),
            Member(name="hudiksvall", municipality="2184", password_env="X", database="hudik"),
        )
    )
    assert config.member_databases("chargeback") == [
        MemberDatabase("2183", "chargeback_m2183"),
        MemberDatabase("2184", "hudik"),
    ]


def test_a_member_database_may_hold_one_municipality_and_never_be_the_main_one() -> None:
    shared = AccessConfig(
        members=(
            Member(name="bollnas", municipality="2183", password_env="X", database="members"),
            Member(name="hudiksvall", municipality="2184", password_env="X", database="members"),
        )
    )
    with pytest.raises(
        AccessError, match=r"^member hudiksvall: database members already holds municipality 2183$"
    ):
        shared.member_databases("chargeback")
    main_db = AccessConfig(
        members=(Member(name="bo", municipality="2183", password_env="X", database="chargeback"),)
    )
    with pytest.raises(
        AccessError, match=r"^member bo: its database must not be the main database chargeback$"
    ):
        main_db.member_databases("chargeback")


def test_a_bad_access_file_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "access.yaml"
    path.write_text('members:\n  - {name: bollnas, municipality: "21x", password_env: X}\n')
    with pytest.raises(AccessError) as info:
        load_access(path)
    assert str(info.value) == f"{path}: members.0.municipality: String should match pattern '^[0-9]{{1,8}}$'"
    path.write_text(
        "analysts:\n  - {name: bollnas, password_env: X}\n"
        "members:\n  - {name: bollnas, municipality: '2183', password_env: X}\n"
    )
    with pytest.raises(AccessError) as info:
        load_access(path)
    assert str(info.value) == f"{path}: user bollnas is configured more than once"


def test_db_users_refuses_embedded_chdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "access.yaml"
    path.write_text("analysts:\n  - {name: analyst, password_env: X}\n")
    monkeypatch.setenv("CHARGEBACK_CLICKHOUSE_URL", f"chdb:{tmp_path / 'chdb'}")
    with pytest.raises(SystemExit) as info:
        main(["db", "users", "--config", str(path), "--users-xml", str(tmp_path / "users.xml")])
    assert info.value.code == 1
    assert capsys.readouterr().err == (
        "error: embedded chDB has no logins; "
        "point CHARGEBACK_CLICKHOUSE_URL at the server the logins are for\n"
    )
    assert not (tmp_path / "users.xml").exists()
