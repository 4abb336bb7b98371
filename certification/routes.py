"""HTTP routes of certification, certificates, objections and the cross-border white list."""

from __future__ import annotations

from typing import Any

from certification import certificates, registrations, services, whitelist
from certification.schemas import (
    ASSIGNED_CERTIFICATION_EXAMPLE,
    ASSIGNMENT_EXAMPLE,
    CERTIFICATE_ACTION_EXAMPLES,
    CERTIFICATE_ACTION_RESPONSE_EXAMPLES,
    CERTIFICATE_EXAMPLE,
    CERTIFICATION_CREATE_EXAMPLE,
    CERTIFICATION_EXAMPLE,
    CERTIFICATION_PAGE_EXAMPLE,
    DELETED_WHITELIST_EXAMPLE,
    NOTICE_CERTIFICATION_EXAMPLE,
    OBJECTION_CREATE_EXAMPLE,
    OBJECTION_EXAMPLE,
    REGISTRATION_EXAMPLE,
    RESOLUTION_EXAMPLES,
    RESOLVED_OBJECTION_EXAMPLE,
    RESUBMIT_EXAMPLE,
    RESUBMITTED_CERTIFICATION_EXAMPLE,
    REVIEW_EXAMPLES,
    REVIEWED_CERTIFICATION_EXAMPLES,
    WHITELIST_CREATE_EXAMPLE,
    WHITELIST_EXAMPLE,
    WHITELIST_PAGE_EXAMPLE,
    WITHDRAWN_CERTIFICATION_EXAMPLE,
    AssignmentSchema,
    CertificateSchema,
    CertificationCreateSchema,
    CertificationListArgsSchema,
    CertificationPageSchema,
    CertificationSchema,
    ObjectionCreateSchema,
    ObjectionSchema,
    RegistrationPageSchema,
    ResolutionSchema,
    ResubmitSchema,
    ReviewSchema,
    VerifiedRegistrationSchema,
    WhitelistArgsSchema,
    WhitelistCreateSchema,
    WhitelistPageSchema,
    WhitelistSchema,
)
from exchange.api import AUTH, OPTIONAL_AUTH, Blueprint, paginate
from exchange.db import db
from exchange.fields import PaginationArgsSchema, ReasonSchema
from exchange.principal import current_principal, operators_only

blp = Blueprint("certification", __name__, url_prefix="/api/v1", description="Certification and certificates")
WRITE_ERRORS = (400, 401, 403, 404, 409, 415, 422)


def _shown(cert: Any) -> Any:
    return services.shown(db.session, cert)


@blp.route("/certifications", methods=["POST"])
@blp.authorize(services.check_may_submit)
@blp.arguments(CertificationCreateSchema, example=CERTIFICATION_CREATE_EXAMPLE)
@blp.response(201, CertificationSchema, example=CERTIFICATION_EXAMPLE)
@blp.doc(security=AUTH, operationId="createCertification")
@blp.problems(*WRITE_ERRORS)
def create_certification(data: dict[str, Any]) -> Any:
    """Request certification of a product

    Who: the product's vendor (a verified vendor organization). Submits the product's newest
    `draft` revision with the supporting documents (name + sha256 of each): the certification
    starts `submitted` with its three stages (compliance, quality, ownership) `pending`, and the
    revision and a never-listed product go `in_review`, frozen until the certification ends.
    Errors: 403 not the product's vendor, 404 no such product, 409 the product already has an open
    certification or no draft revision to certify, 422 an invalid body.
    """
    cert = services.submit(db.session, product_id=data["product_id"], documents=data["documents"],
                           actor=current_principal())
    return _shown(cert)


