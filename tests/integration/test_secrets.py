"""Secrets are never printed or logged: after every access-management command and every failure
path, the test passwords appear neither in the command's output, nor in the ClickHouse server's
logs, nor on any process's command line (``ps``) while the command ran.

The server is Debian's ClickHouse 18.16 (no SQL logins: ``db users`` without ``--users-xml`` must
fail, and its error must not carry the password, which only ever reaches the server as a hash).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import devstack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "tests" / "fixtures" / "catalogue.yaml"
ANALYST_PW = "An4lyst-S3cret-pw'q"
MEMBER_PW = "Memb3r-S3cret-pw"
URL_PW = "Url-S3cret-pw"
SECRETS = (ANALYST_PW, "An4lyst-S3cret-pw\\'q", "An4lyst-S3cret-pw", MEMBER_PW, URL_PW)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[devstack.Endpoints, Path]]:
    state = tmp_path_factory.mktemp("secrets-clickhouse")
    with devstack.running(["clickhouse"], state_dir=state) as found:
        yield found, state / "logs"


def run(env: dict[str, str], *args: str) -> tuple[int, str, list[str]]:
    """Run a command; return its exit code, its whole output, and what ``ps`` showed meanwhile."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "chargeback_cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    while proc.poll() is None:
        seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout)
        time.sleep(0.02)
    out = proc.communicate(timeout=120)[0]
    return proc.returncode, out, seen


def assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a test password appears in {where}"


def logs(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*")) if p.is_file())


def test_access_management_and_failures_never_show_a_password(
    server: tuple[devstack.Endpoints, Path], tmp_path: Path
) -> None:
    endpoints, log_folder = server
    assert endpoints.clickhouse_port is not None
    access = tmp_path / "access.yaml"
    (tmp_path / "member-pw").write_text(MEMBER_PW + "\n", encoding="utf-8")
    access.write_text(
        "analysts:\n  - {name: analyst, password_env: ANALYST_PW}\n"
        f"members:\n  - {{name: bollnas, municipality: '2183', password_file: {tmp_path / 'member-pw'}}}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGEBACK_")}
    env.update(
        PYTHONPATH=str(ROOT),
        ANALYST_PW=ANALYST_PW,
        CHARGEBACK_CLICKHOUSE_URL=str(endpoints.clickhouse_url),
        CHARGEBACK_CLICKHOUSE_DATABASE="secrets_test",
        CHARGEBACK_CATALOGUE=str(CATALOGUE),
    )
    outputs: list[tuple[str, str]] = []
    ps_seen: list[str] = []

    def step(name: str, expected_code: int, *args: str, **extra: str) -> str:
        code, out, seen = run({**env, **extra}, *args)
        assert code == expected_code, f"{name}: exit {code}\n{out}"
        outputs.append((name, out))
        ps_seen.extend(seen)
        return out

    step("migrate", 0, "db", "migrate")
    step("sync-catalogue", 0, "db", "sync-catalogue")

    # SQL logins: the 18.16 server has none; the refusal is one sentence, with no password.
    out = step("db users (SQL)", 1, "db", "users", "--config", str(access))
    assert out.startswith(
        "error: the server refused the logins (it needs SQL access control, or use --users-xml): "
    )
    assert out.count("\n") == 1 and "Traceback" not in out
    assert hashlib.sha256(ANALYST_PW.encode()).hexdigest() not in out  # not even the hash

    # The users file: hashes only, readable by its owner only.
    users_xml = tmp_path / "users.xml"
    out = step(
        "db users --users-xml", 0, "db", "users", "--config", str(access), "--users-xml", str(users_xml)
    )
    assert "wrote 2 users" in out
    text = users_xml.read_text(encoding="utf-8")
    assert_no_secret("the users file", text)
    assert hashlib.sha256(ANALYST_PW.encode()).hexdigest() in text
    assert users_xml.stat().st_mode & 0o077 == 0

    # Failure paths with a password in the URL: malformed, unreachable, wrong password.
    host = f"127.0.0.1:{endpoints.clickhouse_port}"
    out = step(
        "malformed URL", 1, "db", "migrate", CHARGEBACK_CLICKHOUSE_URL=f"clickhuose://default:{URL_PW}@{host}"
    )
    assert out == (
        "error: invalid setting CHARGEBACK_CLICKHOUSE_URL: must be chdb:PATH or "
        f"clickhouse://[user[:password]@]host[:port], not 'clickhuose://default:***@{host}'\n"
    )
    port = devstack.free_port()
    out = step(
        "unreachable",
        1,
        "db",
        "migrate",
        CHARGEBACK_CLICKHOUSE_URL=f"clickhouse://default:{URL_PW}@127.0.0.1:{port}",
    )
    refused = f"Code: 210. Connection refused (127.0.0.1:{port})"
    assert out == f"error: ClickHouse server at 127.0.0.1:{port} unreachable: {refused}\n"
    out = step(
        "wrong password",
        1,
        "db",
        "migrate",
        CHARGEBACK_CLICKHOUSE_URL=f"clickhouse://analyst:{URL_PW}@{host}",
    )
    assert out.startswith("error: ") and out.count("\n") == 1 and "Traceback" not in out
    out = step(
        "wrong password, from a file",
        1,
        "stream",
        "dead",
        "list",
        CHARGEBACK_CLICKHOUSE_URL=f"clickhouse://analyst@{host}",
        CHARGEBACK_CLICKHOUSE_PASSWORD=URL_PW,
    )
    assert out.startswith("error: ") and out.count("\n") == 1

    for name, out in outputs:
        assert_no_secret(f"the output of {name}", out)
    assert_no_secret("the server's logs", logs(log_folder))
    assert ps_seen, "ps was never sampled"
    assert_no_secret("a process's command line", "\n".join(ps_seen))
