"""The certification workflow: submission, assignment, multi-stage review, public notice, objections.

Rules enforced here for every path: nobody reviews a product of their own organization; assessors
review only stages an operator assigned to them; `compliance` is reviewed by operators only and `core`
data never passes it; `important` data or personal information needs two compliance approvals by two
different operator users; any reject ends it; approval needs every stage approved. The product's
status follows through the listings services (certification calls listings, never the reverse).

Resubmission: a stage approved earlier stays approved only if the fields it examined
(`STAGE_SUBJECTS`) are unchanged in the revision now under review; otherwise — and for the stage
that asked for changes — it is pending again, with its approvals cleared.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session

from certification import certificates
from certification.models import Certification, CertificationEvent, CertificationStage, Objection
from certification.states import (
    ASSIGNABLE_STAGES,
    CERTIFICATION_TRANSITIONS,
    DECISION_TO_STAGE,
    OBJECTION_TRANSITIONS,
    OPEN_STATUSES,
    REVIEWABLE_STATUSES,
    STAGE_SUBJECTS,
    STAGE_TRANSITIONS,
    STAGES,
    CertificationStatus,
    Decision,
    ObjectionStatus,
    Stage,
    StageStatus,
)
from exchange.canonical import sha256_hex
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed, field_error
from exchange.events import outbox
from exchange.fields import Facts
from exchange.identity import audit
from exchange.identity.models import Organization
from exchange.identity.states import OrgStatus
from exchange.principal import Principal
from exchange.states import load_for_update, transition
from listings import services as listings

C = CertificationStatus


# -- helpers ----------------------------------------------------------------------------------------
def _event(session: Session, cert: Certification, actor: Principal | None, action: str, *,
           stage: str | None = None, decision: str | None = None, comment: str | None = None,
           checklist: dict[str, Any] | None = None) -> None:
    session.add(CertificationEvent(
        certification_id=cert.id, round=cert.round, at=utcnow(),
        actor_user_id=actor.user_id if actor else None, actor_org_id=actor.org_id if actor else None,
        action=action, stage=stage, decision=decision, comment=comment, checklist=checklist,
        product_version=cert.product_version,
    ))


def _move(cert: Certification, target: CertificationStatus, *, actor: Principal | None = None) -> str:
    return transition(cert, CERTIFICATION_TRANSITIONS, target, actor=actor, what="Certification")


def _stage(cert: Certification, name: str) -> CertificationStage:
    for stage in cert.stages:
        if stage.name == name:
            return stage
    raise field_error("stage", f"unknown stage {name!r}")


def _body(session: Session, cert: Certification) -> dict[str, Any]:
    """The creation body of the revision under review, as stored."""
    return listings.version_body(listings.get_version(session, product_id=cert.product_id,
                                                      version=cert.product_version))


def _subject(session: Session, cert: Certification, stage: str) -> str:
    body = _body(session, cert)
    body = {**body, "documents": cert.documents}
    return sha256_hex({f: body.get(f) for f in STAGE_SUBJECTS[Stage(stage)]})


def _needs_four_eyes(session: Session, cert: Certification) -> bool:
    body = _body(session, cert)
    return body["classification"] == "important" or bool(body["contains_personal_info"])


def approvals_needed(session: Session, cert: Certification, stage: str) -> int:
    """How many approvals by different users the stage needs: two at compliance for `important` data
    or personal information (four-eyes), one otherwise."""
    return 2 if stage == Stage.COMPLIANCE and _needs_four_eyes(session, cert) else 1


def _decided(session: Session, cert: Certification) -> None:
    outbox.emit(session, event_type="certification.decided", org_ids=[cert.owner_org_id], payload={
        "certification_id": cert.id, "product_id": cert.product_id, "product_version": cert.product_version,
        "status": cert.status, "certificate_number": cert.certificate_number})


def _locked(session: Session, certification_id: str) -> Certification:
    cert = session.execute(
        select(Certification).where(Certification.id == certification_id).with_for_update()
    ).scalar_one_or_none()
    if cert is None:
        raise NotFound("No such certification.")
    return cert


def _involved(cert: Certification, principal: Principal | None) -> bool:
    """Operators, the owner and the assessors assigned to one of its stages."""
    if principal is None:
        return False
    if principal.is_operator or principal.org_id == cert.owner_org_id:
        return True
    return principal.org_type == "assessor" and any(s.assessor_org_id == principal.org_id for s in cert.stages)


def _can_see(session: Session, cert: Certification, principal: Principal | None) -> bool:
    return cert.status == C.PUBLIC_NOTICE or _involved(cert, principal)


def _visible(session: Session, certification_id: str, principal: Principal | None,
             *, lock: bool = False) -> Certification:
    cert = _locked(session, certification_id) if lock else session.get(Certification, certification_id)
    if cert is None or not _can_see(session, cert, principal):
        raise NotFound("No such certification.")
    return cert


def _require_owner(cert: Certification, actor: Principal) -> None:
    if actor.org_id != cert.owner_org_id:
        raise Forbidden("Only the product's vendor may do this.",
                        next_step="sign in as a member of the vendor that owns the product")
    actor.require_verified("certification requests")


# Authorization checks (`Blueprint.authorize`, before the body is parsed): each reads without a
# lock and applies the same rule its service applies again on the locked row. Forbidden, NotFound.
def check_may_submit(_session: Session, actor: Principal, **_ids: Any) -> None:
    """Whether the actor may request certifications at all (a verified vendor)."""
    actor.require_type("vendor", action="certification requests")


def check_owner(session: Session, actor: Principal, *, certification_id: str, **_ids: Any) -> None:
    """Whether the actor is the certified product's vendor (404 when it may not see the certification)."""
    _require_owner(_visible(session, certification_id, actor), actor)


