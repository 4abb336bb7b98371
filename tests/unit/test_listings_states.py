"""Every transition of the product and revision tables, allowed and refused (API.md Listings)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import pytest

from exchange.errors import InvalidTransition
from exchange.states import check_transition
from listings.states import PRODUCT_TRANSITIONS, VERSION_TRANSITIONS, ProductStatus, VersionStatus

P, V = ProductStatus, VersionStatus

# The contract, written out by hand so a change to the tables has to change this test too.
PRODUCT_ALLOWED = {
    (P.DRAFT, P.IN_REVIEW), (P.DRAFT, P.DELISTED),
    (P.IN_REVIEW, P.DRAFT), (P.IN_REVIEW, P.LISTED),
    (P.LISTED, P.SUSPENDED), (P.LISTED, P.DELISTED),
    (P.SUSPENDED, P.LISTED), (P.SUSPENDED, P.DELISTED),
}
VERSION_ALLOWED = {
    (V.DRAFT, V.IN_REVIEW),
    (V.IN_REVIEW, V.DRAFT), (V.IN_REVIEW, V.CERTIFIED), (V.IN_REVIEW, V.REJECTED),
    (V.CERTIFIED, V.SUPERSEDED),
}


@dataclass
class Thing:
    status: str


def _cases(enum, allowed):
    return [pytest.param(a, b, (a, b) in allowed, id=f"{a}->{b}") for a, b in product(enum, enum)]


@pytest.mark.parametrize(("current", "target", "allowed"), _cases(ProductStatus, PRODUCT_ALLOWED))
def test_product_transition_table(current, target, allowed):
    if allowed:
        check_transition(PRODUCT_TRANSITIONS, current, target, what="Product")
    else:
        with pytest.raises(InvalidTransition) as err:
            check_transition(PRODUCT_TRANSITIONS, current, target, what="Product")
        assert err.value.status == 409


@pytest.mark.parametrize(("current", "target", "allowed"), _cases(VersionStatus, VERSION_ALLOWED))
def test_version_transition_table(current, target, allowed):
    if allowed:
        check_transition(VERSION_TRANSITIONS, current, target, what="Version")
    else:
        with pytest.raises(InvalidTransition):
            check_transition(VERSION_TRANSITIONS, current, target, what="Version")


def test_tables_cover_every_status():
    assert set(PRODUCT_TRANSITIONS) == set(ProductStatus)
    assert set(VERSION_TRANSITIONS) == set(VersionStatus)
    assert PRODUCT_TRANSITIONS[P.DELISTED] == frozenset(), "delisted is final"
    assert VERSION_TRANSITIONS[V.REJECTED] == VERSION_TRANSITIONS[V.SUPERSEDED] == frozenset()


def test_unknown_status_is_refused():
    with pytest.raises(InvalidTransition):
        check_transition(PRODUCT_TRANSITIONS, "archived", "listed", what="Product")
