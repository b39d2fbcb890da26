"""One collector loop: the report and its exit status, bad lines of an events file, and a spool
that cannot be written or holds what a crashed run left — without a broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pytest
from click.testing import CliRunner

from chargeback.kafka import Message
from collectors.cli import collect
from collectors.mapping import load_mapping
from collectors.run import CollectorReport, Status, run_collector
from collectors.settings import CollectorSettings
from collectors.source import Skipped, SourceError
from collectors.sources.devices import DeviceSource
from collectors.sources.file import MAX_DEPTH, EventFile, FileReport, read_events, too_deep
from collectors.sources.tickets import TicketSource
from collectors.spool import Spool, SpoolError

SOURCES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
AT = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)


def event(n: int, municipality: str = "2183") -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"{municipality}-ev-{n}",
            "source": "urn:test",
            "type": "chargeback.usage.v1",
            "time": "2026-10-05T06:00:00Z",
            "data": {
                "municipality": municipality,
                "service": "ticket-incident",
                "subject": f"T{n}",
                "quantity": "1",
            },
        }
    )


DEEP = "[" * 100_000 + "]" * 100_000
HUGE = '{"data": {"municipality": "2183", "n": ' + "7" * 5000 + "}}"


def away(tmp_path: Path, **more: object) -> CollectorSettings:
    """Settings whose broker is not there: what is written waits in the spool."""
    return CollectorSettings(
        kafka_bootstrap="127.0.0.1:9",
        collector_spool_dir=tmp_path / "spool",
        collector_connect_timeout_s=0.5,
        **more,  # type: ignore[arg-type]
    )


# --- the report --------------------------------------------------------------------------------


def test_the_status_is_needs_a_human_before_spooled_before_delivered() -> None:
    assert CollectorReport(3, 3, 3, 0).status is Status.DELIVERED
    assert CollectorReport(3, 3, 0, 3).status is Status.SPOOLED
    assert CollectorReport(3, 2, 0, 2, rejected=("a.csv:2: no Nummer",)).status is Status.NEEDS_HUMAN
    assert CollectorReport(3, 2, 0, 2, unmapped={"Kultur": 1}).status is Status.NEEDS_HUMAN
    assert CollectorReport(3, 0, 5, 0, spool_error="the spool ...").status is Status.NEEDS_HUMAN
    # A warning for finance: after a human and the spool, before delivered.
    assert CollectorReport(3, 3, 3, 0, finance=("too much to UNALLOCATED",)).status is Status.WARNING
    assert CollectorReport(3, 3, 0, 3, finance=("too much to UNALLOCATED",)).status is Status.SPOOLED
    assert CollectorReport(3, 2, 2, 0, unmapped={"K": 1}, finance=("x",)).status is Status.NEEDS_HUMAN
    assert [int(s) for s in Status] == [0, 1, 75, 3]


def test_the_report_prints_its_counts_and_what_a_human_should_read() -> None:
    report = CollectorReport(
        400,
        392,
        0,
        392,
        rejected=("inv.csv:7: Last check-in: unknown month 'Okt' in '05/Okt/26'",),
        unmapped={"Kultur": 2, "(empty)": 1},
        skipped=(
            Skipped("inactive", 6, "inactive (no check-in for 30 days)"),
            Skipped("listed_twice", 0, "x"),
        ),
        unit="devices",
        broker_error="NoBrokersAvailable: NoBrokersAvailable",
    )
    assert report.summary == "read 400, emitted 0, spooled 392, rejected 1, unmapped 3 (this run: 392)"
    assert report.warnings == [
        "inactive (no check-in for 30 days): 6",
        "rejected inv.csv:7: Last check-in: unknown month 'Okt' in '05/Okt/26'",
        "unmapped '(empty)': 1 devices",
        "unmapped 'Kultur': 2 devices",
        "broker not reachable, events kept in the spool: NoBrokersAvailable: NoBrokersAvailable",
    ]
    assert (report.skipped_count("inactive"), report.skipped_count("listed_twice")) == (6, 0)


def test_a_run_returns_its_report_and_spools_when_the_broker_is_away(tmp_path: Path) -> None:
    mapping = load_mapping(SOURCES / "mapping.yaml")
    report = run_collector(TicketSource(SOURCES / "topdesk_tickets.csv"), mapping, away(tmp_path))
    assert (report.read, report.written, report.sent, report.spooled) == (4, 3, 0, 3)
    assert (report.rejected, report.unmapped, report.spool_error) == ((), {}, None)
    assert report.broker_error is not None and report.status is Status.SPOOLED
    spool = Spool(tmp_path / "spool")
    ids = [json.loads(m.value)["id"] for s in spool.segments() for m in spool.read(s)]
    assert ids == ["2183-tickets-I_2610_001", "2183-tickets-I_2610_002", "2183-tickets-I_2610_004"]


def test_the_default_services_live_with_their_sources() -> None:
    from collectors.mapping import Mapper, Mapping
    from collectors.sources.licences import LicenceSource
    from collectors.sources.storage import StorageSource

    bare = Mapper(Mapping(municipality="2183", services={}))
    assert DeviceSource(Path("x"), AT).default_service(bare) == "pc-standard"
    assert TicketSource(Path("x")).default_service(bare) == "ticket-incident"
    assert StorageSource(AT, share=Path("x")).default_service(bare) == "storage-file"
    assert LicenceSource(Path("x"), AT).default_service(bare) is None
    pupils = Mapper(Mapping(municipality="2183", services={"device": "pupil-device"}))
    assert DeviceSource(Path("x"), AT).default_service(pupils) == "pupil-device"
    assert (StorageSource(AT, share=Path("x")).kind, StorageSource(AT, bucket="b").kind) == (
        "fileshare",
        "s3",
    )


def test_a_source_that_is_not_an_export_raises_one_sentence(tmp_path: Path) -> None:
    export = tmp_path / "inventory.csv"
    export.write_text("a;b\n1;2\n")
    with pytest.raises(SourceError) as caught:
        run_collector(DeviceSource(export, AT), load_mapping(SOURCES / "mapping.yaml"), away(tmp_path))
    assert str(caught.value) == (
        f"{export}: not an Intune, Jamf or Graph device export (columns: a, b); "
        "Configuration Manager exports need Name and Last Activity"
    )
    assert not (tmp_path / "spool").exists()  # nothing sent, nothing spooled


def test_a_key_id_without_its_secret_and_an_unreadable_key_file_are_one_sentence(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(event(1) + "\n")
    env = {
        "CHARGEBACK_COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
        "CHARGEBACK_COLLECTOR_KEY_ID": "bollnas-1",
    }
    result = CliRunner().invoke(collect, ["file", str(events)], env=env)
    assert (result.exit_code, result.output) == (
        1,
        "Error: CHARGEBACK_COLLECTOR_KEY_ID is set: also set CHARGEBACK_COLLECTOR_KEY_SECRET "
        "or CHARGEBACK_COLLECTOR_KEY_FILE\n",
    )
    missing = tmp_path / "no-such-key"
    result = CliRunner().invoke(
        collect, ["file", str(events)], env={**env, "CHARGEBACK_COLLECTOR_KEY_FILE": str(missing)}
    )
    assert (result.exit_code, result.output) == (
        1,
        f"Error: CHARGEBACK_COLLECTOR_KEY_FILE: cannot read {missing}: No such file or directory\n",
    )


# --- bad lines of an events file -----------------------------------------------------------------


def test_nesting_is_told_before_any_parser_recurses() -> None:
    assert too_deep(event(1).encode()) is False
    assert too_deep(DEEP.encode()) is True
    assert too_deep(("[" * MAX_DEPTH + "]" * MAX_DEPTH).encode()) is False  # exactly the limit
    assert too_deep(("[" * 33 + "]" * 33).encode()) is True
    assert too_deep(("[" + "[]," * 40 + "[]]").encode()) is False  # many brackets, two levels
    # Brackets inside strings (escaped quotes too) are text.
    assert too_deep(b'{"s": "a \\" ' + b"[{" * 500 + b'", "n": 1}') is False


def test_long_integers_are_refused_and_long_decimals_and_digit_strings_are_not(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [
        b'{"n": ' + b"9" * 40 + b"}",
        b'{"n": -' + b"9" * 41 + b"}",
        b'{"s": "' + b"5" * 5000 + b'"}',
        b'{"q": 1.' + b"5" * 100 + b', "r": 2e' + b"1" * 50 + b"}",
        HUGE.encode(),
    ]
    path.write_bytes(b"\n".join(lines))
    report = FileReport()
    assert len(list(read_events(path, report))) == 3
    assert report.rejected == [
        f"{path}:2: an integer of 41 digits (at most 40)",
        f"{path}:5: an integer of 5000 digits (at most 40)",
    ]


def test_a_bad_line_is_rejected_with_its_number_and_every_good_line_still_goes(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [event(1), "", "{not json", event(2), DEEP, HUGE, '{"data": {"municipality": 2183}}', event(3)]
    path.write_bytes("\n".join(lines).encode() + b'\n{"s": "\xff"}\n')
    report = FileReport()
    messages = list(read_events(path, report))
    assert [(m.key, json.loads(m.value).get("id")) for m in messages] == [
        (b"2183", "2183-ev-1"),
        (b"2183", "2183-ev-2"),
        (None, None),  # JSON, but without a municipality: the worker dead-letters it with its reason
        (b"2183", "2183-ev-3"),
    ]
    assert (report.read, report.unkeyed) == (8, 1)
    assert report.rejected == [
        f"{path}:3: not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        f"{path}:5: nested deeper than 32 levels",
        f"{path}:6: an integer of 5000 digits (at most 40)",
        f"{path}:9: not valid JSON: 'utf-8' codec can't decode byte 0xff in position 7: invalid start byte",
    ]


def test_collect_file_reports_bad_lines_and_needs_a_human(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([event(1), DEEP, event(2)]) + "\n")
    report = run_collector(EventFile(path), None, away(tmp_path))
    assert report.summary == "read 3, emitted 0, spooled 2, rejected 1, unmapped 0 (this run: 2)"
    assert report.rejected == (f"{path}:2: nested deeper than 32 levels",)
    assert report.status is Status.NEEDS_HUMAN


# --- a spool that cannot be written ----------------------------------------------------------------


class FullDisk(Spool):
    """A spool whose segments are written to /dev/full: every write fails with ENOSPC for real."""

    def _create(self, tmp: Path) -> BinaryIO:
        tmp.touch()  # the temporary segment exists, as on a disk that fills while it is written
        return open("/dev/full", "wb")  # closed by the spool's own with


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_sentence_and_leaves_no_partial_segment(tmp_path: Path) -> None:
    spool = FullDisk(tmp_path / "spool")
    with pytest.raises(SpoolError) as caught:
        spool.write(Message(b"2183", event(n).encode()) for n in range(10_000))
    assert str(caught.value) == (
        f"the spool folder {tmp_path / 'spool'} cannot be written (No space left on device): "
        "this run's events were not kept and not sent"
    )
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_spool_folder_that_cannot_be_created_is_reported_and_needs_a_human(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    events = tmp_path / "events.jsonl"
    events.write_text(event(1) + "\n")
    spool = tmp_path / "a-file" / "spool"
    report = run_collector(
        EventFile(events), None, away(tmp_path).model_copy(update={"collector_spool_dir": spool})
    )
    assert report.spool_error == f"the spool folder {spool} cannot be created: Not a directory"
    assert (report.summary, report.status) == (
        "read 1, emitted 0, spooled 0, rejected 0, unmapped 0",
        Status.NEEDS_HUMAN,
    )
    result = CliRunner().invoke(
        collect,
        ["file", str(events), "--spool-dir", str(spool)],
        env={"CHARGEBACK_KAFKA_BOOTSTRAP": "127.0.0.1:9"},
    )
    assert result.exit_code == 1
    assert result.stdout == "read 1, emitted 0, spooled 0, rejected 0, unmapped 0\n"
    assert result.stderr == f"the spool folder {spool} cannot be created: Not a directory\n"


def test_a_dead_runs_temporary_segment_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    dead_pid = int(dead.stdout)
    spool = Spool(tmp_path)
    crashed = tmp_path / f".{1:020d}-{dead_pid}.spool.tmp"
    crashed.write_bytes(b'MjE4Mw== {"id": "half')  # a crash mid-line
    live = tmp_path / f".{2:020d}-{os.getppid()}.spool.tmp"  # a run beside this one, still writing
    live.write_bytes(b"")
    segment, count = spool.write([Message(b"2183", b"{}")])
    assert count == 1 and segment is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, segment.name])
    assert spool.pending() == 1  # the crashed half line is never sent


def test_a_byte_order_mark_before_the_first_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + event(1).encode() + b"\r\n" + event(2).encode() + b"\r\n")
    report = FileReport()
    assert [m.value for m in read_events(path, report)] == [event(1).encode(), event(2).encode()]
    assert report.rejected == []
