"""Downloads (API.md, Delivery and use): a signed link to one file, the bytes served with the
headers a browser must not misread, byte ranges, the sha256 as ETag; links only for members of the
buying organization, never for a privacy-computing product's files."""

from __future__ import annotations

import pytest

from tests.deliveryflow import bought, fetch, link, sha

DATA = bytes(range(256)) * 4 + b"tail"  # 1028 bytes, every byte value


@pytest.fixture
def got(api):
    return bought(api, files={"traffic.csv": DATA, "other.bin": b"other"})


def test_whole_file_and_headers(api, got):
    issued = link(api, got["buyer"], got["ent"]["id"], got["release"]["id"])
    assert (issued["bytes"], issued["sha256"]) == (len(DATA), sha(DATA))
    assert issued["url"].startswith("http://localhost/api/v1/downloads/")
    r = fetch(api, issued["url"])
    assert r.status_code == 200 and r.data == DATA
    assert r.headers["Content-Length"] == str(len(DATA))
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"] == "attachment; filename=traffic.csv"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["ETag"] == f'"{sha(DATA)}"'
    assert "no-store" in r.headers["Cache-Control"]
    assert r.headers.get("Accept-Ranges") == "bytes"


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-0", 0, 0), ("bytes=-5", len(DATA) - 5, len(DATA) - 1), ("bytes=10-", 10, len(DATA) - 1),
    ("bytes=100-199", 100, 199), ("bytes=1000-5000", 1000, len(DATA) - 1),
])
def test_ranges(api, got, header, start, end):
    ent_id = got["ent"]["id"]
    issued = link(api, got["buyer"], ent_id, got["release"]["id"])
    r = fetch(api, issued["url"], Range=header)
    assert r.status_code == 206, r.status_code
    assert r.data == DATA[start:end + 1]
    assert r.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert r.headers["Content-Length"] == str(end - start + 1)
    last = api.get(f"entitlements/{ent_id}/accesses", got["buyer"]).get_json()["items"][-1]
    assert (last["kind"], last["status"], last["bytes"], last["sha256"]) == ("download", "allowed",
                                                                             end - start + 1, sha(DATA))


@pytest.mark.parametrize("header", ["bytes=2000-3000", f"bytes={len(DATA)}-"])
def test_unsatisfiable_range_is_416(api, got, header):
    issued = link(api, got["buyer"], got["ent"]["id"], got["release"]["id"])
    r = fetch(api, issued["url"], Range=header)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(DATA)}"
    log = api.get(f"entitlements/{got['ent']['id']}/accesses", got["buyer"]).get_json()["items"]
    assert [a["kind"] for a in log] == ["download_link"]  # nothing was served


def test_if_none_match_is_304(api, got):
    issued = link(api, got["buyer"], got["ent"]["id"], got["release"]["id"])
    r = fetch(api, issued["url"], **{"If-None-Match": f'"{sha(DATA)}"'})
    assert r.status_code == 304 and r.data == b""
    r = fetch(api, issued["url"], **{"If-None-Match": f'"{sha(b"x")}"'})
    assert r.status_code == 200 and r.data == DATA
    log = api.get(f"entitlements/{got['ent']['id']}/accesses", got["buyer"]).get_json()["items"]
    assert [(a["kind"], a["bytes"]) for a in log] == [("download_link", len(DATA)), ("download", 0),
                                                      ("download", len(DATA))]


def test_each_link_serves_its_own_file(api, got):
    other = link(api, got["buyer"], got["ent"]["id"], got["release"]["id"], file="other.bin")
    r = fetch(api, other["url"])
    assert r.data == b"other" and r.headers["ETag"] == f'"{sha(b"other")}"'


def test_members_of_the_buyer_only(api, got):
    ent_id, rel_id = got["ent"]["id"], got["release"]["id"]
    body = {"release_id": rel_id, "file": "traffic.csv"}
    member = api.member(got["buyer"])
    assert api.post(f"entitlements/{ent_id}/downloads", member, json=body).status_code == 201
    for who, status in ((got["vendor"], 403), (api.member(got["vendor"]), 403), (api.operator(), 403),
                        (api.enterprise(), 404)):
        assert api.post(f"entitlements/{ent_id}/downloads", who, json=body).status_code == status
    assert api.post(f"entitlements/{ent_id}/downloads", json=body).status_code == 401


@pytest.mark.parametrize(("body", "field"), [
    ({"release_id": None, "file": "traffic.csv"}, "release_id"),
    ({"release_id": "rel_nope", "file": "traffic.csv"}, "release_id"),
    ({"file": "nope.csv"}, "file"),
    ({"file": "../traffic.csv"}, "file"),
    ({"file": ""}, "file"),
    ({"file": "traffic.csv", "extra": 1}, "extra"),
])
def test_link_request_validation(api, got, body, field):
    full = {"release_id": got["release"]["id"], **body}
    if full["release_id"] is None:
        del full["release_id"]
    r = api.post(f"entitlements/{got['ent']['id']}/downloads", got["buyer"], json=full)
    assert r.status_code == 422 and field in r.get_json()["errors"], r.get_json()


def test_another_products_release_is_not_covered(api, got):
    other = bought(api, got["vendor"], got["buyer"])
    r = api.post(f"entitlements/{got['ent']['id']}/downloads", got["buyer"],
                 json={"release_id": other["release"]["id"], "file": "traffic.csv"})
    assert r.status_code == 422 and "release_id" in r.get_json()["errors"]


def test_privacy_computing_files_never_downloadable(api):
    got = bought(api, delivery_mode="privacy_computing")
    ent, rel = got["ent"], got["release"]
    assert ent["delivery_mode"] == "privacy_computing"
    detail = "not_downloadable: the files of a privacy-computing product never leave the exchange"
    r = api.post(f"entitlements/{ent['id']}/downloads", got["buyer"],
                 json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{detail}. ")
    for who in (got["vendor"], api.operator()):
        r = api.post(f"entitlements/{ent['id']}/downloads", who, json={"release_id": rel["id"], "file": "traffic.csv"})
        assert r.status_code == 403
    log = api.get(f"entitlements/{ent['id']}/accesses", got["buyer"]).get_json()["items"]
    assert [(a["status"], a["refused_reason"]) for a in log] == [("refused", detail)]
