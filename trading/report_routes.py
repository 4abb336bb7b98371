"""HTTP route of the regulator's trade report (交易备案): GET /api/v1/reports/trades."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import ValidationError, fields, validate, validates_schema

from exchange.api import AUTH, Blueprint
from exchange.db import db
from exchange.fields import StrictSchema, UTCDateTime
from exchange.principal import current_principal
from trading import reports

blp = Blueprint("trade-reports", __name__, url_prefix="/api/v1",
                description="Regulator reports (交易备案): signed trade reports for operators")


class TradeReportArgsSchema(StrictSchema):
    from_ = UTCDateTime(required=True, data_key="from",
                        metadata={"description": "Start of the window, inclusive (contract `signed_at` >= from); "
                                                 "ISO 8601 with a timezone", "example": "2026-11-01T00:00:00Z"})
    to = UTCDateTime(required=True, metadata={"description": "End of the window, exclusive (`signed_at` < to); "
                                                             "must be after `from`",
                                              "example": "2026-12-01T00:00:00Z"})
    format = fields.String(load_default="json", validate=validate.OneOf(reports.FORMATS),
                           metadata={"description": "`json` (default) or `csv`"})

    @validates_schema
    def _window(self, data: dict[str, Any], **_kw: Any) -> None:
        if "from_" in data and "to" in data and data["to"] <= data["from_"]:
            raise ValidationError("Must be after `from` (the window is half-open: from <= signed_at < to).",
                                  field_name="to")


_PARTY = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "registration_number": {"type": "string"},
    "region": {"type": "string", "enum": ["GD", "HK", "MO", "CN", "INTL"]},
    "city": {"type": "string", "nullable": True}, "zone": {"type": "string", "nullable": True}}}
_ROW = {"type": "object", "properties": {
    "contract_number": {"type": "string"}, "contract_id": {"type": "string"},
    "signed_at": {"type": "string", "format": "date-time"}, "on_site": {"type": "boolean"},
    "fair_id": {"type": "string", "nullable": True}, "buyer": _PARTY, "seller": _PARTY,
    "product": {"type": "object", "properties": {"id": {"type": "string"}, "title": {"type": "string"},
                                                 "version": {"type": "integer"}}},
    "certificate_number": {"type": "string"},
    "classification": {"type": "string", "enum": ["general", "important", "core"]},
    "contains_personal_info": {"type": "boolean"},
    "personal_info": {"type": "object", "nullable": True, "properties": {
        "subjects": {"type": "integer"}, "sensitive": {"type": "boolean"}}},
    "cross_border": {"type": "boolean", "description": "The seller (exporter) in GD or CN, the buyer in HK, MO "
                                                       "or INTL: the data leaves the mainland."},
    "dossier": {"type": "object", "nullable": True,
                "description": "The contract's cross-border dossier; null when it has none.",
                "properties": {"path": {"type": "string"}, "status": {"type": "string", "enum": [
                    "not_required", "awaiting_filing", "filed", "overdue"]},
                    "due_at": {"type": "string", "format": "date-time", "nullable": True},
                    "reference": {"type": "string", "nullable": True},
                    "filed_at": {"type": "string", "format": "date-time", "nullable": True}}},
    "trade": {"type": "object", "properties": {
        "id": {"type": "string"}, "period_index": {"type": "integer"}, "status": {"type": "string"},
        "currency": {"type": "string", "enum": ["CNY", "HKD", "MOP"]},
        "amount": {"type": "integer", "description": "minor units"},
        "fee": {"type": "integer", "description": "minor units"},
        "refunded_amount": {"type": "integer", "description": "minor units"}}}}}
_REPORT = {"type": "object", "properties": {
    "from": {"type": "string", "format": "date-time"}, "to": {"type": "string", "format": "date-time"},
    "generated_at": {"type": "string", "format": "date-time"},
    "trades": {"type": "array", "items": _ROW}, "count": {"type": "integer"}}}
_PARTY_EXAMPLE = {"id": "org_0192f3a1b2c3d4e5f6a7b8c9d0e1", "name": "广州交通数据有限公司",
                  "registration_number": "91440101MA5CXXXX0X", "region": "GD", "city": "guangzhou", "zone": "nansha"}
EXAMPLE = {
    "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "generated_at": "2026-12-01T02:00:00Z",
    "trades": [{
        "contract_number": "DFC-2026-000042", "contract_id": "ctr_0192f3a1b2c3d4e5f6a7b8c9d0e1",
        "signed_at": "2026-11-28T04:00:00Z", "on_site": False, "fair_id": None,
        "buyer": {**_PARTY_EXAMPLE, "id": "org_0192f3a1b2c3d4e5f6a7b8c9d0e2", "name": "香港智慧城市有限公司",
                  "registration_number": "HK-CR-3141592", "region": "HK", "city": None, "zone": None},
        "seller": _PARTY_EXAMPLE,
        "product": {"id": "prd_0192f3a1b2c3d4e5f6a7b8c9d0e1", "title": "广州市实时交通流量数据", "version": 2},
        "certificate_number": "DFC-CERT-2026-000017", "classification": "general",
        "contains_personal_info": True, "personal_info": {"subjects": 5000, "sensitive": False},
        "cross_border": True,
        "dossier": {"path": "exempt_small_volume", "status": "not_required", "due_at": None, "reference": None,
                    "filed_at": None},
        "trade": {"id": "trd_0192f3a1b2c3d4e5f6a7b8c9d0e1", "period_index": 1, "status": "escrowed",
                  "currency": "CNY", "amount": 1250000, "fee": 25000, "refunded_amount": 0},
    }],
    "count": 1,
}
CSV_EXAMPLE = (",".join(reports.CSV_COLUMNS) + "\r\n"
               "DFC-2026-000042,ctr_0192f3a1b2c3d4e5f6a7b8c9d0e1,2026-11-28T04:00:00Z,false,,...\r\n")
_HEADERS = {
    "Digest": {"description": "RFC 3230 instance digest of the exact body bytes: `sha-256=<base64 of the "
                              "SHA-256>`.", "schema": {"type": "string"}},
    "Datafair-Signature": {
        "description": "`keyId=\"<kid>\",algorithm=\"ed25519\",signature=\"<base64>\"`: the exchange's Ed25519 "
                       "signature (key `kid` of /.well-known/jwks.json) over the RFC 8785 canonical JSON of "
                       "`{\"digest\": <the Digest header's value>, \"format\": <format>, \"from\": <from>, "
                       "\"report\": \"trades\", \"to\": <to>}` with `from` and `to` in UTC with Z as the body "
                       "shows them.", "schema": {"type": "string"}},
    "Content-Length": {"description": "The body's length in bytes.", "schema": {"type": "integer"}},
}
RESPONSES = {"200": {
    "description": "The report (JSON or CSV per `format`), with its digest and signature headers.",
    "headers": _HEADERS,
    "content": {
        "application/json": {"schema": _REPORT, "example": EXAMPLE},
        "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
    },
}}


@blp.route("/reports/trades", methods=["GET"])
@blp.arguments(TradeReportArgsSchema, location="query")
@blp.doc(operationId="tradeReport", security=AUTH, responses=RESPONSES)
@blp.problems(401, 403, 422)
def trade_report(args: dict[str, Any]) -> Any:
    """Get the signed trade report for a window (交易备案).

    Operators only (403 for anyone else). Every trade whose contract was signed in the half-open window
    `from <= signed_at < to` — one row per trade, so every period of a subscription signed in the
    window — ordered by the contract's `signed_at`, its number, then `period_index`: contract number,
    signed_at, on site or not (fair), the parties (name, registration number, region, city, zone),
    product (id, title, version), certificate number, classification, personal information, whether
    the data leaves the mainland and the contract's cross-border dossier (path, status as of now,
    filing due date, reference, filed_at; null when it has none), and the trade's amount, fee and
    refunded amount in integer minor units with its currency, status and period index.

    `format=json` (default, `application/json`): `{"from", "to", "generated_at", "trades": [...],
    "count"}` (`count` comes last: the body is written row by row). `format=csv`
    (`text/csv; charset=utf-8`): RFC 4180 (CRLF, a header row), UTF-8 without a BOM; booleans `true`
    and `false`, null as an empty cell; a text cell starting with `=`, `+`, `-`, `@`, a tab or a
    carriage return is prefixed with a single quote `'` so spreadsheets do not run it as a formula
    (the JSON shows the text unchanged).

    `Digest: sha-256=<base64>` is the SHA-256 of the exact body bytes; `Datafair-Signature:
    keyId="<kid>",algorithm="ed25519",signature="<base64>"` is the exchange's Ed25519 signature over
    the RFC 8785 canonical JSON of `{"digest", "format", "from", "report": "trades", "to"}` (the
    Digest header's value, the format, and `from`/`to` in UTC with Z): verify it offline with the
    key `kid` of `/.well-known/jwks.json`. Changes nothing (not audited: reads never write); no
    timezone, `to` not after `from`, an unknown format or parameter -> 422."""
    report = reports.trade_report(db.session, start=args["from_"], end=args["to"], fmt=args["format"],
                                  actor=current_principal(), temp_dir=current_app.config.get("REPORT_TMP_DIR"))
    response = current_app.response_class(reports.chunks(report.body), content_type=report.media_type,
                                          direct_passthrough=True)
    response.call_on_close(report.body.close)
    response.content_length = report.length
    response.headers["Digest"] = report.digest
    response.headers["Datafair-Signature"] = report.signature_header
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
