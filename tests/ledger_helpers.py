"""Helpers for ledger tests: account references, tampering behind the triggers' back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from exchange.ledger.engine import AccountRef, Posting

LEDGER_TRIGGERS = {
    "ledger_entries_no_update", "ledger_entries_no_delete",
    "ledger_postings_no_update", "ledger_postings_no_delete",
    "ledger_accounts_fixed_identity", "ledger_accounts_no_delete",
}


def funding(org: str, currency: str = "CNY") -> AccountRef:
    return AccountRef(org, "buyer_funding", currency)


def escrow(trade: str, currency: str = "CNY") -> AccountRef:
    return AccountRef(trade, "trade_escrow", currency)


def payable(org: str, currency: str = "CNY") -> AccountRef:
    return AccountRef(org, "seller_payable", currency)


def fees(currency: str = "CNY") -> AccountRef:
    return AccountRef("exchange", "exchange_fees", currency)


def move(source: AccountRef, destination: AccountRef, amount: int) -> list[Posting]:
    """Postings moving `amount` from source (credit) to destination (debit)."""
    return [Posting(source, -amount), Posting(destination, amount)]


def trigger_names(session: Any) -> set[str]:
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(text(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text LIKE 'ledger_%'"))
    else:
        rows = session.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'"))
    return {r[0] for r in rows}


@contextmanager
def triggers_off(session: Any, table: str) -> Iterator[None]:
    """Disable the append-only triggers of `table` (as an attacker with DDL rights would), then restore."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        try:
            yield
        finally:
            session.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    else:
        saved = session.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name=:t"), {"t": table}).all()
        assert saved, f"no triggers on {table}"
        for name, _sql in saved:
            session.execute(text(f"DROP TRIGGER {name}"))
        try:
            yield
        finally:
            for _name, sql in saved:
                session.execute(text(sql))
    session.commit()