def _check_reviewer(cert: Certification, actor: Principal, stage: str | None = None) -> None:
    """Operators and, for their assigned stages (but compliance), assessors; never the owner. Without
    a `stage`, whether the actor may review some stage of it."""
    if actor.org_id == cert.owner_org_id:
        raise Forbidden("Nobody reviews a product of their own organization.",
                        next_step="an operator or an assessor of another organization must review it")
    actor.require_verified("reviews")
    if actor.is_operator:
        pass
    elif actor.org_type == "assessor":
        if stage is None:
            if not any(s.assessor_org_id == actor.org_id and s.name != Stage.COMPLIANCE for s in cert.stages):
                raise Forbidden("Your organization is not assigned to review any stage of this certification.",
                                next_step="an operator must assign your organization to a stage first")
        elif stage == Stage.COMPLIANCE or _stage(cert, stage).assessor_org_id != actor.org_id:
            raise Forbidden(f"Your organization is not assigned to review the {stage} stage.",
                            next_step="an operator must assign your organization to this stage first")
    else:
        raise Forbidden("Only operators and assigned assessors review certifications.",
                        next_step="ask the exchange's operators, or an assessor they assigned, to review it")


def check_may_review(session: Session, actor: Principal, *, certification_id: str, **_ids: Any) -> None:
    """Whether the actor may review some stage of the certification."""
    _check_reviewer(_visible(session, certification_id, actor), actor)


def _check_objector(cert: Certification, actor: Principal) -> None:
    actor.require_verified("objections")
    if actor.org_id == cert.owner_org_id:
        raise Forbidden("The vendor cannot object to its own product's certification.",
                        next_step="none: only other organizations may object to it")


def check_may_object(session: Session, actor: Principal, *, certification_id: str, **_ids: Any) -> None:
    """Whether the actor may object to the certification (a verified organization not its owner)."""
    _check_objector(_visible(session, certification_id, actor), actor)


