"""The ledger engine: the one writer of the ledger tables (reads in services.py, checks in verify.py).

Model: TigerBeetle's account/transfer invariants with Formance-style postings.

* An entry is a list of signed postings (debit positive = value into the account, credit negative =
  value out of it) that sums to zero per currency; every amount is a non-zero integer of minor units
  within +-(2^53 - 1). An account's `balance` is a cache of the sum of its postings.
* A posting that would take a `non_negative` account below zero refuses the whole entry with
  `InsufficientFunds` (422, slug `insufficient-funds`, naming the account); nothing of it is kept.
* Entries form a hash chain. For the entry with sequence number `seq`:

      body = {"seq": int, "kind": str, "trade_id": str | null,
              "created_at": "YYYY-MM-DDTHH:MM:SSZ",
              "postings": [{"account_id": str, "account": "purpose:owner_id:currency",
                            "currency": str, "amount": int}, ...],     # in posting order
              "metadata": {...}}
      hash = sha256_hex( RFC8785(body) || ascii(prev_hash) )

  where `prev_hash` is the previous entry's `hash` (64 zeros for seq 1). The postings are exactly
  what `GET /ledger/entries` shows, so anyone holding the entries can recompute the chain.
* Appends are serialized, so the chain never forks: on PostgreSQL every append takes a
  transaction-scoped advisory lock (`pg_advisory_xact_lock`); on SQLite the transaction holds the
  database's single write lock (requests that write begin with BEGIN IMMEDIATE; a deferred one can
  never commit a write based on a stale read under WAL). `seq` and `prev_hash` are UNIQUE as a
  last line of defence. The lock is held until the caller's transaction ends.
* Everything happens inside the caller's transaction (a SAVEPOINT around each append so a refused
  entry leaves nothing behind); the engine flushes, never commits.
* One writer: `post_entry` (one entry), `post_entries` (many, in order: bulk loads) and
  `reverse_entry` all append through `_append_many`, the only code that checks postings, moves
  balances and chains entries.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from flask import Flask, current_app
from sqlalchemy import BigInteger, bindparam, false, insert, or_, select, text, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from exchange.canonical import canonical_bytes
from exchange.db import dialect_name, new_id, upsert, utcnow
from exchange.errors import Conflict, NotFound, ValidationFailed, field_error
from exchange.fields import iso_z
from exchange.ledger.models import (
    ENTRY_KINDS,
    GENESIS_HASH,
    LEDGER_PURPOSES,
    Account,
    EntryKind,
    JournalEntry,
    JournalPosting,
    Purpose,
    account_name,
)
from exchange.money import CURRENCIES, MAX_AMOUNT
from exchange.principal import Principal

# pg_advisory_xact_lock key of the chain head: ASCII "ledger" as an integer.
CHAIN_LOCK_KEY = int.from_bytes(b"ledger", "big")
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 8
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InsufficientFunds(ValidationFailed):
    """A posting would take a non-negative account below zero (422)."""

    slug, title = "insufficient-funds", "Insufficient funds"

    def __init__(self, account: str, amount: int) -> None:
        super().__init__(f"Insufficient funds: {account} cannot be debited by {-amount}.",
                         errors={"amount": [f"insufficient funds in {account}"]})
        self.account = account


@dataclass(frozen=True, slots=True)
class AccountRef:
    """An account named by owner, purpose and currency; created on first use."""

    owner_id: str
    purpose: str
    currency: str

    @property
    def name(self) -> str:
        return account_name(self.purpose, self.owner_id, self.currency)


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of an entry: `amount` > 0 debits (adds to) the account, < 0 credits (takes from) it."""

    account: Account | AccountRef
    amount: int


# --------------------------------------------------------------------------------------------
# Hashing (pure)

def entry_body(*, seq: int, kind: str, trade_id: str | None, created_at: datetime,
               postings: Iterable[dict[str, Any]], metadata: dict[str, Any]) -> dict[str, Any]:
    """The canonical body of an entry, the JSON value that is hashed (see the module docstring)."""
    return {
        "seq": seq,
        "kind": kind,
        "trade_id": trade_id,
        "created_at": iso_z(created_at),
        "postings": [
            {"account_id": p["account_id"], "account": p["account"], "currency": p["currency"],
             "amount": p["amount"]}
            for p in postings
        ],
        "metadata": metadata,
    }


