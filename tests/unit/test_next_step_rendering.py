"""How a refusal's next step is rendered (issue 21): its own `next_step` field, and the last sentence
of `detail` unless the detail already says it; the principal's checks name theirs."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from exchange.errors import Conflict, Forbidden, render_domain_error, with_next_step
from exchange.principal import Principal


def test_the_next_step_ends_the_detail_as_a_sentence():
    assert with_next_step("Only the buyer pays a trade.", "sign in as a member of the buying organization") == (
        "Only the buyer pays a trade. Sign in as a member of the buying organization.")
    assert with_next_step("entitlement_suspended: dispute open", "an operator must resolve the dispute first") == (
        "entitlement_suspended: dispute open. An operator must resolve the dispute first.")


def test_a_detail_that_already_says_it_is_left_alone():
    detail = "An entitlement has at most 5 live keys; revoke one first."
    assert with_next_step(detail, "revoke one first") == detail
    assert with_next_step(detail, None) == detail


def test_the_problem_carries_next_step_and_the_detail_ends_with_it():
    with Flask(__name__).test_request_context():
        response = render_domain_error(Conflict("This trade is settled.", next_step="nothing more can change it"))
    body = json.loads(response.get_data())
    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    assert body["next_step"] == "nothing more can change it"
    assert body["detail"] == "This trade is settled. Nothing more can change it."


def _principal(status: str = "verified", org_type: str = "vendor") -> Principal:
    return Principal(user_id="usr_1", org_id="org_1", org_type=org_type, org_status=status, role="admin")


@pytest.mark.parametrize(("status", "step"), [
    ("pending", "an operator must verify your organization first"),
    ("suspended", "an operator must reinstate your organization first"),
    ("rejected", "your organization's registration was rejected; contact the exchange's operators"),
])
def test_an_organization_not_verified_is_told_what_unblocks_it(status, step):
    with pytest.raises(Forbidden) as err:
        _principal(status).require_verified("product listings")
    assert err.value.next_step == step


def test_the_wrong_type_and_a_non_operator_are_told_whom_it_takes():
    with pytest.raises(Forbidden) as err:
        _principal(org_type="enterprise").require_type("vendor", action="product listings")
    assert err.value.next_step == "sign in as a member of a vendor organization"
    with pytest.raises(Forbidden) as err:
        _principal(org_type="vendor").require_type("enterprise", action="procurements")
    assert err.value.next_step == "sign in as a member of an enterprise organization"
    with pytest.raises(Forbidden) as err:
        _principal().require_operator()
    assert "operators" in err.value.next_step