# -- submission -------------------------------------------------------------------------------------
def submit(session: Session, *, product_id: str, documents: list[dict[str, str]], actor: Principal) -> Certification:
    """The owner asks for certification of the product's newest draft revision (frozen while in review).

    Raises NotFound (product not visible), Forbidden (not the owner / not verified), Conflict (already
    under certification, nothing to certify).
    """
    check_may_submit(session, actor)
    product = listings.get_product(session, product_id=product_id, principal=actor)
    if product.owner_org_id != actor.org_id:
        raise Forbidden("Only the product's vendor may request its certification.",
                        next_step="sign in as a member of the vendor that owns the product")
    busy = session.execute(
        select(Certification.id).where(Certification.product_id == product_id,
                                       Certification.status.in_(list(OPEN_STATUSES)))
    ).first()
    if busy is not None:
        raise Conflict(f"Product {product_id} is already under certification ({busy.id}).",
                       next_step="follow the open certification (GET /certifications/{id}), or withdraw it first")
    version = listings.submit_for_review(session, product_id=product_id, actor=actor)
    cert = Certification(product_id=product_id, product_version=version.version, owner_org_id=actor.org_id,
                         status=C.SUBMITTED, documents=documents, round=1)
    session.add(cert)
    session.flush()
    for position, name in enumerate(STAGES):
        session.add(CertificationStage(certification_id=cert.id, name=name, position=position,
                                       status=StageStatus.PENDING, approvals=[]))
    _event(session, cert, actor, "submitted", comment=f"{len(documents)} document(s)")
    session.flush()
    session.refresh(cert)
    return cert


def get(session: Session, *, certification_id: str, principal: Principal | None) -> Certification:
    """A certification the caller may see (owner, operators, assigned assessors; anyone under notice).

    A notice period that has ended with no open objection is concluded here (API.md: any read after
    the deadline approves), in the reading request's transaction.
    """
    cert = _visible(session, certification_id, principal)
    if cert.status == C.PUBLIC_NOTICE and cert.notice_ends_at and cert.notice_ends_at <= utcnow():
        cert = _locked(session, certification_id)
        _conclude_notice(session, cert)
    return cert


def list_query(*, principal: Principal | None, status: str | None) -> Select:
    """Operators: the queue; owners: their own; assessors: assigned; `public_notice`: everyone."""
    stmt = select(Certification).order_by(Certification.created_at.desc(), Certification.id)
    if status:
        stmt = stmt.where(Certification.status == status)
    if status == C.PUBLIC_NOTICE:
        return stmt
    if principal is None:
        raise Unauthorized("Sign in to list certifications (anyone may list ?status=public_notice).")
    if principal.is_operator:
        return stmt
    assigned = exists().where(CertificationStage.certification_id == Certification.id,
                              CertificationStage.assessor_org_id == principal.org_id)
    return stmt.where(or_(Certification.owner_org_id == principal.org_id, assigned))


# -- review -----------------------------------------------------------------------------------------
def _start_review(session: Session, cert: Certification, actor: Principal) -> None:
    if cert.status == C.SUBMITTED:
        _move(cert, C.IN_REVIEW, actor=actor)
        _event(session, cert, actor, "review_started")


def assign(session: Session, *, certification_id: str, stage: str, assessor_org_id: str,
           actor: Principal) -> Certification:
    """Operator: let an assessor organization review `quality` or `ownership` (compliance: operators only)."""
    actor.require_operator()
    cert = _visible(session, certification_id, actor, lock=True)
    if stage not in ASSIGNABLE_STAGES:
        raise field_error("stage", "only quality and ownership can be assigned; compliance is reviewed by operators")
    if cert.status not in REVIEWABLE_STATUSES:
        raise Conflict(f"A certification in status {cert.status} cannot be assigned.",
                       next_step=CERTIFICATION_TRANSITIONS.next_step(cert.status))
    assessor = session.get(Organization, assessor_org_id)
    if assessor is None or assessor.type != "assessor" or assessor.status != OrgStatus.VERIFIED:
        raise field_error("assessor_org_id", "must be a verified assessor organization")
    target = _stage(cert, stage)
    if target.status != StageStatus.PENDING:
        raise Conflict(f"Stage {stage} is already {target.status}.",
                       next_step="this stage is decided; assign a stage that is still pending")
    target.assessor_org_id = assessor.id
    _start_review(session, cert, actor)
    _event(session, cert, actor, "assigned", stage=stage, comment=f"assessor {assessor.id}")
    audit.record(session, actor, "certification.assigned", "certification", cert.id, stage=stage,
                 assessor_org_id=assessor.id)
    session.flush()
    return cert


