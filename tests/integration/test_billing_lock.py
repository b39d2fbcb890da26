"""Billing commands never race: real concurrent ``python -m chargeback_cli billing ...`` processes on
the ClickHouse server (the billing lock table) and on chDB (one process per data folder), many
trials, with the lines and states read back exactly."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from billing_jobs import service
from billing_jobs.lock import (
    LOCK_TABLE,
    BillingLockedError,
    billing_lock,
    create_lock_query,
    read_holder,
    release,
    unlock,
)
from billing_jobs.store import BillingStore
from chargeback.catalogue import load_catalogue
from chargeback.clickhouse import ClickHouse, connect
from chargeback.period import Period
from tests.integration.test_billing_service import store_tickets as store_service_tickets
from warehouse.migrations import migrate

pytestmark = pytest.mark.integration
# After every month these tests bill has ended (in Europe/Stockholm).
LATER = datetime(2027, 3, 1, tzinfo=UTC)

CATALOGUE_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "catalogue.yaml"
CATALOGUE = load_catalogue(CATALOGUE_PATH)
OCT = Period(2026, 10)
# Six members' base offering and SOC share, and two tickets of Bollnäs (BUF and SOC).
OCT_LINES = 14
TRIALS = 12  # per scenario; each trial starts two real processes


def store_tickets(ch: ClickHouse, tickets: list[tuple[str, str, str]]) -> None:
    """(id, cost centre, time) tickets of Bollnäs, through the real sink, stored on 15 November."""
    store_service_tickets(ch, tickets, stored_at=datetime(2026, 11, 15, tzinfo=UTC))


TICKETS = [("t1", "BUF", "2026-10-05T08:00:00Z"), ("t2", "SOC", "2026-10-06T08:00:00Z")]


@pytest.fixture
def server_db(clickhouse_server_url: str) -> Iterator[tuple[str, list[str]]]:
    """A factory of fresh, migrated databases with October's tickets: (url, names made)."""
    made: list[str] = []
    yield clickhouse_server_url, made
    admin = connect(clickhouse_server_url, "default")
    try:
        for name in made:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        admin.close()


def fresh_database(url: str, made: list[str]) -> ClickHouse:
    name = f"t_{uuid.uuid4().hex[:8]}"
    made.append(name)
    ch = connect(url, name, create=True)
    migrate(ch)
    store_tickets(ch, TICKETS)
    return ch


