"""Cross-border filing dossiers (API.md Compliance): the legal path of a contract whose data leaves
the mainland, decided at its second signature, and the filing that must follow.

A dossier is opened for every lawful cross-border contract whose seller (the exporter) is in `GD`
or `CN` and whose buyer is in `HK`, `MO` or `INTL`. Its path comes from one pure function over a
versioned rule table (`certification.paths.decide`), given the data (classification, personal
information, individuals covered, sensitivity), the parties' regions and cities, and the exporter's
cumulative individuals sent abroad since 1 January of the year in China Standard Time, this deal
included. That count is kept per exporter and year (`CrossBorderVolume`), bumped under its row lock
in the signature's transaction, so concurrent signatures count exactly.

The contract paths (`gba_standard_contract`, `standard_contract`) must be filed within 10 mainland
working days (`trading.workdays`); a `security_assessment` must be filed and approved (operators
record the regulator's approval) before any delivery. While a dossier is `overdue`, or a security
assessment is not filed and approved, the contract's entitlement is suspended with that reason
(delivery asks `blocking`). `overdue` is computed on read from the clock and persisted by the sweep,
which announces `dossier.overdue`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from certification import paths
from exchange import hooks
from exchange.db import upsert, utcnow
from exchange.errors import Conflict, Forbidden, NotFound, field_error
from exchange.events import outbox
from exchange.expiry import Expiry
from exchange.fields import Facts, iso_z
from exchange.identity import audit
from exchange.identity.models import Organization
from exchange.principal import Principal
from exchange.states import transition
from trading import rules, workdays
from trading.models import Contract, CrossBorderVolume, Dossier
from trading.states import DOSSIER_TRANSITIONS, DossierStatus

DS = DossierStatus
CONTRACT_PATHS = ("gba_standard_contract", "standard_contract")
NOT_REQUIRED_PATHS = ("no_personal_info", "exempt_small_volume")
EVENT_TYPES = ("dossier.overdue",)
OVERDUE = "cross-border filing overdue"
ASSESSMENT_PENDING = "security assessment not filed and approved"

_PARTICULARS = {
    "gba_standard_contract": "粤港澳大湾区标准合同填写事项 Particulars of the GBA standard contract",
    "standard_contract": "个人信息出境标准合同填写事项 Particulars of the standard contract",
    "security_assessment": "数据出境安全评估申报事项 Particulars of the security assessment declaration",
}
UNDERTAKING = "承诺书 Undertaking"


def kinds(dossier: Dossier) -> list[tuple[str, str]]:
    """The documents a dossier offers: none when no filing is required."""
    if not dossier.filing_required:
        return []
    return [("particulars", _PARTICULARS[dossier.path]), ("undertaking", UNDERTAKING)]


def cst_year(at: datetime) -> int:
    return at.astimezone(workdays.CST).year


def _count(session: Session, exporter_org_id: str, year: int, subjects: int, sensitive: int) -> tuple[int, int]:
    """Add this deal's individuals to the exporter's year under the row lock; the totals, this deal included."""
    session.execute(upsert(session, CrossBorderVolume, dict(exporter_org_id=exporter_org_id, year=year, subjects=0,
                                                            sensitive_subjects=0, contracts=0)))
    row = session.execute(
        update(CrossBorderVolume)
        .where(CrossBorderVolume.exporter_org_id == exporter_org_id, CrossBorderVolume.year == year)
        .values(subjects=CrossBorderVolume.subjects + subjects,
                sensitive_subjects=CrossBorderVolume.sensitive_subjects + sensitive,
                contracts=CrossBorderVolume.contracts + 1)
        .returning(CrossBorderVolume.subjects, CrossBorderVolume.sensitive_subjects)
    ).one()
    return int(row[0]), int(row[1])


def open_for(session: Session, contract: Contract, revision: Any) -> Dossier | None:
    """At the second signature (same transaction): the contract's dossier, if its data leaves the mainland."""
    seller = session.get(Organization, contract.seller_org_id)
    buyer = session.get(Organization, contract.buyer_org_id)
    if not rules.leaves_mainland(seller.region, buyer.region):
        return None
    personal = bool(revision.contains_personal_info)
    if personal and revision.personal_info is None:
        # rules.lawful refuses such a deal before it gets here (409): never decide a path without the count.
        raise Conflict("The certified version does not state personal_info; its cross-border path cannot be "
                       "decided.", errors={"personal_info": ["missing on the certified version"]},
                       next_step="the vendor must certify a revision that states personal_info first")
    signed_at = contract.signed_at or utcnow()
    subjects, sensitive, cumulative, cumulative_sensitive = 0, False, 0, 0
    if personal:
        subjects, sensitive = int(revision.personal_info["subjects"]), bool(revision.personal_info["sensitive"])
        cumulative, cumulative_sensitive = _count(session, seller.id, cst_year(signed_at), subjects,
                                                  subjects if sensitive else 0)
    flow = paths.Flow(classification=revision.classification, personal_info=personal, sensitive=sensitive,
                      subjects=cumulative, sensitive_subjects=cumulative_sensitive,
                      exporter_region=seller.region, exporter_city=seller.city, importer_region=buyer.region)
    decision = paths.decide(flow)
    due_at, provisional = (workdays.filing_due(signed_at) if decision.path in CONTRACT_PATHS else (None, False))
    required = decision.path not in NOT_REQUIRED_PATHS
    dossier = Dossier(
        contract_id=contract.id, exporter_org_id=seller.id, importer_org_id=buyer.id, path=decision.path,
        reasons=list(decision.reasons), rule_ids=list(decision.rule_ids), rule_version=decision.version,
        facts=_facts(flow, seller, buyer, subjects), subjects=subjects, cumulative_subjects=cumulative,
        cumulative_sensitive_subjects=cumulative_sensitive, filing_required=required,
        approval_required=decision.path == "security_assessment", due_at=due_at, provisional_due_date=provisional,
        status=DS.AWAITING_FILING if required else DS.NOT_REQUIRED,
    )
    session.add(dossier)
    session.flush()
    return dossier


