"""Privacy computing (可用不可见): buyers compute aggregates on a release they never see.

The vendor sets the product's policy (`set_policy`). A buyer's query (`run_query`) goes through:

1. the access check of every access (the entitlement's verdict at this moment, the release covered
   and not withdrawn) — a refusal is a 403, logged;
2. the SQL allow-list (`delivery.sandbox_sql.check`, then the columns against the release's schema):
   outside the grammar -> a `refused` query (201), logged, nothing spent;
3. for a per_call product, one call reserved (`gateway.reserve`, a conditional UPDATE in its own
   short transaction; given back unless the query succeeds); under a budget, the epsilon debited
   atomically **before** the query runs, the same way, and never given back;
4. the rebuilt query in a worker process (`delivery.sandbox_engine`), with no database transaction
   open, killed at `DATAFAIR_QUERY_TIMEOUT_S` (-> `failed`);
5. the k threshold and the noise (`delivery.privacy`), then in the request's short write
   transaction: the query with its result digest and the exchange's signed receipt, the access log
   entry, and for the first succeeded query the trade `delivered` (`delivery_evidence: "query"`).

The rows of the data never leave: only aggregates of groups of at least k rows do, and errors carry
reason codes, never the engine's message.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from flask import current_app
from prometheus_client import Counter, Histogram
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from delivery import accesses, entitlements, evidence, gateway, privacy, releases, sandbox_engine, sandbox_sql
from delivery.models import Entitlement, PrivacyBudget, Release, ReleaseFile, SandboxPolicy, SandboxQuery
from delivery.states import AccessKind, AccessStatus, ReleaseStatus
from exchange.db import db, new_id, upsert, utcnow
from exchange.errors import Conflict, NotFound, RateLimited, field_error
from exchange.fields import iso_z
from exchange.identity import audit
from exchange.metrics import PROCESS_REGISTRY
from exchange.principal import Principal
from exchange.signing import services as signing
from listings import services as listings
from listings.models import ProductVersion
from trading import settlement
from trading.models import Trade

QUERIES = Counter("datafair_sandbox_queries", "Sandbox queries by outcome", ["status"], registry=PROCESS_REGISTRY)
SECONDS = Histogram("datafair_sandbox_query_seconds", "Time a sandbox query spent in the engine",
                    registry=PROCESS_REGISTRY, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20))

MICRO = 1_000_000
FORMATS = {"csv": "csv", "tsv": "csv", "parquet": "parquet", "pq": "parquet"}
# Groups fetched from the engine at most (before the threshold under a budget, after it otherwise):
# a query grouping by a near-unique column is refused, not streamed.
RAW_GROUP_CAP = 100_000
FAILED_REASONS = {
    "timeout": "timeout: the query ran past its time limit and was stopped",
    "busy": "busy: every sandbox worker stayed busy past the time limit; try again",
    "out_of_memory": "out_of_memory: the query needed more memory than the sandbox allows",
    "engine_error": "engine_error: the engine could not run this query (its message is never shown: it may "
                    "quote data); check the column types, e.g. sum() needs a number",
}


# -- the vendor's policy ---------------------------------------------------------------------------
def set_policy(session: Session, *, product_id: str, policy: dict[str, Any], actor: Principal) -> SandboxPolicy:
    """The owner sets its privacy-computing product's policy. Conflict for another delivery mode;
    ValidationFailed without a budget where the product contains personal information, or for bounds
    whose low end is not below the high end."""
    product = listings.owned_product(session, product_id=product_id, actor=actor)
    if product.delivery_mode != "privacy_computing":
        raise Conflict(f"This product is delivered by {product.delivery_mode}; a sandbox policy is for "
                       "`privacy_computing` products.",
                       next_step="configure the delivery this product's mode asks for (an upstream for `api`, "
                                 "releases for `file`)")
    budget = policy.get("epsilon_budget")
    if budget is None and _personal(session, product.id):
        raise field_error("epsilon_budget", "required: this product contains personal information, so every "
                          "answer needs differential privacy (an epsilon budget)")
    bounds = {name.lower(): [low, high] for name, (low, high) in (policy.get("bounds") or {}).items()}
    for name, (low, high) in bounds.items():
        if not low < high:
            raise field_error("bounds", f"{name}: the low bound must be below the high one")
    now = utcnow()
    values = {"product_id": product.id, "min_group_size": policy["min_group_size"],
              "blocked_columns": sorted({c.lower() for c in policy.get("blocked_columns") or []}),
              "allowed_aggregates": [a for a in sandbox_sql.AGGREGATES if a in policy["allowed_aggregates"]],
              "max_groups": policy["max_groups"],
              "epsilon_budget_micro": None if budget is None else max(1, round(budget * MICRO)),
              "bounds": bounds, "rows_per_person": policy["rows_per_person"], "updated_by": actor.user_id,
              "updated_at": now, "created_at": now}
    # An upsert, then the row locked: two first PUTs racing must not both INSERT it.
    session.execute(upsert(session.get_bind(), SandboxPolicy.__table__, values, index_elements=["product_id"]))
    row = session.execute(select(SandboxPolicy).where(SandboxPolicy.product_id == product.id).with_for_update()
                          .execution_options(populate_existing=True)).scalar_one()
    for key, value in values.items():
        if key != "created_at":
            setattr(row, key, value)
    audit.record(session, actor, "sandbox_policy.set", "product", product.id, **shown_policy(row))
    session.flush()
    return row


def _personal(session: Session, product_id: str, version: int | None = None) -> bool:
    """Whether the product (one version of it, or any) contains personal information."""
    stmt = select(ProductVersion.version).where(ProductVersion.product_id == product_id,
                                                ProductVersion.contains_personal_info.is_(True))
    if version is not None:
        stmt = stmt.where(ProductVersion.version == version)
    return session.execute(stmt.limit(1)).first() is not None


def get_policy(session: Session, *, product_id: str, principal: Principal | None) -> SandboxPolicy:
    """A product's policy, for whoever may see the product (the policy is public: buyers read it
    before they buy). NotFound when there is none yet."""
    product = listings.get_product(session, product_id=product_id, principal=principal)
    row = session.get(SandboxPolicy, product.id)
    if row is None:
        raise NotFound("This product has no sandbox policy yet; its vendor sets one with PUT .../sandbox-policy.")
    return row


def shown_policy(row: SandboxPolicy) -> dict[str, Any]:
    return {"product_id": row.product_id, "min_group_size": row.min_group_size,
            "blocked_columns": list(row.blocked_columns), "allowed_aggregates": list(row.allowed_aggregates),
            "max_groups": row.max_groups,
            "epsilon_budget": None if row.epsilon_budget_micro is None else row.epsilon_budget_micro / MICRO,
            "bounds": dict(row.bounds), "rows_per_person": row.rows_per_person}


# -- the release's tables --------------------------------------------------------------------------
def table_name(file_name: str) -> str:
    return file_name.rsplit(".", 1)[0].lower() if "." in file_name else file_name.lower()


def file_format(file_name: str) -> str | None:
    return FORMATS.get(file_name.rsplit(".", 1)[-1].lower()) if "." in file_name else None


@dataclass(frozen=True)
class Table:
    name: str
    file: str
    sha256: str
    format: str


def tables_of(session: Session, release: Release) -> list[Table]:
    files = session.execute(select(ReleaseFile).where(ReleaseFile.release_id == release.id)
                            .order_by(ReleaseFile.name)).scalars()
    return [Table(table_name(f.name), f.name, f.sha256, fmt) for f in files if (fmt := file_format(f.name))]


_local_lock = threading.Lock()


def local_path(sha256: str) -> str:
    """A local, read-only path of a stored object, for the engine: the file itself on file storage;
    on S3 a copy in the instance's sandbox cache, fetched once (outside any transaction) and checked
    against its sha256 before it takes its name."""
    store = releases.storage()
    path = store.path(sha256)
    if path is not None:
        return path
    cache = Path(current_app.config.get("SANDBOX_CACHE_DIR") or Path(current_app.instance_path) / "sandbox-cache")
    target = cache / sha256
    if target.exists():
        return str(target)
    cache.mkdir(parents=True, exist_ok=True)
    with _local_lock:
        if target.exists():
            return str(target)
        partial = cache / f".{sha256}.{os.getpid()}.part"
        digest = hashlib.sha256()
        with store.open(sha256) as source, open(partial, "wb") as out:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            partial.unlink(missing_ok=True)
            raise sandbox_engine.EngineFailed("engine_error")
        os.chmod(partial, 0o400)
        os.replace(partial, target)
    return str(target)


_schemas: dict[str, dict[str, list[list[str]]]] = {}


def schema(release_id: str, tables: list[Table]) -> dict[str, list[list[str]]]:
    """The columns (name, type) of each table of a published release, asked of the engine once per
    process (a published release's files never change)."""
    known = _schemas.get(release_id)
    if known is not None:
        return known
    answer = _engine({"describe": True, "files": _files(tables)})
    if not answer.get("ok"):
        raise sandbox_engine.EngineFailed(str(answer.get("code") or "engine_error"))
    _schemas[release_id] = answer["tables"]
    return answer["tables"]


def _files(tables: list[Table]) -> list[dict[str, str]]:
    return [{"table": t.name, "path": local_path(t.sha256), "format": t.format} for t in tables]


def _limits(request: dict[str, Any]) -> dict[str, Any]:
    config = current_app.config
    return {"memory_mb": int(config["QUERY_MEMORY_MB"]), "threads": int(config["QUERY_THREADS"]), **request}


def _pool() -> sandbox_engine.Pool:
    return sandbox_engine.pool(int(current_app.config["QUERY_WORKERS"]))


def _engine(request: dict[str, Any]) -> dict[str, Any]:
    return _pool().run(_limits(request), timeout_s=float(current_app.config["QUERY_TIMEOUT_S"]))


# -- the buyer's query -----------------------------------------------------------------------------
@dataclass
class Outcome:
    """What the query's row and its answer are made of (filled as the query goes)."""

    status: str = "refused"
    reason: str | None = None
    columns: list[str] | None = None
    rows: list[list[Any]] | None = None
    suppressed: int | None = None
    truncated: bool = False
    epsilon_micro: int | None = None
    remaining_micro: int | None = None
    elapsed_ms: int | None = None
    executed_sql: str | None = None


def _query_entitlement(session: Session, entitlement_id: str, actor: Principal) -> Entitlement:
    ent = entitlements.visible(session, entitlement_id, actor)
    entitlements.require_buyer_member(ent, actor)
    if ent.delivery_mode != "privacy_computing":
        raise Conflict(f"This entitlement is delivered by {ent.delivery_mode}; queries are for privacy-computing "
                       "products.", next_step="use the entitlement's downloads or API keys, as its delivery mode asks")
    return ent


def _release(session: Session, ent: Entitlement, release_id: str | None, actor: Principal) -> Release:
    if release_id is None:
        found = session.execute(evidence.covered_releases(ent).order_by(None)
                                .order_by(Release.published_at.desc(), Release.id.desc()).limit(1)).scalar_one_or_none()
        if found is None:
            raise Conflict("No published release of this product is covered by the entitlement yet; its vendor has "
                           "to publish one.", next_step="the product's vendor must publish a release first")
        return found
    release = evidence.covered(session, ent, release_id)
    if release.status == ReleaseStatus.WITHDRAWN:
        _refuse(ent, actor, release.id, "release_withdrawn",
                "release_withdrawn: this release was withdrawn by its vendor or an operator",
                accesses.RELEASE_WITHDRAWN_NEXT_STEP)
    return release


def _refuse(ent: Entitlement, actor: Principal, release_id: str | None, code: str, detail: str,
            next_step: str) -> None:
    raise accesses.refusal(entitlement_id=ent.id, kind=AccessKind.QUERY, user_id=actor.user_id,
                           release_id=release_id, obj=None, code=code, detail=detail, next_step=next_step)


def _debit(product_id: str, org_id: str, micro: int, budget_micro: int) -> int | None:
    """Spend `micro` of the organization's budget on the product, atomically; the micro-epsilon left
    afterwards, or None when not enough is left (nothing spent)."""
    with db.engine.begin() as conn:
        conn.execute(upsert(conn, PrivacyBudget.__table__,
                            {"product_id": product_id, "buyer_org_id": org_id, "spent_micro": 0, "queries": 0,
                             "updated_at": utcnow()}, index_elements=["product_id", "buyer_org_id"]))
        done = conn.execute(update(PrivacyBudget).where(
            PrivacyBudget.product_id == product_id, PrivacyBudget.buyer_org_id == org_id,
            PrivacyBudget.spent_micro + micro <= budget_micro,
        ).values(spent_micro=PrivacyBudget.spent_micro + micro, queries=PrivacyBudget.queries + 1,
                 updated_at=utcnow()))
        spent = conn.execute(select(PrivacyBudget.spent_micro).where(
            PrivacyBudget.product_id == product_id, PrivacyBudget.buyer_org_id == org_id)).scalar_one()
    left = budget_micro - spent
    return left if done.rowcount == 1 else None


def remaining_micro(session: Session, product_id: str, org_id: str, budget_micro: int | None) -> int | None:
    if budget_micro is None:
        return None
    spent = session.execute(select(PrivacyBudget.spent_micro).where(
        PrivacyBudget.product_id == product_id, PrivacyBudget.buyer_org_id == org_id)).scalar_one_or_none()
    return max(0, budget_micro - (spent or 0))


def run_query(session: Session, *, entitlement_id: str, sql: str, release_id: str | None, epsilon: float | None,
              actor: Principal) -> tuple[SandboxQuery, int | None]:
    """Check, run and record one query (see the module's docstring). Raises NotFound/Forbidden for
    the entitlement and the access check, Conflict for a product without a policy or a release,
    ValidationFailed for a missing epsilon, RateLimited when a per_call entitlement has no calls
    left; every other outcome is the returned query's status. Returns the query and, under a budget,
    the micro-epsilon the organization has left."""
    ent = _query_entitlement(session, entitlement_id, actor)
    policy = session.get(SandboxPolicy, ent.product_id)
    if policy is None:
        raise Conflict("This product has no sandbox policy yet: its vendor has to set one before queries run.",
                       next_step="the product's vendor must set a sandbox policy first")
    budget = policy.epsilon_budget_micro
    if budget is None and _personal(session, ent.product_id, ent.product_version):
        raise Conflict("This product contains personal information but its sandbox policy has no privacy budget; "
                       "its vendor has to set one (epsilon_budget) before queries run.",
                       next_step="the product's vendor must set a privacy budget (epsilon_budget) in its sandbox "
                                 "policy first")
    if budget is not None and epsilon is None:
        raise field_error("epsilon", "required: this product has a privacy budget; say how much of it this query "
                          "spends")
    release = _release(session, ent, release_id, actor)
    if ent.calls_included is not None and ent.calls_used >= ent.calls_included:
        # As the gateway answers a per_call key: the calls bought are used up (not a refused access).
        raise RateLimited("quota_exhausted: every query bought has been used.", retry_after=3600)
    verdict = entitlements.evaluate(session, ent)
    if not verdict.allowed:
        _refuse(ent, actor, release.id, verdict.code, verdict.refusal, verdict.next_step)
    tables = tables_of(session, release)
    trade_id = evidence.period_trade(session, ent).id if ent.subscription else ent.trade_id
    snapshot = (ent.id, trade_id, ent.product_id, ent.buyer_org_id, ent.calls_included is not None)
    rules, rel = _Policy.of(policy), (release.id, release.manifest_sha256 or "")
    query_id = new_id("qry")
    outcome = Outcome()
    # Nothing below holds a transaction open until the outcome is written: the query may take seconds.
    session.rollback()
    _compute(outcome, policy=rules, release_id=rel[0], tables=tables, sql=sql,
             epsilon_micro=None if budget is None or epsilon is None else round(epsilon * MICRO), snapshot=snapshot)
    return _record(session, query_id=query_id, snapshot=snapshot, release=rel, sql=sql, outcome=outcome,
                   actor=actor, budget=budget)


@dataclass(frozen=True)
class _Policy:
    k: int
    blocked: frozenset[str]
    aggregates: tuple[str, ...]
    max_groups: int
    budget_micro: int | None
    bounds: dict[str, list[float]]
    rows_per_person: int

    @classmethod
    def of(cls, row: SandboxPolicy) -> _Policy:
        return cls(row.min_group_size, frozenset(row.blocked_columns), tuple(row.allowed_aggregates), row.max_groups,
                   row.epsilon_budget_micro, dict(row.bounds), row.rows_per_person)


def _compute(outcome: Outcome, *, policy: _Policy, release_id: str, tables: list[Table], sql: str,
             epsilon_micro: int | None, snapshot: tuple[str, str, str, str, bool]) -> None:
    noised = policy.budget_micro is not None
    try:
        plan = sandbox_sql.check(sql, tables={t.name for t in tables}, blocked=policy.blocked,
                                 allowed_aggregates=policy.aggregates, noised=noised)
        if noised:
            for o in plan.outputs:
                if o.func in ("sum", "avg") and o.column not in policy.bounds:
                    raise sandbox_sql.Refused("bounds_required", f"{o.func}({o.column}) needs bounds for "
                                              f"{o.column!r} in the vendor's policy under a privacy budget")
        described = schema(release_id, tables)
        known = {c[0].lower() for c in described.get(plan.table, [])}
        for column in sorted(plan.columns):
            if column not in known:
                raise sandbox_sql.Refused("unknown_column", f"the table {plan.table!r} has no column {column!r}")
    except sandbox_sql.Refused as refused:
        outcome.status, outcome.reason = "refused", refused.reason
        return
    except sandbox_engine.EngineFailed as failed:
        outcome.status, outcome.reason = "failed", FAILED_REASONS.get(failed.code, FAILED_REASONS["engine_error"])
        return
    bounds = {c: (lo, hi) for c, (lo, hi) in policy.bounds.items()} if noised else None
    outcome.executed_sql = plan.sql(min_rows=0 if noised else policy.k, cap=RAW_GROUP_CAP, bounds=bounds)
    try:
        # A worker's place first: a query that finds every worker busy past its time limit spends nothing.
        with _pool().slot(float(current_app.config["QUERY_TIMEOUT_S"])) as slot:
            _spend_and_run(outcome, slot, plan=plan, policy=policy, tables=tables, epsilon_micro=epsilon_micro,
                           snapshot=snapshot)
    except sandbox_engine.EngineFailed as failed:
        outcome.status, outcome.reason = "failed", FAILED_REASONS.get(failed.code, FAILED_REASONS["engine_error"])


def _spend_and_run(outcome: Outcome, slot: sandbox_engine.Slot, *, plan: sandbox_sql.Plan, policy: _Policy,
                   tables: list[Table], epsilon_micro: int | None, snapshot: tuple[str, str, str, str, bool]) -> None:
    """With a worker's place held: the call reserved and the epsilon debited, then the query run."""
    ent_id, _trade_id, product_id, org_id, per_call = snapshot
    noised = policy.budget_micro is not None
    reservation = gateway.reserve(ent_id, per_call=True) if per_call else None  # RateLimited when none is left
    succeeded = False
    try:
        if noised:
            assert epsilon_micro is not None and policy.budget_micro is not None
            left = _debit(product_id, org_id, epsilon_micro, policy.budget_micro)
            if left is None:
                outcome.status = "refused"
                outcome.reason = (f"budget_exhausted: this query asks for {epsilon_micro / MICRO:g} epsilon and your "
                                  "organization has less than that left on this product")
                return
            outcome.epsilon_micro, outcome.remaining_micro = epsilon_micro, left
        started = time.perf_counter()
        try:
            answer = slot.run(_limits({"files": _files(tables), "table": plan.table, "columns": sorted(plan.columns),
                                       "sql": outcome.executed_sql, "cap": RAW_GROUP_CAP}))
        except sandbox_engine.EngineFailed as failed:
            answer = {"ok": False, "code": failed.code}
        finally:
            seconds = time.perf_counter() - started
            SECONDS.observe(seconds)
            outcome.elapsed_ms = int(seconds * 1000)
        if not answer.get("ok"):
            code = str(answer.get("code"))
            if code == "unknown_column":
                outcome.status = "refused"
                outcome.reason = f"unknown_column: the table {plan.table!r} has no column {answer.get('column')!r}"
            else:
                outcome.status, outcome.reason = "failed", FAILED_REASONS.get(code, FAILED_REASONS["engine_error"])
            return
        if len(answer["rows"]) > RAW_GROUP_CAP:
            outcome.status = "refused"
            outcome.reason = (f"too_many_groups: more than {RAW_GROUP_CAP} groups; group by fewer or coarser columns "
                              "or filter first")
            return
        done = privacy.finish(plan, answer["names"], answer["rows"], k=policy.k, max_groups=policy.max_groups,
                              epsilon=None if epsilon_micro is None or not noised else epsilon_micro / MICRO,
                              bounds=policy.bounds, rows_per_person=policy.rows_per_person)
        outcome.status, outcome.columns, outcome.rows = "succeeded", done.columns, done.rows
        outcome.suppressed, outcome.truncated = done.suppressed_groups, done.truncated
        succeeded = True
    finally:
        if reservation is not None and not succeeded:
            gateway.give_back(reservation)


def result_sha256(columns: list[str], rows: list[list[Any]]) -> str:
    return hashlib.sha256(rfc8785.dumps({"columns": columns, "rows": rows})).hexdigest()


def receipt_payload(q: SandboxQuery, manifest_sha256: str) -> dict[str, Any]:
    return {"query_id": q.id, "entitlement_id": q.entitlement_id, "release_id": q.release_id,
            "manifest_sha256": manifest_sha256, "sql": q.sql, "result_sha256": q.result_sha256, "at": iso_z(q.at)}


def _record(session: Session, *, query_id: str, snapshot: tuple[str, str, str, str, bool], release: tuple[str, str],
            sql: str, outcome: Outcome, actor: Principal, budget: int | None) -> tuple[SandboxQuery, int | None]:
    ent_id, trade_id, product_id, org_id, _per_call = snapshot
    release_id, manifest_sha256 = release
    now = utcnow()
    q = SandboxQuery(id=query_id, entitlement_id=ent_id, product_id=product_id, buyer_org_id=org_id,
                     user_id=actor.user_id, release_id=release_id, at=now, sql=sql, executed_sql=outcome.executed_sql,
                     status=outcome.status, refused_reason=outcome.reason, columns=outcome.columns, rows=outcome.rows,
                     suppressed_groups=outcome.suppressed, truncated=outcome.truncated,
                     epsilon_micro=outcome.epsilon_micro,
                     elapsed_ms=outcome.elapsed_ms)
    if outcome.status == "succeeded":
        q.result_sha256 = result_sha256(outcome.columns or [], outcome.rows or [])
        q.receipt_key_id, q.receipt_signature = signing.sign(session, receipt_payload(q, manifest_sha256))
    session.add(q)
    status = {"succeeded": AccessStatus.ALLOWED, "refused": AccessStatus.REFUSED}.get(outcome.status,
                                                                                     AccessStatus.FAILED)
    accesses.logged(session, entitlement_id=ent_id, kind=AccessKind.QUERY, user_id=actor.user_id,
                    release_id=release_id, obj=query_id, size=None, sha256=q.result_sha256,
                    details={"query_status": outcome.status,
                             "epsilon": None if outcome.epsilon_micro is None else outcome.epsilon_micro / MICRO},
                    status=status, reason=outcome.reason)
    if outcome.status == "succeeded":
        _deliver(session, trade_id=trade_id, ent_id=ent_id, query=q)
    session.flush()
    QUERIES.labels(status=outcome.status).inc()
    left = outcome.remaining_micro if outcome.remaining_micro is not None else remaining_micro(
        session, product_id, org_id, budget)
    return q, left


def _deliver(session: Session, *, trade_id: str, ent_id: str, query: SandboxQuery) -> None:
    """The first succeeded query delivers the escrowed trade (locked only while it waits for that)."""
    if session.execute(select(Trade.status).where(Trade.id == trade_id)).scalar_one() != "escrowed":
        return
    trade = evidence.locked_trade(session, trade_id)
    ent = session.get(Entitlement, ent_id)
    if trade.status == "escrowed" and entitlements.evaluate(session, ent).allowed:
        settlement.deliver_by_exchange(session, trade=trade, reference=f"query:{query.id}",
                                       sha256=query.result_sha256 or "", evidence="query")


def shown_query(q: SandboxQuery, remaining: int | None = None) -> dict[str, Any]:
    """A query as the API shows it; `remaining` (micro-epsilon) is known right after it ran."""
    return {"id": q.id, "status": q.status, "refused_reason": q.refused_reason, "release_id": q.release_id,
            "at": q.at, "columns": q.columns or [], "rows": q.rows or [], "suppressed_groups": q.suppressed_groups,
            "truncated": q.truncated,
            "epsilon_spent": None if q.epsilon_micro is None else q.epsilon_micro / MICRO,
            "epsilon_remaining": None if remaining is None else remaining / MICRO,
            "elapsed_ms": q.elapsed_ms, "result_sha256": q.result_sha256, "executed_sql": q.executed_sql,
            "sql": q.sql,
            "receipt": None if q.receipt_signature is None else {"key_id": q.receipt_key_id,
                                                                  "signature": q.receipt_signature}}


def list_queries(session: Session, *, entitlement_id: str, principal: Principal, after: str | None,
                 limit: int) -> dict[str, Any]:
    """An entitlement's queries, oldest first, for its parties and operators (the seller sees what
    was asked and answered of its data)."""
    ent = entitlements.visible(session, entitlement_id, principal)
    stmt = select(SandboxQuery).where(SandboxQuery.entitlement_id == ent.id)
    if after:
        stmt = stmt.where(SandboxQuery.id > after)
    rows = list(session.execute(stmt.order_by(SandboxQuery.id).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [shown_query(q) for q in rows], "next": rows[-1].id if more else None, "limit": limit}


def tables_for(session: Session, *, entitlement_id: str, release_id: str | None, actor: Principal) -> dict[str, Any]:
    """The tables a buyer may query (names and types of their columns, blocked ones marked) and the
    policy; the schema is asked of the engine with no transaction open."""
    ent = _query_entitlement(session, entitlement_id, actor)
    policy = session.get(SandboxPolicy, ent.product_id)
    release = _release(session, ent, release_id, actor)
    rel_id, tables = release.id, tables_of(session, release)
    blocked = set(policy.blocked_columns) if policy is not None else set()
    shown = shown_policy(policy) if policy is not None else None
    remaining = remaining_micro(session, ent.product_id, ent.buyer_org_id,
                                policy.epsilon_budget_micro if policy is not None else None)
    session.rollback()
    try:
        described = schema(rel_id, tables)
    except sandbox_engine.EngineFailed as failed:
        raise Conflict(FAILED_REASONS.get(failed.code, FAILED_REASONS["engine_error"]),
                       next_step="retry in a moment; if it keeps failing, ask the exchange's operators") from None
    return {"release_id": rel_id, "policy": shown,
            "epsilon_remaining": None if remaining is None else remaining / MICRO,
            "tables": [{"name": t.name, "file": t.file,
                        "columns": [{"name": c, "type": ty, "blocked": c.lower() in blocked}
                                    for c, ty in described.get(t.name, [])]} for t in tables]}