def entry_hash(body: dict[str, Any], prev_hash: str) -> str:
    """sha256 hex of the RFC 8785 bytes of `body` followed by the ASCII of `prev_hash`."""
    return hashlib.sha256(canonical_bytes(body) + prev_hash.encode("ascii")).hexdigest()


# --------------------------------------------------------------------------------------------
# Validation (pure)

def _check_text(field: str, value: Any, *, max_length: int, colon: bool = True) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= max_length or _CONTROL.search(value):
        raise field_error(field, f"must be 1..{max_length} printable characters")
    if not colon and ":" in value:
        raise field_error(field, "must not contain ':'")
    return value


def _check_ref(owner_id: Any, purpose: Any, currency: Any) -> None:
    if purpose not in purposes():
        raise field_error("purpose", f"unknown account purpose {purpose!r}")
    if currency not in CURRENCIES:
        raise field_error("currency", f"must be one of {', '.join(CURRENCIES)}")
    _check_text("owner_id", owner_id, max_length=80, colon=False)


def _check_metadata(metadata: Any) -> dict[str, Any]:
    """A JSON object of strings, integers within 2^53-1, booleans, nulls, lists and objects."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise field_error("metadata", "must be a JSON object")
    stack: list[tuple[Any, int]] = [(metadata, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            raise field_error("metadata", f"nested deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str) or "\x00" in k:
                    raise field_error("metadata", "keys must be strings without NUL")
                stack.append((v, depth + 1))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            if "\x00" in node:
                raise field_error("metadata", "strings must not contain NUL")
        elif isinstance(node, bool) or node is None:
            pass
        elif isinstance(node, int):
            if abs(node) > MAX_AMOUNT:
                raise field_error("metadata", "integers must be within 2^53-1")
        else:
            raise field_error("metadata", f"values of type {type(node).__name__} are not allowed (no floats)")
    try:
        raw = canonical_bytes(metadata)
    except ValueError as exc:
        raise field_error("metadata", str(exc)) from None
    if len(raw) > MAX_METADATA_BYTES:
        raise field_error("metadata", f"larger than {MAX_METADATA_BYTES} bytes")
    # A private copy of exactly what is hashed: the caller mutating its dict later changes nothing.
    return json.loads(raw)


def _check_postings(postings: Any) -> list[Posting]:
    if not isinstance(postings, list | tuple) or len(postings) < 2:
        raise field_error("postings", "an entry needs at least two postings")
    if len(postings) > 1000:
        raise field_error("postings", "at most 1000 postings per entry")
    totals: dict[str, int] = defaultdict(int)
    for i, p in enumerate(postings):
        if not isinstance(p, Posting):
            raise field_error(f"postings.{i}", "must be a Posting")
        amount = p.amount
        if type(amount) is not int:
            raise field_error(f"postings.{i}.amount", "must be an integer of minor units")
        if amount == 0 or abs(amount) > MAX_AMOUNT:
            raise field_error(f"postings.{i}.amount", "must be a non-zero integer within 2^53-1")
        if isinstance(p.account, AccountRef):
            _check_ref(p.account.owner_id, p.account.purpose, p.account.currency)
        elif isinstance(p.account, Account):
            if p.account.id is None:
                raise field_error(f"postings.{i}.account", "account is not persisted")
        else:
            raise field_error(f"postings.{i}.account", "must be an Account or an AccountRef")
        totals[p.account.currency] += amount
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        detail = ", ".join(f"{c} {t:+d}" for c, t in sorted(unbalanced.items()))
        raise ValidationFailed(f"Unbalanced entry: postings must sum to zero per currency ({detail}).",
                               errors={"postings": [f"sum per currency must be 0 (off by {detail})"]})
    return list(postings)


# --------------------------------------------------------------------------------------------
# Accounts


def _lock_chain(session: Session) -> None:
    """Serialize ledger writers until the end of the caller's transaction (see module docstring)."""
    if dialect_name(session) == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})


