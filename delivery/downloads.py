"""Downloads: single-purpose signed links, re-checked when issued and again when used.

A link names one entitlement, one release and one file. On file storage it is
`/api/v1/downloads/<token>`: the token (itsdangerous, HMAC with the app's secret under its own salt,
timestamped) is the only credential, lives at most 15 minutes, and every use re-checks the
entitlement, the release and the file at that moment. On S3 the link is a pre-signed URL of at most
60 seconds, so a revocation takes effect within that minute. Every link and download is logged;
every refusal too (`delivery.accesses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadPayload, BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery import accesses, entitlements, evidence
from delivery.models import Entitlement, Release, ReleaseFile
from delivery.releases import storage, valid_file_name
from delivery.states import AccessKind, ReleaseStatus
from exchange.db import utcnow
from exchange.errors import Forbidden, NotFound, field_error
from exchange.principal import Principal

SALT = "datafair.download.v1"
LINK_MAX_SECONDS = 15 * 60


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def link_seconds() -> int:
    return min(int(current_app.config["DOWNLOAD_LINK_SECONDS"]), LINK_MAX_SECONDS)


NEW_LINK = "ask for a new download link"


def _refuse(ent_id: str, kind: str, user_id: str | None, release_id: str | None, obj: str | None,
            code: str, detail: str, next_step: str) -> Forbidden:
    return accesses.refusal(entitlement_id=ent_id, kind=kind, user_id=user_id, release_id=release_id, obj=obj,
                            code=code, detail=detail, next_step=next_step)


def _check(session: Session, ent: Entitlement, release: Release | None, kind: str, user_id: str | None,
           name: str) -> None:
    """Everything an access needs at this moment; raises the logged 403 naming the first reason."""
    rel_id = release.id if release is not None else None
    if ent.delivery_mode == "privacy_computing":
        raise _refuse(ent.id, kind, user_id, rel_id, name, "not_downloadable",
                      "not_downloadable: the files of a privacy-computing product never leave the exchange",
                      "query the data in the exchange's sandbox instead")
    if release is not None and release.status == ReleaseStatus.WITHDRAWN:
        raise _refuse(ent.id, kind, user_id, rel_id, name, "release_withdrawn",
                      "release_withdrawn: this release was withdrawn by its vendor or an operator",
                      accesses.RELEASE_WITHDRAWN_NEXT_STEP)
    verdict = entitlements.evaluate(session, ent)
    if not verdict.allowed:
        raise _refuse(ent.id, kind, user_id, rel_id, name, verdict.code, verdict.refusal, verdict.next_step)


def _file(session: Session, release: Release, name: str) -> ReleaseFile:
    row = session.execute(select(ReleaseFile).where(ReleaseFile.release_id == release.id,
                                                    ReleaseFile.name == name)).scalar_one_or_none()
    if row is None:
        raise field_error("file", "no file of that name in this release")
    return row


def issue_link(session: Session, *, entitlement_id: str, release_id: str, file: str, actor: Principal,
               base_url: str) -> dict[str, Any]:
    """A link to one file of a covered published release, for a member of the buying organization.

    NotFound for an entitlement the actor may not see; Forbidden (logged) when access is not lawful
    now; ValidationFailed for a release or file the entitlement does not cover."""
    ent = entitlements.visible(session, entitlement_id, actor)
    entitlements.require_buyer_member(ent, actor)
    release = evidence.covered(session, ent, release_id)
    _check(session, ent, release, AccessKind.DOWNLOAD_LINK, actor.user_id, file)
    row = _file(session, release, file)
    seconds = link_seconds()
    target = storage()
    url = target.presigned_url(row.sha256, filename=row.name, expires_in=seconds)
    if url is None:  # file storage: our own signed link
        url = base_url.rstrip("/") + "/api/v1/downloads/" + _serializer().dumps(
            {"e": ent.id, "r": release.id, "f": row.name, "u": actor.user_id})
    else:
        seconds = min(seconds, 60)
    expires_at = utcnow() + timedelta(seconds=seconds)
    accesses.allowed(session, entitlement_id=ent.id, kind=AccessKind.DOWNLOAD_LINK, user_id=actor.user_id,
                     release_id=release.id, obj=row.name, size=row.bytes, sha256=row.sha256,
                     details={"storage": target.kind, "expires_in": seconds})
    accesses.LINKS.labels(storage=target.kind).inc()
    return {"url": url, "expires_at": expires_at, "bytes": row.bytes, "sha256": row.sha256,
            "entitlement_id": ent.id, "release_id": release.id, "file": row.name}


@dataclass(frozen=True)
class Served:
    """What a download answers: the object's path (filesystem) or stream, its name and digest."""

    path: str | None
    stream: Any
    name: str
    bytes: int
    sha256: str
    access: Any


