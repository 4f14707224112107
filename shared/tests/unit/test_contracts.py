"""The two strictnesses of the internal contracts: a request body refuses what it does not know, a reply ignores it
(so a service may add a field to an answer before the gateway knows it)."""

from __future__ import annotations

import msgspec
import pytest

from kagi_shared.contracts import Body, Reply, audit, invite, lifecycle, notify, permissions
from kagi_shared.contracts.invite import StepUpStateOut, StepUpVerifyIn
from kagi_shared.contracts.lifecycle import SessionOpened

MODULES = (audit, invite, lifecycle, notify, permissions)


def test_a_reply_with_a_field_added_by_the_service_still_decodes() -> None:
    later = b'{"verified": true, "validUntil": "2026-12-01T08:15:00Z", "windowMinutes": 15}'
    state = msgspec.json.decode(later, type=StepUpStateOut)
    assert state.verified is True and state.valid_until is not None
    nested = (b'{"account": {"accountId": "a1", "loginId": "l", "email": "e", "roles": ["owner"], "status": "active",'
              b' "lastLoginAt": null, "issuedAt": "2026-12-01T00:00:00Z", "mfa": "totp"}, "refreshToken": "r",'
              b' "refreshExpiresAt": "2026-12-15T00:00:00Z", "sessionId": "s", "device": "x"}')
    assert msgspec.json.decode(nested, type=SessionOpened).account.roles == ["owner"]


def test_a_reply_missing_a_required_field_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="verified"):
        msgspec.json.decode(b'{"validUntil": null}', type=StepUpStateOut)


def test_a_request_body_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="colour"):
        msgspec.json.decode(b'{"code": "ABCD", "colour": "blue"}', type=StepUpVerifyIn)


def test_every_contract_type_is_a_body_or_a_reply() -> None:
    structs = {name: value for module in MODULES for name, value in vars(module).items()
               if isinstance(value, type) and issubclass(value, msgspec.Struct) and value.__module__ == module.__name__}
    assert len(structs) > 80
    neither = [name for name, value in structs.items() if not issubclass(value, Body)]
    # The permission map is keyed by system name (TAXIS …), not camelCase; it is strict like every body.
    assert neither == ["PermissionsIn"]
    assert permissions.PermissionsIn.__struct_config__.forbid_unknown_fields
    replies = [name for name, value in structs.items() if issubclass(value, Reply)]
    assert all(not structs[name].__struct_config__.forbid_unknown_fields for name in replies)
    assert all(structs[name].__struct_config__.forbid_unknown_fields for name in set(structs) - set(replies))
