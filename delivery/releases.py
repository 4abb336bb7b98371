"""Releases: the data a vendor publishes for a product, files streamed to storage, then frozen and
signed. Publishing delivers every trade whose entitlement is active (delivery evidence)."""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from delivery import entitlements, evidence
from delivery import storage as store
from delivery.models import Entitlement, Release, ReleaseFile
from delivery.states import LIVE, RELEASE_TRANSITIONS, EntitlementStatus, ReleaseStatus
from exchange.canonical import sha256_hex
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, ValidationFailed, field_error
from exchange.events import outbox
from exchange.fields import Facts, iso_z
from exchange.identity import audit
from exchange.payments import outside_transaction
from exchange.principal import Principal
from exchange.signing import services as signing
from exchange.states import load_for_update, transition
from listings import services as listings
from listings.models import Product
from listings.states import ProductStatus
from trading import settlement
from trading.models import Trade

R = ReleaseStatus
FILE_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")
SHA256 = re.compile(r"[0-9a-f]{64}")


def valid_file_name(name: str) -> bool:
    """1..200 characters of `[A-Za-z0-9._-]`, not starting with a dot (no path can be made of it)."""
    return bool(FILE_NAME.fullmatch(name)) and not name.startswith(".")


def storage() -> store.Storage:
    """The app's storage (one per app: its S3 client is made once)."""
    app = current_app
    url = app.config.get("STORAGE_URL") or "file://" + os.path.join(app.instance_path, "storage")
    cached = app.extensions.get("datafair.storage")
    if cached is None or cached[0] != url:
        cached = (url, store.open_storage(url, s3_options=app.config.get("STORAGE_S3_OPTIONS")))
        app.extensions["datafair.storage"] = cached
    return cached[1]


# -- the vendor's side -----------------------------------------------------------------------------
def create(session: Session, *, product_id: str, label: str, notes: str | None, actor: Principal) -> Release:
    """A draft release of a product the actor's organization owns (listed or draft; 409 otherwise)."""
    product = listings.owned_product(session, product_id=product_id, actor=actor)
    if product.status not in (ProductStatus.LISTED, ProductStatus.DRAFT):
        raise Conflict(f"This product is {product.status}; releases are added to listed or draft products.",
                       next_step="releases can only be added while the product is draft or listed; an operator must "
                                 "reinstate a suspended product first")
    release = Release(product_id=product.id, label=label, notes=notes, status=R.DRAFT, created_by=actor.user_id)
    session.add(release)
    session.flush()
    audit.record(session, actor, "release.created", "release", release.id, product_id=product.id)
    return release


def _owned(session: Session, release_id: str, actor: Principal, *, lock: bool = False,
           operator_ok: bool = False) -> Release:
    release = (load_for_update(session, Release, release_id) if lock else session.get(Release, release_id)) \
        if len(release_id) <= 40 else None
    if release is None:
        raise NotFound("No such release.")
    if operator_ok and actor.is_operator:
        return release
    try:
        listings.owned_product(session, product_id=release.product_id, actor=actor)
    except NotFound:
        raise NotFound("No such release.") from None
    except Forbidden:
        # 403 only for who may see this release (an operator, a buyer it covers); 404 for anyone else.
        get(session, release_id=release.id, principal=actor)
        raise
    return release


def _draft(release: Release) -> None:
    if release.status != R.DRAFT:
        raise Conflict(f"This release is {release.status}; its files are frozen.",
                       next_step="create a new draft release for changed files")


def put_file(session: Session, *, release_id: str, name: str, read: Callable[[int], bytes],
             expected_sha256: str | None, actor: Principal) -> ReleaseFile:
    """Stream a file of a draft release to storage while hashing it, then record it (replacing a
    file of that name). The body is read with no transaction open (an upload takes minutes).

    PayloadTooLarge past DATAFAIR_MAX_UPLOAD_BYTES; ValidationFailed for a bad name or a
    Content-SHA256 that does not match what arrived (nothing is stored then)."""
    if not valid_file_name(name):
        raise field_error("name", "1..200 characters of A-Z a-z 0-9 . _ -, not starting with a dot")
    if expected_sha256 is not None and not SHA256.fullmatch(expected_sha256):
        raise ValidationFailed("Content-SHA256 must be 64 lowercase hex characters.",
                               errors={"Content-SHA256": ["must be 64 lowercase hex characters"]})
    _draft(_owned(session, release_id, actor))
    limit = int(current_app.config["MAX_UPLOAD_BYTES"])
    target = storage()

    def guarded(n: int) -> bytes:
        try:
            return read(n)
        except RequestEntityTooLarge:
            raise store.UploadTooLarge from None

    try:
        stored = outside_transaction(session, lambda: target.put_stream(guarded, limit=limit,
                                                                        expected_sha256=expected_sha256))
    except store.UploadTooLarge:
        raise PayloadTooLarge(f"A file may be at most {limit} bytes (DATAFAIR_MAX_UPLOAD_BYTES).") from None
    except store.DigestMismatch:
        raise ValidationFailed("The body's sha256 does not match Content-SHA256; nothing was stored.",
                               errors={"Content-SHA256": ["does not match the sha256 of the body received"]}) from None
    release = _owned(session, release_id, actor, lock=True)
    _draft(release)  # published meanwhile: the stored object stays unreferenced, the release unchanged
    return record_file(session, release=release, name=name, stored=stored, actor=actor)


