"""The regulator's trade report (交易备案, API.md Compliance): every trade whose contract was signed in a
half-open window, as CSV or JSON, hashed and signed by the exchange over the exact bytes.

One row per trade (a subscription has one trade per period: every trade of a contract signed in the
window is reported, whenever its period starts), ordered by the contract's `signed_at`, its number,
then `period_index`. The rows are streamed from one query (a server-side cursor on PostgreSQL,
SQLite's stepping cursor) in batches of `BATCH` into a spool file while its sha-256 is computed, so
neither the rows nor the body are ever held whole in memory; the route then sends the file in chunks.

What is signed: the exchange's Ed25519 over the RFC 8785 canonical JSON of
`{"digest": "sha-256=<base64>", "format": "csv"|"json", "from": "<iso z>", "report": "trades",
"to": "<iso z>"}` (`exchange.signing.services.sign`), so a verifier needs the body, the query it
asked and the JWKS alone.

Reads only: no row is locked and nothing is written (no audit record: reads never write, API.md).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session, aliased

from exchange.db import utcnow
from exchange.errors import field_error
from exchange.fields import iso_z
from exchange.identity.models import Organization
from exchange.principal import Principal
from exchange.signing import services as signing
from listings.models import ProductVersion
from trading.models import Contract, Dossier, Trade
from trading.states import DossierStatus

REPORT = "trades"
FORMATS = ("csv", "json")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
BATCH = 1000
# Kept in memory up to this size, then rolled over to an anonymous temporary file (deleted on close).
SPOOL_MEMORY_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024
# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

CSV_COLUMNS = (
    "contract_number", "contract_id", "signed_at", "on_site", "fair_id",
    "buyer_id", "buyer_name", "buyer_registration_number", "buyer_region", "buyer_city", "buyer_zone",
    "seller_id", "seller_name", "seller_registration_number", "seller_region", "seller_city", "seller_zone",
    "product_id", "product_title", "product_version", "certificate_number", "classification",
    "contains_personal_info", "personal_info_subjects", "personal_info_sensitive",
    "cross_border", "dossier_path", "dossier_status", "dossier_due_at", "dossier_reference", "dossier_filed_at",
    "trade_id", "period_index", "trade_status", "currency", "amount", "fee", "refunded_amount",
)

_buyer = aliased(Organization, name="buyer")
_seller = aliased(Organization, name="seller")
_PARTY_COLUMNS = ("id", "name", "registration_number", "region", "city", "zone")
_MAINLAND, _ABROAD = ("GD", "CN"), ("HK", "MO", "INTL")


@dataclass(frozen=True)
class Report:
    """A produced report: the spooled body (positioned at 0) and what the response headers carry."""

    body: IO[bytes]
    length: int
    digest: str          # "sha-256=<base64>"
    key_id: str
    signature: str       # base64 Ed25519
    media_type: str
    count: int

    @property
    def signature_header(self) -> str:
        return f'keyId="{self.key_id}",algorithm="ed25519",signature="{self.signature}"'


def signed_payload(*, digest: str, start: datetime, end: datetime, fmt: str) -> dict[str, str]:
    """What the exchange signs (RFC 8785 canonical JSON of this object)."""
    return {"digest": digest, "report": REPORT, "from": iso_z(start), "to": iso_z(end), "format": fmt}


def _statement(start: datetime, end: datetime) -> Any:
    party = [getattr(_buyer, c).label(f"buyer_{c}") for c in _PARTY_COLUMNS]
    party += [getattr(_seller, c).label(f"seller_{c}") for c in _PARTY_COLUMNS]
    return (
        select(
            Contract.number.label("contract_number"), Contract.id.label("contract_id"), Contract.signed_at,
            Contract.on_site, Contract.fair_id, *party,
            Contract.product_id, ProductVersion.title.label("product_title"),
            Contract.product_version, Contract.certificate_number, ProductVersion.classification,
            ProductVersion.contains_personal_info, ProductVersion.personal_info,
            Dossier.id.label("dossier_id"), Dossier.path.label("dossier_path"),
            Dossier.status.label("dossier_status"), Dossier.due_at.label("dossier_due_at"),
            Dossier.reference.label("dossier_reference"), Dossier.filed_at.label("dossier_filed_at"),
            Trade.id.label("trade_id"), Trade.period_index, Trade.status.label("trade_status"), Trade.currency,
            Trade.amount, Trade.fee, Trade.refunded_amount,
        )
        .select_from(Trade)
        .join(Contract, Contract.id == Trade.contract_id)
        .join(_buyer, _buyer.id == Contract.buyer_org_id)
        .join(_seller, _seller.id == Contract.seller_org_id)
        .join(ProductVersion, (ProductVersion.product_id == Contract.product_id)
              & (ProductVersion.version == Contract.product_version))
        .outerjoin(Dossier, Dossier.contract_id == Contract.id)
        .where(Contract.signed_at >= start, Contract.signed_at < end)
        .order_by(Contract.signed_at, Contract.number, Trade.period_index)
    )


def _dossier_status(row: Row[Any], now: datetime) -> str:
    # As trading.dossiers.effective_status: overdue is computed on read, the sweep persists it.
    if row.dossier_status == DossierStatus.AWAITING_FILING and row.dossier_due_at is not None \
            and row.dossier_due_at <= now:
        return DossierStatus.OVERDUE
    return row.dossier_status


def shaped(row: Row[Any], now: datetime) -> dict[str, Any]:
    """One report row as the JSON report shows it (integers for money, times in UTC with Z)."""
    def party(prefix: str) -> dict[str, Any]:
        return {c: getattr(row, f"{prefix}_{c}") for c in _PARTY_COLUMNS}

    dossier = None
    if row.dossier_id is not None:
        dossier = {"path": row.dossier_path, "status": _dossier_status(row, now), "due_at": iso_z(row.dossier_due_at),
                   "reference": row.dossier_reference, "filed_at": iso_z(row.dossier_filed_at)}
    info = row.personal_info
    return {
        "contract_number": row.contract_number,
        "contract_id": row.contract_id,
        "signed_at": iso_z(row.signed_at),
        "on_site": bool(row.on_site),
        "fair_id": row.fair_id,
        "buyer": party("buyer"),
        "seller": party("seller"),
        "product": {"id": row.product_id, "title": row.product_title, "version": row.product_version},
        "certificate_number": row.certificate_number,
        "classification": row.classification,
        "contains_personal_info": bool(row.contains_personal_info),
        "personal_info": ({"subjects": int(info["subjects"]), "sensitive": bool(info["sensitive"])}
                          if isinstance(info, dict) and "subjects" in info else None),
        # The seller (the exporter) on the mainland, the buyer outside it (trading.dossiers.leaves_mainland).
        "cross_border": row.seller_region in _MAINLAND and row.buyer_region in _ABROAD,
        "dossier": dossier,
        "trade": {"id": row.trade_id, "period_index": int(row.period_index), "status": row.trade_status,
                  "currency": row.currency, "amount": int(row.amount), "fee": int(row.fee),
                  "refunded_amount": int(row.refunded_amount)},
    }


def neutralize(value: str) -> str:
    """A text cell a spreadsheet would run as a formula, prefixed with a single quote."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return neutralize(value)
    return value


