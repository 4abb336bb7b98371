"""The real app plus one test-only route, served by gunicorn in the scale-out proof
(`gunicorn tests.proof_app:app`); never part of the shipped app.

`POST /api/v1/_proof/payouts` (operators) `{"org_id", "amount", "reference"}` posts one ledger entry
and emits `payout.sent` to the organization in the same transaction: an acknowledged call must
leave both, however the node dies afterwards. Trade flows replace it once trading exists.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from app import create_app
from exchange import outbox
from exchange.api import AUTH, Blueprint
from exchange.auth import current_principal
from exchange.db import db
from exchange.fields import StrictInteger, StrictSchema, Text
from exchange.ledger.engine import AccountRef, Posting, post_entry


class ProofPayoutSchema(StrictSchema):
    org_id = fields.String(required=True)
    amount = StrictInteger(required=True, minimum=1)
    reference = Text(required=True, max_length=80)


def build() -> Any:
    app = create_app()
    blp = Blueprint("proof", __name__, url_prefix="/api/v1/_proof")

    @blp.route("/payouts", methods=["POST"])
    @blp.arguments(ProofPayoutSchema)
    @blp.response(201)
    @blp.doc(security=AUTH)
    def payout(data: dict[str, Any]) -> Any:
        current_principal().require_operator()
        org, amount = data["org_id"], data["amount"]
        entry = post_entry(db.session, kind="payout", metadata={"reference": data["reference"]}, postings=[
            Posting(AccountRef(org, "buyer_funding", "CNY"), -amount),
            Posting(AccountRef(org, "seller_payable", "CNY"), amount),
        ])
        evt = outbox.emit(db.session, event_type="payout.sent", org_ids=[org], payload={
            "reference": data["reference"], "amount": {"amount": amount, "currency": "CNY"},
            "ledger_entry_id": entry.id, "seq": entry.seq,
        })
        return {"entry_id": entry.id, "event_id": evt.id}

    app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(blp)
    return app


app = build()