@blp.route("/certifications", methods=["GET"])
@blp.arguments(CertificationListArgsSchema, location="query")
@blp.response(200, CertificationPageSchema, example=CERTIFICATION_PAGE_EXAMPLE)
@blp.doc(security=OPTIONAL_AUTH, operationId="listCertifications")
@blp.problems(401, 403, 422)
def list_certifications(args: dict[str, Any]) -> Any:
    """List certifications

    Who: operators see the whole queue, vendors their own, assessors those with a stage assigned to
    them; anyone, without a token, may list `?status=public_notice` (what is open to objections).
    `status` filters by certification status (`submitted`, `in_review`, `public_notice`,
    `approved`, `rejected`, `changes_requested`, `withdrawn`). Changes nothing. Errors: 401 no
    valid token (other than for `public_notice`), 422 an unknown status or bad paging.
    """
    stmt = services.list_query(principal=current_principal(required=False), status=args.get("status"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/certifications/<certification_id>", methods=["GET"])
@blp.response(200, CertificationSchema, example=NOTICE_CERTIFICATION_EXAMPLE)
@blp.doc(security=OPTIONAL_AUTH, operationId="getCertification")
@blp.problems(401, 404)
def get_certification(certification_id: str) -> Any:
    """Get a certification

    Who: the vendor, operators and assessors assigned to one of its stages, with the revision under
    review, its stages, documents, full history and objections; anyone while it is under
    `public_notice`, without the review file (documents and history empty, only the caller's own
    objections). Reading a notice that has ended with no open objection approves it (the
    certificate is issued). Errors: 401 an invalid token, 404 no such certification or not
    visible to the caller.
    """
    cert = services.get(db.session, certification_id=certification_id, principal=current_principal(required=False))
    return _shown(cert)


@blp.route("/certifications/<certification_id>/assignments", methods=["POST"])
@blp.authorize(operators_only)
@blp.arguments(AssignmentSchema, example=ASSIGNMENT_EXAMPLE)
@blp.response(201, CertificationSchema, example=ASSIGNED_CERTIFICATION_EXAMPLE)
@blp.doc(security=AUTH, operationId="createAssignment")
@blp.problems(*WRITE_ERRORS)
def assign(data: dict[str, Any], certification_id: str) -> Any:
    """Assign a review stage to an assessor

    Who: operators only. Lets a verified assessor organization review the `quality` or
    `ownership` stage (compliance is reviewed by operators only); a `submitted` certification goes
    `in_review`. Errors: 403 not an operator, 404 no such certification, 409 the certification is
    not `submitted`/`in_review` or the stage is already decided, 422 `compliance`, an unknown stage
    or an organization that is not a verified assessor.
    """
    cert = services.assign(db.session, certification_id=certification_id, actor=current_principal(), **data)
    return _shown(cert)


@blp.route("/certifications/<certification_id>/reviews", methods=["POST"])
@blp.authorize(services.check_may_review)
@blp.arguments(ReviewSchema, examples=REVIEW_EXAMPLES)
@blp.response(201, CertificationSchema, examples=REVIEWED_CERTIFICATION_EXAMPLES)
@blp.doc(security=AUTH, operationId="createReview")
@blp.problems(*WRITE_ERRORS)
def review(data: dict[str, Any], certification_id: str) -> Any:
    """Review a certification stage

    Who: operators (any stage) or the assessor organization assigned to the stage; never a member
    of the product's own organization. `approve`, `reject` or `request_changes` one `pending`
    stage, with an optional comment and checklist (recorded in the history). `important` data or
    personal information needs two compliance approvals by two different operator users. When
    every stage is approved the certification goes to `public_notice` (if a notice period is
    configured) or `approved` with a signed certificate, and the product is listed; any reject ends
    it (`rejected`), a change request sends the revision back to its vendor (`changes_requested`).
    Errors: 403 own product, not assigned or compliance by a non-operator, 404 no such
    certification, 409 not under review, stage already decided or the same user approving twice,
    422 an invalid body or `core` data approved at compliance.
    """
    cert = services.review(db.session, certification_id=certification_id, stage=data["stage"],
                           decision=data["decision"], comment=data.get("comment"),
                           checklist=data.get("checklist"), actor=current_principal())
    return _shown(cert)


@blp.route("/certifications/<certification_id>/resubmit", methods=["POST"])
@blp.authorize(services.check_owner)
@blp.arguments(ResubmitSchema, example=RESUBMIT_EXAMPLE)
@blp.response(200, CertificationSchema, example=RESUBMITTED_CERTIFICATION_EXAMPLE)
@blp.doc(security=AUTH, operationId="resubmitCertification")
@blp.problems(*WRITE_ERRORS)
def resubmit(data: dict[str, Any], certification_id: str) -> Any:
    """Resubmit a certification after changes

    Who: the product's vendor. Sends the revised draft back after `changes_requested`: the
    certification goes `in_review` in a new round; `documents`, when sent, replace the earlier
    ones. A stage approved before stays approved only if the fields it examined are unchanged;
    the others, and the stage that asked for changes, are `pending` again. Errors: 403 not the
    vendor, 404 no such certification, 409 the certification is not `changes_requested`, 422 an
    invalid body.
    """
    cert = services.resubmit(db.session, certification_id=certification_id, documents=data.get("documents"),
                             actor=current_principal())
    return _shown(cert)


@blp.route("/certifications/<certification_id>/withdraw", methods=["POST"])
@blp.response(200, CertificationSchema, example=WITHDRAWN_CERTIFICATION_EXAMPLE)
@blp.doc(security=AUTH, operationId="withdrawCertification")
@blp.problems(*WRITE_ERRORS)
def withdraw(certification_id: str) -> Any:
    """Withdraw a certification request

    Who: the product's vendor. Ends a certification that is `submitted`, `in_review` or
    `changes_requested` as `withdrawn`; the revision goes back to `draft` and can be edited again.
    No body. Errors: 403 not the vendor, 404 no such certification, 409 already decided, under
    public notice or withdrawn.
    """
    cert = services.withdraw(db.session, certification_id=certification_id, actor=current_principal())
    return _shown(cert)


@blp.route("/certifications/<certification_id>/objections", methods=["POST"])
@blp.authorize(services.check_may_object)
@blp.arguments(ObjectionCreateSchema, example=OBJECTION_CREATE_EXAMPLE)
@blp.response(201, ObjectionSchema, example=OBJECTION_EXAMPLE)
@blp.doc(security=AUTH, operationId="createObjection")
@blp.problems(*WRITE_ERRORS)
def object_to(data: dict[str, Any], certification_id: str) -> Any:
    """Object to a certification under public notice

    Who: any verified organization other than the product's vendor. Records an `open` objection
    with its reason and evidence; while one is open the certification is not approved, even after
    the notice ends. Errors: 403 the vendor itself or an unverified organization, 404 no such
    certification, 409 the certification is not under `public_notice` (or its notice has ended),
    422 an invalid body.
    """
    return services.object_to(db.session, certification_id=certification_id, reason=data["reason"],
                              evidence=data.get("evidence"), actor=current_principal())


@blp.route("/objections/<objection_id>", methods=["GET"])
@blp.response(200, ObjectionSchema, example=OBJECTION_EXAMPLE)
@blp.doc(security=AUTH, operationId="getObjection")
@blp.problems(401, 404)
def get_objection(objection_id: str) -> Any:
    """Get an objection

    Who: the objecting organization, the product's vendor and operators. Changes nothing. Errors:
    401 no valid token, 404 no such objection or not visible to the caller.
    """
    return services.get_objection(db.session, objection_id=objection_id, principal=current_principal())


@blp.route("/objections/<objection_id>/resolution", methods=["POST"])
@blp.authorize(operators_only)
@blp.arguments(ResolutionSchema, examples=RESOLUTION_EXAMPLES)
@blp.response(200, ObjectionSchema, example=RESOLVED_OBJECTION_EXAMPLE)
@blp.doc(security=AUTH, operationId="resolveObjection")
@blp.problems(*WRITE_ERRORS)
def resolve_objection(data: dict[str, Any], objection_id: str) -> Any:
    """Resolve an objection

    Who: operators only. `upheld: true` upholds it and sends the certification back to its vendor
    (`changes_requested`, the revision to `draft`); `upheld: false` dismisses it and lets the
    notice end normally. Errors: 403 not an operator, 404 no such objection, 409 already
    resolved, 422 an invalid body.
    """
    return services.resolve_objection(db.session, objection_id=objection_id, upheld=data["upheld"],
                                      comment=data.get("comment"), actor=current_principal())


@blp.route("/certificates/<number>", methods=["GET"])
@blp.response(200, CertificateSchema, example=CERTIFICATE_EXAMPLE)
@blp.doc(operationId="getCertificate")
@blp.problems(404)
def get_certificate(number: str) -> Any:
    """Get and verify a certificate

    Who: anyone (no token). The certificate by its number (`DFX-YYYY-NNNNNN`) with its status and
    Ed25519 signature; `verification` re-checks the signature and the digest of the certified
    revision on every call. A certificate past `expires_at` answers `expired`. Errors: 404 no such
    certificate.
    """
    return certificates.shown(db.session, certificates.get(db.session, number))


@blp.route("/registrations/<number>", methods=["GET"])
@blp.response(200, VerifiedRegistrationSchema, example=REGISTRATION_EXAMPLE)
@blp.doc(operationId="getRegistration")
@blp.problems(404)
def get_registration(number: str) -> Any:
    """Get and verify a rights registration

    Who: anyone holding its number (no token). A registration of the rights register (数据资产登记):
    the vendor's holding, processing and operation rights to a certified version (`initial`, then
    `change` for later versions), a buyer's processing licence under a contract (`licence`), or the
    end of one of those (`cancellation`, with `cancels`). `verification` re-checks the exchange's
    Ed25519 signature and the digest on every call; to check offline, take the JSON without
    `verification` and `signature`, and verify the signature over its RFC 8785 form with the JWKS.
    Never shows prices. Errors: 404 no such number.
    """
    return registrations.shown(db.session, registrations.get(db.session, number))


@blp.route("/products/<product_id>/registrations", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, RegistrationPageSchema, example={"items": [{k: v for k, v in REGISTRATION_EXAMPLE.items()
                                                                  if k != "verification"}],
                                                   "total": 1, "page": 1, "per_page": 20})
@blp.doc(security=OPTIONAL_AUTH, operationId="listProductRegistrations")
@blp.problems(401, 404, 422)
def list_product_registrations(args: dict[str, Any], product_id: str) -> Any:
    """List a product's rights registrations

    Who: anyone sees the registrations of the vendor's rights (`initial`, `change` and their
    `cancellation`s); `licence` registrations and their cancellations, which would reveal who
    bought, only the product's owner, the licence holder (its own) and operators. Oldest first.
    Errors: 404 no such product, 422 bad paging.
    """
    stmt = registrations.of_product(db.session, product_id=product_id, principal=current_principal(required=False))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


CERTIFICATE_ACTIONS = {
    "suspend": ("suspendCertificate", "Suspend a certificate", (
        "Who: operators only. A `valid` certificate becomes `suspended` with the reason (audited, "
        "and announced to webhooks as `certificate.suspended`); its product leaves the catalog and "
        "trade until it is reinstated. Errors: 403 not an operator, 404 no such certificate, 409 "
        "the certificate is not `valid`, 422 no reason.")),
    "reinstate": ("reinstateCertificate", "Reinstate a suspended certificate", (
        "Who: operators only. A `suspended` certificate becomes `valid` again with the reason "
        "(audited) and its product is listed again. Errors: 403 not an operator, 404 no such "
        "certificate, 409 the certificate is not `suspended` (a revoked or expired one never comes "
        "back), 422 no reason.")),
    "revoke": ("revokeCertificate", "Revoke a certificate", (
        "Who: operators only. A `valid` or `suspended` certificate becomes `revoked` for good with "
        "the reason (audited, announced as `certificate.revoked`); its product leaves the catalog "
        "and trade until a new revision is certified. Errors: 403 not an operator, 404 no such "
        "certificate, 409 already revoked, expired or superseded, 422 no reason.")),
}


def _certificate_action(action: str) -> None:
    func = getattr(certificates, action)
    operation_id, summary, description = CERTIFICATE_ACTIONS[action]

    @blp.route(f"/certificates/<number>/{action}", methods=["POST"], endpoint=f"certificate_{action}")
    @blp.authorize(operators_only)
    @blp.arguments(ReasonSchema, example=CERTIFICATE_ACTION_EXAMPLES[action])
    @blp.response(200, CertificateSchema, example=CERTIFICATE_ACTION_RESPONSE_EXAMPLES[action])
    @blp.doc(security=AUTH, operationId=operation_id, summary=summary, description=description)
    @blp.problems(*WRITE_ERRORS)
    def change(data: dict[str, Any], number: str) -> Any:
        cert = func(db.session, number=number, reason=data["reason"], actor=current_principal())
        return certificates.shown(db.session, cert)


for _action in ("suspend", "reinstate", "revoke"):
    _certificate_action(_action)


@blp.route("/whitelist", methods=["POST"])
@blp.authorize(operators_only)
@blp.arguments(WhitelistCreateSchema, example=WHITELIST_CREATE_EXAMPLE)
@blp.response(201, WhitelistSchema, example=WHITELIST_EXAMPLE)
@blp.doc(security=AUTH, operationId="createWhitelistEntry")
@blp.problems(*WRITE_ERRORS)
def create_whitelist_entry(data: dict[str, Any]) -> Any:
    """Add a cross-border white-list entry

    Who: operators only. Allows products of a category to cross from one region to another, up to
    a classification ceiling (`general` or `important`; `core` never crosses), with or without
    personal information, for any recipient or one organization, until `expires_at` (in the
    future). Audited. Errors: 403 not an operator, 422 `core`, the same region on both sides, a
    past expiry or an unknown recipient organization.
    """
    return whitelist.create(db.session, **data, actor=current_principal())


@blp.route("/whitelist", methods=["GET"])
@blp.arguments(WhitelistArgsSchema, location="query")
@blp.response(200, WhitelistPageSchema, example=WHITELIST_PAGE_EXAMPLE)
@blp.doc(security=AUTH, operationId="listWhitelistEntries")
@blp.problems(401, 422)
def list_whitelist(args: dict[str, Any]) -> Any:
    """List the cross-border white list

    Who: any signed-in organization. The live entries (unexpired, not withdrawn);
    `include_expired=true` adds the expired and withdrawn ones for history. Changes nothing.
    Errors: 401 no valid token, 422 bad paging.
    """
    stmt = whitelist.query(principal=current_principal(), include_expired=args["include_expired"])
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/whitelist/<entry_id>", methods=["DELETE"])
@blp.response(200, WhitelistSchema, example=DELETED_WHITELIST_EXAMPLE)
@blp.doc(security=AUTH, operationId="deleteWhitelistEntry")
@blp.problems(401, 403, 404)
def delete_whitelist_entry(entry_id: str) -> Any:
    """Withdraw a white-list entry

    Who: operators only. Stamps `deleted_at` (the entry is kept for the audit trail) and it no
    longer lets any deal cross from then on. Errors: 403 not an operator, 404 no such entry or
    already withdrawn.
    """
    return whitelist.delete(db.session, entry_id=entry_id, actor=current_principal())