def _facts(flow: Any, seller: Organization, buyer: Organization, subjects: int) -> dict[str, Any]:
    return {"classification": flow.classification, "personal_info": flow.personal_info, "sensitive": flow.sensitive,
            "deal_subjects": subjects, "subjects": flow.subjects, "sensitive_subjects": flow.sensitive_subjects,
            "exporter": {"org_id": seller.id, "region": seller.region, "city": seller.city, "zone": seller.zone},
            "importer": {"org_id": buyer.id, "region": buyer.region, "city": buyer.city, "zone": buyer.zone}}


# -- status on read, the sweep ------------------------------------------------------------------------

def _on_overdue(session: Session, dossier: Dossier, previous: str) -> None:
    """An awaiting dossier went overdue (the sweep, or a late filing finding it due): announce it and
    let delivery suspend the entitlement."""
    dossier.overdue_at = utcnow()
    outbox.emit(session, event_type="dossier.overdue", org_ids=[dossier.exporter_org_id, dossier.importer_org_id],
                payload={"dossier_id": dossier.id, "contract_id": dossier.contract_id, "path": dossier.path,
                         "due_at": iso_z(dossier.due_at)})
    hooks.call("dossier_changed", session, contract_id=dossier.contract_id)


# `overdue` once an awaiting dossier's due date has passed: computed on read, persisted by the sweep
# (`trading.dossier_overdue`) or by the filing that finds it due.
OVERDUE_EXPIRY = Expiry(Dossier, DOSSIER_TRANSITIONS, DS.OVERDUE, live=(DS.AWAITING_FILING,), deadline="due_at",
                        what="Dossier", on_expire=_on_overdue)


def effective_status(dossier: Dossier, now: datetime | None = None) -> str:
    return OVERDUE_EXPIRY.effective_status(dossier, now)


def blocking(session: Session, contract_id: str, now: datetime | None = None) -> list[str]:
    """Why the contract's delivery waits for its dossier (empty: it does not)."""
    dossier = session.execute(select(Dossier).where(Dossier.contract_id == contract_id)).scalar_one_or_none()
    if dossier is None:
        return []
    causes = []
    if effective_status(dossier, now) == DS.OVERDUE:
        causes.append(OVERDUE)
    if dossier.approval_required and dossier.approved_at is None:
        causes.append(ASSESSMENT_PENDING)
    return causes


# -- reads and the filing -------------------------------------------------------------------------------

def _contract(session: Session, contract_id: str, principal: Principal) -> Contract:
    return rules.for_parties(session, Contract, contract_id, principal, parties=("buyer_org_id", "seller_org_id"),
                             what="contract")


