"""Certification, stage and certificate state machines (transition tables enforced in one place)."""

from __future__ import annotations

from enum import StrEnum


class CertificationStatus(StrEnum):
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    PUBLIC_NOTICE = "public_notice"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    WITHDRAWN = "withdrawn"


C = CertificationStatus
CERTIFICATION_TRANSITIONS: dict[CertificationStatus, frozenset[CertificationStatus]] = {
    C.SUBMITTED: frozenset({C.IN_REVIEW, C.WITHDRAWN}),
    C.IN_REVIEW: frozenset({C.PUBLIC_NOTICE, C.APPROVED, C.REJECTED, C.CHANGES_REQUESTED, C.WITHDRAWN}),
    # An upheld objection sends the product back to its vendor; a notice that ends clean approves.
    C.PUBLIC_NOTICE: frozenset({C.APPROVED, C.CHANGES_REQUESTED}),
    C.CHANGES_REQUESTED: frozenset({C.IN_REVIEW, C.WITHDRAWN}),
    C.APPROVED: frozenset(),
    C.REJECTED: frozenset(),
    C.WITHDRAWN: frozenset(),
}
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
STAGE_TRANSITIONS: dict[StageStatus, frozenset[StageStatus]] = {
    S.PENDING: frozenset({S.APPROVED, S.REJECTED, S.CHANGES_REQUESTED}),
    # Resubmission re-opens a stage whose subject changed (or that asked for the changes).
    S.APPROVED: frozenset({S.PENDING}),
    S.CHANGES_REQUESTED: frozenset({S.PENDING}),
    S.REJECTED: frozenset(),
}


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
CERTIFICATE_TRANSITIONS: dict[CertificateStatus, frozenset[CertificateStatus]] = {
    K.VALID: frozenset({K.SUSPENDED, K.REVOKED, K.EXPIRED, K.SUPERSEDED}),
    K.SUSPENDED: frozenset({K.VALID, K.REVOKED, K.EXPIRED, K.SUPERSEDED}),
    K.REVOKED: frozenset(),
    K.EXPIRED: frozenset(),
    K.SUPERSEDED: frozenset(),
}


class ObjectionStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


J = ObjectionStatus
OBJECTION_TRANSITIONS: dict[ObjectionStatus, frozenset[ObjectionStatus]] = {
    # An operator resolves an open objection once, either way.
    J.OPEN: frozenset({J.UPHELD, J.DISMISSED}),
    J.UPHELD: frozenset(),
    J.DISMISSED: frozenset(),
}


# What each stage looked at: an approved stage survives a resubmission only if none of these
# fields of the product revision (nor, for ownership, the documents) changed.
STAGE_SUBJECTS: dict[Stage, tuple[str, ...]] = {
    Stage.COMPLIANCE: ("title", "category", "classification", "contains_personal_info", "origin_region",
                       "scenarios", "license", "data_source", "delivery_mode", "coverage"),
    Stage.QUALITY: ("title", "summary", "description", "keywords", "data_format", "update_frequency",
                    "sample", "coverage", "volume", "price"),
    Stage.OWNERSHIP: ("data_source", "license", "documents"),
}
