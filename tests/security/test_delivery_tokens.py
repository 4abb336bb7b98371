"""Download tokens are the only credential of a download (API.md, Delivery and use): signed with the
app's secret under their own salt, expiring within 15 minutes, naming one entitlement, release and
file, re-checked at every use, and never written to the request log."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from delivery.downloads import SALT
from exchange.db import db, utcnow
from exchange.logs import JSONFormatter
from exchange.models import IdempotencyRecord
from tests.deliveryflow import CSV, bought, fetch, link

INVALID = "token_invalid: this download link is not valid"
EXPIRED = "token_expired: this download link has expired; ask for a new one"


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def get(api, token: str, **headers: str) -> Any:
    return fetch(api, "http://localhost/api/v1/downloads/" + token, **headers)


def claims_of(got: dict[str, Any], **kw: str) -> dict[str, str]:
    return {"e": got["ent"]["id"], "r": got["release"]["id"], "f": "traffic.csv", "u": got["buyer"].user_id, **kw}


def signed(app, claims: dict[str, Any], *, secret: str | None = None, salt: str = SALT, age: int = 0) -> str:
    """A token as the exchange would sign it, optionally with another secret or salt, or `age`
    seconds old (a signer whose clock is behind: no sleeping until the link expires)."""

    class Behind(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age

    return URLSafeTimedSerializer(secret or app.config["SECRET_KEY"], salt=salt, signer=Behind).dumps(claims)


@pytest.fixture
def got(api):
    return bought(api, files={"traffic.csv": CSV, "secret.csv": b"another file"})


def refused(api, got) -> list[tuple[str, str]]:
    items = api.get(f"entitlements/{got['ent']['id']}/accesses", got["buyer"]).get_json()["items"]
    return [(a["kind"], a["refused_reason"]) for a in items if a["status"] == "refused"]


def _flip(s: str, i: int) -> str:
    return s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]


TAMPERINGS = [
    pytest.param(lambda t: _flip(t, 5), id="payload-character"),
    pytest.param(lambda t: _flip(t, len(t) - 3), id="signature-character"),
    pytest.param(lambda t: _flip(t, t.index(".") + 2), id="timestamp-character"),
    pytest.param(lambda t: t[:-1], id="truncated-by-one"),
    pytest.param(lambda t: t[: len(t) // 2], id="truncated-to-half"),
    pytest.param(lambda t: t.rsplit(".", 1)[0], id="signature-dropped"),
    pytest.param(lambda t: t + "A", id="extended"),
    pytest.param(lambda t: "x", id="garbage"),
    pytest.param(lambda t: "." * 3, id="dots"),
]


@pytest.mark.parametrize("tamper", TAMPERINGS)
def test_tampered_token_is_403(api, got, tamper):
    token = token_of(link(api, got["buyer"], got["ent"]["id"], got["release"]["id"])["url"])
    assert get(api, token).status_code == 200
    r = get(api, tamper(token))
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{INVALID}. ")
    assert CSV not in r.data


@pytest.mark.parametrize("kw", [{"secret": "another-secret-" + "y" * 40}, {"salt": "datafair.other.v1"},
                                {"secret": "", "salt": ""}], ids=["other-secret", "other-salt", "empty-secret"])
def test_token_signed_otherwise_is_403(app, api, got, kw):
    if kw.get("secret") == "":
        kw = {"secret": "\0", "salt": SALT}
    r = get(api, signed(app, claims_of(got), **kw))
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{INVALID}. ")


def test_genuine_claims_sign_right(app, api, got):
    # The forger's helper is faithful: the same claims signed with the app's secret do download.
    r = get(api, signed(app, claims_of(got)))
    assert r.status_code == 200 and r.data == CSV


def test_expired_token_is_403_and_logged(app, api, got):
    app.config["DOWNLOAD_LINK_SECONDS"] = 60
    assert get(api, signed(app, claims_of(got), age=30)).status_code == 200
    r = get(api, signed(app, claims_of(got), age=61))
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{EXPIRED}. ")
    assert refused(api, got) == [("download", EXPIRED)]


def test_lifetime_never_over_fifteen_minutes(app, api, got):
    app.config["DOWNLOAD_LINK_SECONDS"] = 24 * 3600
    issued = link(api, got["buyer"], got["ent"]["id"], got["release"]["id"])
    from datetime import datetime

    expires = datetime.fromisoformat(issued["expires_at"].replace("Z", "+00:00"))
    assert expires <= utcnow() + timedelta(minutes=15, seconds=1)
    assert get(api, signed(app, claims_of(got), age=15 * 60 - 5)).status_code == 200
    assert get(api, signed(app, claims_of(got), age=15 * 60 + 5)).get_json()["detail"].startswith(f"{EXPIRED}. ")


def _payload(token: str) -> dict[str, Any]:
    # payload.timestamp.signature; the payload is itsdangerous's (maybe compressed) URL-safe JSON.
    return URLSafeTimedSerializer("any").load_payload(token.rsplit(".", 2)[0].encode())


def _with_payload(token: str, claims: dict[str, Any]) -> str:
    head = URLSafeTimedSerializer("any").dump_payload(claims).decode()
    return head + "." + ".".join(token.rsplit(".", 2)[1:])


@pytest.mark.parametrize("edit", [{"f": "secret.csv"}, {"f": "../secret.csv"}, {"u": "usr_other"},
                                  {"r": "rel_other"}, {"e": "ent_other"}])
def test_edited_claims_break_the_signature(api, got, edit):
    token = token_of(link(api, got["buyer"], got["ent"]["id"], got["release"]["id"])["url"])
    assert _payload(token)["f"] == "traffic.csv"
    forged = _with_payload(token, {**_payload(token), **edit})
    r = get(api, forged)
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{INVALID}. ")
    assert b"another file" not in r.data


REPLAYS = [
    pytest.param(lambda api, g: api.post(f"trades/{g['trade']['id']}/disputes", g["buyer"], json={"reason": "x"}),
                 "entitlement_suspended: dispute open", id="entitlement-suspended"),
    pytest.param(lambda api, g: api.post(f"releases/{g['release']['id']}/withdraw", g["vendor"]),
                 "release_withdrawn: this release was withdrawn by its vendor or an operator", id="release-withdrawn"),
]


@pytest.mark.parametrize(("change", "detail"), REPLAYS)
def test_replayed_token_rechecked(api, got, change, detail):
    url = link(api, got["buyer"], got["ent"]["id"], got["release"]["id"])["url"]
    assert fetch(api, url).status_code == 200
    assert change(api, got).status_code in (200, 201)
    r = fetch(api, url)
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{detail}. ") and CSV not in r.data
    assert refused(api, got) == [("download", detail)]


def test_one_entitlement_never_reaches_another(app, api, got):
    # Another buyer of another product of the same vendor: each token opens only its own file.
    other = bought(api, got["vendor"], files={"theirs.csv": b"the other buyer's data"})
    mine = link(api, got["buyer"], got["ent"]["id"], got["release"]["id"])
    theirs = link(api, other["buyer"], other["ent"]["id"], other["release"]["id"], file="theirs.csv")
    assert fetch(api, mine["url"]).data == CSV
    assert fetch(api, theirs["url"]).data == b"the other buyer's data"
    body = {"release_id": other["release"]["id"], "file": "theirs.csv"}
    assert api.post(f"entitlements/{other['ent']['id']}/downloads", got["buyer"], json=body).status_code == 404
    r = api.post(f"entitlements/{got['ent']['id']}/downloads", got["buyer"], json=body)
    assert r.status_code == 422  # not a release this entitlement covers
    for who in (got["buyer"], other["buyer"]):
        assert api.get(f"entitlements/{other['ent']['id'] if who is got['buyer'] else got['ent']['id']}",
                       who).status_code == 404
    # Even a token carrying the app's signature (were one ever minted wrongly) must match the
    # entitlement's product: my entitlement with their release and file is refused.
    crossed = signed(app, claims_of(got, r=other["release"]["id"], f="theirs.csv"))
    r = get(api, crossed)
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{INVALID}. ")
    # Their token cannot be bent into mine without breaking its signature.
    bent = _with_payload(token_of(theirs["url"]), {**_payload(token_of(theirs["url"])), "e": got["ent"]["id"]})
    assert get(api, bent).get_json()["detail"].startswith(f"{INVALID}. ")


@pytest.mark.parametrize(("name", "status"), [
    ("../traffic.csv", 403), ("traffic.csv/", 403), ("/etc/passwd", 403), ("..", 403), (".", 403),
    ("traffic.csv\x00", 403), ("traffic.csv ", 403), ("%2e%2e%2ftraffic.csv", 403), ("a" * 201, 403),
    ("TRAFFIC.CSV", 404), ("traffic.csv.bak", 404),
])
def test_path_tricks_in_a_signed_file_name(app, api, got, name, status):
    # Even signed with the app's secret: a name outside the upload rule is no link of ours; a valid
    # one is looked up by exact name in the release (files are stored by sha256, no name is a path).
    r = get(api, signed(app, claims_of(got, f=name)))
    assert r.status_code == status and CSV not in r.data
    if status == 403:
        assert r.get_json()["detail"].startswith(f"{INVALID}. ")


@pytest.mark.parametrize("claim", ["e", "r", "u"])
def test_signed_nul_or_overlong_ids_are_403(app, api, got, claim):
    for value in ("ent_\x00", "x" * 41):
        r = get(api, signed(app, claims_of(got, **{claim: value})))
        assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{INVALID}. ")


@pytest.mark.parametrize("path", ["/api/v1/downloads/", "/api/v1/downloads/../releases",
                                  "/api/v1/downloads/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/api/v1/downloads/a/b"])
def test_path_tricks_in_the_url(api, got, path):
    r = api.client.get(path)
    assert r.status_code in (403, 404) and CSV not in r.data


@pytest.mark.parametrize("claims", [[1, 2], "text", {"e": 1, "r": "x", "f": "y", "u": "z"}, {"e": "ent_nope"},
                                    {"e": "ent_nope", "r": "rel_nope", "f": "traffic.csv", "u": "usr_x"}])
def test_signed_nonsense_is_403(app, api, got, claims):
    assert get(api, signed(app, claims)).get_json()["detail"].startswith(f"{INVALID}. ")


def test_the_token_never_reaches_the_request_log(app, api, got, caplog):
    url = link(api, got["buyer"], got["ent"]["id"], got["release"]["id"])["url"]
    token = token_of(url)
    with caplog.at_level(logging.INFO, logger="datafair.http"):
        assert fetch(api, url).status_code == 200
        assert get(api, _flip(token, 5)).status_code == 403
        assert fetch(api, url, Range="bytes=0-0").status_code == 206
    records = [r for r in caplog.records if r.name == "datafair.http"]
    assert len(records) >= 3
    formatter = JSONFormatter()
    lines = [formatter.format(r) for r in records]
    assert not [line for line in lines if token in line or _flip(token, 5) in line]
    assert token.rsplit(".", 1)[1] not in caplog.text and token.rsplit(".", 2)[0] not in caplog.text
    paths = [r.__dict__.get("path") for r in records]
    assert paths.count("/api/v1/downloads/[redacted]") == 3, paths
    assert all(r.__dict__.get("route") for r in records)


def test_an_idempotent_replay_neither_stores_nor_replays_the_link(app, api, got):
    body = {"release_id": got["release"]["id"], "file": "traffic.csv"}
    headers = {"Idempotency-Key": "link-once"}
    path = f"entitlements/{got['ent']['id']}/downloads"
    first = api.post(path, got["buyer"], json=body, headers=headers)
    assert first.status_code == 201
    token = token_of(first.get_json()["url"])
    replay = api.post(path, got["buyer"], json=body, headers=headers)
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json()["url"] is None and replay.get_json()["sha256"] == first.get_json()["sha256"]
    with app.app_context():
        from sqlalchemy import select

        rows = [dict(r) for r in db.session.execute(select(IdempotencyRecord.__table__)).mappings()]
        db.session.rollback()
    assert rows and not [r for r in rows if token in repr(r) or token.rsplit(".", 1)[1] in repr(r)]
    assert fetch(api, first.get_json()["url"]).data == CSV  # the first answer's link works
