"""The ledger engine on a real database: posting, refusals, reversals, triggers, verify, tampering."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from exchange.errors import Conflict, NotFound, ValidationFailed
from exchange.ledger import engine
from exchange.ledger.engine import AccountRef, InsufficientFunds, Posting
from exchange.ledger.models import GENESIS_HASH, Account, JournalEntry, JournalPosting
from exchange.ledger.verify import verify
from exchange.money import MAX_AMOUNT
from tests.ledger_helpers import LEDGER_TRIGGERS, escrow, fees, funding, move, payable, trigger_names, triggers_off


def counts(session):
    return (session.execute(select(func.count()).select_from(JournalEntry)).scalar_one(),
            session.execute(select(func.count()).select_from(JournalPosting)).scalar_one(),
            session.execute(select(func.count()).select_from(Account)).scalar_one())


def trade_flow(session, trade="trd_1", amount=10_000, fee=200):
    """payment then settlement of one trade; returns the two entries."""
    paid = engine.post_entry(session, kind="payment", trade_id=trade, metadata={"provider": "manual"},
                             postings=move(funding("org_buyer"), escrow(trade), amount))
    settled = engine.post_entry(session, kind="settlement", trade_id=trade, postings=[
        Posting(escrow(trade), -amount), Posting(payable("org_seller"), amount - fee), Posting(fees(), fee)])
    session.commit()
    return paid, settled


def bal(session, ref):
    return engine.balance(session, owner_id=ref.owner_id, purpose=ref.purpose, currency=ref.currency)


# -- posting ------------------------------------------------------------------------------------

def test_entries_chain_from_genesis_and_balances_follow_postings(session):
    paid, settled = trade_flow(session)
    assert (paid.seq, settled.seq) == (1, 2)
    assert paid.prev_hash == GENESIS_HASH and settled.prev_hash == paid.hash
    assert [(p.account.name, p.amount) for p in settled.postings] == [
        ("trade_escrow:trd_1:CNY", -10_000), ("seller_payable:org_seller:CNY", 9_800),
        ("exchange_fees:exchange:CNY", 200)]
    assert bal(session, escrow("trd_1")) == 0
    assert bal(session, payable("org_seller")) == 9_800
    assert bal(session, fees()) == 200
    assert bal(session, funding("org_buyer")) == -10_000
    assert bal(session, payable("nobody")) == 0
    account = engine.get_account(session, owner_id="org_seller", purpose="seller_payable", currency="CNY")
    assert account.version == 1 and account.non_negative
    report = verify(session)
    assert report["valid"] and report["entries"] == 2 and report["head"] == settled.hash
    assert report["head_seq"] == 2 and report["first_bad_seq"] is None


def test_posting_with_account_objects_and_refs_alike(session):
    source = engine.get_or_create_account(session, owner_id="org_a", purpose="buyer_funding", currency="HKD")
    entry = engine.post_entry(session, kind="payment", postings=[Posting(source, -5), Posting(escrow("t", "HKD"), 5)])
    assert source.balance == -5  # the loaded account reflects the new balance at once
    assert [p.currency for p in entry.postings] == ["HKD", "HKD"]


def test_get_or_create_account_is_idempotent_and_sets_the_purpose_flag(session):
    a = engine.get_or_create_account(session, owner_id="trd_9", purpose="trade_escrow", currency="MOP")
    b = engine.get_or_create_account(session, owner_id="trd_9", purpose="trade_escrow", currency="MOP")
    c = engine.get_or_create_account(session, owner_id="org_9", purpose="buyer_funding", currency="MOP")
    assert a.id == b.id and a.non_negative and not c.non_negative
    assert counts(session)[2] == 2


@pytest.mark.parametrize("kwargs", [
    {"owner_id": "x", "purpose": "savings", "currency": "CNY"},
    {"owner_id": "x", "purpose": "trade_escrow", "currency": "USD"},
    {"owner_id": "a:b", "purpose": "trade_escrow", "currency": "CNY"},
    {"owner_id": "", "purpose": "trade_escrow", "currency": "CNY"},
    {"owner_id": "x\x00", "purpose": "trade_escrow", "currency": "CNY"},
])
def test_malformed_account_references_are_refused(session, kwargs):
    with pytest.raises(ValidationFailed):
        engine.get_or_create_account(session, **kwargs)


@pytest.mark.parametrize("postings", [
    [Posting(funding("b"), -100), Posting(escrow("t"), 99)],                          # off by one
    [Posting(funding("b", "CNY"), -100), Posting(escrow("t", "HKD"), 100)],          # currencies differ
    [Posting(funding("b"), -100)],                                                   # one leg
    [],
    [Posting(funding("b"), 0), Posting(escrow("t"), 0)],                             # zero amounts
    [Posting(funding("b"), -(MAX_AMOUNT + 1)), Posting(escrow("t"), MAX_AMOUNT + 1)],  # beyond 2^53-1
    [Posting(funding("b"), -True), Posting(escrow("t"), True)],                      # not integers
    [Posting(funding("b"), -1.0), Posting(escrow("t"), 1.0)],
    [Posting(AccountRef("b", "nope", "CNY"), -1), Posting(escrow("t"), 1)],
])
def test_invalid_entries_are_refused_and_leave_nothing(session, postings):
    trade_flow(session)
    before = counts(session)
    with pytest.raises(ValidationFailed):
        engine.post_entry(session, kind="payment", postings=postings)
    assert counts(session) == before
    assert verify(session)["valid"]


@pytest.mark.parametrize("kwargs", [
    {"kind": "gift"}, {"kind": "reversal"}, {"trade_id": ""}, {"trade_id": "t" * 81},
    {"metadata": {"rate": 0.02}}, {"metadata": ["not", "an", "object"]}, {"metadata": {"n": 2**53}},
    {"metadata": {"s": "nul\x00"}}, {"metadata": {"big": "x" * 20_000}},
])
def test_bad_kind_trade_or_metadata_is_refused(session, kwargs):
    args = {"kind": "payment", "postings": move(funding("b"), escrow("t"), 5)} | kwargs
    with pytest.raises(ValidationFailed):
        engine.post_entry(session, **args)
    assert counts(session)[0] == 0


def test_overdraft_of_a_non_negative_account_refuses_the_whole_entry(session):
    trade_flow(session)
    before = counts(session)
    clearing = AccountRef("manual", "payouts_clearing", "CNY")
    with pytest.raises(InsufficientFunds) as info:
        engine.post_entry(session, kind="payout", postings=[
            Posting(fees(), -100), Posting(clearing, 100),               # affordable leg first
            Posting(payable("org_seller"), -9_801), Posting(clearing, 9_801)])
    assert info.value.status == 422 and "seller_payable:org_seller:CNY" in info.value.detail
    # Nothing of it stays: not the affordable leg, not the lazily created clearing account.
    assert counts(session) == before
    assert bal(session, fees()) == 200 and bal(session, payable("org_seller")) == 9_800
    session.commit()
    assert counts(session) == before and verify(session)["valid"]
    # Exactly the balance is affordable.
    engine.post_entry(session, kind="payout", postings=move(payable("org_seller"), clearing, 9_800))
    assert bal(session, payable("org_seller")) == 0


def test_a_net_zero_leg_on_a_non_negative_account_is_fine(session):
    engine.post_entry(session, kind="payment", postings=[
        Posting(escrow("t"), -7), Posting(escrow("t"), 7), Posting(funding("b"), -1), Posting(escrow("t"), 1)])
    assert bal(session, escrow("t")) == 1


def test_balances_stay_within_2_53(session):
    engine.post_entry(session, kind="payment", postings=move(funding("b"), escrow("t"), MAX_AMOUNT))
    with pytest.raises(ValidationFailed) as info:
        engine.post_entry(session, kind="payment", postings=move(funding("c"), escrow("t"), 1))
    assert "2^53" in info.value.detail
    assert bal(session, escrow("t")) == MAX_AMOUNT


# -- reversals ----------------------------------------------------------------------------------

def test_reversal_mirrors_the_entry_once(session):
    paid = engine.post_entry(session, kind="payment", trade_id="trd_r",
                             postings=move(funding("b"), escrow("trd_r"), 300))
    rev = engine.reverse_entry(session, entry_id=paid.id, reason="bank transfer bounced")
    assert rev.kind == "reversal" and rev.trade_id == "trd_r" and rev.reverses_entry_id == paid.id
    assert [p.amount for p in rev.postings] == [300, -300]
    assert rev.meta == {"reverses": paid.id, "reverses_seq": 1, "reason": "bank transfer bounced"}
    assert bal(session, escrow("trd_r")) == 0 and bal(session, funding("b")) == 0
    with pytest.raises(Conflict):
        engine.reverse_entry(session, entry_id=paid.id, reason="again")
    with pytest.raises(Conflict):
        engine.reverse_entry(session, entry_id=rev.id, reason="undo the undo")
    with pytest.raises(NotFound):
        engine.reverse_entry(session, entry_id="jnl_missing", reason="x")
    session.commit()
    assert verify(session)["valid"]
    assert [e.seq for e in session.execute(select(JournalEntry).where(JournalEntry.trade_id == "trd_r")
                                           .order_by(JournalEntry.seq)).scalars()] == [1, 2]


def test_reversal_cannot_overdraw_money_that_moved_on(session):
    paid, _settled = trade_flow(session)
    with pytest.raises(InsufficientFunds):
        engine.reverse_entry(session, entry_id=paid.id, reason="too late: escrow already released")
    assert counts(session)[0] == 2


# -- triggers -----------------------------------------------------------------------------------

def test_append_only_triggers_exist_after_upgrade(session):
    assert trigger_names(session) >= LEDGER_TRIGGERS


@pytest.mark.parametrize("sql", [
    "UPDATE ledger_entries SET hash = 'x'",
    "UPDATE ledger_entries SET trade_id = NULL",
    "DELETE FROM ledger_entries WHERE seq = 2",
    "UPDATE ledger_postings SET amount = amount + 1",
    "DELETE FROM ledger_postings",
    "UPDATE ledger_accounts SET owner_id = 'someone_else'",
    "UPDATE ledger_accounts SET non_negative = (1 = 0)",
    "DELETE FROM ledger_accounts",
])
def test_raw_sql_edits_of_history_are_refused_by_the_database(session, sql):
    trade_flow(session)
    with pytest.raises(IntegrityError) as info:
        session.execute(text(sql))
        session.flush()
    assert "append-only" in str(info.value) or "only balance" in str(info.value)
    session.rollback()
    assert counts(session)[:2] == (2, 5)
    assert verify(session)["valid"]


def test_orm_edits_of_entries_are_refused(session):
    paid, _ = trade_flow(session)
    paid.trade_id = "trd_other"
    with pytest.raises(RuntimeError, match="append-only"):
        session.flush()
    session.rollback()


def test_cached_balances_may_be_written_but_verify_catches_a_wrong_one(session):
    trade_flow(session)
    session.execute(text("UPDATE ledger_accounts SET balance = balance + 1 "
                         "WHERE purpose = 'seller_payable'"))
    session.commit()
    report = verify(session)
    assert not report["valid"] and not report["balances_valid"]
    assert report["chain_valid"] and report["balanced"] and report["first_bad_seq"] is None
    assert report["problems"] == [{"seq": None, "account": "seller_payable:org_seller:CNY",
                                   "problem": "cached balance 9801 != sum of postings 9800"}]


# -- tampering behind the triggers' back --------------------------------------------------------

def five_entries(session):
    for i in range(1, 6):
        engine.post_entry(session, kind="payment", trade_id=f"trd_{i}",
                          postings=move(funding("b"), escrow(f"trd_{i}"), 100 * i))
    session.commit()


def test_an_edited_hash_is_caught_at_its_seq(session):
    five_entries(session)
    with triggers_off(session, "ledger_entries"):
        session.execute(text("UPDATE ledger_entries SET hash = :h WHERE seq = 3"), {"h": "f" * 64})
    assert trigger_names(session) >= LEDGER_TRIGGERS
    report = verify(session, batch_size=2)  # spans three batches
    assert not report["valid"] and not report["chain_valid"]
    assert report["balanced"] and report["balances_valid"]
    assert report["first_bad_seq"] == 3
    assert {p["seq"] for p in report["problems"]} == {3, 4}  # 3's content, 4's link


def test_an_edited_posting_amount_is_caught_as_unbalanced_at_its_seq(session):
    five_entries(session)
    with triggers_off(session, "ledger_postings"):
        session.execute(text(
            "UPDATE ledger_postings SET amount = 250 WHERE position = 1 AND entry_id = "
            "(SELECT id FROM ledger_entries WHERE seq = 2)"))
    report = verify(session, batch_size=3)
    assert not report["balanced"] and not report["chain_valid"] and not report["balances_valid"]
    assert report["first_bad_seq"] == 2
    assert {"seq": 2, "account": None, "problem": "postings sum to +50 CNY"} in report["problems"]


@pytest.mark.parametrize("sql", [
    "UPDATE ledger_entries SET trade_id = 'trd_x' WHERE seq = 4",
    "UPDATE ledger_entries SET kind = 'refund' WHERE seq = 4",
    "UPDATE ledger_entries SET created_at = created_at - INTERVAL '1 day' WHERE seq = 4",
    "UPDATE ledger_entries SET metadata = '{\"a\": 1}' WHERE seq = 4",
])
def test_any_edited_field_breaks_the_chain_at_its_seq(session, sql):
    five_entries(session)
    if session.get_bind().dialect.name == "sqlite":
        sql = sql.replace("created_at - INTERVAL '1 day'", "datetime(created_at, '-1 day')")
    with triggers_off(session, "ledger_entries"):
        session.execute(text(sql))
    report = verify(session)
    assert not report["chain_valid"] and report["first_bad_seq"] == 4


def test_a_deleted_entry_leaves_a_gap_that_verify_names(session):
    five_entries(session)
    with triggers_off(session, "ledger_postings"), triggers_off(session, "ledger_entries"):
        session.execute(text("DELETE FROM ledger_postings "
                             "WHERE entry_id = (SELECT id FROM ledger_entries WHERE seq = 3)"))
        session.execute(text("DELETE FROM ledger_entries WHERE seq = 3"))
    report = verify(session)
    assert not report["chain_valid"] and report["first_bad_seq"] == 4 and report["entries"] == 4
    assert not report["balances_valid"]  # the escrow of trd_3 still holds 300


# -- CLI ----------------------------------------------------------------------------------------

def test_cli_verify_reports_valid_and_invalid(app, session):
    five_entries(session)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["ledger", "verify", "--batch-size", "2"])
    assert ok.exit_code == 0, ok.output
    assert "verified 5/5 entries (100%)" in ok.stderr and '"chain_valid": true' in ok.stdout
    with triggers_off(session, "ledger_entries"):
        session.execute(text("UPDATE ledger_entries SET prev_hash = :h WHERE seq = 5"), {"h": "e" * 64})
    bad = runner.invoke(args=["ledger", "verify", "--quiet"])
    assert bad.exit_code == 1
    assert "ledger INVALID: first bad seq 5" in bad.stderr and "verified" not in bad.stderr


def test_one_entry_costs_a_fixed_handful_of_statements(session):
    """The money path's cost: savepoint, chain lock (PostgreSQL), accounts, one conditional UPDATE,
    chain head, one INSERT per table, release; the same for one entry alone and inside post_entries."""
    from sqlalchemy import event

    trade_flow(session, trade="trd_warm")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        # The caller's transaction (its BEGIN, PostgreSQL's SET LOCAL of the time limits), not the engine's.
        if not statement.upper().startswith("BEGIN") and "set_config(" not in statement:
            statements.append(statement.split()[0].upper())

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", count)
    try:
        engine.post_entry(session, kind="payment", trade_id="trd_warm",
                          postings=move(funding("org_buyer"), escrow("trd_warm"), 5))
        one = list(statements)
        statements.clear()
        engine.post_entries(session, [engine.EntrySpec("payment", move(funding("org_buyer"), escrow(f"trd_{n}"), 5),
                                                       f"trd_{n}") for n in range(50)])
    finally:
        event.remove(bind, "before_cursor_execute", count)
    lock = ["SELECT"] if bind.dialect.name == "postgresql" else []
    assert one == ["SAVEPOINT", *lock, "SELECT", "UPDATE", "SELECT", "INSERT", "INSERT", "RELEASE"]
    # Fifty entries on new escrow accounts: only the accounts' INSERT and their reload come on top.
    assert len(statements) <= len(one) + 2, statements
    assert verify(session)["valid"]
