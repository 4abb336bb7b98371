"""Every transition table, whole: every (from, to) pair of its enum is allowed or refused (409).

The allowed pairs are written out by hand below (never read from the tables), so a change to a
table has to change this file too. The last test finds every status enum in every `states.py` and
fails for one whose table is not listed here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from enum import StrEnum
from itertools import product
from pathlib import Path

import pytest

from certification.states import (
    CERTIFICATE_TRANSITIONS,
    CERTIFICATION_TRANSITIONS,
    OBJECTION_TRANSITIONS,
    STAGE_TRANSITIONS,
    CertificateStatus,
    CertificationStatus,
    ObjectionStatus,
    StageStatus,
)
from delivery.states import (
    ENTITLEMENT_TRANSITIONS,
    RELEASE_TRANSITIONS,
    AccessStatus,
    EntitlementStatus,
    ReleaseStatus,
)
from exchange.errors import InvalidTransition
from exchange.events.states import DELIVERY_TRANSITIONS, DeliveryStatus
from exchange.identity.states import ORG_TRANSITIONS, OrgStatus
from exchange.states import check_transition
from listings.states import PRODUCT_TRANSITIONS, VERSION_TRANSITIONS, ProductStatus, VersionStatus
from trading.states import (
    CONTRACT_TRANSITIONS,
    DISPUTE_TRANSITIONS,
    DOSSIER_TRANSITIONS,
    OFFER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    PAYOUT_TRANSITIONS,
    PROCUREMENT_TRANSITIONS,
    SUBSCRIPTION_TRANSITIONS,
    TRADE_TRANSITIONS,
    ContractStatus,
    DisputeStatus,
    DossierStatus,
    OfferStatus,
    PaymentStatus,
    PayoutStatus,
    ProcurementStatus,
    SubscriptionStatus,
    TradeStatus,
)

ROOT = Path(__file__).resolve().parents[2]

# (name, table, enum, the allowed (from, to) pairs as plain strings)
TABLES: list[tuple[str, Mapping, type[StrEnum], set[tuple[str, str]]]] = [
    ("organization", ORG_TRANSITIONS, OrgStatus, {
        ("pending", "verified"), ("pending", "rejected"),
        ("verified", "suspended"),
        ("suspended", "verified"),
    }),
    ("product", PRODUCT_TRANSITIONS, ProductStatus, {
        ("draft", "in_review"), ("draft", "delisted"),
        ("in_review", "draft"), ("in_review", "listed"),
        ("listed", "suspended"), ("listed", "delisted"),
        ("suspended", "listed"), ("suspended", "delisted"),
    }),
    ("version", VERSION_TRANSITIONS, VersionStatus, {
        ("draft", "in_review"),
        ("in_review", "draft"), ("in_review", "certified"), ("in_review", "rejected"),
        ("certified", "superseded"),
    }),
    ("certification", CERTIFICATION_TRANSITIONS, CertificationStatus, {
        ("submitted", "in_review"), ("submitted", "withdrawn"),
        ("in_review", "public_notice"), ("in_review", "approved"), ("in_review", "rejected"),
        ("in_review", "changes_requested"), ("in_review", "withdrawn"),
        ("public_notice", "approved"), ("public_notice", "changes_requested"),
        ("changes_requested", "in_review"), ("changes_requested", "withdrawn"),
    }),
    ("stage", STAGE_TRANSITIONS, StageStatus, {
        ("pending", "approved"), ("pending", "rejected"), ("pending", "changes_requested"),
        ("approved", "pending"),
        ("changes_requested", "pending"),
    }),
    ("certificate", CERTIFICATE_TRANSITIONS, CertificateStatus, {
        ("valid", "suspended"), ("valid", "revoked"), ("valid", "expired"), ("valid", "superseded"),
        ("suspended", "valid"), ("suspended", "revoked"), ("suspended", "expired"), ("suspended", "superseded"),
    }),
    ("objection", OBJECTION_TRANSITIONS, ObjectionStatus, {
        ("open", "upheld"), ("open", "dismissed"),
    }),
    ("procurement", PROCUREMENT_TRANSITIONS, ProcurementStatus, {
        ("open", "contracted"), ("open", "cancelled"), ("open", "expired"),
    }),
    ("offer", OFFER_TRANSITIONS, OfferStatus, {
        ("pending", "accepted"), ("pending", "rejected"), ("pending", "countered"), ("pending", "withdrawn"),
        ("pending", "expired"),
    }),
    ("contract", CONTRACT_TRANSITIONS, ContractStatus, {
        ("pending_signatures", "signed"), ("pending_signatures", "cancelled"),
    }),
    ("trade", TRADE_TRANSITIONS, TradeStatus, {
        ("awaiting_payment", "escrowed"),
        # Unpaid: a subscription period that lapsed or was cancelled, the payment deadline, an operator.
        ("awaiting_payment", "cancelled"),
        ("escrowed", "delivered"), ("escrowed", "disputed"),
        # A per_call trade whose entitlement ended (refunded: no call was ever drawn).
        ("escrowed", "settled"), ("escrowed", "refunded"),
        ("delivered", "settled"), ("delivered", "disputed"),
        ("disputed", "settled"), ("disputed", "refunded"),
        # A per_call resolution that keeps access.
        ("disputed", "delivered"),
    }),
    ("subscription", SUBSCRIPTION_TRANSITIONS, SubscriptionStatus, {
        ("active", "cancelled"), ("active", "lapsed"), ("active", "ended"),
        # A revocation of access ends a cancelled or lapsed subscription whose paid periods still run.
        ("cancelled", "ended"), ("lapsed", "ended"),
    }),
    ("payment", PAYMENT_TRANSITIONS, PaymentStatus, {
        ("pending", "succeeded"), ("pending", "failed"), ("pending", "canceled"),
        # A duplicate success: refunded (a canceled payment's success arrived after all).
        ("canceled", "succeeded"), ("succeeded", "refund_pending"), ("refund_pending", "refunded"),
    }),
    ("dispute", DISPUTE_TRANSITIONS, DisputeStatus, {
        ("open", "resolved"),
    }),
    ("dossier", DOSSIER_TRANSITIONS, DossierStatus, {
        ("awaiting_filing", "filed"), ("awaiting_filing", "overdue"),
        # A late filing still files it.
        ("overdue", "filed"),
    }),
    ("payout", PAYOUT_TRANSITIONS, PayoutStatus, {
        ("pending", "paid"), ("pending", "failed"),
    }),
    ("webhook delivery", DELIVERY_TRANSITIONS, DeliveryStatus, {
        ("pending", "delivered"), ("pending", "failed"), ("pending", "cancelled"),
    }),
    ("entitlement", ENTITLEMENT_TRANSITIONS, EntitlementStatus, {
        ("active", "suspended"), ("active", "revoked"), ("active", "expired"),
        ("suspended", "active"), ("suspended", "revoked"), ("suspended", "expired"),
    }),
    ("release", RELEASE_TRANSITIONS, ReleaseStatus, {
        ("draft", "published"),
        ("published", "withdrawn"),
    }),
]

# Enums named "...Status" that are the outcome of a logged event, not the state of a row: a row is
# written once with it and never moves, so there is no transition to check. Each is named here
# explicitly (a new one fails the discovery test until it is listed here or given a table).
OUTCOMES: set[type[StrEnum]] = {
    AccessStatus,  # an access-log row's outcome (allowed / refused); the log is append-only
}


def _cases():
    for name, table, enum, allowed in TABLES:
        for current, target in product(enum, enum):
            yield pytest.param(table, current, target, (current.value, target.value) in allowed,
                               id=f"{name}:{current}->{target}")


@pytest.mark.parametrize(("table", "current", "target", "allowed"), list(_cases()))
def test_every_pair_of_every_table(table, current, target, allowed):
    if allowed:
        check_transition(table, current, target, what="Thing")
    else:
        with pytest.raises(InvalidTransition) as err:
            check_transition(table, current, target, what="Thing")
        assert err.value.status == 409


@pytest.mark.parametrize(("name", "table", "enum", "allowed"), TABLES, ids=[t[0] for t in TABLES])
def test_the_expected_pairs_name_real_statuses_and_every_status_has_a_row(name, table, enum, allowed):
    values = {s.value for s in enum}
    assert {s for pair in allowed for s in pair} <= values, f"{name}: a status the enum does not have"
    assert set(table) == set(enum), f"{name}: every status needs a row (frozenset() for a final one)"


def _states_modules() -> list[str]:
    """Every `states` module of the application packages (exchange and its subpackages, listings,
    certification, trading, and any package added next to them)."""
    names: list[str] = []
    for top in ("exchange", "listings", "certification", "trading"):
        package = importlib.import_module(top)
        names += [f"{top}.states"] if (ROOT / top / "states.py").exists() else []
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{top}."):
            if info.name.rsplit(".", 1)[-1] == "states" and info.name not in names:
                names.append(info.name)
    for path in ROOT.glob("*/states.py"):
        if path.parent.name not in ("exchange", "listings", "certification", "trading", "tests") and (
                path.parent / "__init__.py").exists():
            names.append(f"{path.parent.name}.states")
    return names


def test_every_status_enum_has_a_table_tested_here():
    covered = {enum for _, _, enum, _ in TABLES} | OUTCOMES
    found: dict[type[StrEnum], str] = {}
    for name in _states_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (isinstance(value, type) and issubclass(value, StrEnum) and value.__module__ == name
                    and attr.endswith("Status")):
                found[value] = name
    assert found, "no status enums found: the discovery is broken"
    assert set(found) >= OUTCOMES, "an excluded outcome enum is no longer a status enum of a states module"
    missing = {f"{m}.{e.__name__}" for e, m in found.items() if e not in covered}
    assert not missing, f"status enums without a table in tests/unit/test_transition_tables.py: {sorted(missing)}"
    # And each of them has a transition table in its module (a mapping keyed by the enum).
    for enum, name in found.items():
        tables = [v for v in vars(importlib.import_module(name)).values()
                  if isinstance(v, Mapping) and v and all(isinstance(k, enum) for k in v)]
        if enum in OUTCOMES:
            # An outcome that gains a table has become a state: it belongs in TABLES then.
            assert not tables, f"{name}.{enum.__name__} has a transition table: test it in TABLES"
            continue
        assert tables, f"{name}.{enum.__name__} has no transition table"


@pytest.mark.parametrize(("name", "table", "enum", "allowed"), TABLES, ids=[t[0] for t in TABLES])
def test_every_status_of_every_table_names_its_next_step(name, table, enum, allowed):
    steps = getattr(table, "next_steps", None)
    assert steps is not None, f"{name}: the table is not a TransitionTable (no next steps)"
    assert set(steps) == set(enum), f"{name}: a next step for every status: missing {set(enum) - set(steps)}"
    for status, step in steps.items():
        assert isinstance(step, str) and step.strip(), f"{name}: {status} has an empty next step"
        assert step == step.strip() and not step.endswith("."), f"{name}: {status}: one clause, no full stop"


@pytest.mark.parametrize(("table", "current", "target", "allowed"),
                         [c for c in _cases() if not c.values[3]])
def test_a_refused_move_names_the_next_step_of_the_status_it_is_in(table, current, target, allowed):
    with pytest.raises(InvalidTransition) as err:
        check_transition(table, current, target, what="Thing")
    assert err.value.next_step == table.next_steps[current]