def review(session: Session, *, certification_id: str, stage: str, decision: str, comment: str | None,
           checklist: dict[str, Any] | None, actor: Principal) -> Certification:
    """Record one review of one stage; decides the certification when the rules say so.

    Raises NotFound, Forbidden (own product, unassigned assessor, compliance by non-operator),
    ValidationFailed (core at compliance), Conflict (stage decided, same user approving twice,
    certification not under review).
    """
    cert = _visible(session, certification_id, actor, lock=True)
    target = _stage(cert, stage)
    _check_reviewer(cert, actor, stage)
    if cert.status not in REVIEWABLE_STATUSES:
        raise Conflict(f"A certification in status {cert.status} is not under review.",
                       next_step=CERTIFICATION_TRANSITIONS.next_step(cert.status))
    if target.status != StageStatus.PENDING:
        raise Conflict(f"Stage {stage} was already decided ({target.status}).",
                       next_step="nothing to do: the stage is decided; a resubmission reopens it")
    decision = Decision(decision)
    if decision == Decision.APPROVE and stage == Stage.COMPLIANCE:
        body = _body(session, cert)
        if body["classification"] == "core":
            raise ValidationFailed("Core data can never pass compliance.", rule="core_never_passes_compliance",
                                   errors={"decision": ["core data can never be approved at compliance"]})
    if decision == Decision.APPROVE and actor.user_id in (target.approvals or []):
        raise Conflict("You already approved this stage; a second approval must come from another user.",
                       next_step="another user, not you, must give the second approval")
    _start_review(session, cert, actor)
    _event(session, cert, actor, "review", stage=stage, decision=decision, comment=comment, checklist=checklist)
    audit.record(session, actor, "certification.reviewed", "certification", cert.id, stage=stage,
                 decision=str(decision))
    if decision == Decision.APPROVE:
        target.approvals = [*(target.approvals or []), actor.user_id]
        needed = approvals_needed(session, cert, stage)
        if len(target.approvals) >= needed:
            transition(target, STAGE_TRANSITIONS, StageStatus.APPROVED, actor=actor, what=f"Stage {stage}", root=cert)
            target.subject_digest = _subject(session, cert, stage)
            if all(s.status == StageStatus.APPROVED for s in cert.stages):
                _all_stages_approved(session, cert, actor)
        else:
            _event(session, cert, actor, "awaiting_second_approval", stage=stage,
                   comment=f"{len(target.approvals)} of {needed} approvals")
    else:
        transition(target, STAGE_TRANSITIONS, DECISION_TO_STAGE[decision],
                   actor=actor, what=f"Stage {stage}", root=cert)
        outcome = C.REJECTED if decision == Decision.REJECT else C.CHANGES_REQUESTED
        _move(cert, outcome, actor=actor)
        listings.return_to_draft(session, product_id=cert.product_id, version=cert.product_version,
                                 outcome=str(outcome))
        _event(session, cert, actor, str(outcome), stage=stage, decision=decision, comment=comment)
        _decided(session, cert)
    session.flush()
    return cert


def _all_stages_approved(session: Session, cert: Certification, actor: Principal | None) -> None:
    days = int(current_app.config.get("NOTICE_DAYS", 0))
    if days > 0:
        _move(cert, C.PUBLIC_NOTICE, actor=actor)
        cert.notice_ends_at = utcnow() + timedelta(days=days)
        _event(session, cert, actor, "public_notice", comment=f"notice until {cert.notice_ends_at.isoformat()}")
    else:
        _approve(session, cert, actor)


