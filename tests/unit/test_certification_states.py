"""The certification, stage and certificate transition tables, whole."""

from __future__ import annotations

import itertools

import pytest

from certification.states import (
    CERTIFICATE_TRANSITIONS,
    CERTIFICATION_TRANSITIONS,
    STAGE_TRANSITIONS,
    CertificateStatus,
    CertificationStatus,
    StageStatus,
)
from exchange.errors import InvalidTransition
from exchange.states import check_transition

C, S, K = CertificationStatus, StageStatus, CertificateStatus
ALLOWED_CERTIFICATION = {
    (C.SUBMITTED, C.IN_REVIEW), (C.SUBMITTED, C.WITHDRAWN),
    (C.IN_REVIEW, C.PUBLIC_NOTICE), (C.IN_REVIEW, C.APPROVED), (C.IN_REVIEW, C.REJECTED),
    (C.IN_REVIEW, C.CHANGES_REQUESTED), (C.IN_REVIEW, C.WITHDRAWN),
    (C.PUBLIC_NOTICE, C.APPROVED), (C.PUBLIC_NOTICE, C.CHANGES_REQUESTED),
    (C.CHANGES_REQUESTED, C.IN_REVIEW), (C.CHANGES_REQUESTED, C.WITHDRAWN),
}
ALLOWED_STAGE = {(S.PENDING, S.APPROVED), (S.PENDING, S.REJECTED), (S.PENDING, S.CHANGES_REQUESTED),
                 (S.APPROVED, S.PENDING), (S.CHANGES_REQUESTED, S.PENDING)}
ALLOWED_CERTIFICATE = {
    (K.VALID, K.SUSPENDED), (K.VALID, K.REVOKED), (K.VALID, K.EXPIRED), (K.VALID, K.SUPERSEDED),
    (K.SUSPENDED, K.VALID), (K.SUSPENDED, K.REVOKED), (K.SUSPENDED, K.EXPIRED), (K.SUSPENDED, K.SUPERSEDED),
}


def _cases(enum, allowed):
    return [(a, b, (a, b) in allowed) for a, b in itertools.product(enum, enum)]


@pytest.mark.parametrize(("current", "target", "ok"), _cases(CertificationStatus, ALLOWED_CERTIFICATION))
def test_certification_table(current, target, ok):
    if ok:
        check_transition(CERTIFICATION_TRANSITIONS, current, target, what="Certification")
    else:
        with pytest.raises(InvalidTransition):
            check_transition(CERTIFICATION_TRANSITIONS, current, target, what="Certification")


@pytest.mark.parametrize(("current", "target", "ok"), _cases(StageStatus, ALLOWED_STAGE))
def test_stage_table(current, target, ok):
    if ok:
        check_transition(STAGE_TRANSITIONS, current, target, what="Stage")
    else:
        with pytest.raises(InvalidTransition):
            check_transition(STAGE_TRANSITIONS, current, target, what="Stage")


@pytest.mark.parametrize(("current", "target", "ok"), _cases(CertificateStatus, ALLOWED_CERTIFICATE))
def test_certificate_table(current, target, ok):
    if ok:
        check_transition(CERTIFICATE_TRANSITIONS, current, target, what="Certificate")
    else:
        with pytest.raises(InvalidTransition):
            check_transition(CERTIFICATE_TRANSITIONS, current, target, what="Certificate")


def test_terminal_states_have_no_way_out():
    for terminal in (C.APPROVED, C.REJECTED, C.WITHDRAWN):
        assert CERTIFICATION_TRANSITIONS[terminal] == frozenset()
    assert CERTIFICATE_TRANSITIONS[K.REVOKED] == frozenset()