def record_file(session: Session, *, release: Release, name: str, stored: store.Stored,
                actor: Principal) -> ReleaseFile:
    """Record an object already in storage as the file `name` of a draft `release` (loaded for update)."""
    row = session.execute(select(ReleaseFile).where(ReleaseFile.release_id == release.id,
                                                    ReleaseFile.name == name)).scalar_one_or_none()
    if row is None:
        row = ReleaseFile(release_id=release.id, name=name)
        session.add(row)
    row.bytes, row.sha256, row.uploaded_by = stored.bytes, stored.sha256, actor.user_id
    row.media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    release.updated_at = utcnow()
    audit.record(session, actor, "release.file_uploaded", "release", release.id, name=name, bytes=stored.bytes,
                 sha256=stored.sha256)
    session.flush()
    return row


def files_of(session: Session, release_id: str) -> list[ReleaseFile]:
    return list(session.execute(select(ReleaseFile).where(ReleaseFile.release_id == release_id)
                                .order_by(ReleaseFile.name)).scalars())


def manifest(release: Release, files: list[ReleaseFile]) -> dict[str, Any]:
    """The body whose RFC 8785 digest is `manifest_sha256`."""
    ordered = sorted(files, key=lambda f: f.name)
    return {"release_id": release.id, "product_id": release.product_id,
            "files": [{"name": f.name, "bytes": f.bytes, "sha256": f.sha256} for f in ordered]}


def receipt_payload(release: Release, files: list[ReleaseFile]) -> dict[str, Any]:
    """What the exchange signs at publication (verifiable with the JWKS alone)."""
    body = manifest(release, files)
    return {**body, "manifest_sha256": release.manifest_sha256, "published_at": iso_z(release.published_at)}


def _table_name(name: str) -> str:
    return name.rsplit(".", 1)[0].lower() if "." in name else name.lower()


def publish(session: Session, *, release_id: str, actor: Principal) -> Release:
    """Freeze the files, compute and sign the manifest, and deliver the trades whose entitlement is
    active now. ValidationFailed for an empty release (or, for a privacy-computing product, two
    files that make the same table); Conflict unless a draft."""
    release = _owned(session, release_id, actor, lock=True)
    _draft(release)
    files = files_of(session, release.id)
    if not files:
        raise ValidationFailed("An empty release cannot be published: upload at least one file.",
                               errors={"files": ["at least one file is required"]})
    product = session.get(Product, release.product_id)
    if product.delivery_mode == "privacy_computing":
        tables: dict[str, str] = {}
        for f in files:
            clash = tables.setdefault(_table_name(f.name), f.name)
            if clash != f.name:
                raise ValidationFailed(f"Files {clash} and {f.name} would both be the table {_table_name(f.name)}.",
                                       errors={"files": [f"{clash} and {f.name} give the same table name"]})
    transition(release, RELEASE_TRANSITIONS, R.PUBLISHED, actor=actor, what="Release")
    release.published_at = utcnow()
    release.manifest_sha256 = sha256_hex(manifest(release, files))
    release.receipt_key_id, release.receipt_signature = signing.sign(session, receipt_payload(release, files))
    outbox.emit(session, event_type="release.published", org_ids=[product.owner_org_id, *_buyers(session, release)],
                payload={"release_id": release.id, "product_id": release.product_id,
                         "manifest_sha256": release.manifest_sha256})
    audit.record(session, actor, "release.published", "release", release.id, manifest_sha256=release.manifest_sha256)
    session.flush()
    _deliver_waiting_trades(session, release)
    return release