def _approve(session: Session, cert: Certification, actor: Principal | None) -> None:
    if not all(s.status == StageStatus.APPROVED for s in cert.stages):
        raise Conflict("Every stage must be approved before the certification is.",
                       next_step="the assessors must approve every stage first")
    cert_row = certificates.issue(session, certification_id=cert.id, product_id=cert.product_id,
                                  version=cert.product_version, vendor_org_id=cert.owner_org_id)
    cert.certificate_number = cert_row.number
    _move(cert, C.APPROVED, actor=actor)
    _event(session, cert, actor, "approved", comment=f"certificate {cert_row.number}")
    _decided(session, cert)
    audit.record(session, actor, "certificate.issued", "certificate", cert_row.number,
                 certification_id=cert.id, product_id=cert.product_id, version=cert.product_version)


# -- the vendor's moves -----------------------------------------------------------------------------
def resubmit(session: Session, *, certification_id: str, documents: list[dict[str, str]] | None,
             actor: Principal) -> Certification:
    """Owner: send the revised product back for review after `changes_requested`.

    Stages whose subject is unchanged keep their approval; the others are reviewed again.
    """
    cert = _visible(session, certification_id, actor, lock=True)
    _require_owner(cert, actor)
    if cert.status != C.CHANGES_REQUESTED:
        raise Conflict(f"Only a certification with changes requested can be resubmitted (it is {cert.status}).",
                       next_step=CERTIFICATION_TRANSITIONS.next_step(cert.status))
    version = listings.submit_for_review(session, product_id=cert.product_id, actor=actor)
    cert.product_version = version.version
    if documents is not None:
        cert.documents = documents
    cert.round += 1
    _move(cert, C.IN_REVIEW, actor=actor)
    kept = []
    for stage in cert.stages:
        unchanged = stage.status == StageStatus.APPROVED and stage.subject_digest == _subject(session, cert, stage.name)
        if unchanged:
            kept.append(stage.name)
            continue
        if stage.status != StageStatus.PENDING:
            transition(stage, STAGE_TRANSITIONS, StageStatus.PENDING, actor=actor, what=f"Stage {stage.name}",
                       root=cert)
        stage.approvals = []
        stage.subject_digest = None
    _event(session, cert, actor, "resubmitted",
           comment=f"version {version.version}; kept approved: {', '.join(kept) or 'none'}")
    session.flush()
    return cert


def withdraw(session: Session, *, certification_id: str, actor: Principal) -> Certification:
    """Owner: withdraw a request that is submitted, in review or waiting for changes."""
    cert = _visible(session, certification_id, actor, lock=True)
    if actor.org_id != cert.owner_org_id:
        raise Forbidden("Only the product's vendor may withdraw its certification.",
                        next_step="sign in as a member of the vendor that owns the product")
    previous = _move(cert, C.WITHDRAWN, actor=actor)
    if previous != C.CHANGES_REQUESTED:
        listings.return_to_draft(session, product_id=cert.product_id, version=cert.product_version,
                                 outcome="withdrawn")
    _event(session, cert, actor, "withdrawn")
    session.flush()
    return cert


# -- public notice ----------------------------------------------------------------------------------
def object_to(session: Session, *, certification_id: str, reason: str, evidence: str | None,
              actor: Principal) -> Objection:
    """Any verified organization other than the owner objects during the notice period."""
    cert = _visible(session, certification_id, actor, lock=True)
    _check_objector(cert, actor)
    if cert.status != C.PUBLIC_NOTICE or (cert.notice_ends_at and cert.notice_ends_at <= utcnow()):
        raise Conflict("Objections are accepted only while the certification is under public notice.",
                       next_step="objections can be made only during a public notice; none is running for this "
                                 "certification")
    objection = Objection(certification_id=cert.id, org_id=actor.org_id, user_id=actor.user_id,
                          reason=reason, evidence=evidence, status=ObjectionStatus.OPEN)
    session.add(objection)
    session.flush()
    _event(session, cert, actor, "objection", comment=reason)
    return objection


def get_objection(session: Session, *, objection_id: str, principal: Principal | None) -> Objection:
    objection = session.get(Objection, objection_id)
    if objection is None:
        raise NotFound("No such objection.")
    cert = session.get(Certification, objection.certification_id)
    if principal is None or not (principal.is_operator or principal.org_id in (objection.org_id, cert.owner_org_id)):
        raise NotFound("No such objection.")
    return objection


