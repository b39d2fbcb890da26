"""The deployment files: the compose file against the Compose specification, the image, the alert
rules (promtool), the Grafana dashboard, all consistent with the settings and the worker's metrics.

Compose cannot run here; what can be checked without it is checked: the schema, that every
``CHARGEBACK_*`` it or the image sets is a real setting, the start order, the broker's listeners
and log folder, health checks, and that every file it mounts from the repository exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import billing_jobs.settings
import collectors.settings
import streams.settings
from chargeback.settings import known_settings
from streams.metrics import WorkerMetrics
from streams.sink import Counters

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "chargeback.json"
# Files the operator provides next to the compose file (docs/operations.md), never in the repository.
OPERATOR_FILES = ("./catalogue.yaml", "./collector-keys.yaml", "./secrets/")
ONE_SHOT = {"kafka-init", "minio-init", "migrate", "sync-catalogue", "chargeback"}

assert collectors.settings and streams.settings and billing_jobs.settings  # every class loaded


@pytest.fixture(scope="module")
def compose_spec() -> dict[str, Any]:
    """The Compose specification's JSON schema: ``../shared/compose-spec`` beside the repository."""
    path = Path(
        os.environ.get(
            "CHARGEBACK_TEST_COMPOSE_SPEC", ROOT.parent / "shared" / "compose-spec" / "compose-spec.json"
        )
    )
    if not path.is_file():
        pytest.fail(
            f"the Compose specification's schema is missing: {path} (set CHARGEBACK_TEST_COMPOSE_SPEC)"
        )
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # merge keys resolved
    return doc


def test_the_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any], compose_spec: dict[str, Any]
) -> None:
    validator = jsonschema.Draft7Validator(compose_spec)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_check_catches_a_broken_compose_file(
    compose: dict[str, Any], compose_spec: dict[str, Any]
) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["stream-worker"]["restart"] = ["always"]
    broken["services"]["kafka"]["healthcheck"]["intervall"] = "10s"
    validator = jsonschema.Draft7Validator(compose_spec)
    assert len(list(validator.iter_errors(broken))) >= 2


def chargeback_names(compose: dict[str, Any]) -> set[str]:
    names = set()
    for service in compose["services"].values():
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        names.update(n for n in environment if n.startswith("CHARGEBACK_"))
    return names


def dockerfile_env() -> dict[str, str]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            found.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return found


def test_every_chargeback_setting_the_compose_file_and_the_image_set_is_real(compose: dict[str, Any]) -> None:
    known = known_settings()
    assert chargeback_names(compose) - known == set()
    assert {n for n in dockerfile_env() if n.startswith("CHARGEBACK_")} - known == set()
    assert len(chargeback_names(compose)) >= 15