def csv_cells(item: dict[str, Any]) -> list[Any]:
    """One CSV record of a shaped row, in CSV_COLUMNS order."""
    d, t, info = item["dossier"] or {}, item["trade"], item["personal_info"] or {}
    values: list[Any] = [item["contract_number"], item["contract_id"], item["signed_at"], item["on_site"],
                         item["fair_id"]]
    for side in ("buyer", "seller"):
        values += [item[side][c] for c in _PARTY_COLUMNS]
    values += [item["product"]["id"], item["product"]["title"], item["product"]["version"],
               item["certificate_number"], item["classification"], item["contains_personal_info"],
               info.get("subjects"), info.get("sensitive"), item["cross_border"],
               d.get("path"), d.get("status"), d.get("due_at"), d.get("reference"), d.get("filed_at"),
               t["id"], t["period_index"], t["status"], t["currency"], t["amount"], t["fee"], t["refunded_amount"]]
    return [_cell(v) for v in values]


class _HashingSpool:
    """A write-only view of the spool file that hashes and counts every byte written."""

    def __init__(self, spool: IO[bytes]) -> None:
        self.spool, self.sha256, self.length = spool, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.length += len(data)
        self.spool.write(data)


def _rows(session: Session, start: datetime, end: datetime) -> Iterator[Row[Any]]:
    result = session.execute(_statement(start, end).execution_options(stream_results=True, yield_per=BATCH))
    try:
        for batch in result.partitions():
            yield from batch
    finally:
        result.close()


def _write_csv(out: _HashingSpool, rows: Iterator[Row[Any]], now: datetime) -> int:
    # RFC 4180: CRLF line ends, quotes doubled; UTF-8 without a BOM. One small buffer per batch.
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(csv_cells(shaped(row, now)))
        count += 1
        if count % BATCH == 0:
            out.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
    out.write(buffer.getvalue().encode())
    return count


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _write_json(out: _HashingSpool, rows: Iterator[Row[Any]], now: datetime, start: datetime,
                end: datetime) -> int:
    # Written row by row; `count` comes last because it is known only at the end.
    out.write(b'{"from":' + _json(iso_z(start)) + b',"to":' + _json(iso_z(end))
              + b',"generated_at":' + _json(iso_z(now)) + b',"trades":[')
    count = 0
    for row in rows:
        out.write((b"," if count else b"") + _json(shaped(row, now)))
        count += 1
    out.write(b'],"count":' + str(count).encode() + b"}")
    return count


def trade_report(session: Session, *, start: datetime, end: datetime, fmt: str, actor: Principal,
                 temp_dir: str | None = None) -> Report:
    """Produce the signed trade report for `[start, end)` into a spool file (the caller closes `body`).

    Raises Forbidden (not an operator) and ValidationFailed (`to` not after `from`, unknown format)."""
    actor.require_operator()
    if end <= start:
        raise field_error("to", "Must be after `from` (the window is half-open: from <= signed_at < to).")
    if fmt not in FORMATS:
        raise field_error("format", f"Must be one of: {', '.join(FORMATS)}.")
    now = utcnow()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, dir=temp_dir,  # noqa: SIM115
                                          prefix="datafair-report-")
    try:
        out = _HashingSpool(spool)
        rows = _rows(session, start, end)
        count = _write_csv(out, rows, now) if fmt == "csv" else _write_json(out, rows, now, start, end)
        digest = "sha-256=" + base64.b64encode(out.sha256.digest()).decode()
        key_id, signature = signing.sign(session, signed_payload(digest=digest, start=start, end=end, fmt=fmt))
        spool.flush()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return Report(body=spool, length=out.length, digest=digest, key_id=key_id, signature=signature,
                  media_type=MEDIA_TYPES[fmt], count=count)


def chunks(body: IO[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The spooled body in chunks, closed (and deleted) when sent or when the response closes."""
    try:
        while True:
            chunk = body.read(size)
            if not chunk:
                return
            yield chunk
    finally:
        body.close()