def get(session: Session, *, contract_id: str, principal: Principal) -> Dossier:
    """The contract's dossier (its parties and operators; 404 for others and for a contract without one)."""
    return _of(session, _contract(session, contract_id, principal))


def _of(session: Session, contract: Contract, *, lock: bool = False) -> Dossier:
    stmt = select(Dossier).where(Dossier.contract_id == contract.id)
    dossier = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if dossier is None:
        raise NotFound("This contract has no cross-border dossier: its data does not leave the mainland "
                       "(or it was signed before dossiers existed, or is not signed yet).")
    return dossier


def _require_filer(dossier: Dossier, actor: Principal) -> None:
    if not actor.is_operator and actor.org_id != dossier.exporter_org_id:
        raise Forbidden("Only the exporting party (the seller) or an operator files the dossier.",
                        next_step="sign in as a member of the selling organization")
    actor.require_verified("filings")


def check_may_file(session: Session, actor: Principal, *, contract_id: str, **_ids: Any) -> None:
    """Whether the actor may file the contract's dossier (the exporter, an operator): Forbidden, NotFound."""
    _require_filer(_of(session, _contract(session, contract_id, actor)), actor)


def file(session: Session, *, contract_id: str, data: dict[str, Any], actor: Principal) -> Dossier:
    """The exporting party (or an operator) records the filing's reference; for a security assessment
    an operator also records the regulator's approval (`approved: true`).

    Raises NotFound, Forbidden (not the exporter or an operator; approval by a non-operator),
    Conflict (nothing to file, already filed under another reference, already approved),
    ValidationFailed (approval on a path that has none).
    """
    contract = _contract(session, contract_id, actor)
    dossier = _of(session, contract, lock=True)
    _require_filer(dossier, actor)
    approved = bool(data.get("approved"))
    if approved and not dossier.approval_required:
        raise field_error("approved", f"only a security assessment is approved; this dossier's path is {dossier.path}")
    if approved and not actor.is_operator:
        raise Forbidden("Only operators record a security assessment's approval.",
                        errors={"approved": ["operators only"]},
                        next_step="file without `approved`; an operator records the approval")
    if not dossier.filing_required:
        raise Conflict(f"This dossier's path ({dossier.path}) needs no filing.",
                       next_step="nothing to do: this dossier needs no filing")
    reference = data["reference"]
    now = utcnow()
    if dossier.status == DS.FILED:
        if reference != dossier.reference:
            raise Conflict(f"The dossier was filed under reference {dossier.reference!r} at "
                           f"{iso_z(dossier.filed_at)}; a filing is not replaced.",
                           next_step="nothing to do: the dossier stays filed under its first reference")
        if not approved:
            raise Conflict("The dossier is already filed under this reference.",
                           next_step="nothing to do: the dossier is filed")
        if dossier.approved_at is not None:
            raise Conflict("The security assessment's approval is already recorded.",
                           next_step="nothing to do: the approval is recorded")
    else:
        OVERDUE_EXPIRY.expire_if_due(session, dossier, now)  # filed late: the overdue is recorded on the way
        transition(dossier, DOSSIER_TRANSITIONS, DS.FILED, actor=actor, what="Dossier")
        dossier.reference, dossier.filed_at, dossier.filed_by = reference, now, actor.user_id
    if approved:
        dossier.approved_at, dossier.approved_by = now, actor.user_id
    audit.record(session, actor, "dossier.approved" if approved else "dossier.filed", "dossier", dossier.id,
                 contract_id=contract.id, reference=reference, path=dossier.path)
    hooks.call("dossier_changed", session, contract_id=contract.id)
    session.flush()
    return dossier


def shown(dossier: Dossier, now: datetime | None = None) -> Facts:
    """The dossier as the API shows it (status computed now; reads never write)."""
    base = f"/api/v1/contracts/{dossier.contract_id}/dossier/documents"
    documents = [{"kind": kind, "title": title, "url": f"{base}/{kind}"}
                 for kind, title in kinds(dossier)]
    filing = {"required": dossier.filing_required, "due_at": dossier.due_at, "reference": dossier.reference,
              "filed_at": dossier.filed_at, "approval_required": dossier.approval_required,
              "approved_at": dossier.approved_at, "provisional_due_date": dossier.provisional_due_date}
    return Facts(dossier, status=effective_status(dossier, now), documents=documents, filing=filing)

