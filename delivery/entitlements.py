"""Entitlements: the buyer's right to use what it bought, decided again at every access.

An entitlement is created by trading's `trade_escrowed` hook, in the escrow's transaction. Its
status is a function of facts other layers own — the trade, the certificate the contract was signed
under, both organizations, the cross-border rules with the white list as it stands — and of the clock,
so `evaluate` computes it on every read and every access; the persisted `status` is what the last
write or sweep saw (`refresh` persists a change, under the row lock, with its webhook event).

Revocation (the trade refunded, a resolution with `end_access`, the certificate revoked) and expiry
are final; suspension lasts while any of its causes does, and `status_reason` names them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from certification import certificates, whitelist
from certification.models import Certificate
from certification.states import CertificateStatus
from delivery import evidence
from delivery.models import Entitlement
from delivery.states import ENTITLEMENT_TRANSITIONS, LIVE, EntitlementStatus
from exchange.db import utcnow
from exchange.errors import Forbidden, NotFound
from exchange.events import outbox
from exchange.fields import Facts
from exchange.identity.models import Organization
from exchange.identity.states import OrgStatus
from exchange.principal import Principal
from exchange.states import load_for_update, transition
from listings import services as listings
from trading import dossiers, payments, subscriptions
from trading.models import Contract, Trade
from trading.states import SubscriptionStatus, TradeStatus

E = EntitlementStatus
T = TradeStatus
# A subscription period has begun without being escrowed (API.md: the reason's name).
PERIOD_UNPAID = "period_unpaid"
# What clears each cause of a suspension (Verdict.next_step).
CAUSE_NEXT_STEPS = {
    PERIOD_UNPAID: "the buyer must pay the subscription's current period",
    "dispute open": "an operator must resolve the dispute first",
    "certificate suspended": "an operator must reinstate the product's certificate first",
    "buyer organization suspended": "an operator must reinstate the buying organization first",
    "buyer organization not verified": "an operator must verify the buying organization first",
    "seller organization suspended": "an operator must reinstate the selling organization first",
    dossiers.OVERDUE: "the seller must file the cross-border dossier first",
    dossiers.ASSESSMENT_PENDING: "the seller must file the security assessment and an operator must approve it first",
}
BORDER_NEXT_STEP = "an operator must add a white-list entry that covers this cross-border deal first"


@dataclass(frozen=True)
class Verdict:
    """What the facts say now: the status, each cause in words, and the refusal an access gets."""

    status: str
    causes: tuple[str, ...] = ()
    # "cross_border" when the only causes are cross-border ones (its own refusal code, API.md).
    cross_border: bool = False

    @property
    def allowed(self) -> bool:
        return self.status == E.ACTIVE

    @property
    def reason(self) -> str | None:
        return "; ".join(self.causes) or None

    @property
    def refusal(self) -> str:
        """The `detail` of the 403 an access gets, `code: causes` (`entitlement_suspended: dispute open`)."""
        code = "cross_border" if self.cross_border else f"entitlement_{self.status}"
        return f"{code}: {self.reason or self.status}"

    @property
    def code(self) -> str:
        return "cross_border" if self.cross_border else f"entitlement_{self.status}"

    @property
    def next_step(self) -> str:
        """What would restore access, in plain words (the refusal's `next_step`)."""
        if self.status == E.REVOKED:
            return "access to this purchase has ended for good; buy the product again for new access"
        if self.status == E.EXPIRED:
            return ("the included calls are used up; buy more calls" if "calls_used_up" in self.causes
                    else "the access period has ended; buy the product again or renew the subscription")
        steps = [CAUSE_NEXT_STEPS.get(c, BORDER_NEXT_STEP if c.startswith("no live white-list") else
                                      "ask the exchange's operators what blocks this access") for c in self.causes]
        return "; ".join(dict.fromkeys(steps)) or "ask the exchange's operators what blocks this access"


def _certificate(session: Session, ent: Entitlement) -> Certificate | None:
    return session.get(Certificate, ent.certificate_number)


def evaluate(session: Session, ent: Entitlement, now: datetime | None = None) -> Verdict:
    """The entitlement's status at `now`, from the facts as they stand (reads only).

    A subscription's is decided by the trade of the period running now, and it expires only once
    the subscription is no longer active and `ends_at` (the end of the latest paid period) has
    passed; while it is active, a period that has begun unpaid suspends it (`period_unpaid`)."""
    now = now or utcnow()
    if ent.status in (E.REVOKED, E.EXPIRED):
        return Verdict(ent.status, (ent.status_reason,) if ent.status_reason else ())
    renewing = False
    if ent.subscription:
        sub = subscriptions.get(session, ent.contract_id)
        renewing = sub is not None and sub.status == SubscriptionStatus.ACTIVE
    trade = evidence.period_trade(session, ent, now)
    cert = _certificate(session, ent)
    cert_status = certificates.effective_status(cert, now) if cert is not None else CertificateStatus.REVOKED
    # Expiry is final too: once `ends_at` has passed, only a revocation that came before it counts
    # (the sweep may not have persisted the expiry yet when a later refund or revocation arrives).
    ended = ent.ends_at <= now and not renewing

    def before_end(at: datetime | None) -> bool:
        return not ended or (at is not None and at < ent.ends_at)

    revoked = []
    if trade.status == T.REFUNDED and before_end(trade.settled_at):
        revoked.append("trade refunded")
    if cert_status == CertificateStatus.REVOKED and before_end(cert.updated_at if cert is not None else None):
        revoked.append("certificate revoked")
    if revoked:
        return Verdict(E.REVOKED, tuple(revoked))
    if ended:
        return Verdict(E.EXPIRED, ("ends_at passed",))
    if ent.calls_included is not None and ent.calls_used >= ent.calls_included:
        return Verdict(E.EXPIRED, ("calls_used_up",))
    causes: list[str] = []
    if renewing and (ent.ends_at <= now or trade.status == T.AWAITING_PAYMENT):
        causes.append(PERIOD_UNPAID)
    if trade.status == T.DISPUTED:
        causes.append("dispute open")
    if cert_status == CertificateStatus.SUSPENDED:
        causes.append("certificate suspended")
    buyer = session.get(Organization, ent.buyer_org_id)
    seller = session.get(Organization, ent.seller_org_id)
    if buyer.status == OrgStatus.SUSPENDED:
        causes.append("buyer organization suspended")
    elif buyer.status != OrgStatus.VERIFIED:
        causes.append("buyer organization not verified")
    if seller.status == OrgStatus.SUSPENDED:
        causes.append("seller organization suspended")
    # The deal's compliance dossier (API.md Compliance): overdue, or a security assessment not approved.
    causes.extend(dossiers.blocking(session, ent.contract_id, now))
    revision = listings.get_version(session, product_id=ent.product_id, version=ent.product_version)
    decision = whitelist.check_transfer(session, product=revision, buyer_org=buyer, now=now)
    border = [] if decision.allowed else [f"no live white-list entry covers this deal ({decision.rule})"]
    if causes or border:
        return Verdict(E.SUSPENDED, tuple(causes + border), cross_border=bool(border) and not causes)
    return Verdict(E.ACTIVE)


def shown(session: Session, ent: Entitlement, now: datetime | None = None) -> Facts:
    """The entitlement as reads show it: status and reason computed now (reads never write)."""
    verdict = evaluate(session, ent, now)
    return Facts(ent, status=verdict.status, status_reason=verdict.reason)


def _emit(session: Session, ent: Entitlement) -> None:
    outbox.emit(session, event_type=f"entitlement.{ent.status}", org_ids=[ent.buyer_org_id, ent.seller_org_id],
                payload={"entitlement_id": ent.id, "trade_id": ent.trade_id, "product_id": ent.product_id,
                         "status": ent.status, "status_reason": ent.status_reason})


def persist(session: Session, ent: Entitlement, verdict: Verdict, *, actor: Principal | None = None) -> bool:
    """Write `verdict` on `ent` (loaded for update); True if its status changed. A return to
    `active` delivers the trade or restarts its acceptance period (`on_active` handlers)."""
    ent.checked_at = utcnow()
    if verdict.status == ent.status:
        ent.status_reason = verdict.reason
        return False
    previous = transition(ent, ENTITLEMENT_TRANSITIONS, verdict.status, actor=actor, what="Entitlement")
    ent.status_reason = verdict.reason
    _emit(session, ent)
    if verdict.status == E.ACTIVE and previous == E.SUSPENDED:
        evidence.on_active(session, ent, resumed=True)
    if verdict.status == E.REVOKED and ent.subscription:
        # A revoked subscription's access ends the subscription: unpaid periods cancelled, paid
        # periods not yet begun refunded (API.md, Delivery and use).
        payments.end_subscription_after_revocation(session, contract_id=ent.contract_id,
                                                   reason=verdict.reason or "access revoked")
    session.flush()
    return True


def refresh(session: Session, ent_id: str, now: datetime | None = None) -> bool:
    """Lock one entitlement's trade, then the entitlement (the order every trading path takes),
    evaluate it and persist a change (one sweep item). An active entitlement whose trade still waits
    for its delivery gets it here."""
    ent = session.get(Entitlement, ent_id)
    if ent is None:
        return False
    # The trade of the period running now first, as trading's hooks lock them (the reverse order
    # deadlocks against a dispute).
    trade_id = evidence.period_trade(session, ent, now).id
    session.execute(select(Trade.id).where(Trade.id == trade_id).with_for_update()).scalar_one()
    ent = load_for_update(session, Entitlement, ent_id)
    if ent is None or ent.status not in LIVE:
        return False
    changed = persist(session, ent, evaluate(session, ent, now))
    if not changed and ent.status == E.ACTIVE and session.get(Trade, trade_id).status == T.ESCROWED:
        # An escrow and a publication committing at once each miss the other's row (read committed):
        # the trade stays escrowed beside a covered release until this finds it. A subscription's
        # next period is delivered here once it has begun.
        evidence.on_active(session, ent, resumed=False)
    return changed


def revoke(session: Session, ent: Entitlement, reason: str, *, actor: Principal | None = None) -> None:
    """Revoke `ent` (loaded for update) for `reason`; a revoked entitlement stays revoked, and one
    whose `ends_at` has passed is expired, not revoked (expiry is final)."""
    if ent.status in LIVE:
        verdict = Verdict(E.EXPIRED, ("ends_at passed",)) if ent.ends_at <= utcnow() else Verdict(E.REVOKED, (reason,))
        persist(session, ent, verdict, actor=actor)


# -- trading's hooks -------------------------------------------------------------------------------
def on_trade_escrowed(session: Session, *, trade: Trade) -> None:
    """The contract's first escrow creates its entitlement (same transaction); a later one (a
    subscription's next period) moves its end to the end of the latest escrowed period, which ends
    a `period_unpaid` suspension."""
    existing = _of_trade(session, trade)
    if existing is not None:
        _period_escrowed(session, existing, trade)
        return
    contract = session.get(Contract, trade.contract_id)
    terms = contract.terms or {}
    starts = trade.escrowed_at or utcnow()
    # A subscription's access runs to the end of the latest escrowed period, else for its duration.
    ends = trade.period_end or starts + timedelta(days=int(terms.get("duration_days") or 365))
    ent = Entitlement(trade_id=trade.id, contract_id=contract.id, product_id=contract.product_id,
                      product_version=contract.product_version, certificate_number=contract.certificate_number,
                      buyer_org_id=trade.buyer_org_id, seller_org_id=trade.seller_org_id,
                      delivery_mode=terms.get("delivery_mode") or _product_mode(session, contract),
                      scope=terms.get("scope"), starts_at=starts, ends_at=ends,
                      subscription=trade.period_start is not None,
                      status=E.ACTIVE, calls_used=0, checked_at=starts,
                      # per_call: the calls bought up front (trading requires terms.calls for them).
                      calls_included=int(terms["calls"]) if terms.get("calls") else None)
    session.add(ent)
    session.flush()
    verdict = evaluate(session, ent)
    if verdict.status == E.ACTIVE:
        _emit(session, ent)
    else:
        persist(session, ent, verdict)
    evidence.on_active(session, ent, resumed=False)


def _period_escrowed(session: Session, ent: Entitlement, trade: Trade) -> None:
    """A subscription's later period was escrowed (`ent` locked): its window grows to that period's
    end; a period that had begun unpaid is paid, so the suspension it caused ends (and, once begun,
    the period's trade is delivered as any other)."""
    if not ent.subscription or ent.status not in LIVE:
        return
    ends = subscriptions.paid_through(session, ent.contract_id)
    if ends is not None and ends > ent.ends_at:
        ent.ends_at = ends
    changed = persist(session, ent, evaluate(session, ent))
    if not changed and trade.period_start is not None and trade.period_start <= utcnow():
        evidence.on_active(session, ent, resumed=False)


def _product_mode(session: Session, contract: Contract) -> str:
    return listings.get_version(session, product_id=contract.product_id, version=contract.product_version).delivery_mode


def _of_trade(session: Session, trade: Trade) -> Entitlement | None:
    return session.execute(
        select(Entitlement).where(Entitlement.contract_id == trade.contract_id).with_for_update()
    ).scalar_one_or_none()


def on_trade_changed(session: Session, *, trade: Trade, **_facts: Any) -> None:
    """A dispute opened: the entitlement is suspended now (persisted with its event, not only computed)."""
    ent = _of_trade(session, trade)
    if ent is not None and ent.status in LIVE:
        persist(session, ent, evaluate(session, ent))


def on_dossier_changed(session: Session, *, contract_id: str) -> None:
    """A dossier was filed, approved or became overdue: re-check the contract's entitlement now (same
    transaction), so its suspension starts or ends with the change, not at the next sweep."""
    ent_id = session.execute(select(Entitlement.id).where(Entitlement.contract_id == contract_id)).scalar()
    if ent_id is not None:
        refresh(session, ent_id)


def on_trade_resolved(session: Session, *, trade: Trade, end_access: bool, actor: Principal | None = None,
                      **_facts: Any) -> None:
    """A resolution: `end_access` (or a full refund) revokes; otherwise the suspension ends with the dispute."""
    ent = _of_trade(session, trade)
    if ent is None or ent.status not in LIVE:
        return
    if ent.subscription and trade.status == T.REFUNDED and trade.period_start is not None \
            and trade.period_start > utcnow():
        # A period refunded before it began was never bought: the window ends before it again.
        ent.ends_at = subscriptions.paid_through(session, ent.contract_id) or ent.starts_at
    if end_access:
        revoke(session, ent, "resolution ended access", actor=actor)
    else:
        persist(session, ent, evaluate(session, ent), actor=actor)


def auto_acceptance_refusal(session: Session, *, trade: Trade) -> str | None:
    """Trading's auto-acceptance asks first: never while the entitlement is not active (an expired
    one does not hold it back). The suspension is persisted here, so its end restarts the period."""
    ent = _of_trade(session, trade)
    if ent is None:
        return None
    if ent.subscription and trade.id != evidence.period_trade(session, ent).id:
        # An earlier period: its access was given, whatever holds the period running now.
        return None
    verdict = evaluate(session, ent)
    if verdict.status == E.ACTIVE and ent.status == E.SUSPENDED:
        # Access resumed and nothing persisted it yet (this sweep may run before the entitlements'):
        # persisting it restarts the acceptance period, which must not end in this same step.
        persist(session, ent, verdict)
        return "access resumed just now: the acceptance period starts again"
    if verdict.status in (E.ACTIVE, E.EXPIRED):
        return None
    if ent.status in LIVE:
        persist(session, ent, verdict)
    return verdict.refusal


# -- reads -----------------------------------------------------------------------------------------
def visible(session: Session, ent_id: str, principal: Principal, *, lock: bool = False) -> Entitlement:
    """An entitlement for its buyer, its seller and operators; 404 for anyone else."""
    stmt = select(Entitlement).where(Entitlement.id == ent_id)
    if lock:
        stmt = stmt.with_for_update()
    ent = session.execute(stmt).scalar_one_or_none() if len(ent_id) <= 40 else None
    if ent is None or not (principal.is_operator or principal.org_id in (ent.buyer_org_id, ent.seller_org_id)):
        raise NotFound("No such entitlement.")
    return ent


def list_query(*, principal: Principal, status: str | None, product_id: str | None, trade_id: str | None,
               contract_id: str | None) -> Select:
    stmt = select(Entitlement)
    if not principal.is_operator:
        stmt = stmt.where(or_(Entitlement.buyer_org_id == principal.org_id,
                              Entitlement.seller_org_id == principal.org_id))
    for column, value in ((Entitlement.product_id, product_id), (Entitlement.contract_id, contract_id)):
        if value:
            stmt = stmt.where(column == value)
    if trade_id:
        # Any of a subscription's period trades finds its one entitlement.
        stmt = stmt.where(Entitlement.contract_id == select(Trade.contract_id).where(Trade.id == trade_id)
                          .scalar_subquery())
    if status:
        # The persisted status may lag the computed one (the route filters on the computed status):
        # any live row may be computed in any status now; revoked and expired rows stay what they are.
        stmt = stmt.where(Entitlement.status.in_([str(s) for s in {E(status), *LIVE}]))
    return stmt.order_by(Entitlement.created_at.desc(), Entitlement.id)


def require_buyer_member(ent: Entitlement, principal: Principal) -> None:
    if principal.org_id != ent.buyer_org_id:
        raise Forbidden("Only members of the buying organization use its entitlement.",
                        next_step="sign in as a member of the buying organization")


def check_buyer_member(session: Session, actor: Principal, *, entitlement_id: str, **_ids: Any) -> None:
    """Whether the actor may use the entitlement (downloads, queries: a member of the buying
    organization): Forbidden, NotFound. Reads only; the services check it again."""
    require_buyer_member(visible(session, entitlement_id, actor), actor)


# -- the sweep -------------------------------------------------------------------------------------
def sweep_due(session: Session, now: datetime, limit: int) -> list[str]:
    """Live entitlements, the least recently checked first (each is re-evaluated; none starves)."""
    return list(session.execute(
        select(Entitlement.id).where(Entitlement.status.in_([str(s) for s in LIVE]))
        .order_by(Entitlement.checked_at.is_(None).desc(), Entitlement.checked_at, Entitlement.id).limit(limit)
    ).scalars())
