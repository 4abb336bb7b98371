"""The regulator's trade report (API.md Compliance, 交易备案): operators only, the half-open window on
the contract's signature, one row per trade in both formats with integer money, the Digest of the
exact bytes and the exchange's signature verified offline from the JWKS alone, CSV formula cells
neutralized, thousands of trades streamed, and bad queries answered 422."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from exchange.db import db
from tests.bench.report_data import clone_deals
from tests.factories import ApiHelper
from tests.tradeflow import contract_for, sign

FORMULA_TITLE = '=HYPERLINK("http://evil.test","点击 click")'


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def signed(api: ApiHelper, vendor: Any, buyer: Any, **product: Any) -> dict[str, Any]:
    contract = contract_for(api, vendor, buyer, **product)
    sign(api, buyer, contract["id"])
    return sign(api, vendor, contract["id"])


@pytest.fixture
def deals(app, api) -> dict[str, Any]:
    """A domestic deal (GD to GD, a title that is a spreadsheet formula), then an hour later on the
    domain clock a cross-border one (GD to HK, personal information: it has a dossier)."""
    vendor, buyer, hk = api.vendor(), api.enterprise(), api.enterprise(region="HK")
    domestic = signed(api, vendor, buyer, title=FORMULA_TITLE)
    app.config["NOW_OFFSET_S"] = 3600
    r = api.post("whitelist", api.operator(), json={
        "category": "transport", "from_region": "GD", "to_region": "HK", "max_classification": "general",
        "personal_info_allowed": True,
        "expires_at": z(parse(domestic["signed_at"]) + timedelta(days=90))})
    assert r.status_code == 201, r.get_json()
    crossing = signed(api, vendor, hk, contains_personal_info=True)
    assert parse(crossing["signed_at"]) > parse(domestic["signed_at"])
    return {"vendor": vendor, "buyer": buyer, "hk": hk, "domestic": domestic, "crossing": crossing,
            "operator": api.operator()}


def report(api: ApiHelper, actor: Any, start: str, end: str, fmt: str | None = None) -> Any:
    query = {"from": start, "to": end, **({"format": fmt} if fmt else {})}
    return api.get("reports/trades", actor, query_string=query)


def window(deals: dict[str, Any]) -> tuple[str, str]:
    start = parse(deals["domestic"]["signed_at"])
    end = parse(deals["crossing"]["signed_at"]) + timedelta(seconds=1)
    return z(start), z(end)


def csv_rows(body: bytes) -> list[dict[str, str]]:
    assert not body.startswith(b"\xef\xbb\xbf")  # no BOM
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


# -- who may ----------------------------------------------------------------------------------------
def test_operators_only(api, deals):
    start, end = window(deals)
    anonymous = report(api, None, start, end)
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"].startswith("application/problem+json")
    for actor in (deals["vendor"], deals["buyer"], deals["hk"]):
        r = report(api, actor, start, end)
        assert r.status_code == 403, r.get_json()
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert "Digest" not in r.headers
    assert report(api, deals["operator"], start, end).status_code == 200


# -- the rows ---------------------------------------------------------------------------------------
def test_json_rows_with_parties_dossier_and_integer_money(api, deals):
    start, end = window(deals)
    r = report(api, deals["operator"], start, end)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    body = r.get_json()
    assert (body["from"], body["to"], body["count"]) == (start, end, 2)
    assert body["generated_at"].endswith("Z")
    domestic, crossing = body["trades"]
    assert [row["contract_number"] for row in body["trades"]] == [deals["domestic"]["number"],
                                                                  deals["crossing"]["number"]]
    vendor_org = api.get(f"organizations/{deals['vendor'].org_id}", deals["operator"]).get_json()
    hk_org = api.get(f"organizations/{deals['hk'].org_id}", deals["operator"]).get_json()
    assert crossing["seller"] == {"id": vendor_org["id"], "name": vendor_org["name"],
                                  "registration_number": vendor_org["registration_number"], "region": "GD",
                                  "city": vendor_org.get("city"), "zone": vendor_org.get("zone")}
    assert (crossing["buyer"]["id"], crossing["buyer"]["region"]) == (hk_org["id"], "HK")
    assert crossing["buyer"]["registration_number"] == hk_org["registration_number"]
    trade = api.get(f"trades/{deals['crossing']['trade_id']}", deals["operator"]).get_json()
    assert crossing["trade"]["id"] == trade["id"] and crossing["trade"]["period_index"] == 1
    for key in ("amount", "fee", "refunded_amount"):
        assert type(crossing["trade"][key]) is int
    assert crossing["trade"]["amount"] == trade["amount"] and crossing["trade"]["currency"] == trade["currency"]
    assert crossing["trade"]["refunded_amount"] == 0 and crossing["trade"]["status"] == trade["status"]
    assert crossing["certificate_number"] == deals["crossing"]["certificate_number"]
    assert crossing["product"]["id"] == deals["crossing"]["product_id"]
    assert crossing["product"]["version"] == deals["crossing"]["product_version"]
    assert crossing["contains_personal_info"] is True and crossing["personal_info"]["subjects"] == 5000
    assert crossing["cross_border"] is True and domestic["cross_border"] is False
    dossier = api.get(f"contracts/{deals['crossing']['id']}/dossier", deals["operator"]).get_json()
    assert crossing["dossier"] == {"path": dossier["path"], "status": dossier["status"],
                                   "due_at": dossier["filing"]["due_at"], "reference": dossier["filing"]["reference"],
                                   "filed_at": dossier["filing"]["filed_at"]}
    assert domestic["dossier"] is None
    assert domestic["product"]["title"] == FORMULA_TITLE  # JSON keeps the text as given
    assert domestic["signed_at"] == deals["domestic"]["signed_at"] and domestic["on_site"] is False


def test_csv_holds_the_same_rows_and_neutralizes_formulas(api, deals):
    start, end = window(deals)
    r = report(api, deals["operator"], start, end, "csv")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    as_json = report(api, deals["operator"], start, end).get_json()["trades"]
    rows = csv_rows(r.data)
    assert len(rows) == 2
    assert r.data.count(b"\r\n") == 3  # RFC 4180 line ends: header and two records
    for row, item in zip(rows, as_json, strict=True):
        assert row["contract_number"] == item["contract_number"] and row["trade_id"] == item["trade"]["id"]
        assert int(row["amount"]) == item["trade"]["amount"] and int(row["fee"]) == item["trade"]["fee"]
        assert row["refunded_amount"] == "0" and row["period_index"] == "1"
        assert row["buyer_registration_number"] == item["buyer"]["registration_number"]
        assert row["seller_name"] == item["seller"]["name"]  # Chinese round-trips
    assert rows[0]["product_title"] == "'" + FORMULA_TITLE
    assert (rows[0]["cross_border"], rows[1]["cross_border"]) == ("false", "true")
    assert rows[0]["dossier_path"] == "" and rows[1]["dossier_path"] == as_json[1]["dossier"]["path"]


def test_the_window_is_half_open_on_the_signature(api, deals):
    op = deals["operator"]
    at = deals["crossing"]["signed_at"]
    before, after = z(parse(at) - timedelta(minutes=1)), z(parse(at) + timedelta(minutes=1))
    numbers = lambda r: [t["contract_number"] for t in r.get_json()["trades"]]  # noqa: E731
    assert numbers(report(api, op, at, after)) == [deals["crossing"]["number"]]      # exactly at `from`: in
    assert numbers(report(api, op, before, at)) == []                                # exactly at `to`: out
    # A window given in another timezone is the same instant.
    cst = (parse(at) + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    assert numbers(report(api, op, cst, after)) == [deals["crossing"]["number"]]


# -- digest and signature ---------------------------------------------------------------------------
def _verify_offline(jwks: dict[str, Any], body: bytes, headers: Any, query: dict[str, str]) -> None:
    """What a regulator does with the body, its headers and the JWKS: hashlib, json and cryptography."""
    digest = "sha-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert headers["Digest"] == digest
    params = dict(part.split("=", 1) for part in headers["Datafair-Signature"].split(","))
    params = {k: v.strip('"') for k, v in params.items()}
    assert params["algorithm"] == "ed25519"
    jwk = next(k for k in jwks["keys"] if k["kid"] == params["keyId"])
    assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4)))
    # RFC 8785 of an object of ASCII strings: keys sorted, no whitespace.
    signed = json.dumps({"digest": digest, "report": "trades", **query}, sort_keys=True,
                        separators=(",", ":")).encode()
    public.verify(base64.b64decode(params["signature"]), signed)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_digest_and_signature_verify_offline_from_the_jwks(api, deals, fmt):
    start, end = window(deals)
    r = report(api, deals["operator"], start, end, fmt)
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(r.data)
    jwks = api.get("/.well-known/jwks.json").get_json()
    query = {"from": start, "to": end, "format": fmt}
    _verify_offline(jwks, r.data, r.headers, query)
    # One byte changed, or another window claimed, and the check fails.
    with pytest.raises(AssertionError):
        _verify_offline(jwks, r.data[:-1] + b" ", r.headers, query)
    with pytest.raises(InvalidSignature):
        _verify_offline(jwks, r.data, r.headers, {**query, "to": z(parse(end) + timedelta(days=1))})


def test_format_defaults_to_json_and_is_signed_as_json(api, deals):
    start, end = window(deals)
    r = report(api, deals["operator"], start, end)
    _verify_offline(api.get("/.well-known/jwks.json").get_json(), r.data, r.headers,
                    {"from": start, "to": end, "format": "json"})


# -- volume -----------------------------------------------------------------------------------------
def test_thousands_of_trades_stream_in_order(app, api, deals):
    template = deals["crossing"]
    base = parse(template["signed_at"]) + timedelta(days=1)
    n, every = 3000, 7
    with app.app_context():
        with db.engine.begin() as conn:
            clone_deals(conn, template["id"], n, base=base, second_period_every=every)
        db.engine.dispose()
    start, end = z(base), z(base + timedelta(seconds=n + 1))
    op = deals["operator"]
    r = report(api, op, start, end)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(r.data) > 1024 * 1024
    body = json.loads(r.data)
    expected = n + n // every
    assert body["count"] == len(body["trades"]) == expected
    keys = [(t["signed_at"], t["contract_number"], t["trade"]["period_index"]) for t in body["trades"]]
    assert keys == sorted(keys) and len({t["trade"]["id"] for t in body["trades"]}) == expected
    # Copy g (1-based) was signed at base + g seconds and its amount is the template's + g.
    first = body["trades"][0]
    assert first["signed_at"] == z(base + timedelta(seconds=1))
    assert first["trade"]["amount"] == template["price"]["amount"] + 1
    assert body["trades"][-1]["trade"]["amount"] == template["price"]["amount"] + n
    assert all(t["dossier"] is not None for t in body["trades"])
    seconds = [t for t in body["trades"] if t["trade"]["period_index"] == 2]
    assert len(seconds) == n // every
    c = report(api, op, start, end, "csv")
    assert len(csv_rows(c.data)) == expected
    jwks = api.get("/.well-known/jwks.json").get_json()
    _verify_offline(jwks, r.data, r.headers, {"from": start, "to": end, "format": "json"})
    _verify_offline(jwks, c.data, c.headers, {"from": start, "to": end, "format": "csv"})


# -- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "field"), [
    ({"from": "2026-11-01T00:00:00", "to": "2026-12-01T00:00:00Z"}, "from"),
    ({"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00"}, "to"),
    ({"from": "2026-12-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "to"),
    ({"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
    ({"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "format": "xlsx"}, "format"),
    ({"to": "2026-12-01T00:00:00Z"}, "from"),
    ({"from": "2026-11-01T00:00:00Z"}, "to"),
    ({"from": "yesterday", "to": "2026-12-01T00:00:00Z"}, "from"),
    ({"from": "2026-11-01T00:00:00Z", "to": "99999-12-01T00:00:00Z"}, "to"),
])
def test_bad_queries_are_422_problems(api, query, field):
    r = api.get("reports/trades", api.operator(), query_string=query)
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert field in r.get_json()["errors"], r.get_json()


def test_an_empty_window_is_an_empty_signed_report(api):
    op = api.operator()
    start, end = "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"
    r = report(api, op, start, end, "csv")
    assert r.status_code == 200 and len(csv_rows(r.data)) == 0
    _verify_offline(api.get("/.well-known/jwks.json").get_json(), r.data, r.headers,
                    {"from": start, "to": end, "format": "csv"})
    body = report(api, op, start, end).get_json()
    assert (body["count"], body["trades"]) == (0, [])


def test_the_readme_snippet_verifies_a_downloaded_report(api, deals, tmp_path):
    """docs/snippets/report-verify.md's script, run as a regulator would: files on disk, no project code."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "snippets" / "report-verify.md").read_text()
    script = tmp_path / "verify_report.py"
    script.write_text(re.search(r"```python\n(.*?)```", doc, re.S).group(1))
    start, end = window(deals)
    r = report(api, deals["operator"], start, end, "csv")
    (tmp_path / "report.csv").write_bytes(r.data)
    (tmp_path / "headers.txt").write_text("HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in r.headers.items())
                                          + "\r\n", encoding="latin-1")
    (tmp_path / "jwks.json").write_bytes(api.get("/.well-known/jwks.json").data)

    def run(body: str, *window_args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-I", str(script), str(tmp_path / body), str(tmp_path / "headers.txt"),
                               str(tmp_path / "jwks.json"), *window_args, "csv"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)

    ok = run("report.csv", start, end)
    assert ok.returncode == 0 and ok.stdout.startswith("OK:"), ok.stderr
    (tmp_path / "forged.csv").write_bytes(r.data.replace(b"false", b"true", 1))
    assert "digest mismatch" in run("forged.csv", start, end).stderr
    assert "InvalidSignature" in run("report.csv", start, "2099-01-01T00:00:00Z").stderr
