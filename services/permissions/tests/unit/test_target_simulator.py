"""The development target simulator's fail switch."""

from __future__ import annotations

from kagi_permissions.devtools.target_simulator import FailSwitch
from kagi_shared.events import permissions as ev


def command(system: str, n: int) -> ev.GrantCommanded:
    return ev.GrantCommanded(command_id=f"c{n}", request_id="r", company_id="co", user_id="u@example.jp",
                             system=system, action="grant", before=None, after="yes", effective_on=None)


def test_fail_switch_by_system_and_by_count() -> None:
    switch = FailSwitch.from_env({"KAGI_SIMULATOR_FAIL_SYSTEMS": "juju, loacus", "KAGI_SIMULATOR_FAIL_EVERY": "3"})
    outcomes = [switch.answer(command(s, i)).outcome for i, s in enumerate(["TAXIS", "JUJU", "JOHS", "TAXIS"])]
    assert outcomes == ["applied", "failed", "failed", "applied"]  # JUJU by system, the 3rd by count
    answer = switch.answer(command("LOACUS", 9))
    assert answer.outcome == "failed" and answer.reason and "LOACUS" in answer.reason
    assert FailSwitch.from_env({}).answer(command("JUJU", 1)).outcome == "applied"