def test_the_platform_starts_in_order_and_every_service_is_checked(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"], f"{name} has no health check"
        assert "disable" not in service["healthcheck"], name
    depends = {name: service.get("depends_on", {}) for name, service in services.items()}
    assert depends["migrate"] == {"clickhouse": {"condition": "service_healthy"}}
    assert depends["sync-catalogue"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert depends["stream-worker"] == {
        "kafka-init": {"condition": "service_completed_successfully"},
        "sync-catalogue": {"condition": "service_completed_successfully"},
    }
    assert depends["kafka-init"] == {"kafka": {"condition": "service_healthy"}}
    assert depends["minio-init"] == {"minio": {"condition": "service_healthy"}}
    assert services["migrate"]["command"] == ["chargeback", "db", "migrate"]
    assert services["sync-catalogue"]["command"] == ["chargeback", "db", "sync-catalogue"]
    assert services["stream-worker"]["command"] == ["chargeback", "stream", "worker"]
    assert services["stream-worker"]["healthcheck"]["test"] == ["CMD", "chargeback", "stream", "health"]


def test_the_broker_keeps_its_data_on_the_volume_and_speaks_tls_and_sasl_outside(
    compose: dict[str, Any],
) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    volume_target = next(v.split(":")[1] for v in kafka["volumes"] if v.startswith("kafka-data:"))
    assert env["KAFKA_LOG_DIRS"] == volume_target == "/var/lib/kafka/data"
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert protocols[next(iter(listeners))] == "PLAINTEXT"  # the compose network's own listener
    assert listeners["INTERNAL"] == "kafka:9092"
    assert protocols["SASL_SSL"] == "SASL_SSL" and listeners["SASL_SSL"].endswith(":9094")
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert kafka["ports"] == ["9094:9094"]  # nothing but the TLS + SASL listener is published
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"


def test_the_worker_verifies_signatures_and_is_scrapeable(compose: dict[str, Any]) -> None:
    worker = compose["services"]["stream-worker"]
    env = worker["environment"]
    assert env["CHARGEBACK_WORKER_KEY_REGISTRY"] == "/etc/chargeback/collector-keys.yaml"
    assert env["CHARGEBACK_WORKER_METRICS_HOST"] == "0.0.0.0"
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = scrape["scrape_configs"]
    assert job["job_name"] == "chargeback-worker"
    assert job["dns_sd_configs"][0]["names"] == ["stream-worker"]
    assert str(job["dns_sd_configs"][0]["port"]) == env["CHARGEBACK_WORKER_METRICS_PORT"]
    assert worker["expose"] == [env["CHARGEBACK_WORKER_METRICS_PORT"]]
    # Least privilege: the application's S3 login is not MinIO's root, and its secret is a file.
    assert env["CHARGEBACK_S3_ACCESS_KEY_ID"] == "chargeback"
    assert "CHARGEBACK_S3_SECRET_ACCESS_KEY" not in env and "CHARGEBACK_CLICKHOUSE_PASSWORD" not in env
    policy = json.loads((ROOT / "deploy" / "compose" / "exports-policy.json").read_text(encoding="utf-8"))
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert actions == {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "s3:PutObject"}


def test_every_file_the_compose_file_mounts_from_the_repository_exists(compose: dict[str, Any]) -> None:
    sources = []
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not source.startswith(OPERATOR_FILES):
                sources.append(source)
    assert sources
    assert [s for s in sources if not (ROOT / s).exists()] == []


def test_the_image_installs_the_production_lock_as_a_wheel_and_runs_unprivileged() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [
        line.split()[0] for line in text.replace("\\\n", " ").splitlines() if line and line[0].isupper()
    ]
    assert "pip install --no-cache-dir -r /tmp/requirements-prod.lock" in text
    assert "requirements.lock" not in text.replace("requirements-prod.lock", "")
    assert " -e " not in text and "--editable" not in text
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users == ["chargeback:chargeback"]
    assert "HEALTHCHECK" in instructions
    assert 'CMD ["chargeback", "stream", "health"]' in text
    for folder in ("data", "out", "spool"):
        assert f"/var/lib/chargeback/{folder}" in text.split("install -d -o chargeback -g chargeback")[1]
    assert dockerfile_env()["CHARGEBACK_WORKER_METRICS_HOST"] == "0.0.0.0"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: scripts/bootstrap --clickhouse-server installs Debian's prometheus")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_the_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = promtool("test", "rules", str(PROMETHEUS / "alerts.test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    config = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_rule_tests_can_fail(tmp_path: Path) -> None:
    # The same tests against rules whose weekend allowance is gone must fail.
    rules = (PROMETHEUS / "alerts.yml").read_text(encoding="utf-8")
    broken = rules.replace("(day_of_week() == bool 1) * 172800", "(day_of_week() == bool 1) * 0")
    assert broken != rules
    (tmp_path / "alerts.yml").write_text(broken, encoding="utf-8")
    shutil.copy(PROMETHEUS / "alerts.test.yml", tmp_path / "alerts.test.yml")
    tested = promtool("test", "rules", str(tmp_path / "alerts.test.yml"))
    assert tested.returncode == 1
    assert "ChargebackSourceStale, time: 4d5h" in tested.stdout + tested.stderr


def exposed_metric_names() -> set[str]:
    from prometheus_client import generate_latest

    metrics = WorkerMetrics(Counters(), ["2183"])
    metrics.observe_batch(10, 0.1)
    metrics.observe_members([[b"2183"]], [(b"2183", b"{}")])
    now = datetime.now(UTC)
    metrics.observe_freshness([("2183", "urn:x", now, now)])
    metrics.observe_lag({("usage.events", 0): 5})
    text = generate_latest(metrics.registry).decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_and_the_alerts_use_only_metrics_the_worker_exposes() -> None:
    exposed = exposed_metric_names() | {"up", "ALERTS"}
    alerts = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))
    expressions = dashboard_expressions() + [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    used = {name for expr in expressions for name in re.findall(r"\b(chargeback_[a-z_]+|up|ALERTS)\b", expr)}
    assert used - exposed == set()
    assert {
        "chargeback_source_last_stored_timestamp_seconds",
        "chargeback_member_events_received_total",
        "chargeback_member_dead_letters_total",
        "chargeback_consumer_lag",
        "chargeback_worker_ready",
    } <= used


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses rule expressions: each query becomes a recording rule to be checked.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:query{i}",
                        "expr": expr.replace("$__rate_interval", "5m").replace("$municipality", ".*"),
                    }
                    for i, expr in enumerate(dashboard_expressions())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "chargeback-workers"
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
