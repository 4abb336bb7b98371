"""Delivery's HTTP surface: entitlements and their access log, releases and their files, downloads."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from flask import Blueprint as Blueprint_
from flask import current_app, request, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable, UnsupportedMediaType
from werkzeug.wsgi import FileWrapper, wrap_file

from delivery import accesses, downloads, entitlements, gateway, releases, sandbox
from delivery import schemas as ex
from delivery.schemas import (
    AccessArgsSchema,
    AccessPageSchema,
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeyListSchema,
    ApiKeySchema,
    ApiUpstreamSchema,
    ApiUpstreamSetSchema,
    DownloadCreateSchema,
    DownloadLinkSchema,
    EntitlementArgsSchema,
    EntitlementPageSchema,
    EntitlementSchema,
    QueryArgsSchema,
    QueryCreateSchema,
    QueryPageSchema,
    QuerySchema,
    ReleaseCreateSchema,
    ReleaseFileSchema,
    ReleaseListSchema,
    ReleaseSchema,
    SandboxPolicySchema,
    SandboxPolicySetSchema,
    TablesArgsSchema,
    TablesSchema,
    UsageArgsSchema,
    UsageSchema,
)
from exchange.api import AUTH, Blueprint, paginate
from exchange.db import db
from exchange.errors import DomainError, PayloadTooLarge, problem
from exchange.fields import Facts
from exchange.principal import current_principal
from listings import services as listings

blp = Blueprint("delivery", __name__, url_prefix="/api/v1",
                description="Delivery: entitlements, releases, downloads and the access log")
WRITE_ERRORS = (400, 401, 403, 404, 409, 415, 422, 429)

UPLOAD_PARAMETERS = [{
    "in": "header", "name": "Content-SHA256", "required": False, "schema": {"type": "string",
                                                                           "pattern": "^[0-9a-f]{64}$"},
    "description": "The sha256 (hex) of the body; when given and different from what arrived -> 422, nothing stored.",
    "example": ex.EXAMPLE_FILE_SHA256,
}]
UPLOAD_BODY = {
    "required": True,
    "description": "The file's raw bytes, streamed (any size up to DATAFAIR_MAX_UPLOAD_BYTES, default 5 GiB; "
                   "Content-Length or chunked).",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}
DOWNLOAD_RESPONSES = {
    "200": {"description": "The whole file (`attachment`, `application/octet-stream`, `ETag` = its sha256).",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    "206": {"description": "The byte range asked for with `Range`.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    "416": {"description": "The range cannot be satisfied."},
}


# -- entitlements ----------------------------------------------------------------------------------
@blp.route("/entitlements", methods=["GET"])
@blp.arguments(EntitlementArgsSchema, location="query")
@blp.response(200, EntitlementPageSchema, example=ex.ENTITLEMENT_PAGE_EXAMPLE)
@blp.doc(operationId="listEntitlements", security=AUTH)
@blp.problems(401, 422)
def list_entitlements(args: dict[str, Any]) -> Any:
    """List entitlements.

    A buyer sees its own, a seller those on its products, operators all; filters `status` (as computed
    now), `product_id`, `trade_id`, `contract_id`. Newest first, paginated."""
    principal = current_principal()
    stmt = entitlements.list_query(principal=principal, status=args.get("status"), product_id=args.get("product_id"),
                                   trade_id=args.get("trade_id"), contract_id=args.get("contract_id"))
    if not args.get("status"):
        page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
        return {**page, "items": [entitlements.shown(db.session, e) for e in page["items"]]}
    # The status is computed now, not a column: the candidates are decided first, then paged, so
    # `total` counts what matches and no page comes back short.
    matched = [e for e in (entitlements.shown(db.session, row) for row in db.session.execute(stmt).scalars())
               if e.status == args["status"]]
    start = (args["page"] - 1) * args["per_page"]
    return {"items": matched[start:start + args["per_page"]], "total": len(matched), "page": args["page"],
            "per_page": args["per_page"]}


@blp.route("/entitlements/<entitlement_id>", methods=["GET"])
@blp.response(200, EntitlementSchema, example=ex.ENTITLEMENT_EXAMPLE)
@blp.doc(operationId="getEntitlement", security=AUTH)
@blp.problems(401, 404)
def get_entitlement(entitlement_id: str) -> Any:
    """Get an entitlement.

    The buyer, the seller and operators (404 for anyone else). `status` and `status_reason` are
    decided at this moment from the trade, the certificate, both organizations and the cross-border
    rules."""
    return entitlements.shown(db.session, entitlements.visible(db.session, entitlement_id, current_principal()))


@blp.route("/entitlements/<entitlement_id>/accesses", methods=["GET"])
@blp.arguments(AccessArgsSchema, location="query")
@blp.response(200, AccessPageSchema, example=ex.ACCESS_PAGE_EXAMPLE)
@blp.doc(operationId="listEntitlementAccesses", security=AUTH)
@blp.problems(401, 404, 422)
def list_accesses(args: dict[str, Any], entitlement_id: str) -> Any:
    """Read an entitlement's access log.

    The two parties and operators. Append-only, oldest first: links issued, downloads served and
    refusals (with the reason). Pages by cursor only: `after` = the previous page's `next` (entries
    logged meanwhile come on the following pages, none skipped or repeated; 422 for an `after` that is
    not an entry of this log)."""
    ent = entitlements.visible(db.session, entitlement_id, current_principal())
    return accesses.page(db.session, entitlement_id=ent.id, after=args.get("after"), limit=args.get("limit"))


# -- releases --------------------------------------------------------------------------------------
@blp.route("/products/<product_id>/releases", methods=["POST"])
@blp.authorize(listings.check_may_change)
@blp.arguments(ReleaseCreateSchema, example=ex.RELEASE_CREATE_EXAMPLE)
@blp.response(201, ReleaseSchema, example=ex.RELEASE_DRAFT_EXAMPLE)
@blp.doc(operationId="createRelease", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def create_release(data: dict[str, Any], product_id: str) -> Any:
    """Create a release.

    The product's owner, for a `listed` or `draft` product (409 otherwise): a `draft` release to
    upload files into, then publish. Publishing data needs no new certification."""
    release = releases.create(db.session, product_id=product_id, label=data["label"], notes=data.get("notes"),
                              actor=current_principal())
    return releases.shown(db.session, release)


@blp.route("/products/<product_id>/releases", methods=["GET"])
@blp.response(200, ReleaseListSchema, example={"items": [ex.RELEASE_PUBLISHED_EXAMPLE]})
@blp.doc(operationId="listReleases", security=AUTH)
@blp.problems(401, 404)
def list_releases(product_id: str) -> Any:
    """List a product's releases.

    The owner and operators: all of them; a buyer with an entitlement on the product: the published
    ones it covers; anyone else 404."""
    rows = releases.list_for_product(db.session, product_id=product_id, principal=current_principal())
    return {"items": [releases.shown(db.session, r) for r in rows]}


@blp.route("/releases/<release_id>", methods=["GET"])
@blp.response(200, ReleaseSchema, example=ex.RELEASE_PUBLISHED_EXAMPLE)
@blp.doc(operationId="getRelease", security=AUTH)
@blp.problems(401, 404)
def get_release(release_id: str) -> Any:
    """Get a release, with its files and, once published, its signed receipt.

    Visible as in the list of its product's releases (404 otherwise)."""
    return releases.shown(db.session, releases.get(db.session, release_id=release_id, principal=current_principal()))


