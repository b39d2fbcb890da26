"""Storage measurement of a file share: exact bytes and GiB."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from collectors.sources.storage import StorageReport, gib, measure_share


def test_share_bytes_per_top_level_folder_without_following_links(tmp_path: Path) -> None:
    (tmp_path / "BUF" / "deep" / "deeper").mkdir(parents=True)
    (tmp_path / "BUF" / "a.bin").write_bytes(b"x" * 1000)
    (tmp_path / "BUF" / "deep" / "deeper" / "b.bin").write_bytes(b"x" * 24)
    (tmp_path / "SOC").mkdir()
    (tmp_path / "SOC" / "link").symlink_to(tmp_path / "BUF")
    (tmp_path / "loose.txt").write_bytes(b"not in a folder")
    report = StorageReport()
    assert measure_share(tmp_path, report) == {"BUF": 1024, "SOC": 0}
    assert report.unreadable == []


def test_gib_rounds_half_up_at_six_decimals() -> None:
    assert gib(2**30) == Decimal("1.000000")
    assert gib(100 * 2**30 + 2**29) == Decimal("100.500000")
    assert gib(537) == Decimal("0.000001")  # 0.000000500 -> 0.000001 (half-up)
    assert gib(536) == Decimal("0.000000")  # 0.000000499 -> 0


def test_a_storage_run_spools_one_gib_reading_per_mapped_folder(tmp_path: Path) -> None:
    import json
    from datetime import UTC, datetime

    from click.testing import CliRunner

    from collectors.cli import collect
    from collectors.spool import Spool

    share = tmp_path / "share"
    (share / "Barn- och utbildningsförvaltningen").mkdir(parents=True)
    (share / "Barn- och utbildningsförvaltningen" / "f").write_bytes(b"x" * (3 * 2**20))
    (share / "Okänd").mkdir()
    mapping = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "mapping.yaml"
    env = {
        "CHARGEBACK_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "CHARGEBACK_COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
        "CHARGEBACK_COLLECTOR_CONNECT_TIMEOUT_S": "0.5",
    }
    at = datetime(2026, 10, 5, 1, 0, tzinfo=UTC).isoformat()
    result = CliRunner().invoke(
        collect, ["storage", "--mapping", str(mapping), "--share", str(share), "--at", at], env=env
    )
    assert result.exit_code == 1  # one folder is not in the mapping
    assert "read 2, emitted 0, spooled 1, rejected 0, unmapped 1 (this run: 1)" in result.output
    spool = Spool(tmp_path / "spool")
    (event,) = [json.loads(m.value) for segment in spool.segments() for m in spool.read(segment)]
    assert event["data"]["quantity"] == "0.00293"  # 3 MiB = 0.0029296875 GiB -> 0.002930
    assert event["data"]["cost_centre"] == "BUF" and event["data"]["bytes"] == 3 * 2**20
    assert event["id"].endswith("-2026-10-05")


def test_a_storage_run_needs_exactly_one_of_a_share_and_a_bucket(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from collectors.cli import collect

    mapping = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "mapping.yaml"
    env = {"CHARGEBACK_COLLECTOR_SPOOL_DIR": str(tmp_path / "spool")}
    neither = CliRunner().invoke(collect, ["storage", "--mapping", str(mapping)], env=env)
    both = CliRunner().invoke(
        collect,
        ["storage", "--mapping", str(mapping), "--share", str(tmp_path), "--s3", "s3://b"],
        env=env,
    )
    for result in (neither, both):
        assert result.exit_code == 1  # a user's mistake: one sentence, exit code 1
        assert result.output.strip() == "Error: give either --share or --s3"