def get_account(session: Session, *, owner_id: str, purpose: str, currency: str) -> Account | None:
    """The account for (owner, purpose, currency), or None if it was never used."""
    return session.execute(
        select(Account).where(Account.owner_id == owner_id, Account.purpose == purpose,
                              Account.currency == currency)
    ).scalar_one_or_none()


def get_or_create_account(session: Session, *, owner_id: str, purpose: str, currency: str) -> Account:
    """The account for (owner, purpose, currency), created with its purpose's non-negative flag.

    Race-safe (INSERT ... ON CONFLICT DO NOTHING under the ledger lock). Raises ValidationFailed
    for an unknown purpose or currency or a malformed owner id.
    """
    _check_ref(owner_id, purpose, currency)
    account = get_account(session, owner_id=owner_id, purpose=purpose, currency=currency)
    if account is not None:
        return account
    # Creating accounts under the chain lock keeps a creator and a poster from deadlocking on PostgreSQL.
    _lock_chain(session)
    now = utcnow()
    table = Account.__table__
    session.execute(upsert(
        session, table,
        dict(id=new_id("acc"), owner_id=owner_id, purpose=purpose, currency=currency,
             non_negative=purposes()[purpose].non_negative, balance=0, version=0,
             created_at=now, updated_at=now),
        index_elements=["owner_id", "purpose", "currency"],
    ))
    account = get_account(session, owner_id=owner_id, purpose=purpose, currency=currency)
    assert account is not None
    return account


def balance(session: Session, *, owner_id: str, purpose: str, currency: str) -> int:
    """The current balance of an account in minor units (0 for an account never used)."""
    value = session.execute(
        select(Account.balance).where(Account.owner_id == owner_id, Account.purpose == purpose,
                                      Account.currency == currency)
    ).scalar_one_or_none()
    return int(value or 0)


# --------------------------------------------------------------------------------------------
# Posting

@dataclass(frozen=True, slots=True)
class EntrySpec:
    """One entry to append, as a value: what `post_entry` takes (`post_entries` takes a list)."""

    kind: str
    postings: list[Posting]
    trade_id: str | None = None
    metadata: dict[str, Any] | None = None
    reverses_entry_id: str | None = None  # set by reverse_entry() only


def post_entry(session: Session, *, kind: str, postings: list[Posting], trade_id: str | None = None,
               metadata: dict[str, Any] | None = None) -> JournalEntry:
    """Append one balanced entry and apply it to the account balances, in the caller's transaction.

    `trade_id` is the entry's subject: the id of what the entry is about (trading passes the
    trade's id); the ledger only stores, hashes and filters by it.

    Raises ValidationFailed (422) for a bad kind, trade id, metadata or posting, or postings that do
    not sum to zero per currency; InsufficientFunds (422) when a non-negative account would go below
    zero. A refused entry leaves nothing behind. Use `reverse_entry` for kind `reversal`.
    """
    if kind == EntryKind.REVERSAL:
        raise field_error("kind", "reversals are posted with reverse_entry()")
    (entry,) = _append_many(session, [EntrySpec(kind, postings, trade_id, metadata)], attach=True)
    return entry


def post_entries(session: Session, entries: Sequence[EntrySpec]) -> int:
    """Append entries in order, exactly as calling `post_entry` for each in turn would; returns how many.

    The same code as `post_entry` (`_append_many`, there with one entry): each entry is checked
    against the balances the entries before it left, and the whole list costs the statements of one
    entry, so bulk loads (the benchmark data generator) use it. All or nothing: raises what
    `post_entry` raises for the first entry that would be refused, and then leaves nothing behind.
    """
    for spec in entries:
        if spec.kind == EntryKind.REVERSAL or spec.reverses_entry_id is not None:
            raise field_error("kind", "reversals are posted with reverse_entry()")
    _append_many(session, list(entries), attach=False)
    return len(entries)