# `name` may have up to 200 characters (API.md), past the default 64-character bound of path values;
# a longer one matches no route (the documented maxLength is the enforced one).
@blp.route("/releases/<release_id>/files/<string(maxlength=200):name>", methods=["PUT"])
@blp.response(201, ReleaseFileSchema, example=ex.RELEASE_FILE_EXAMPLE)
@blp.doc(operationId="uploadReleaseFile", security=AUTH, parameters=UPLOAD_PARAMETERS, requestBody=UPLOAD_BODY)
@blp.problems(*WRITE_ERRORS, 413)
def upload_file(release_id: str, name: str) -> Any:
    """Upload a file into a draft release.

    The owner (409 once published). The body is the raw bytes (`application/octet-stream`), streamed
    to storage while hashed, never held in memory; the same name again replaces the draft's file.
    `name`: 1..200 characters of `[A-Za-z0-9._-]`, not starting with a dot (422). Over
    DATAFAIR_MAX_UPLOAD_BYTES -> 413, whatever the transfer encoding; a `Content-SHA256` that does not
    match -> 422. Nothing is stored when it is refused."""
    if request.mimetype != "application/octet-stream":
        raise UnsupportedMediaType("Send the file as 'Content-Type: application/octet-stream'.")
    # werkzeug refuses a Content-Length over the limit before the first byte; a chunked body is
    # counted as it streams (delivery.storage stops one byte past the limit).
    # A chunked body has no length: werkzeug's maximum refuses any read once it is reached, even the
    # read that finds the end, so a body of exactly the limit would be 413; one byte more lets storage
    # (which refuses more than `limit`) decide.
    limit = int(current_app.config["MAX_UPLOAD_BYTES"])
    request.max_content_length = limit if request.content_length is not None else limit + 1
    return releases.put_file(db.session, release_id=release_id, name=name, read=request.stream.read,
                             expected_sha256=request.headers.get("Content-SHA256"), actor=current_principal())


