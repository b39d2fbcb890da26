"""The usage alerts' Prometheus text passes `promtool check metrics`, and the documented alerting
rules pass `promtool check rules` and fire on that text's series (`promtool test rules`)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from billing_jobs.model import CHANGE, SILENT, Alert
from billing_jobs.reports.alerts import prometheus_text
from chargeback.period import Period

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "docs" / "prometheus" / "usage-alerts.rules.yml"
D = Decimal


def promtool(
    *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("no promtool: scripts/bootstrap --clickhouse-server installs Debian's prometheus")
    return subprocess.run(
        [found, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


ALERTS = [
    Alert(
        CHANGE, "2183", "ticket-incident", before=D(5), now=D(2), change_pct=D("-60.0"), threshold_pct=D(25)
    ),
    Alert(CHANGE, "2184", "e-archive", before=D(0), now=D(5), threshold_pct=D(25)),
    Alert(
        SILENT,
        "2183",
        source="urn:chargeback:collector:2183:tickets",
        last_day=date(2026, 10, 26),
        silent_working_days=4,
        allowed_working_days=3,
    ),
]


def test_the_textfile_is_valid_prometheus_text() -> None:
    checked = promtool("check", "metrics", stdin=prometheus_text(Period(2026, 10), ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_fire_on_the_alerts_series(tmp_path: Path) -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0 and "SUCCESS: 2 rules found" in checked.stdout, checked.stderr
    shutil.copy(RULES, tmp_path / RULES.name)
    # The series exactly as the textfile has them.
    samples = [
        line.rsplit(" ", 1)
        for line in prometheus_text(Period(2026, 10), ALERTS).splitlines()
        if line.startswith(("chargeback_usage_change_ratio", "chargeback_source_silent"))
    ]
    series = "".join(
        f"      - series: '{name}'\n        values: '{value} {value}'\n" for name, value in samples
    )
    (tmp_path / "test.yml").write_text(
        f"rule_files: [{RULES.name}]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n"
        + series
        + """    alert_rule_test:
      - eval_time: 1m
        alertname: ChargebackUsageChanged
        exp_alerts:
          - exp_labels: {severity: warning, period: "2026-10", municipality: "2183", service: ticket-incident}
            exp_annotations: {summary: "2183 ticket-incident: usage changed by -60% in 2026-10"}
          - exp_labels: {severity: warning, period: "2026-10", municipality: "2184", service: e-archive}
            exp_annotations: {summary: "2184 e-archive: usage changed by +Inf% in 2026-10"}
      - eval_time: 1m
        alertname: ChargebackSourceSilent
        exp_alerts:
          - exp_labels: {severity: warning, period: "2026-10", municipality: "2183",
                         source: "urn:chargeback:collector:2183:tickets"}
            exp_annotations:
              summary: "urn:chargeback:collector:2183:tickets has sent no events for 4 working days (2026-10)"
"""
    )
    tested = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
