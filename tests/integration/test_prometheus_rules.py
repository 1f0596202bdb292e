"""observability/prometheus: the rules pass ``promtool check rules`` and their unit tests
(``promtool test rules``, synthetic series), and cover every alert Emporium promises.

promtool comes from Debian's ``prometheus`` package (.ci/run installs it); without it these
tests fail rather than skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.mesh.observe import RULES_DIR, promtool_binary

RULE_FILES = sorted(RULES_DIR.glob("*.rules.yml"))
TEST_FILES = sorted(RULES_DIR.glob("*.test.yml"))
#: The alert of each condition docs/observability.md lists.
ALERTS = {
    "EmporiumRpcErrorRatioHigh",
    "EmporiumRpcLatencyHigh",
    "EmporiumEdge5xxHigh",
    "EmporiumSagaOverBudget",
    "EmporiumOutboxBacklogOld",
    "EmporiumConsumerLagHigh",
    "EmporiumEventsDeadLettered",
    "EmporiumCircuitBreakerOpen",
    "EmporiumServiceDown",
}


def _promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    binary = promtool_binary()
    assert binary is not None, "promtool is missing: apt-get install prometheus (see .ci/run)"
    return subprocess.run(
        [str(binary), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_every_rules_file_passes_promtool_check() -> None:
    assert RULE_FILES
    result = _promtool("check", "rules", *(p.name for p in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_every_rules_file_has_unit_tests() -> None:
    tested = {
        name for path in TEST_FILES for name in yaml.safe_load(path.read_text())["rule_files"]
    }
    assert tested == {p.name for p in RULE_FILES}


def test_the_unit_tests_pass() -> None:
    result = _promtool("test", "rules", *(p.name for p in TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def test_every_promised_alert_exists_with_a_severity_and_a_summary() -> None:
    alerts = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
    assert set(alerts) == ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name


def test_every_alert_is_exercised_by_a_unit_test() -> None:
    exercised = {
        case["alertname"]
        for path in TEST_FILES
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert exercised == ALERTS


@pytest.mark.parametrize(
    ("rules", "before", "after"),
    [
        ("bus.rules.yml", "max by (group) (emporium_dead_letters_waiting) > 0", "vector(0) > 1"),
        ("mesh.rules.yml", 'up{service!=""} == 0', 'up{service!=""} == 2'),
    ],
)
def test_the_unit_tests_catch_a_broken_rule(
    tmp_path: Path, rules: str, before: str, after: str
) -> None:
    for path in [*RULE_FILES, *TEST_FILES]:
        shutil.copy(path, tmp_path / path.name)
    broken = tmp_path / rules
    text = broken.read_text()
    assert before in text
    broken.write_text(text.replace(before, after))
    test_file = rules.replace(".rules.yml", ".test.yml")
    result = _promtool("test", "rules", test_file, cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
