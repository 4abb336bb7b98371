"""HTTP routes of certification, certificates, objections and the cross-border white list."""

from __future__ import annotations

from typing import Any

from certification import certificates, services, whitelist
from certification.schemas import (
    AssignmentSchema,
    CertificateSchema,
    CertificationCreateSchema,
    CertificationListArgsSchema,
    CertificationPageSchema,
    CertificationSchema,
    ObjectionCreateSchema,
    ObjectionSchema,
    ResolutionSchema,
    ResubmitSchema,
    ReviewSchema,
    WhitelistArgsSchema,
    WhitelistCreateSchema,
    WhitelistPageSchema,
    WhitelistSchema,
)
from exchange.api import AUTH, OPTIONAL_AUTH, Blueprint, paginate
from exchange.db import db
from exchange.fields import ReasonSchema
from exchange.principal import current_principal

blp = Blueprint("certification", __name__, url_prefix="/api/v1", description="Certification and certificates")
WRITE_ERRORS = (400, 401, 403, 404, 409, 415, 422)


def _shown(cert: Any) -> Any:
    return services.shown(db.session, cert)


@blp.route("/certifications", methods=["POST"])
@blp.arguments(CertificationCreateSchema)
@blp.response(201, CertificationSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def create_certification(data: dict[str, Any]) -> Any:
    """The product's vendor asks for certification of its newest draft revision (frozen while in review)."""
    cert = services.submit(db.session, product_id=data["product_id"], documents=data["documents"],
                           actor=current_principal())
    return _shown(cert)


@blp.route("/certifications", methods=["GET"])
@blp.arguments(CertificationListArgsSchema, location="query")
@blp.response(200, CertificationPageSchema)
@blp.doc(security=OPTIONAL_AUTH)
@blp.problems(401, 403, 422)
def list_certifications(args: dict[str, Any]) -> Any:
    """Operators: the queue; vendors: their own; assessors: assigned; `?status=public_notice`: public."""
    stmt = services.list_query(principal=current_principal(required=False), status=args.get("status"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/certifications/<certification_id>", methods=["GET"])
@blp.response(200, CertificationSchema)
@blp.doc(security=OPTIONAL_AUTH)
@blp.problems(401, 404)
def get_certification(certification_id: str) -> Any:
    """A certification with the revision under review, its stages and its full history."""
    cert = services.get(db.session, certification_id=certification_id, principal=current_principal(required=False))
    return _shown(cert)


@blp.route("/certifications/<certification_id>/assignments", methods=["POST"])
@blp.arguments(AssignmentSchema)
@blp.response(201, CertificationSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def assign(data: dict[str, Any], certification_id: str) -> Any:
    """Operators: let an assessor organization review the quality or ownership stage."""
    cert = services.assign(db.session, certification_id=certification_id, actor=current_principal(), **data)
    return _shown(cert)


@blp.route("/certifications/<certification_id>/reviews", methods=["POST"])
@blp.arguments(ReviewSchema)
@blp.response(201, CertificationSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def review(data: dict[str, Any], certification_id: str) -> Any:
    """Operators (any stage) or the assigned assessor (its stage): approve, reject or request changes."""
    cert = services.review(db.session, certification_id=certification_id, stage=data["stage"],
                           decision=data["decision"], comment=data.get("comment"),
                           checklist=data.get("checklist"), actor=current_principal())
    return _shown(cert)


@blp.route("/certifications/<certification_id>/resubmit", methods=["POST"])
@blp.arguments(ResubmitSchema)
@blp.response(200, CertificationSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def resubmit(data: dict[str, Any], certification_id: str) -> Any:
    """The vendor sends the revised product back after changes were requested."""
    cert = services.resubmit(db.session, certification_id=certification_id, documents=data.get("documents"),
                             actor=current_principal())
    return _shown(cert)


@blp.route("/certifications/<certification_id>/withdraw", methods=["POST"])
@blp.response(200, CertificationSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def withdraw(certification_id: str) -> Any:
    """The vendor withdraws its request (submitted, in review or waiting for changes)."""
    cert = services.withdraw(db.session, certification_id=certification_id, actor=current_principal())
    return _shown(cert)


@blp.route("/certifications/<certification_id>/objections", methods=["POST"])
@blp.arguments(ObjectionCreateSchema)
@blp.response(201, ObjectionSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def object_to(data: dict[str, Any], certification_id: str) -> Any:
    """Any other verified organization objects during the public notice period."""
    return services.object_to(db.session, certification_id=certification_id, reason=data["reason"],
                              evidence=data.get("evidence"), actor=current_principal())


@blp.route("/objections/<objection_id>", methods=["GET"])
@blp.response(200, ObjectionSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404)
def get_objection(objection_id: str) -> Any:
    """An objection (its author, the product's vendor and operators)."""
    return services.get_objection(db.session, objection_id=objection_id, principal=current_principal())


@blp.route("/objections/<objection_id>/resolution", methods=["POST"])
@blp.arguments(ResolutionSchema)
@blp.response(200, ObjectionSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def resolve_objection(data: dict[str, Any], objection_id: str) -> Any:
    """Operators: uphold (the product goes back for changes) or dismiss an objection."""
    return services.resolve_objection(db.session, objection_id=objection_id, upheld=data["upheld"],
                                      comment=data.get("comment"), actor=current_principal())


@blp.route("/certificates/<number>", methods=["GET"])
@blp.response(200, CertificateSchema)
@blp.problems(404)
def get_certificate(number: str) -> Any:
    """Public: the certificate with its signature and digest verified afresh on every call."""
    return certificates.shown(db.session, certificates.get(db.session, number))


def _certificate_action(action: str) -> None:
    func = getattr(certificates, action)

    @blp.route(f"/certificates/<number>/{action}", methods=["POST"], endpoint=f"certificate_{action}")
    @blp.arguments(ReasonSchema)
    @blp.response(200, CertificateSchema)
    @blp.doc(security=AUTH, summary=f"Operators: {action} a certificate (with a reason, audited)")
    @blp.problems(*WRITE_ERRORS)
    def change(data: dict[str, Any], number: str) -> Any:
        cert = func(db.session, number=number, reason=data["reason"], actor=current_principal())
        return certificates.shown(db.session, cert)


for _action in ("suspend", "reinstate", "revoke"):
    _certificate_action(_action)


@blp.route("/whitelist", methods=["POST"])
@blp.arguments(WhitelistCreateSchema)
@blp.response(201, WhitelistSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def create_whitelist_entry(data: dict[str, Any]) -> Any:
    """Operators: allow a category of data to cross from one region to another (never core)."""
    return whitelist.create(db.session, **data, actor=current_principal())


@blp.route("/whitelist", methods=["GET"])
@blp.arguments(WhitelistArgsSchema, location="query")
@blp.response(200, WhitelistPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 422)
def list_whitelist(args: dict[str, Any]) -> Any:
    """The live white list (any signed-in organization; `include_expired` for history)."""
    stmt = whitelist.query(principal=current_principal(), include_expired=args["include_expired"])
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/whitelist/<entry_id>", methods=["DELETE"])
@blp.response(200, WhitelistSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 403, 404)
def delete_whitelist_entry(entry_id: str) -> Any:
    """Operators: withdraw a white-list entry (kept for the audit trail)."""
    return whitelist.delete(db.session, entry_id=entry_id, actor=current_principal())