def open_download(session: Session, *, token: str, byte_range: Any, if_none_match: Any = None) -> Served:
    """Check a download token and the access it grants at this moment; log it.

    Forbidden (logged against the entitlement when the token is authentic) for an expired or
    tampered token, or an access no longer lawful; NotFound when the file is gone."""
    serializer = _serializer()
    try:
        claims = serializer.loads(token, max_age=link_seconds())
    except SignatureExpired as exc:
        # The exception carries the payload still encoded (bytes): decoded, it names the entitlement
        # the refusal is logged against (the signature was valid, only the time ran out).
        try:
            claims = serializer.load_payload(exc.payload) if exc.payload is not None else None
        except BadPayload:
            claims = None
        claims = claims if isinstance(claims, dict) else None
        ent_id = claims.get("e") if claims else None
        if isinstance(ent_id, str) and session.get(Entitlement, ent_id) is not None:
            raise _refuse(ent_id, AccessKind.DOWNLOAD, claims.get("u"), claims.get("r"), claims.get("f"),
                          "token_expired", "token_expired: this download link has expired; ask for a new one",
                          NEW_LINK) from None
        raise Forbidden("token_expired: this download link has expired; ask for a new one",
                        next_step=NEW_LINK) from None
    except BadSignature:
        accesses.REFUSALS.labels(reason="token_invalid").inc()
        raise Forbidden("token_invalid: this download link is not valid", next_step=NEW_LINK) from None
    if not isinstance(claims, dict) or not all(isinstance(claims.get(k), str) for k in ("e", "r", "f", "u")):
        raise Forbidden("token_invalid: this download link is not valid", next_step=NEW_LINK)
    # Only names the upload rule admits were ever signed; anything else (a NUL PostgreSQL refuses
    # with a 500, a path) is no link of ours, whatever its signature.
    if not valid_file_name(claims["f"]) or any(len(claims[k]) > 40 or "\0" in claims[k] for k in ("e", "r", "u")):
        raise Forbidden("token_invalid: this download link is not valid", next_step=NEW_LINK)
    ent = session.get(Entitlement, claims["e"])
    release = session.get(Release, claims["r"])
    if ent is None or release is None or release.product_id != ent.product_id:
        raise Forbidden("token_invalid: this download link is not valid", next_step=NEW_LINK)
    _check(session, ent, release, AccessKind.DOWNLOAD, claims["u"], claims["f"])
    row = session.execute(select(ReleaseFile).where(ReleaseFile.release_id == release.id,
                                                    ReleaseFile.name == claims["f"])).scalar_one_or_none()
    target = storage()
    if row is None or not target.exists(row.sha256):
        raise NotFound("This file is no longer stored.")
    # The bytes this answer carries: none for a 304 (the client holds this sha256), a satisfiable
    # Range's span, else the whole file.
    unchanged = if_none_match is not None and if_none_match.contains(row.sha256)
    span = byte_range.range_for_length(row.bytes) if byte_range is not None and not unchanged else None
    size = 0 if unchanged else row.bytes if span is None else span[1] - span[0]
    details = {"not_modified": True} if unchanged else {"range": [span[0], span[1] - 1]} if span else None
    access = accesses.allowed(session, entitlement_id=ent.id, kind=AccessKind.DOWNLOAD, user_id=claims["u"],
                              release_id=release.id, obj=row.name, size=size, sha256=row.sha256, details=details)
    accesses.DOWNLOADS.inc()
    accesses.BYTES.inc(size)
    path = target.path(row.sha256)
    return Served(path=path, stream=None if path else target.open(row.sha256), name=row.name, bytes=row.bytes,
                  sha256=row.sha256, access=access)
