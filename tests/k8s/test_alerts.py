"""Issue 17, item 5: every alert is unit-tested with promtool (Debian's ``prometheus`` package; ``make test``
installs it when missing), including the case where the counter it watches was never created."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parents[1] / "deploy" / "k8s" / "monitoring" / "alerts.yaml"
TESTS = HERE / "alerts_test.yaml"


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make test` installs Debian's prometheus package (apt-get install prometheus)"
    return found


def test_every_alert_has_a_promtool_case() -> None:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    alerts = {r["alert"] for g in rules["spec"]["groups"] for r in g["rules"]}
    cases = yaml.safe_load(TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert alerts == fired, f"alerts without a firing case: {sorted(alerts - fired)}"


def test_alert_rules_pass_their_promtool_unit_tests(tmp_path: Path) -> None:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rules["spec"]["groups"]}, allow_unicode=True))
    shutil.copy(TESTS, tmp_path / TESTS.name)
    checked = subprocess.run([_promtool(), "check", "rules", str(tmp_path / "rules.yaml")],  # noqa: S603
                             capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = subprocess.run([_promtool(), "test", "rules", str(tmp_path / TESTS.name)],  # noqa: S603
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