def reverse_entry(session: Session, *, entry_id: str, reason: str) -> JournalEntry:
    """Post the mirror image of an entry (kind `reversal`, same trade, metadata naming the original).

    Raises NotFound, Conflict (409: the entry is a reversal or was already reversed),
    ValidationFailed (bad reason) or InsufficientFunds (the money has moved on since).
    """
    _check_text("reason", reason, max_length=2000)
    _lock_chain(session)
    original = session.get(JournalEntry, entry_id)
    if original is None:
        raise NotFound(f"Journal entry {entry_id} does not exist.")
    if original.kind == EntryKind.REVERSAL:
        raise Conflict("A reversal cannot itself be reversed; post a new entry instead.",
                       next_step="post a new entry that corrects it")
    already = session.execute(
        select(JournalEntry.seq).where(JournalEntry.reverses_entry_id == original.id)
    ).scalar_one_or_none()
    if already is not None:
        raise Conflict(f"Entry {original.seq} was already reversed by entry {already}.",
                       next_step="nothing to do: the reversal is already posted; post a new entry for any further "
                                 "correction")
    mirror = [Posting(p.account, -p.amount) for p in original.postings]
    (entry,) = _append_many(session, [EntrySpec(
        EntryKind.REVERSAL, mirror, original.trade_id,
        {"reverses": original.id, "reverses_seq": original.seq, "reason": reason}, original.id)], attach=True)
    return entry


def _attached(session: Session, row: dict[str, Any], posting_rows: list[dict[str, Any]],
              accounts: list[Account]) -> JournalEntry:
    """The entry just inserted, as a loaded object of the session (postings and accounts included)."""
    entry = JournalEntry(**row)
    postings = [JournalPosting(**p) for p in posting_rows]
    for obj in (entry, *postings):
        make_transient_to_detached(obj)
        session.add(obj)
    for posting, account in zip(postings, accounts, strict=True):
        set_committed_value(posting, "account", account)
        set_committed_value(posting, "entry", entry)
    set_committed_value(entry, "postings", postings)
    return entry


def _check_spec(spec: EntrySpec) -> tuple[EntrySpec, dict[str, Any], list[Posting]]:
    if spec.kind not in ENTRY_KINDS:
        raise field_error("kind", f"must be one of {', '.join(ENTRY_KINDS)}")
    if spec.trade_id is not None:
        _check_text("trade_id", spec.trade_id, max_length=80)
    return spec, _check_metadata(spec.metadata), _check_postings(spec.postings)


def _append_many(session: Session, specs: list[EntrySpec], *, attach: bool) -> list[JournalEntry]:
    """The single writer of ledger entries and balances (post_entry, post_entries, reverse_entry).

    Under the chain lock and inside a savepoint: the accounts (missing ones created), the balances
    moved by one conditional UPDATE (see `_apply_balances`), then the entries chained from the head
    inserted. Statements per call do not grow with the number of entries (only with chunks of 500
    owners). Returns the entries as loaded objects of the session when `attach`, else [] (bulk
    loads skip building thousands of objects nobody reads).
    """
    checked = [_check_spec(spec) for spec in specs]
    if not checked:
        return []
    touched: list[Account] = []
    try:
        with session.begin_nested():
            _lock_chain(session)
            by_key = _accounts(session, [p.account for _, _, postings in checked for p in postings])
            touched = list(by_key.values())
            accounts = [[by_key[_key(p.account)] for p in postings] for _, _, postings in checked]
            now = utcnow()
            _apply_balances(session, accounts, [postings for _, _, postings in checked], now)
            head = session.execute(
                select(JournalEntry.seq, JournalEntry.hash).order_by(JournalEntry.seq.desc()).limit(1)
            ).first()
            seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
            entry_rows: list[dict[str, Any]] = []
            posting_rows: list[list[dict[str, Any]]] = []
            for (spec, meta, postings), entry_accounts in zip(checked, accounts, strict=True):
                seq += 1
                legs = [{"account_id": a.id, "account": a.name, "currency": a.currency, "amount": p.amount}
                        for a, p in zip(entry_accounts, postings, strict=True)]
                body = entry_body(seq=seq, kind=spec.kind, trade_id=spec.trade_id, created_at=now,
                                  postings=legs, metadata=meta)
                entry_id, digest = new_id("jnl"), entry_hash(body, prev_hash)
                entry_rows.append({"id": entry_id, "seq": seq, "trade_id": spec.trade_id, "kind": str(spec.kind),
                                   "created_at": now, "meta": meta, "prev_hash": prev_hash, "hash": digest,
                                   "reverses_entry_id": spec.reverses_entry_id})
                posting_rows.append([{"entry_id": entry_id, "position": i, "account_id": leg["account_id"],
                                      "currency": leg["currency"], "amount": leg["amount"]}
                                     for i, leg in enumerate(legs)])
                prev_hash = digest
            # One INSERT per table whatever the number of entries (the ORM's unit of work costs 3x here).
            session.execute(insert(JournalEntry), entry_rows)
            session.execute(insert(JournalPosting), [row for rows in posting_rows for row in rows])
            entries = [_attached(session, row, rows, entry_accounts)
                       for row, rows, entry_accounts in zip(entry_rows, posting_rows, accounts, strict=True)
                       ] if attach else []
    except BaseException:
        # The savepoint is gone; balances set on the loaded accounts must be read again.
        for account in touched:
            if account in session:
                session.expire(account)
        raise
    return entries


