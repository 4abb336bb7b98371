"""Kernel rules without a database: the organization state machine, whole, and the Principal's checks."""

from __future__ import annotations

import itertools

import pytest

from exchange.errors import Forbidden, InvalidTransition
from exchange.identity.states import ORG_TRANSITIONS, OrgStatus
from exchange.principal import Principal
from exchange.states import check_transition

ALLOWED = {
    ("pending", "verified"), ("pending", "rejected"),
    ("verified", "suspended"), ("suspended", "verified"),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(list(OrgStatus), repeat=2)))
def test_the_organization_state_table_whole(current, target):
    if (current.value, target.value) in ALLOWED:
        check_transition(ORG_TRANSITIONS, current, target, what="Organization")
    else:
        with pytest.raises(InvalidTransition):
            check_transition(ORG_TRANSITIONS, current, target, what="Organization")


def test_unknown_statuses_are_invalid_transitions():
    with pytest.raises(InvalidTransition):
        check_transition(ORG_TRANSITIONS, "pending", "archived", what="Organization")


def principal(org_type: str = "vendor", status: str = "verified", role: str = "admin") -> Principal:
    return Principal(user_id="usr_1", org_id="org_1", org_type=org_type, org_status=status, role=role)


@pytest.mark.parametrize("status", ["pending", "rejected", "suspended"])
def test_unverified_organizations_are_refused_verified_only_actions(status):
    p = principal(status=status)
    assert not p.is_verified
    with pytest.raises(Forbidden, match=status):
        p.require_verified("signing")
    with pytest.raises(Forbidden):
        p.require_type("vendor", action="listing")
    principal().require_verified()
    principal().require_type("vendor", "enterprise")


@pytest.mark.parametrize(("org_type", "status", "operator"), [
    ("operator", "verified", True),
    ("operator", "suspended", False),
    ("vendor", "verified", False),
    ("enterprise", "verified", False),
    ("assessor", "verified", False),
])
def test_only_a_verified_operator_is_an_operator(org_type, status, operator):
    p = principal(org_type, status)
    assert p.is_operator is operator
    if operator:
        p.require_operator()
    else:
        with pytest.raises(Forbidden):
            p.require_operator()


def test_require_type_names_the_allowed_types():
    with pytest.raises(Forbidden, match="vendor"):
        principal("enterprise").require_type("vendor", action="listing products")


def test_an_authorization_check_needs_an_operation_that_requires_a_token():
    """`Blueprint.authorize` runs after authentication: on a public operation there is no principal
    to check, so registering one is a programming error, found when the route is declared."""
    from exchange.api import AUTH, OPTIONAL_AUTH, Blueprint
    from exchange.principal import operators_only

    blp = Blueprint("authorize_check", __name__)
    with pytest.raises(TypeError, match="requires a token"):
        @blp.route("/public", methods=["POST"])
        @blp.authorize(operators_only)
        @blp.doc(security=OPTIONAL_AUTH)
        def public() -> None: ...

    @blp.route("/private", methods=["POST"])
    @blp.authorize(operators_only)
    @blp.doc(security=AUTH)
    def private() -> None: ...
