"""Delivery's request and response schemas, with the OpenAPI examples."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from delivery.states import EntitlementStatus
from exchange.fields import (
    MAX_INT_ID,
    CursorArgsSchema,
    OneTimeSecret,
    PaginationArgsSchema,
    StrictInteger,
    StrictSchema,
    Text,
    UTCDateTime,
    page_schema,
)

ID = validate.Length(min=1, max=40)


class EntitlementSchema(Schema):
    id = fields.String()
    trade_id = fields.String()
    contract_id = fields.String()
    product_id = fields.String()
    product_version = fields.Integer()
    buyer_org_id = fields.String()
    seller_org_id = fields.String()
    delivery_mode = fields.String()
    scope = fields.String(allow_none=True)
    starts_at = UTCDateTime()
    ends_at = UTCDateTime()
    status = fields.String(metadata={"description": "Computed at the moment of the read."})
    status_reason = fields.String(allow_none=True, metadata={"description": "Every cause of a suspension, or why "
                                                                            "it was revoked or expired."})
    calls_included = fields.Integer(allow_none=True)
    calls_used = fields.Integer()
    created_at = UTCDateTime()


EntitlementPageSchema = page_schema(EntitlementSchema, "EntitlementPage")


class EntitlementArgsSchema(PaginationArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in EntitlementStatus]))
    product_id = fields.String(validate=ID)
    trade_id = fields.String(validate=ID)
    contract_id = fields.String(validate=ID)


class AccessSchema(Schema):
    id = fields.Integer()
    at = UTCDateTime()
    kind = fields.String()
    user_id = fields.String(allow_none=True)
    api_key_id = fields.String(allow_none=True)
    release_id = fields.String(allow_none=True)
    object = fields.String(allow_none=True)
    bytes = fields.Integer(allow_none=True)
    sha256 = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "`allowed`, `refused`, or `failed` (a sandbox query the engine "
                                                    "could not answer)."})
    refused_reason = fields.String(allow_none=True)


class AccessPageSchema(Schema):
    items = fields.List(fields.Nested(AccessSchema), required=True)
    next = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Pass as `after` for the following page; null at the end."})
    limit = fields.Integer(required=True)


class AccessArgsSchema(CursorArgsSchema):
    # Query values are strings: plain Integer (a strict one would refuse "20"), bounded like the id column.
    after = fields.Integer(validate=validate.Range(min=0, max=MAX_INT_ID), metadata={
        "description": "The `next` of the previous page (the id of its last entry): the entries logged after it. "
                       "422 for an id that is not an entry of this log."})


class ReleaseCreateSchema(StrictSchema):
    label = Text(required=True, max_length=100)
    notes = Text(max_length=4000, multiline=True, allow_none=True)


class ReleaseFileSchema(Schema):
    name = fields.String()
    bytes = fields.Integer()
    sha256 = fields.String()
    media_type = fields.String()


class ReceiptSchema(Schema):
    published_at = fields.String()
    key_id = fields.String()
    signature = fields.String()


class ReleaseSchema(Schema):
    id = fields.String()
    product_id = fields.String()
    label = fields.String()
    notes = fields.String(allow_none=True)
    status = fields.String()
    files = fields.List(fields.Nested(ReleaseFileSchema))
    manifest_sha256 = fields.String(allow_none=True)
    receipt = fields.Nested(ReceiptSchema, allow_none=True, metadata={
        "description": "The exchange's Ed25519 signature over the RFC 8785 JSON of {release_id, product_id, "
                       "files, manifest_sha256, published_at}; verify it with the JWKS key `key_id`."})
    published_at = UTCDateTime(allow_none=True)
    withdrawn_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()


class ReleaseListSchema(Schema):
    items = fields.List(fields.Nested(ReleaseSchema), required=True)


class DownloadCreateSchema(StrictSchema):
    release_id = fields.String(required=True, validate=ID)
    file = fields.String(required=True, validate=validate.Length(min=1, max=200))


class DownloadLinkSchema(Schema):
    # The URL is the download's only credential: never kept in the idempotency store (nor replayed).
    url = OneTimeSecret(description="GET it with no other credential, before `expires_at`.")
    expires_at = UTCDateTime()
    bytes = fields.Integer()
    sha256 = fields.String(metadata={"description": "Check the bytes against it (on S3 the ETag is not the sha256)."})
    entitlement_id = fields.String()
    release_id = fields.String()
    file = fields.String()


# -- OpenAPI examples -----------------------------------------------------------------------------
EXAMPLE_ENTITLEMENT_ID = "ent_0193f3b02d5e8a1c7f4b9e6d2a0c3b85"
EXAMPLE_RELEASE_ID = "rel_0193f3a7c10b5d8e2f6a9c4e1b7d0a36"
EXAMPLE_MANIFEST = "5b0f5c2a7b1e44c0c8f2d6a9e3b7c1d4f8a2e6b0c4d8f2a6e0b4c8d2f6a0e4b8"
EXAMPLE_FILE_SHA256 = "9f2c6e0a4b8d2f6a0e4b8c2d6f0a4e8b2c6d0f4a8e2b6c0d4f8a2e6b0c4d8f2a"
RELEASE_CREATE_EXAMPLE = {"label": "2026-11", "notes": "November's traffic counts for the Pearl River Delta."}
RELEASE_FILE_EXAMPLE = {"name": "traffic-2026-11.csv", "bytes": 48_213, "sha256": EXAMPLE_FILE_SHA256,
                        "media_type": "text/csv"}
RELEASE_DRAFT_EXAMPLE = {"id": EXAMPLE_RELEASE_ID, "product_id": "prd_0193f1c2a9e85d47b0c3e6f19a2d8b54",
                         "label": "2026-11", "notes": RELEASE_CREATE_EXAMPLE["notes"], "status": "draft",
                         "files": [], "manifest_sha256": None, "receipt": None, "published_at": None,
                         "withdrawn_at": None, "created_at": "2026-12-01T08:00:00Z"}
RELEASE_PUBLISHED_EXAMPLE = {
    **RELEASE_DRAFT_EXAMPLE, "status": "published", "files": [RELEASE_FILE_EXAMPLE],
    "manifest_sha256": EXAMPLE_MANIFEST, "published_at": "2026-12-01T08:05:00Z",
    "receipt": {"published_at": "2026-12-01T08:05:00Z", "key_id": "exk_0193e0a1b2c3d4e5f60718293a4b5c6d",
                "signature": ("q3JmT0cW5b9s0c2hH8x1Vt6k4dYpE7nLrA9uZ3wQmF2iB5oK8jG1yN4eR7tU0vX3aC6fD9gH2jK5m"
                              "P8sV1wY4zA==")}}
RELEASE_WITHDRAWN_EXAMPLE = {**RELEASE_PUBLISHED_EXAMPLE, "status": "withdrawn", "withdrawn_at": "2026-12-02T09:00:00Z"}
ENTITLEMENT_EXAMPLE = {
    "id": EXAMPLE_ENTITLEMENT_ID, "trade_id": "trd_0193f2e93b6d0a4c8e2f5b7d1a9c3e46",
    "contract_id": "ctr_0193f2d85e1a7c3b9d4f6e2a0c8b5d31", "product_id": "prd_0193f1c2a9e85d47b0c3e6f19a2d8b54",
    "product_version": 1, "buyer_org_id": "org_0193f2a4c1d87b3e5a90c2d41f6e8b07",
    "seller_org_id": "org_0193f1b8e24a6c09d3f75e1b8a2c4d96", "delivery_mode": "file", "scope": "commercial",
    "starts_at": "2026-11-29T02:00:00Z", "ends_at": "2027-11-29T02:00:00Z", "status": "active",
    "status_reason": None, "calls_included": None, "calls_used": 0, "created_at": "2026-11-29T02:00:00Z"}
ENTITLEMENT_PAGE_EXAMPLE = {"items": [ENTITLEMENT_EXAMPLE], "total": 1, "page": 1, "per_page": 20}
ACCESS_PAGE_EXAMPLE = {"items": [
    {"id": 41, "at": "2026-12-01T08:10:00Z", "kind": "download_link", "user_id": "usr_0193f2a4c3e1b7d05f9a2c6e8b4d1f70",
     "api_key_id": None, "release_id": EXAMPLE_RELEASE_ID, "object": "traffic-2026-11.csv", "bytes": 48_213,
     "sha256": EXAMPLE_FILE_SHA256, "status": "allowed", "refused_reason": None},
    {"id": 42, "at": "2026-12-01T08:10:02Z", "kind": "download", "user_id": "usr_0193f2a4c3e1b7d05f9a2c6e8b4d1f70",
     "api_key_id": None, "release_id": EXAMPLE_RELEASE_ID, "object": "traffic-2026-11.csv", "bytes": 48_213,
     "sha256": EXAMPLE_FILE_SHA256, "status": "allowed", "refused_reason": None},
    {"id": 57, "at": "2026-12-03T11:00:00Z", "kind": "download_link", "user_id": "usr_0193f2a4c3e1b7d05f9a2c6e8b4d1f70",
     "api_key_id": None, "release_id": EXAMPLE_RELEASE_ID, "object": "traffic-2026-11.csv", "bytes": None,
     "sha256": None, "status": "refused", "refused_reason": "entitlement_suspended: dispute open"}],
    "next": None, "limit": 20}
DOWNLOAD_CREATE_EXAMPLE = {"release_id": EXAMPLE_RELEASE_ID, "file": "traffic-2026-11.csv"}
DOWNLOAD_LINK_EXAMPLE = {"url": "http://127.0.0.1:8000/api/v1/downloads/eyJlIjoiZW50XzAxOTNmM2IwIn0.Z0xQ.abc",
                         "expires_at": "2026-12-01T08:15:00Z", "bytes": 48_213, "sha256": EXAMPLE_FILE_SHA256,
                         "entitlement_id": EXAMPLE_ENTITLEMENT_ID, "release_id": EXAMPLE_RELEASE_ID,
                         "file": "traffic-2026-11.csv"}


# -- the API gateway -------------------------------------------------------------------------------
class AuthHeaderSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"))
    value = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=4000))


class ApiUpstreamSetSchema(StrictSchema):
    base_url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    auth_header = fields.Nested(AuthHeaderSchema, allow_none=True, metadata={
        "description": "Sent with every forwarded call; the value is stored encrypted and never shown again."})
    timeout_ms = fields.Integer(load_default=10000, validate=validate.Range(min=100, max=25000))


class ApiUpstreamSchema(Schema):
    product_id = fields.String()
    base_url = fields.String()
    auth_header_name = fields.String(allow_none=True)
    timeout_ms = fields.Integer()
    updated_at = UTCDateTime()


class ApiKeyCreateSchema(StrictSchema):
    label = Text(required=True, max_length=100)


class ApiKeySchema(Schema):
    id = fields.String()
    label = fields.String()
    prefix = fields.String(metadata={"description": "The key's first 12 characters (`dfk_` included)."})
    created_at = UTCDateTime()
    revoked_at = UTCDateTime(allow_none=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = OneTimeSecret(description="Shown once: send it as `Authorization: Bearer <key>` to /gateway/v1/...")


class ApiKeyListSchema(Schema):
    items = fields.List(fields.Nested(ApiKeySchema), required=True)


class UsageArgsSchema(StrictSchema):
    granularity = fields.String(load_default="period", validate=validate.OneOf(["period", "hour", "day"]))


class UsagePeriodSchema(Schema):
    start = UTCDateTime()
    end = UTCDateTime()
    calls = fields.Integer()
    amount = fields.Integer(allow_none=True, metadata={"description": "calls x unit price, gross (per_call)."})
    fee = fields.Integer(allow_none=True)
    entry_id = fields.String(allow_none=True, metadata={"description": "The `usage` ledger entry; null until closed."})


class UsageSchema(Schema):
    calls_included = fields.Integer(allow_none=True)
    calls_used = fields.Integer()
    periods = fields.List(fields.Nested(UsagePeriodSchema))


EXAMPLE_KEY_ID = "key_0193f3c11a2b3c4d5e6f708192a3b4c5"
API_UPSTREAM_SET_EXAMPLE = {"base_url": "https://api.gz-transport.example/v2",
                            "auth_header": {"name": "X-Api-Key", "value": "vendor-secret-0193f3c1"},
                            "timeout_ms": 5000}
API_UPSTREAM_EXAMPLE = {"product_id": "prd_0193f1c2a9e85d47b0c3e6f19a2d8b54",
                        "base_url": "https://api.gz-transport.example/v2", "auth_header_name": "X-Api-Key",
                        "timeout_ms": 5000, "updated_at": "2026-12-02T07:00:00Z"}
API_KEY_CREATE_EXAMPLE = {"label": "dispatch service"}
API_KEY_EXAMPLE = {"id": EXAMPLE_KEY_ID, "label": "dispatch service", "prefix": "dfk_Xq3v9LmA",
                   "created_at": "2026-12-02T07:05:00Z", "revoked_at": None}
API_KEY_CREATED_EXAMPLE = {**API_KEY_EXAMPLE, "key": "dfk_Xq3v9LmAZb81c0pQnE2rT5uVwY7xK4sH6jD3fG9aB1c"}
USAGE_EXAMPLE = {"calls_included": 10000, "calls_used": 342, "periods": [
    {"start": "2026-12-02T07:00:00Z", "end": "2026-12-02T08:00:00Z", "calls": 342, "amount": 273600, "fee": 5472,
     "entry_id": "jrn_0193f3d2a4b6c8d0e2f4a6b8c0d2e4f6"}]}


# -- privacy computing -----------------------------------------------------------------------------
class StrictNumber(fields.Float):
    """A JSON number (never a string or a boolean), finite."""

    def __init__(self, **kw: object) -> None:
        super().__init__(allow_nan=False, **kw)  # type: ignore[arg-type]

    def _deserialize(self, value: object, attr: str | None, data: object, **kw: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kw)  # type: ignore[arg-type]


class BoundsField(fields.Dict):
    """`{"column": [low, high]}`, at most 100 columns (the document says so: maxProperties)."""

    MAX = 100

    def _deserialize(self, value: object, attr: str | None, data: object, **kw: object) -> object:
        if isinstance(value, dict) and len(value) > self.MAX:
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kw)  # type: ignore[arg-type]


class SandboxPolicySetSchema(StrictSchema):
    min_group_size = StrictInteger(minimum=5, maximum=10000, load_default=10, metadata={
        "description": "k: every released group covers at least this many rows (a noised count under a budget)."})
    blocked_columns = fields.List(fields.String(validate=validate.Length(min=1, max=200)), load_default=list,
                                  validate=validate.Length(max=500), metadata={
                                      "description": "Never selected, grouped by, filtered on or ordered by."})
    allowed_aggregates = fields.List(fields.String(validate=validate.OneOf(
        ["count", "count_distinct", "sum", "avg", "min", "max"])), load_default=lambda: ["count", "count_distinct",
                                                                                        "sum", "avg"],
        validate=validate.Length(min=1, max=6))
    max_groups = StrictInteger(minimum=1, maximum=10000, load_default=1000)
    epsilon_budget = StrictNumber(allow_none=True, load_default=None, validate=validate.Range(min=0.001, max=1000),
                                  metadata={"description": "Total epsilon per buyer organization and product (all "
                                                           "its trades and periods). Required for a product that "
                                                           "contains personal information."})
    bounds = BoundsField(keys=fields.String(validate=validate.Length(min=1, max=200)),
                         values=fields.List(StrictNumber(validate=validate.Range(min=-1e15, max=1e15)),
                                            validate=validate.Length(equal=2)),
                         load_default=dict, metadata={
                             "maxProperties": BoundsField.MAX,
                             "description": "[low, high] of every column summed or averaged under a budget: values "
                                            "are clamped to them and the noise is scaled to them."})
    rows_per_person = StrictInteger(minimum=1, maximum=10000, load_default=1, metadata={
        "description": "How many rows one person may contribute; the noise scales with it."})


class SandboxPolicySchema(Schema):
    product_id = fields.String()
    min_group_size = fields.Integer()
    blocked_columns = fields.List(fields.String())
    allowed_aggregates = fields.List(fields.String())
    max_groups = fields.Integer()
    epsilon_budget = fields.Float(allow_none=True)
    bounds = fields.Dict(keys=fields.String(), values=fields.List(fields.Float()))
    rows_per_person = fields.Integer()


class QueryCreateSchema(StrictSchema):
    sql = fields.String(required=True, validate=validate.Length(min=1, max=10000), metadata={
        "description": "One SELECT in the sandbox's grammar (docs/delivery.md), DuckDB dialect."})
    release_id = fields.String(validate=ID, load_default=None, metadata={
        "description": "Default: the newest published release the entitlement covers."})
    epsilon = StrictNumber(allow_none=True, load_default=None, validate=validate.Range(min=0.001, max=100), metadata={
        "description": "Required under a privacy budget: the part of it this query spends (debited before it runs, "
                       "never given back)."})


class QueryReceiptSchema(Schema):
    key_id = fields.String()
    signature = fields.String(metadata={"description": "Ed25519 (base64) over the RFC 8785 JSON of {query_id, "
                                                       "entitlement_id, release_id, manifest_sha256, sql, "
                                                       "result_sha256, at}."})


class QuerySchema(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "`succeeded`, `refused` (outside the policy or the grammar) or "
                                                    "`failed` (the engine could not answer)."})
    refused_reason = fields.String(allow_none=True, metadata={"description": "`code: what to change`; never a value "
                                                                            "of the data."})
    release_id = fields.String(allow_none=True)
    at = UTCDateTime()
    sql = fields.String()
    executed_sql = fields.String(allow_none=True, metadata={
        "description": "The query that ran, rebuilt from the checked syntax tree (not the text sent)."})
    columns = fields.List(fields.String())
    rows = fields.List(fields.List(fields.Raw(metadata={
        "description": "A key (string, number, date as text; null for a null key) or an aggregate."})))
    suppressed_groups = fields.Integer(allow_none=True)
    truncated = fields.Boolean(metadata={"description": "More than max_groups groups: the first max_groups are shown."})
    epsilon_spent = fields.Float(allow_none=True)
    epsilon_remaining = fields.Float(allow_none=True)
    elapsed_ms = fields.Integer(allow_none=True)
    result_sha256 = fields.String(allow_none=True, metadata={
        "description": "sha256 hex of the RFC 8785 JSON of {columns, rows}."})
    receipt = fields.Nested(QueryReceiptSchema, allow_none=True)


class QueryArgsSchema(StrictSchema):
    after = fields.String(validate=ID, metadata={"description": "The `next` of the previous page."})
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class QueryPageSchema(Schema):
    items = fields.List(fields.Nested(QuerySchema), required=True)
    next = fields.String(allow_none=True, required=True)
    limit = fields.Integer(required=True)


class TablesArgsSchema(StrictSchema):
    release_id = fields.String(validate=ID, load_default=None)


class TableColumnSchema(Schema):
    name = fields.String()
    type = fields.String()
    blocked = fields.Boolean()


class TableSchema(Schema):
    name = fields.String()
    file = fields.String()
    columns = fields.List(fields.Nested(TableColumnSchema))


class TablesSchema(Schema):
    release_id = fields.String()
    policy = fields.Nested(SandboxPolicySchema, allow_none=True)
    epsilon_remaining = fields.Float(allow_none=True)
    tables = fields.List(fields.Nested(TableSchema))


EXAMPLE_PRIVACY_PRODUCT = "prd_0193f1c2a9e85d47b0c3e6f19a2d8b99"
SANDBOX_POLICY_SET_EXAMPLE = {"min_group_size": 10, "blocked_columns": ["customer_id", "phone"],
                              "allowed_aggregates": ["count", "count_distinct", "sum", "avg"], "max_groups": 1000,
                              "epsilon_budget": 10.0, "bounds": {"basket_amount_cents": [0, 500000], "items": [0, 50]},
                              "rows_per_person": 4}
SANDBOX_POLICY_EXAMPLE = {"product_id": EXAMPLE_PRIVACY_PRODUCT, **SANDBOX_POLICY_SET_EXAMPLE}
QUERY_CREATE_EXAMPLE = {"sql": "SELECT city, count(*) AS baskets, avg(basket_amount_cents) AS avg_cents FROM retail "
                               "WHERE month >= '2026-07' GROUP BY city ORDER BY baskets DESC", "epsilon": 0.5}
QUERY_EXAMPLE = {
    "id": "qry_0193f3e1a2b3c4d5e6f708192a3b4c5d", "status": "succeeded", "refused_reason": None,
    "release_id": "rel_0193f3b1a2b3c4d5e6f708192a3b4c5d", "at": "2026-12-02T09:00:00Z",
    "sql": QUERY_CREATE_EXAMPLE["sql"],
    "executed_sql": "WITH g AS MATERIALIZED (SELECT \"retail\".\"city\" AS _k0, count(*) AS _n, ...) ...",
    "columns": ["city", "baskets", "avg_cents"], "rows": [["广州", 912, 18450.2], ["深圳", 874, 20113.9]],
    "suppressed_groups": 2, "truncated": False, "epsilon_spent": 0.5, "epsilon_remaining": 9.5, "elapsed_ms": 41,
    "result_sha256": "5d0c7b9a0f3e1c2b4a6d8e0f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c",
    "receipt": {"key_id": "k-2026-11", "signature": "8b0Jw3...base64...=="}}
QUERY_PAGE_EXAMPLE = {"items": [QUERY_EXAMPLE], "next": None, "limit": 20}
TABLES_EXAMPLE = {"release_id": QUERY_EXAMPLE["release_id"], "policy": SANDBOX_POLICY_EXAMPLE,
                  "epsilon_remaining": 9.5,
                  "tables": [{"name": "retail", "file": "retail.csv", "columns": [
                      {"name": "city", "type": "VARCHAR", "blocked": False},
                      {"name": "phone", "type": "VARCHAR", "blocked": True}]}]}
