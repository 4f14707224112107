"""Gateway tests build the app in-process: each gets its own var directory, so nothing it leaves there (the audit
spool of the calls it made) reaches another test, or a ``make run`` in the same checkout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kagi_shared.settings import get_settings


@pytest.fixture(autouse=True)
def _own_var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KAGI_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