def resolve_objection(session: Session, *, objection_id: str, upheld: bool, comment: str | None,
                      actor: Principal) -> Objection:
    """Operator: an upheld objection sends the product back (`changes_requested`); a dismissed one
    lets the notice end normally."""
    actor.require_operator()
    objection = session.get(Objection, objection_id)
    if objection is None:
        raise NotFound("No such objection.")
    cert = _locked(session, objection.certification_id)
    # Re-read under the certification's lock: a concurrent resolution is seen, not overwritten.
    objection = load_for_update(session, Objection, objection_id)
    if objection.status != ObjectionStatus.OPEN:
        raise Conflict("This objection was already resolved.",
                       next_step="nothing to do: the objection is resolved; read its resolution")
    transition(objection, OBJECTION_TRANSITIONS, ObjectionStatus.UPHELD if upheld else ObjectionStatus.DISMISSED,
               actor=actor, what="Objection")
    objection.resolution_comment = comment
    objection.resolved_by = actor.user_id
    objection.resolved_at = utcnow()
    _event(session, cert, actor, "objection_upheld" if upheld else "objection_dismissed", comment=comment)
    audit.record(session, actor, "objection.resolved", "objection", objection.id, upheld=upheld,
                 certification_id=cert.id)
    if upheld and cert.status == C.PUBLIC_NOTICE:
        _move(cert, C.CHANGES_REQUESTED, actor=actor)
        _decided(session, cert)
        listings.return_to_draft(session, product_id=cert.product_id, version=cert.product_version,
                                 outcome="changes_requested")
    elif cert.status == C.PUBLIC_NOTICE and cert.notice_ends_at and cert.notice_ends_at <= utcnow():
        _conclude_notice(session, cert)
    session.flush()
    return objection


def _open_objections(session: Session, cert: Certification) -> int:
    return session.execute(
        select(func.count()).where(Objection.certification_id == cert.id, Objection.status == ObjectionStatus.OPEN)
    ).scalar_one()


def _conclude_notice(session: Session, cert: Certification) -> bool:
    """Approve a certification whose notice has ended with no open objection; True if it did."""
    if cert.status != C.PUBLIC_NOTICE or cert.notice_ends_at is None or cert.notice_ends_at > utcnow():
        return False
    if _open_objections(session, cert):
        return False
    _approve(session, cert, None)
    session.flush()
    return True


def notices_due(session: Session, now: datetime, limit: int) -> list[str]:
    """Ids of at most `limit` certifications whose public notice has ended, the oldest first (the
    sweep's batch)."""
    return list(session.execute(
        select(Certification.id).where(Certification.status == C.PUBLIC_NOTICE, Certification.notice_ends_at <= now)
        .order_by(Certification.notice_ends_at, Certification.id).limit(limit)
    ).scalars())


def conclude_notice(session: Session, certification_id: str, _now: datetime | None = None) -> bool:
    """Lock one certification and approve it if its notice ended with no open objection (one sweep item)."""
    return _conclude_notice(session, _locked(session, certification_id))


# -- views ------------------------------------------------------------------------------------------
def shown(session: Session, cert: Certification) -> Facts:
    """A certification with its revision's body, history and objections (`CertificationSchema` shows the
    review file only to those involved)."""
    product = _body(session, cert)
    objections = session.execute(
        select(Objection).where(Objection.certification_id == cert.id).order_by(Objection.created_at)
    ).scalars().all()
    history = session.execute(
        select(CertificationEvent).where(CertificationEvent.certification_id == cert.id)
        .order_by(CertificationEvent.id)).scalars().all()
    return Facts(cert, product={**product, "product_id": cert.product_id, "version": cert.product_version},
                 history=history, objections=objections)


def involved(cert: Certification, principal: Principal | None) -> bool:
    """Operators, the owner and the assessors assigned to one of its stages (who see the review file)."""
    return _involved(cert, principal)
