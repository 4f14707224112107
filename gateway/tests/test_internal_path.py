"""What a caller puts in a path reaches the service as the same one segment, whatever it holds."""

from __future__ import annotations

import pytest

from kagi_gateway.services import internal_path


@pytest.mark.parametrize(("path", "sent"), [
    ("/internal/accounts/taro+1@example.jp", "/internal/accounts/taro+1@example.jp"),
    ("/internal/locations/\x1f/contract", "/internal/locations/%1F/contract"),
    ("/internal/users/a?admin=1#x", "/internal/users/a%3Fadmin=1%23x"),
    ("/internal/users/100%", "/internal/users/100%25"),
    ("/internal/users/../contract", "/internal/users/%2E%2E/contract"),
    ("/internal/users/./x", "/internal/users/%2E/x"),
    ("/internal/users/a b", "/internal/users/a%20b"),
    ("/internal/users/山田", "/internal/users/%E5%B1%B1%E7%94%B0"),
    ("/internal/users/x..y", "/internal/users/x..y"),
])
def test_values_in_the_path_are_encoded_as_one_segment(path: str, sent: str) -> None:
    assert internal_path(path) == sent
