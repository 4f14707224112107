"""Lifecycle's use cases on the in-memory adapters (the fast tier), wired as ``bootstrap`` wires the real ones."""

from __future__ import annotations

from typing import Any

from kagi_lifecycle.adapters.memory import MemoryAccounts
from kagi_lifecycle.adapters.passwords import Passwords
from kagi_lifecycle.bootstrap import ladder_days, lockout_policy, password_policy
from kagi_lifecycle.service.accounts import AccountService
from kagi_shared.events import decode
from kagi_shared.memory import MemoryTransactions
from kagi_shared.settings import SecuritySettings, Settings
from tests.support import Clock

PASSWORD = "Kagi-test-2026!"  # noqa: S105 - test accounts


def fast_accounts(clock: Clock | None = None, **security: Any,
                  ) -> tuple[AccountService, MemoryTransactions, MemoryAccounts, Clock]:
    """An ``AccountService`` on memory; argon2 at its cheapest so a hash takes milliseconds."""
    settings = Settings(security=SecuritySettings(argon2_time_cost=1, argon2_memory_kib=1024, **security))
    transactions = MemoryTransactions()
    accounts = MemoryAccounts(transactions)
    clock = clock or Clock()
    svc = AccountService(transactions, accounts, Passwords(settings.security), settings, clock,
                         lockout=lockout_policy(settings), password_rules=password_policy(settings),
                         ladder_days=ladder_days(settings))
    return svc, transactions, accounts, clock


def events(transactions: MemoryTransactions) -> list[Any]:
    """Every event the committed transactions published, in order (mail requests included)."""
    return [decode(bytes(row["value"]))[1] for row in transactions.outbox]
