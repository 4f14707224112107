"""tests/bench/RESULTS.md is shared by every benchmark: each one replaces only its own top-level section."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def replace_section(text: str, heading: str, body: str) -> str:
    """``text`` with the top-level section ``# heading`` replaced by ``body`` (appended if absent).

    Everything before and after the section is kept byte for byte; the section runs to the next
    line that starts with ``# `` or to the end of the file.
    """
    marker = f"# {heading}\n"
    if text.startswith(marker):
        start = 0
    else:
        found = text.find("\n" + marker)
        start = found + 1 if found >= 0 else -1
    if start < 0:
        if not text:
            return body
        return text + ("\n" if text.endswith("\n") else "\n\n") + body
    after = text.find("\n# ", start + len(marker) - 1)
    tail = text[after + 1:] if after >= 0 else ""
    return text[:start] + (body.rstrip("\n") + "\n\n" if tail else body) + tail



def write_section(heading: str, body: str) -> None:
    previous = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    RESULTS.write_text(replace_section(previous, heading, body), encoding="utf-8")