def env_for(url: str, database: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        CHARGEBACK_CLICKHOUSE_URL=url,
        CHARGEBACK_CLICKHOUSE_DATABASE=database,
        CHARGEBACK_CATALOGUE=str(CATALOGUE_PATH),
        **extra,
    )
    return env


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "chargeback_cli", "billing", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def together(env: dict[str, str], *commands: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """Start every command at once; (exit code, stdout, stderr) of each, in the order given."""
    procs = [start(env, *args) for args in commands]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append((p.returncode, stdout, stderr))
    return out


def lock_refusal(begins: str, database: str) -> re.Pattern[str]:
    """The one-sentence refusal of a command that met another one's lock."""
    return re.compile(
        re.escape(f"error: {begins}: another billing command holds the lock on database {database}: billing ")
        + r"[a-z]+ [^\n]* \(pid \d+ on host [^\n]+, since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\); "
        + re.escape("try again when it has finished\n")
    )


def states(ch: ClickHouse, run_id: str) -> list[tuple[int, str]]:
    return sorted(
        (int(r), str(s))
        for r, s in ch.execute(
            "SELECT revision, status FROM billing_runs WHERE run_id = %(id)s", {"id": run_id}
        )
    )


def line_count(ch: ClickHouse, run_id: str) -> int:
    return int(ch.execute("SELECT count() FROM billing_lines WHERE run_id = %(id)s", {"id": run_id})[0][0])


# --- the ClickHouse server: the lock table ------------------------------------------------------


def test_two_runs_of_one_month_at_once_store_every_line_once(server_db: tuple[str, list[str]]) -> None:
    url, made = server_db
    refused = 0
    for _ in range(TRIALS):
        ch = fresh_database(url, made)
        results = together(
            env_for(url, ch.database), ("run", "--period", "2026-10"), ("run", "--period", "2026-10")
        )
        runs = ch.execute("SELECT DISTINCT run_id FROM billing_runs")
        assert len(runs) == 1
        run_id = str(runs[0][0])
        assert line_count(ch, run_id) == OCT_LINES
        assert states(ch, run_id) == [(1, "draft")]
        pattern = lock_refusal("billing run of 2026-10 for all municipalities refused", ch.database)
        for code, stdout, stderr in results:
            if code == 0:
                assert stdout.startswith(f"run {run_id} (draft, ")
            else:
                assert code == 1 and stdout == ""
                assert pattern.fullmatch(stderr), stderr
                refused += 1
        assert [code for code, _, _ in results].count(0) >= 1
        ch.close()
    assert refused >= 1  # the commands did meet


def test_finalize_and_void_of_one_draft_at_once_give_one_state(server_db: tuple[str, list[str]]) -> None:
    url, made = server_db
    winners = []
    for _ in range(TRIALS):
        ch = fresh_database(url, made)
        run = service.create_run(BillingStore(ch), CATALOGUE, "c" * 64, OCT, now=LATER).run
        label = f"run {run.run_id} (2026-10, all municipalities)"
        (f_code, f_out, f_err), (v_code, v_out, v_err) = together(
            env_for(url, ch.database),
            ("finalize", run.run_id, "--yes", "--accept-gaps"),
            ("void", run.run_id),
        )
        assert sorted([f_code, v_code]) == [0, 1]
        final = states(ch, run.run_id)
        if f_code == 0:
            winners.append("final")
            assert f_out.endswith(f"run {run.run_id} is final\n")  # after its totals and gaps
            assert final == [(1, "draft"), (2, "final")]
            assert v_err == (
                f"error: {label} is final and cannot be voided; what changed since reaches 2026-10 as "
                "corrections in a later month's run\n"
            ) or lock_refusal(f"billing void of {label} refused", ch.database).fullmatch(v_err), v_err
        else:
            winners.append("void")
            assert v_out == f"run {run.run_id} is void\n"
            assert final == [(1, "draft"), (2, "void")]
            assert f_err == (
                f"error: {label} is void and cannot be finalised; price the month again with "
                "`chargeback billing run --period 2026-10` and finalise the new run\n"
            ) or lock_refusal(f"billing finalize of {label} refused", ch.database).fullmatch(f_err), f_err
        assert line_count(ch, run.run_id) == OCT_LINES
        ch.close()
    assert len(winners) == TRIALS


def test_two_drafts_of_one_month_finalised_at_once_give_one_final_run(
    server_db: tuple[str, list[str]],
) -> None:
    url, made = server_db
    for _ in range(TRIALS):
        ch = fresh_database(url, made)
        store = BillingStore(ch)
        a = service.create_run(store, CATALOGUE, "a" * 64, OCT, now=LATER).run
        b = service.create_run(store, CATALOGUE, "b" * 64, OCT, ["2183"], now=LATER).run
        results = together(
            env_for(url, ch.database),
            ("finalize", a.run_id, "--yes", "--accept-gaps"),
            ("finalize", b.run_id, "--yes", "--accept-gaps"),
        )
        assert sorted(code for code, _, _ in results) == [0, 1]
        finals = [r.run_id for r in store.list_runs(OCT) if r.status == "final"]
        assert len(finals) == 1
        winner, loser = (a, b) if finals == [a.run_id] else (b, a)
        labels = {
            a.run_id: f"run {a.run_id} (2026-10, all municipalities)",
            b.run_id: f"run {b.run_id} (2026-10, municipality 2183)",
        }
        for run, (code, stdout, stderr) in zip((a, b), results, strict=True):
            if run is winner:
                assert (code, stdout.splitlines()[-1], stderr) == (0, f"run {run.run_id} is final", "")
                continue
            assert code == 1
            assert stderr == (
                f"error: {labels[loser.run_id]} cannot be finalised: 2026-10 is already final for "
                f"municipality 2183 in run {winner.run_id}; void this draft with `chargeback billing void "
                f"{loser.run_id}`, what changed since reaches 2026-10 as corrections in a later month's run\n"
            ) or lock_refusal(f"billing finalize of {labels[loser.run_id]} refused", ch.database).fullmatch(
                stderr
            ), stderr
        assert states(ch, loser.run_id) == [(1, "draft")]
        ch.close()


def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "chargeback_cli", "billing", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def hold_lock(ch: ClickHouse, command: str, since: datetime) -> None:
    ch.execute(create_lock_query(ch.database).sql)
    ch.insert(
        LOCK_TABLE,
        ("host", "pid", "command", "acquired_at", "token"),
        [("finance-1", 4242, command, since, "x")],
    )


def test_a_held_lock_names_its_holder_and_a_stale_one_is_released_by_unlock(
    server_db: tuple[str, list[str]],
) -> None:
    url, made = server_db
    ch = fresh_database(url, made)
    env = env_for(url, ch.database, CHARGEBACK_BILLING_LOCK_TIMEOUT_SECONDS="600")
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    hold_lock(ch, "billing finalize 2026-10-aaaaaaaaaaaa", since)
    assert run_cli(env, "run", "--period", "2026-10", "--municipality", "2183") == (
        1,
        "",
        f"error: billing run of 2026-10 for municipality 2183 refused: another billing command holds the "
        f"lock on database {ch.database}: billing finalize 2026-10-aaaaaaaaaaaa (pid 4242 on host finance-1, "
        f"since {since:%Y-%m-%d %H:%M:%S} UTC); try again when it has finished\n",
    )
    assert run_cli(env, "unlock") == (
        1,
        "",
        f"error: the billing lock on database {ch.database} is held by billing finalize 2026-10-aaaaaaaaaaaa "
        f"(pid 4242 on host finance-1, since {since:%Y-%m-%d %H:%M:%S} UTC), not longer than the 600 s "
        "timeout; it is released when that command ends (`--force` releases it anyway, when you know it "
        "is no longer running)\n",
    )
    assert ch.execute("SELECT count() FROM billing_runs") == [(0,)]
    assert run_cli(env, "unlock", "--force") == (
        0,
        "released the billing lock held by billing finalize 2026-10-aaaaaaaaaaaa (pid 4242 on host "
        f"finance-1, since {since:%Y-%m-%d %H:%M:%S} UTC)\n",
        "",
    )

    old = since - timedelta(hours=2)
    hold_lock(ch, "billing run --period 2026-10", old)
    assert run_cli(env, "void", "2026-10-bbbbbbbbbbbb") == (
        1,
        "",
        "error: billing void of run 2026-10-bbbbbbbbbbbb (2026-10) refused: the billing lock on database "
        f"{ch.database} is held by billing run --period 2026-10 (pid 4242 on host finance-1, since "
        f"{old:%Y-%m-%d %H:%M:%S} UTC), longer than the 600 s timeout; if that command is no longer "
        "running, release the lock with `chargeback billing unlock` and try again\n",
    )
    assert run_cli(env, "unlock") == (
        0,
        f"released the billing lock held by billing run --period 2026-10 (pid 4242 on host finance-1, "
        f"since {old:%Y-%m-%d %H:%M:%S} UTC)\n",
        "",
    )
    assert run_cli(env, "unlock") == (0, f"no billing command holds the lock on database {ch.database}\n", "")
    code, stdout, _ = run_cli(env, "run", "--period", "2026-10")
    assert code == 0
    run_id = stdout.split()[1]
    assert line_count(ch, run_id) == OCT_LINES
    # The command released its lock when it ended.
    assert ch.execute(
        "SELECT count() FROM system.tables WHERE database = %(db)s AND name = %(n)s",
        {"db": ch.database, "n": LOCK_TABLE},
    ) == [(0,)]
    ch.close()


def test_a_lock_without_its_holders_row_is_refused_and_aged_by_the_table(
    server_db: tuple[str, list[str]],
) -> None:
    url, made = server_db
    ch = fresh_database(url, made)
    ch.execute(create_lock_query(ch.database).sql)  # as if its holder died between CREATE and INSERT
    unix = ch.execute(
        "SELECT toUnixTimestamp(metadata_modification_time) FROM system.tables "
        "WHERE database = %(db)s AND name = %(n)s",
        {"db": ch.database, "n": LOCK_TABLE},
    )[0][0]
    created = datetime.fromtimestamp(int(unix), UTC)
    assert run_cli(env_for(url, ch.database), "run", "--period", "2026-10") == (
        1,
        "",
        f"error: billing run of 2026-10 for all municipalities refused: another billing command holds the "
        f"lock on database {ch.database}: a billing command that has not recorded itself (the lock exists "
        f"since {created:%Y-%m-%d %H:%M:%S} UTC); try again when it has finished\n",
    )
    ch.close()


def test_a_command_told_to_wait_runs_once_the_lock_is_released(server_db: tuple[str, list[str]]) -> None:
    url, made = server_db
    ch = fresh_database(url, made)
    env = env_for(url, ch.database, CHARGEBACK_BILLING_LOCK_WAIT_SECONDS="30")
    since = datetime.now(UTC).replace(microsecond=0)
    hold_lock(ch, "billing void 2026-10-cccccccccccc", since)
    waiting = start(env, "run", "--period", "2026-10")
    # It waits: still running, and says for whom, while the lock is held.
    assert waiting.stderr is not None
    assert waiting.stderr.readline() == (
        "waiting for the billing lock held by billing void 2026-10-cccccccccccc (pid 4242 on host "
        f"finance-1, since {since:%Y-%m-%d %H:%M:%S} UTC)\n"
    )
    assert waiting.poll() is None
    ch.execute(f"DROP TABLE {ch.database}.{LOCK_TABLE}")
    stdout, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 0
    run_id = stdout.split()[1]
    assert line_count(ch, run_id) == OCT_LINES
    ch.close()


# --- a void is for good -------------------------------------------------------------------------


def test_a_voided_run_id_is_never_used_again(server_db: tuple[str, list[str]]) -> None:
    url, made = server_db
    ch = fresh_database(url, made)
    env = env_for(url, ch.database)
    first = run_cli(env, "run", "--period", "2026-10", "--json")
    first_id = json.loads(first[1])["run_id"]
    again = run_cli(env, "run", "--period", "2026-10", "--json")
    assert json.loads(again[1])["run_id"] == first_id  # nothing voided: the same run
    assert run_cli(env, "void", first_id) == (0, f"run {first_id} is void\n", "")
    second_id = json.loads(run_cli(env, "run", "--period", "2026-10", "--json")[1])["run_id"]
    sha = hashlib_sha256(CATALOGUE_PATH)
    usage = ch.execute("SELECT usage_sha256 FROM billing_runs WHERE run_id = %(id)s", {"id": first_id})[0][0]
    assert first_id == service.run_id_for(OCT, (), sha, usage, 0)
    assert second_id == service.run_id_for(OCT, (), sha, usage, 1)
    assert states(ch, first_id) == [(1, "draft"), (2, "void")]
    assert states(ch, second_id) == [(1, "draft")]
    assert line_count(ch, first_id) == OCT_LINES and line_count(ch, second_id) == OCT_LINES
    assert run_cli(env, "void", second_id)[0] == 0
    third_id = json.loads(run_cli(env, "run", "--period", "2026-10", "--json")[1])["run_id"]
    assert third_id == service.run_id_for(OCT, (), sha, usage, 2)
    assert len({first_id, second_id, third_id}) == 3
    assert run_cli(env, "finalize", first_id, "--yes") == (
        1,
        "",
        f"error: run {first_id} (2026-10, all municipalities) is void and cannot be finalised; price the "
        "month again with `chargeback billing run --period 2026-10` and finalise the new run\n",
    )
    ch.close()


def hashlib_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- chDB: one process per data folder ------------------------------------------------------------

HOLDER = """
import sys
from chargeback.clickhouse import connect
ch = connect(sys.argv[1], sys.argv[2], create=True)
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_second_process_on_a_chdb_folder_is_refused_in_one_sentence(tmp_path: Path) -> None:
    folder = tmp_path / "chdb"
    url = f"chdb:{folder}"
    env = env_for(url, "billing")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, "billing"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        busy = (
            f"the chDB folder {folder.resolve()} is in use by another process (chDB opens a folder in one "
            "process at a time); try again when that command has finished\n"
        )
        assert run_cli(env, "run", "--period", "2026-10") == (
            1,
            "",
            f"error: billing run of 2026-10 for all municipalities refused: {busy}",
        )
        assert run_cli(env, "finalize", "2026-10-0123456789ab") == (
            1,
            "",
            f"error: billing finalize of run 2026-10-0123456789ab (2026-10) refused: {busy}",
        )
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0


SETUP = """
import sys
from chargeback.clickhouse import connect
from tests.integration.test_billing_lock import TICKETS, store_tickets
from warehouse.migrations import migrate
ch = connect(sys.argv[1], sys.argv[2], create=True)
migrate(ch)
store_tickets(ch, TICKETS)
"""

COUNT = """
import sys
from chargeback.clickhouse import connect
ch = connect(sys.argv[1], sys.argv[2])
for row in ch.execute("SELECT run_id, status, revision FROM billing_runs ORDER BY run_id, revision"):
    print(*row)
for row in ch.execute("SELECT run_id, count() FROM billing_lines GROUP BY run_id ORDER BY run_id"):
    print(*row)
"""


def python(env: dict[str, str], script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_two_runs_at_once_on_chdb_store_every_line_once(tmp_path: Path) -> None:
    refused = 0
    for trial in range(2):
        folder = tmp_path / f"chdb{trial}"
        url = f"chdb:{folder}"
        env = env_for(url, "billing")
        python(env, SETUP, url, "billing")
        results = together(env, ("run", "--period", "2026-10"), ("run", "--period", "2026-10"))
        rows = python(env, COUNT, url, "billing").splitlines()
        assert len(rows) == 2
        run_id = rows[0].split()[0]
        assert rows == [f"{run_id} draft 1", f"{run_id} {OCT_LINES}"]
        for code, stdout, stderr in results:
            if code == 0:
                assert stdout.startswith(f"run {run_id} (draft, ")
            else:
                refused += 1
                assert (code, stdout) == (1, "")
                assert stderr == (
                    "error: billing run of 2026-10 for all municipalities refused: the chDB folder "
                    f"{folder.resolve()} is in use by another process (chDB opens a folder in one process at "
                    "a time); try again when that command has finished\n"
                )
    assert refused >= 1


def test_a_holder_releases_only_its_own_lock(server_db: tuple[str, list[str]]) -> None:
    url, made = server_db
    ch = fresh_database(url, made)
    other = connect(url, ch.database)
    hour = timedelta(hours=1)
    try:
        with billing_lock(ch, "billing run --period 2026-10", refused=lambda: "refused", timeout=hour) as me:
            assert read_holder(other) == me
            with (
                pytest.raises(BillingLockedError, match=r"^refused too: another billing command holds"),
                billing_lock(other, "billing void x", refused=lambda: "refused too", timeout=hour),
            ):
                pass
            # Finance releases it by force while it still runs, and another command takes it.
            assert unlock(other, timeout=hour, force=True) == me
            hold_lock(
                other, "billing finalize 2026-10-dddddddddddd", datetime.now(UTC).replace(microsecond=0)
            )
        holder = read_holder(other)
        assert holder is not None and holder.command == "billing finalize 2026-10-dddddddddddd"
        release(other)
        with billing_lock(ch, "billing run --period 2026-10", refused=lambda: "refused", timeout=hour):
            pass
        assert read_holder(other) is None
    finally:
        other.close()
        ch.close()
