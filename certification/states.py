"""Certification, stage and certificate state machines (transition tables enforced in one place)."""

from __future__ import annotations

from enum import StrEnum

from exchange.states import TransitionTable


class CertificationStatus(StrEnum):
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    PUBLIC_NOTICE = "public_notice"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    WITHDRAWN = "withdrawn"


C = CertificationStatus
CERTIFICATION_TRANSITIONS: TransitionTable[CertificationStatus] = TransitionTable({
    C.SUBMITTED: frozenset({C.IN_REVIEW, C.WITHDRAWN}),
    C.IN_REVIEW: frozenset({C.PUBLIC_NOTICE, C.APPROVED, C.REJECTED, C.CHANGES_REQUESTED, C.WITHDRAWN}),
    # An upheld objection sends the product back to its vendor; a notice that ends clean approves.
    C.PUBLIC_NOTICE: frozenset({C.APPROVED, C.CHANGES_REQUESTED}),
    C.CHANGES_REQUESTED: frozenset({C.IN_REVIEW, C.WITHDRAWN}),
    C.APPROVED: frozenset(),
    C.REJECTED: frozenset(),
    C.WITHDRAWN: frozenset(),
}, next_steps={
    C.SUBMITTED: "an operator must start the review first (review the compliance stage or assign an assessor)",
    C.IN_REVIEW: "wait for the assessors to decide every stage",
    C.PUBLIC_NOTICE: "wait for the public notice period to end (or for an operator to resolve its objections)",
    C.APPROVED: "the certification is approved and cannot change any more",
    C.REJECTED: "the certification was rejected and cannot change any more; submit the product again",
    C.CHANGES_REQUESTED: "the vendor must make the requested changes and resubmit the product",
    C.WITHDRAWN: "the certification was withdrawn and cannot change any more; submit the product again",
})
OPEN_STATUSES = frozenset({C.SUBMITTED, C.IN_REVIEW, C.PUBLIC_NOTICE, C.CHANGES_REQUESTED})
REVIEWABLE_STATUSES = frozenset({C.SUBMITTED, C.IN_REVIEW})


class Stage(StrEnum):
    COMPLIANCE = "compliance"
    QUALITY = "quality"
    OWNERSHIP = "ownership"


STAGES = (Stage.COMPLIANCE, Stage.QUALITY, Stage.OWNERSHIP)
ASSIGNABLE_STAGES = frozenset({Stage.QUALITY, Stage.OWNERSHIP})


class StageStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"


S = StageStatus
STAGE_TRANSITIONS: TransitionTable[StageStatus] = TransitionTable({
    S.PENDING: frozenset({S.APPROVED, S.REJECTED, S.CHANGES_REQUESTED}),
    # Resubmission re-opens a stage whose subject changed (or that asked for the changes).
    S.APPROVED: frozenset({S.PENDING}),
    S.CHANGES_REQUESTED: frozenset({S.PENDING}),
    S.REJECTED: frozenset(),
}, next_steps={
    S.PENDING: "the stage's assessor must decide it",
    S.APPROVED: "the stage is approved; only a resubmission that changes what it looked at reopens it",
    S.REJECTED: "the stage was rejected and cannot change any more",
    S.CHANGES_REQUESTED: "the vendor must make the requested changes and resubmit the product",
})


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"


DECISION_TO_STAGE = {
    Decision.APPROVE: S.APPROVED,
    Decision.REJECT: S.REJECTED,
    Decision.REQUEST_CHANGES: S.CHANGES_REQUESTED,
}


class CertificateStatus(StrEnum):
    VALID = "valid"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


K = CertificateStatus
CERTIFICATE_TRANSITIONS: TransitionTable[CertificateStatus] = TransitionTable({
    K.VALID: frozenset({K.SUSPENDED, K.REVOKED, K.EXPIRED, K.SUPERSEDED}),
    K.SUSPENDED: frozenset({K.VALID, K.REVOKED, K.EXPIRED, K.SUPERSEDED}),
    K.REVOKED: frozenset(),
    K.EXPIRED: frozenset(),
    K.SUPERSEDED: frozenset(),
}, next_steps={
    K.VALID: "the certificate is valid; only an operator may suspend or revoke it",
    K.SUSPENDED: "an operator must reinstate the certificate first",
    K.REVOKED: "the certificate was revoked and cannot change any more; certify the product again",
    K.EXPIRED: "the certificate has expired and cannot change any more; certify the product again",
    K.SUPERSEDED: "a newer certificate replaced this one; act on the product's current certificate",
})


class ObjectionStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


J = ObjectionStatus
OBJECTION_TRANSITIONS: TransitionTable[ObjectionStatus] = TransitionTable({
    # An operator resolves an open objection once, either way.
    J.OPEN: frozenset({J.UPHELD, J.DISMISSED}),
    J.UPHELD: frozenset(),
    J.DISMISSED: frozenset(),
}, next_steps={
    J.OPEN: "an operator must resolve the objection",
    J.UPHELD: "the objection was upheld and cannot change any more",
    J.DISMISSED: "the objection was dismissed and cannot change any more",
})


# What each stage looked at: an approved stage survives a resubmission only if none of these
# fields of the product revision (nor, for ownership, the documents) changed.
STAGE_SUBJECTS: dict[Stage, tuple[str, ...]] = {
    Stage.COMPLIANCE: ("title", "category", "classification", "contains_personal_info", "origin_region",
                       "scenarios", "license", "data_source", "delivery_mode", "coverage"),
    Stage.QUALITY: ("title", "summary", "description", "keywords", "data_format", "update_frequency",
                    "sample", "coverage", "volume", "price"),
    Stage.OWNERSHIP: ("data_source", "license", "documents"),
}
