"""Issue 17, item 6: checkov (pinned, from PyPI; ``make test`` installs it into ``.tools/checkov``) finds nothing to
fail in the rendered dev and prod overlays. Every skip is an inline ``checkov.io/skipN`` annotation naming the
check and the reason."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.k8s.test_manifests import KUBECTL, OVERLAYS, ROOT, render_copy

CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"

if KUBECTL:

    @pytest.mark.parametrize("overlay", sorted(OVERLAYS))
    def test_checkov_fails_no_check(overlay: str, tmp_path: Path) -> None:
        assert CHECKOV.exists() or shutil.which("checkov"), "checkov is missing: `make checkov` installs it"
        docs = render_copy(overlay, tmp_path / "tree")
        rendered = tmp_path / f"{overlay}.yaml"
        rendered.write_text(yaml.safe_dump_all(docs, allow_unicode=True))
        result = subprocess.run(  # noqa: S603 - fixed argv
            [str(CHECKOV) if CHECKOV.exists() else "checkov", "-f", str(rendered), "--framework", "kubernetes",
             "--skip-download", "-o", "json"],
            capture_output=True, text=True, timeout=600, check=False)
        report = json.loads(result.stdout)
        summary = report["summary"]
        failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
        assert summary["failed"] == 0 and not failed, failed
        assert summary["passed"] > 500, summary
        for skipped in report["results"]["skipped_checks"]:
            reason = skipped["check_result"].get("suppress_comment", "")
            assert len(reason) > 20, f"{skipped['check_id']} on {skipped['resource']}: skip without a reason"
        if overlay == "prod":
            assert not report["results"]["skipped_checks"], "production skips nothing"