def _key(account: Account | AccountRef) -> tuple[str, str, str]:
    return (account.owner_id, account.purpose, account.currency)


def _accounts(session: Session, wanted: list[Account | AccountRef]) -> dict[tuple[str, str, str], Account]:
    """The accounts of `wanted` by (owner, purpose, currency), the missing ones created in one statement
    (under the chain lock, like `get_or_create_account`)."""
    keys: dict[tuple[str, str, str], Account | AccountRef] = {}
    for account in wanted:
        if isinstance(account, Account) and account.id is None:
            raise field_error("postings", "account is not persisted")
        keys.setdefault(_key(account), account)
    owners = {k[0] for k in keys}

    def load() -> dict[tuple[str, str, str], Account]:
        found: dict[tuple[str, str, str], Account] = {}
        owner_list = list(owners)
        for start in range(0, len(owner_list), 500):
            for acc in session.execute(select(Account).where(Account.owner_id.in_(owner_list[start:start + 500]))
                                       .execution_options(populate_existing=True)).scalars():
                if _key(acc) in keys:
                    found[_key(acc)] = acc
        return found

    found = load()
    missing = [k for k in keys if k not in found]
    if missing:
        now, known = utcnow(), purposes()
        session.execute(upsert(session, Account.__table__, index_elements=["owner_id", "purpose", "currency"]), [
            {"id": new_id("acc"), "owner_id": o, "purpose": p, "currency": c, "non_negative": known[p].non_negative,
             "balance": 0, "version": 0, "created_at": now, "updated_at": now} for o, p, c in missing])
        found = load()
    return found


def _apply_balances(session: Session, accounts: list[list[Account]], postings: list[list[Posting]],
                    now: datetime) -> None:
    """Move every account by its postings, entry after entry, with one conditional UPDATE statement.

    An account's deltas in entry order give its running balances `balance + prefix`; its row is
    updated only where the lowest of them keeps a non-negative account at or above zero and none
    leaves +-(2^53-1), which is exactly what applying the entries one at a time would allow (for
    one entry: `balance + delta >= 0`). A refused account raises what the first entry to fail
    would have raised (see `_refusal`); the caller's savepoint then drops the rest. `accounts` were
    loaded under the chain lock, so their balances are the ones the UPDATE starts from.
    """
    moves: dict[str, list[tuple[int, int]]] = {}  # account id -> (entry index, net delta), in entry order
    by_id: dict[str, Account] = {}
    for index, (entry_accounts, legs) in enumerate(zip(accounts, postings, strict=True)):
        net: dict[str, int] = defaultdict(int)
        for account, posting in zip(entry_accounts, legs, strict=True):
            if account.currency != posting.account.currency:
                raise field_error("postings", f"currency of {account.name} does not match the posting")
            net[account.id] += posting.amount
            by_id[account.id] = account
        for account_id, delta in net.items():
            if delta:
                moves.setdefault(account_id, []).append((index, delta))
    if not moves:
        return
    params = []
    for account_id in sorted(moves):
        running, prefixes = 0, []
        for _, delta in moves[account_id]:
            running += delta
            prefixes.append(running)
        params.append({"aid": account_id, "net": running, "n": len(prefixes), "low": min(prefixes),
                       "high": max(prefixes)})
    table = Account.__table__
    lowest, highest = table.c.balance + bindparam("low", type_=BigInteger), table.c.balance + bindparam("high")
    updated = session.execute(
        update(table)
        .where(table.c.id == bindparam("aid"), or_(table.c.non_negative == false(), lowest >= 0),
               lowest >= -MAX_AMOUNT, highest <= MAX_AMOUNT)
        .values(balance=table.c.balance + bindparam("net", type_=BigInteger),
                version=table.c.version + bindparam("n"), updated_at=now),
        params, execution_options={"synchronize_session": False},
    ).rowcount
    if updated != len(params):
        raise _refusal(moves, by_id)
    for row in params:
        account = by_id[row["aid"]]
        set_committed_value(account, "balance", account.balance + row["net"])
        set_committed_value(account, "version", account.version + row["n"])
        set_committed_value(account, "updated_at", now)