def _buyers(session: Session, release: Release) -> list[str]:
    return sorted(set(session.execute(select(Entitlement.buyer_org_id).where(
        Entitlement.product_id == release.product_id, Entitlement.status.in_([str(s) for s in LIVE]),
        Entitlement.ends_at > release.published_at)).scalars()))


def _deliver_waiting_trades(session: Session, release: Release) -> None:
    """Escrowed trades on the product whose entitlement is active now become `delivered`."""
    # The trade before its entitlement, as trading's hooks lock them (a dispute, a resolution, an
    # auto-acceptance): the reverse order would deadlock against them.
    candidates = list(session.execute(
        select(Entitlement).where(Entitlement.product_id == release.product_id,
                                  Entitlement.status.in_([str(s) for s in LIVE]),
                                  Entitlement.ends_at > release.published_at, Entitlement.delivery_mode == "file")
    ).scalars())
    # Each entitlement's trade of the period running now (a subscription's), in id order, locked.
    pairs = sorted((evidence.period_trade(session, ent).id, ent.id) for ent in candidates)
    for trade_id, ent_id in pairs:
        trade = session.execute(select(Trade).where(Trade.id == trade_id).with_for_update()).scalar_one()
        if trade.status != "escrowed":
            continue
        ent = session.execute(select(Entitlement).where(Entitlement.id == ent_id).with_for_update()).scalar_one()
        if ent.status not in LIVE:
            continue
        verdict = entitlements.evaluate(session, ent)
        entitlements.persist(session, ent, verdict)
        if verdict.status != EntitlementStatus.ACTIVE:
            continue
        settlement.deliver_by_exchange(session, trade=trade, reference=release.id, sha256=release.manifest_sha256,
                                       evidence="release")


def withdraw(session: Session, *, release_id: str, actor: Principal) -> Release:
    """The owner or an operator: no new downloads, and links already issued stop working."""
    release = _owned(session, release_id, actor, lock=True, operator_ok=True)
    transition(release, RELEASE_TRANSITIONS, R.WITHDRAWN, actor=actor, what="Release")
    release.withdrawn_at = utcnow()
    product = session.get(Product, release.product_id)
    outbox.emit(session, event_type="release.withdrawn", org_ids=[product.owner_org_id, *_buyers(session, release)],
                payload={"release_id": release.id, "product_id": release.product_id})
    audit.record(session, actor, "release.withdrawn", "release", release.id)
    session.flush()
    return release


# -- reads -----------------------------------------------------------------------------------------
def shown(session: Session, release: Release) -> Facts:
    files = files_of(session, release.id)
    receipt = None
    if release.receipt_signature:
        receipt = {"published_at": iso_z(release.published_at), "key_id": release.receipt_key_id,
                   "signature": release.receipt_signature}
    return Facts(release, files=files, receipt=receipt)


def get(session: Session, *, release_id: str, principal: Principal) -> Release:
    """A release for its product's owner and operators, or a covered published one for a buyer."""
    release = session.get(Release, release_id) if len(release_id) <= 40 else None
    if release is None:
        raise NotFound("No such release.")
    if principal.is_operator or _is_owner(session, release.product_id, principal):
        return release
    if release.status == R.PUBLISHED and release.id in {r.id for r in _covered_for_buyer(session, release.product_id,
                                                                                        principal)}:
        return release
    raise NotFound("No such release.")


def _is_owner(session: Session, product_id: str, principal: Principal) -> bool:
    product = session.get(Product, product_id)
    return product is not None and product.owner_org_id == principal.org_id


def _covered_for_buyer(session: Session, product_id: str, principal: Principal) -> list[Release]:
    latest_end = select(func.max(Entitlement.ends_at)).where(
        Entitlement.product_id == product_id, Entitlement.buyer_org_id == principal.org_id).scalar_subquery()
    return list(session.execute(evidence.published_before(product_id, latest_end)).scalars())


def list_for_product(session: Session, *, product_id: str, principal: Principal) -> list[Release]:
    """Owner and operators: every release; a buyer with an entitlement: the published ones it
    covers; anyone else 404."""
    product = session.get(Product, product_id) if len(product_id) <= 40 else None
    if product is None:
        raise NotFound("No such product.")
    if principal.is_operator or product.owner_org_id == principal.org_id:
        return list(session.execute(select(Release).where(Release.product_id == product_id)
                                    .order_by(Release.created_at, Release.id)).scalars())
    if not session.execute(select(Entitlement.id).where(Entitlement.product_id == product_id,
                                                        Entitlement.buyer_org_id == principal.org_id)).first():
        raise NotFound("No such product.")
    return _covered_for_buyer(session, product_id, principal)
