"""verify streams: 100k entries are checked in batches, in memory that does not grow with the ledger."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from exchange.ledger import engine
from exchange.ledger.engine import entry_body, entry_hash
from exchange.ledger.models import GENESIS_HASH, Account, JournalEntry, JournalPosting
from exchange.ledger.verify import verify


def bulk_append(session, count: int) -> None:
    """Append `count` valid two-leg entries to the chain in bulk (much faster than post_entry)."""
    now = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
    src = engine.get_or_create_account(session, owner_id="org_b", purpose="buyer_funding", currency="CNY")
    dst = engine.get_or_create_account(session, owner_id="trd_bulk", purpose="trade_escrow", currency="CNY")
    head = session.execute(select(JournalEntry.seq, JournalEntry.hash).order_by(JournalEntry.seq.desc())
                           .limit(1)).first()
    last, prev = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    entries, postings, moved = [], [], 0
    for seq in range(last + 1, last + count + 1):
        legs = [{"account_id": src.id, "account": src.name, "currency": "CNY", "amount": -seq},
                {"account_id": dst.id, "account": dst.name, "currency": "CNY", "amount": seq}]
        meta = {"n": seq}
        h = entry_hash(entry_body(seq=seq, kind="payment", trade_id="trd_bulk", created_at=now,
                                  postings=legs, metadata=meta), prev)
        entry_id = f"jnl_bulk{seq:010d}"
        entries.append({"id": entry_id, "seq": seq, "trade_id": "trd_bulk", "kind": "payment",
                        "created_at": now, "meta": meta, "prev_hash": prev, "hash": h})
        postings += [{"entry_id": entry_id, "position": i, "account_id": leg["account_id"],
                      "currency": "CNY", "amount": leg["amount"]} for i, leg in enumerate(legs)]
        prev, moved = h, moved + seq
        if len(entries) == 10_000 or seq == last + count:
            session.execute(insert(JournalEntry), entries)
            session.execute(insert(JournalPosting), postings)
            entries, postings = [], []
    table = Account.__table__
    session.execute(table.update().where(table.c.id == src.id).values(balance=table.c.balance - moved))
    session.execute(table.update().where(table.c.id == dst.id).values(balance=table.c.balance + moved))
    session.commit()


@pytest.mark.slow
def test_verify_streams_100k_entries_in_batches(session):
    n = 100_000
    bulk_append(session, n)
    calls = []
    report = verify(session, batch_size=2_000, progress=lambda done, total: calls.append((done, total)))
    assert report["valid"] and report["entries"] == n and report["head_seq"] == n, report["problems"]
    assert calls == [(done, n) for done in range(2_000, n + 1, 2_000)]


def verify_peak(session) -> int:
    tracemalloc.start()
    try:
        assert verify(session, batch_size=250)["valid"]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_verify_memory_does_not_grow_with_the_ledger(session):
    bulk_append(session, 1_000)
    small = verify_peak(session)
    bulk_append(session, 3_000)
    large = verify_peak(session)
    assert large < 1.5 * small, f"peak {small / 1024:.0f} KiB for 1k entries, {large / 1024:.0f} KiB for 4k"
