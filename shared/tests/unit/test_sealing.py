"""Sealed fields open only under their key and with the fields they were sealed to (issue 15, finding 11)."""

from __future__ import annotations

import pytest

from kagi_shared.events import notify as nev
from kagi_shared.sealing import Sealer, SealError

KEY = "9Zq2Lm4Xr7Tb1Vc8Nd3Kf6Hg0Js5Pw2Ae7Uy4Io1Qt"
NOTICE = nev.Notice(template="step_up_code", channel="mail", recipient="a@example.jp", category="security",
                    variables={"code": "ABCD2345EFGH", "expires_at": "12時00分まで"}, account_id="acc-1")


def test_a_request_carries_no_variable_in_clear_and_opens_to_the_notice() -> None:
    sealed = nev.sealed_request(KEY, NOTICE)
    assert "ABCD2345EFGH" not in sealed.sealed and "12時" not in sealed.sealed
    assert nev.sealed_request(KEY, NOTICE).sealed != sealed.sealed  # a fresh nonce each time
    assert nev.opened(KEY, sealed) == NOTICE


@pytest.mark.parametrize("field", ["template", "recipient", "category", "account_id"])
def test_a_sealed_request_does_not_open_once_a_clear_field_is_changed(field: str) -> None:
    import msgspec

    sealed = msgspec.structs.replace(nev.sealed_request(KEY, NOTICE), **{field: "general"})
    with pytest.raises(SealError, match="altered"):
        nev.opened(KEY, sealed)


def test_another_key_is_named_not_guessed() -> None:
    sealed = nev.sealed_request(KEY, NOTICE)
    other = Sealer("another-key-0123456789", nev.SEAL_PURPOSE)
    with pytest.raises(SealError, match=f"sealed with key {Sealer(KEY, nev.SEAL_PURPOSE).key_id}"):
        nev.opened("another-key-0123456789", sealed)
    assert other.key_id != Sealer(KEY, nev.SEAL_PURPOSE).key_id
    with pytest.raises(SealError, match="not a sealed value"):
        other.open("ABCD2345EFGH", b"")


def test_one_secret_gives_each_purpose_its_own_key() -> None:
    assert Sealer(KEY, "a").key_id != Sealer(KEY, "b").key_id
    with pytest.raises(SealError, match="altered"):
        Sealer(KEY, "b").open(Sealer(KEY, "a").seal(b"x", b"").replace(Sealer(KEY, "a").key_id,
                                                                        Sealer(KEY, "b").key_id), b"")