@blp.route("/releases/<release_id>/publish", methods=["POST"])
@blp.response(200, ReleaseSchema, example=ex.RELEASE_PUBLISHED_EXAMPLE)
@blp.doc(operationId="publishRelease", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def publish_release(release_id: str) -> Any:
    """Publish a release.

    The owner: files frozen, `manifest_sha256` computed (RFC 8785) and the receipt signed with the
    exchange's key. Every trade on the product whose entitlement is active now becomes `delivered`
    (`delivery_evidence` `release`), starting its acceptance period. An empty release -> 422; 409
    unless a draft."""
    release = releases.publish(db.session, release_id=release_id, actor=current_principal())
    return releases.shown(db.session, release)


@blp.route("/releases/<release_id>/withdraw", methods=["POST"])
@blp.response(200, ReleaseSchema, example=ex.RELEASE_WITHDRAWN_EXAMPLE)
@blp.doc(operationId="withdrawRelease", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def withdraw_release(release_id: str) -> Any:
    """Withdraw a published release.

    The owner or an operator: no new downloads, and links already issued stop working (on S3 within
    their 60 seconds). 409 unless published."""
    release = releases.withdraw(db.session, release_id=release_id, actor=current_principal())
    return releases.shown(db.session, release)


# -- downloads -------------------------------------------------------------------------------------
@blp.route("/entitlements/<entitlement_id>/downloads", methods=["POST"])
@blp.authorize(entitlements.check_buyer_member)
@blp.arguments(DownloadCreateSchema, example=ex.DOWNLOAD_CREATE_EXAMPLE)
@blp.response(201, DownloadLinkSchema, example=ex.DOWNLOAD_LINK_EXAMPLE)
@blp.doc(operationId="createDownloadLink", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def create_download(data: dict[str, Any], entitlement_id: str) -> Any:
    """Get a download link for one file.

    A member of the buying organization (403 for the seller). The access is checked now: an
    entitlement that is not active, a withdrawn release, a privacy-computing product -> 403 naming
    the reason (logged). The link works for one file, is re-checked at the download and expires
    within 15 minutes (60 seconds on S3)."""
    return downloads.issue_link(db.session, entitlement_id=entitlement_id, release_id=data["release_id"],
                                file=data["file"], actor=current_principal(), base_url=request.host_url)


@blp.route("/downloads/<string(maxlength=1000):token>", methods=["GET"])
@blp.doc(operationId="downloadFile", responses=DOWNLOAD_RESPONSES)
@blp.problems(403, 404)
def download(token: str) -> Any:
    """Download a file through a signed link.

    No other credential: the token is the link's. Re-checked now (403 naming the reason if access is
    no longer lawful, the release was withdrawn, or the token expired or was altered). Honours
    `Range` (206) and `If-None-Match`; `ETag` is the file's sha256."""
    served = downloads.open_download(db.session, token=token, byte_range=request.range,
                                     if_none_match=request.if_none_match)
    if served.path is not None:
        try:
            if request.range is None:
                # The whole file: the server's wsgi.file_wrapper (sendfile under gunicorn), constant memory.
                response = send_file(served.path, mimetype="application/octet-stream", as_attachment=True,
                                     download_name=served.name, conditional=True, etag=served.sha256, max_age=0)
            else:
                # A range: werkzeug's own FileWrapper is seekable, so the range starts with a seek;
                # gunicorn's is not, and werkzeug would read and discard every byte before the range.
                handle = open(served.path, "rb")  # noqa: SIM115 - closed by the server once sent
                response = current_app.response_class(FileWrapper(handle), mimetype="application/octet-stream",
                                                      direct_passthrough=True)
                response.content_length = served.bytes
                response.set_etag(served.sha256)
                response.headers["Content-Disposition"] = f'attachment; filename="{served.name}"'
                try:
                    response.make_conditional(request.environ, accept_ranges=True, complete_length=served.bytes)
                except RequestedRangeNotSatisfiable:
                    handle.close()
                    raise
        except RequestedRangeNotSatisfiable:
            # The problem renderer keeps no werkzeug header; a 416 names the length (RFC 9110 14.4).
            return problem(416, "Range Not Satisfiable", f"This file has {served.bytes} bytes.",
                           headers={"Content-Range": f"bytes */{served.bytes}"})
    else:
        response = current_app.response_class(wrap_file(request.environ, served.stream),
                                              mimetype="application/octet-stream", direct_passthrough=True)
        response.headers["Content-Disposition"] = f'attachment; filename="{served.name}"'
        response.content_length = served.bytes
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- the API gateway: control plane ----------------------------------------------------------------
@blp.route("/products/<product_id>/api-upstream", methods=["PUT"])
@blp.authorize(listings.check_may_change)
@blp.arguments(ApiUpstreamSetSchema, example=ex.API_UPSTREAM_SET_EXAMPLE)
@blp.response(200, ApiUpstreamSchema, example=ex.API_UPSTREAM_EXAMPLE)
@blp.doc(operationId="setApiUpstream", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def set_api_upstream(data: dict[str, Any], product_id: str) -> Any:
    """Set the vendor's API behind the gateway.

    The owner of an `api` product (409 for another delivery mode). `base_url`: a public http(s) URL
    (https in production), checked now and again at every call. `auth_header` is added to every
    forwarded call; its value is stored encrypted and never shown again."""
    return gateway.set_upstream(db.session, product_id=product_id, base_url=data["base_url"],
                                auth_header=data.get("auth_header"), timeout_ms=data["timeout_ms"],
                                actor=current_principal())


@blp.route("/entitlements/<entitlement_id>/api-keys", methods=["POST"])
@blp.authorize(gateway.check_buyer_admin)
@blp.arguments(ApiKeyCreateSchema, example=ex.API_KEY_CREATE_EXAMPLE)
@blp.response(201, ApiKeyCreatedSchema, example=ex.API_KEY_CREATED_EXAMPLE)
@blp.doc(operationId="createApiKey", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def create_api_key(data: dict[str, Any], entitlement_id: str) -> Any:
    """Create an API key for the gateway.

    An admin of the buying organization, for an `api` entitlement. `key` is shown once (stored as a
    hash; `prefix` recognises it later). At most 5 live keys per entitlement (409)."""
    row, key = gateway.create_key(db.session, entitlement_id=entitlement_id, label=data["label"],
                                  actor=current_principal())
    return Facts(row, key=key)


@blp.route("/entitlements/<entitlement_id>/api-keys", methods=["GET"])
@blp.response(200, ApiKeyListSchema, example={"items": [ex.API_KEY_EXAMPLE]})
@blp.doc(operationId="listApiKeys", security=AUTH)
@blp.problems(401, 403, 404)
def list_api_keys(entitlement_id: str) -> Any:
    """List an entitlement's API keys (never the keys themselves).

    The buying organization and operators (403 for the seller; 404 for others)."""
    return {"items": gateway.list_keys(db.session, entitlement_id=entitlement_id, actor=current_principal())}


@blp.route("/entitlements/<entitlement_id>/api-keys/<key_id>", methods=["DELETE"])
@blp.response(200, ApiKeySchema, example={**ex.API_KEY_EXAMPLE, "revoked_at": "2026-12-02T09:00:00Z"})
@blp.doc(operationId="revokeApiKey", security=AUTH)
@blp.problems(401, 403, 404, 409)
def revoke_api_key(entitlement_id: str, key_id: str) -> Any:
    """Revoke an API key at once.

    An admin of the buying organization: the next call with the key is 401."""
    return gateway.revoke_key(db.session, entitlement_id=entitlement_id, key_id=key_id, actor=current_principal())


@blp.route("/entitlements/<entitlement_id>/usage", methods=["GET"])
@blp.arguments(UsageArgsSchema, location="query")
@blp.response(200, UsageSchema, example=ex.USAGE_EXAMPLE)
@blp.doc(operationId="getEntitlementUsage", security=AUTH)
@blp.problems(401, 404, 422)
def get_usage(args: dict[str, Any], entitlement_id: str) -> Any:
    """Read an entitlement's metered usage.

    The parties and operators. `granularity=period` (default): the usage periods as the sweep closed
    them, with their `usage` ledger entry (`entry_id` null while open); `hour`/`day` aggregate the
    counted calls."""
    return gateway.usage(db.session, entitlement_id=entitlement_id, principal=current_principal(),
                         granularity=args["granularity"])


# -- the API gateway: data plane (not an /api/v1 operation: documented in docs/delivery.md) --------
data_plane = Blueprint_("gateway", __name__)
GATEWAY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
GATEWAY_PREFIX = "/gateway/v1/"


@data_plane.route("/gateway/v1/<product_id>/", defaults={"path": ""}, methods=GATEWAY_METHODS, merge_slashes=False)
@data_plane.route("/gateway/v1/<product_id>/<path:path>", methods=GATEWAY_METHODS, merge_slashes=False)
def gateway_call(product_id: str, path: str) -> Any:
    """Forward one metered call to the product's upstream (see delivery.gateway)."""
    started = time.perf_counter()
    try:
        response, upstream_seconds = _gateway_call(product_id, path)
    except DomainError as exc:
        gateway.CALLS.labels(status=str(exc.status)).inc()
        raise
    gateway.CALLS.labels(status=str(response.status_code)).inc()
    gateway.ADDED_SECONDS.observe(max(0.0, time.perf_counter() - started - upstream_seconds))
    return response


def _gateway_call(product_id: str, path: str) -> tuple[Any, float]:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
    raw_path = raw.split("?", 1)[0]
    prefix = f"{GATEWAY_PREFIX}{product_id}/"
    sub_path = raw_path[len(prefix):] if raw_path.startswith(prefix) else quote(path, safe="/%:@!$&'()*+,;=-._~")
    auth = request.headers.get("Authorization", "")
    grant = gateway.authorize(db.session, product_id=product_id,
                              bearer=auth[7:].strip() if auth[:7].lower() == "bearer " else None)
    # Nothing below holds a transaction open: the upstream call may take seconds.
    db.session.rollback()
    sub_path = gateway.target_path(sub_path)
    query = gateway.target_query(request.query_string.decode("latin-1"))
    # The app's 1 MiB JSON limit is werkzeug's maximum for every stream: a gateway body has its own,
    # 10 MiB (a chunked body is let one byte past it so that the check below, not werkzeug, decides).
    limit = gateway.MAX_REQUEST_BYTES
    request.max_content_length = limit if request.content_length is not None else limit + 1
    body = request.stream.read(limit + 1) if request.method not in ("GET", "HEAD") else b""
    if len(body) > gateway.MAX_REQUEST_BYTES:
        raise PayloadTooLarge(f"A gateway request body may be at most {gateway.MAX_REQUEST_BYTES} bytes.")
    done = gateway.metered_call(grant, method=request.method, sub_path=sub_path, query=query,
                                headers=list(request.headers.items()), body=body)
    answer = done.answer
    response = current_app.response_class(answer.body, status=answer.status, headers=answer.headers,
                                          direct_passthrough=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    if done.remaining is not None:
        response.headers["Datafair-Calls-Remaining"] = str(done.remaining)
    return response, done.upstream_seconds


# -- privacy computing -----------------------------------------------------------------------------
@blp.route("/products/<product_id>/sandbox-policy", methods=["PUT"])
@blp.authorize(listings.check_may_change)
@blp.arguments(SandboxPolicySetSchema, example=ex.SANDBOX_POLICY_SET_EXAMPLE)
@blp.response(200, SandboxPolicySchema, example=ex.SANDBOX_POLICY_EXAMPLE)
@blp.doc(operationId="setSandboxPolicy", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def set_sandbox_policy(data: dict[str, Any], product_id: str) -> Any:
    """Set a privacy-computing product's sandbox policy.

    The owner (409 for another delivery mode). k, blocked columns, allowed aggregates, the group cap;
    for a product containing personal information an epsilon budget is required (422 without it),
    with the bounds of every column summed or averaged under it and the rows one person may
    contribute. Applies to the next query."""
    row = sandbox.set_policy(db.session, product_id=product_id, policy=data, actor=current_principal())
    return sandbox.shown_policy(row)


@blp.route("/products/<product_id>/sandbox-policy", methods=["GET"])
@blp.response(200, SandboxPolicySchema, example=ex.SANDBOX_POLICY_EXAMPLE)
@blp.doc(operationId="getSandboxPolicy")
@blp.problems(404)
def get_sandbox_policy(product_id: str) -> Any:
    """Read a product's sandbox policy.

    Public for a listed product (buyers read it before they buy); 404 when it has none yet."""
    return sandbox.shown_policy(sandbox.get_policy(db.session, product_id=product_id,
                                                   principal=current_principal(required=False)))


@blp.route("/entitlements/<entitlement_id>/queries", methods=["POST"])
@blp.authorize(entitlements.check_buyer_member)
@blp.arguments(QueryCreateSchema, example=ex.QUERY_CREATE_EXAMPLE)
@blp.response(201, QuerySchema, example=ex.QUERY_EXAMPLE)
@blp.doc(operationId="createQuery", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def create_query(data: dict[str, Any], entitlement_id: str) -> Any:
    """Run an aggregate query on the data, which stays invisible.

    A member of the buying organization of a privacy-computing entitlement. The access is checked now
    (403 naming the reason, logged). The SQL is checked against the grammar and the policy: a query
    outside them is `refused` (still 201, nothing spent); one the engine cannot answer in time is
    `failed`. Under a budget `epsilon` is required and debited before the query runs (never given
    back). A succeeded answer carries `result_sha256` and the exchange's signed `receipt`; the first
    one delivers the trade. 429 `quota_exhausted` when a per_call entitlement has no query left."""
    q, remaining = sandbox.run_query(db.session, entitlement_id=entitlement_id, sql=data["sql"],
                                     release_id=data["release_id"], epsilon=data["epsilon"], actor=current_principal())
    return sandbox.shown_query(q, remaining)


@blp.route("/entitlements/<entitlement_id>/queries", methods=["GET"])
@blp.arguments(QueryArgsSchema, location="query")
@blp.response(200, QueryPageSchema, example=ex.QUERY_PAGE_EXAMPLE)
@blp.doc(operationId="listQueries", security=AUTH)
@blp.problems(401, 404, 422)
def list_queries(args: dict[str, Any], entitlement_id: str) -> Any:
    """List an entitlement's queries and their answers.

    The two parties and operators, oldest first, by cursor (`after` = the previous page's `next`):
    the seller sees what was asked of its data and what was released."""
    return sandbox.list_queries(db.session, entitlement_id=entitlement_id, principal=current_principal(),
                                after=args.get("after"), limit=args["limit"])


@blp.route("/entitlements/<entitlement_id>/tables", methods=["GET"])
@blp.arguments(TablesArgsSchema, location="query")
@blp.response(200, TablesSchema, example=ex.TABLES_EXAMPLE)
@blp.doc(operationId="listQueryTables", security=AUTH)
@blp.problems(401, 403, 404, 409, 422)
def list_query_tables(args: dict[str, Any], entitlement_id: str) -> Any:
    """See what can be queried: the release's tables, their columns and types, the policy.

    A member of the buying organization. Blocked columns are marked (they may not appear in a query);
    `epsilon_remaining` is what the organization has left on this product."""
    return sandbox.tables_for(db.session, entitlement_id=entitlement_id, release_id=args["release_id"],
                              actor=current_principal())