def _refusal(moves: dict[str, list[tuple[int, int]]], by_id: dict[str, Account]) -> Exception:
    """The error of the first entry that would be refused (ties: the lowest account id), replayed
    from the balances the refused UPDATE started from."""
    first: tuple[int, Exception] | None = None
    for account_id in sorted(moves):
        account, running = by_id[account_id], by_id[account_id].balance
        for index, delta in moves[account_id]:
            running += delta
            if abs(running) > MAX_AMOUNT:
                error: Exception = field_error("amount", f"the balance of {account.name} would exceed 2^53-1")
            elif account.non_negative and running < 0:
                error = InsufficientFunds(account.name, delta)
            else:
                continue
            if first is None or index < first[0]:
                first = (index, error)
            break
    if first is None:  # not reachable under the chain lock: nothing else writes balances
        return Conflict("The ledger changed while posting; try again.", next_step="retry the request")
    return first[1]


# --------------------------------------------------------------------------------------------
# Access to a trade's entries (decided by the layer that owns trades)

EntryAccessChecker = Callable[[Session, Principal, str], bool]
# -- account purposes, registered per app by the layers that own them ---------------------------

PURPOSES_EXTENSION = "datafair.ledger.purposes"


def register_purposes(app: Flask, new: Iterable[Purpose]) -> None:
    """Let accounts of these purposes exist on `app` (the ledger registers its own from its init_app;
    trading its escrow, funding and payable accounts). Registering the same purpose again has no
    effect; a different definition under a registered name raises ValueError (a programming error).
    """
    registered = dict(app.extensions.get(PURPOSES_EXTENSION, {}))
    for purpose in new:
        if registered.get(purpose.name, purpose) != purpose:
            raise ValueError(f"account purpose {purpose.name!r} is already registered differently")
        registered[purpose.name] = purpose
    # The order the API documents: the layers' purposes in registration order, then the ledger's own.
    own = {p.name for p in LEDGER_PURPOSES}
    app.extensions[PURPOSES_EXTENSION] = {**{n: p for n, p in registered.items() if n not in own},
                                          **{n: p for n, p in registered.items() if n in own}}


def purposes(app: Flask | None = None) -> Mapping[str, Purpose]:
    """Every account purpose registered on `app` (default: the current app), by name."""
    app = current_app if app is None else app
    return MappingProxyType(app.extensions.get(PURPOSES_EXTENSION, {}))


ENTRY_ACCESS_EXTENSION = "datafair.ledger.entry_access"


def register_entry_access(app: Flask, checker: EntryAccessChecker) -> None:
    """Let a higher layer (trading) decide who may read a trade's entries besides operators.

    `checker(session, principal, trade_id)` returns True when the principal may see that trade.
    Registering the same checker twice has no effect. Until one is registered, only operators may.
    """
    checkers = app.extensions.setdefault(ENTRY_ACCESS_EXTENSION, [])
    if checker not in checkers:
        checkers.append(checker)


def entry_access_checkers(app: Flask | None = None) -> list[EntryAccessChecker]:
    app = current_app if app is None else app
    return list(app.extensions.get(ENTRY_ACCESS_EXTENSION, ()))


def may_read_trade_entries(session: Session, principal: Principal, trade_id: str) -> bool:
    """Operators always; anyone else when a registered checker says so."""
    return principal.is_operator or any(
        check(session, principal, trade_id) for check in entry_access_checkers())

