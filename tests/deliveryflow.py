"""Helpers to drive delivery through the real API: a file product certified and sold, a release
uploaded and published, an entitlement and its download links."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.certflow import certify
from tests.factories import Actor, ApiHelper
from tests.tradeflow import bid, contract_for, sign, terms

CSV = b"date,district,vehicles\n2026-11-01,Tianhe,120433\n2026-11-01,Haizhu,98211\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_trade(api: ApiHelper, vendor: Actor, buyer: Actor, **product: Any) -> dict[str, Any]:
    """A certified `file` product and a signed contract for it: the trade awaiting payment."""
    contract = contract_for(api, vendor, buyer, **{"delivery_mode": "file", **product})
    sign(api, buyer, contract["id"])
    trade_id = sign(api, vendor, contract["id"])["trade_id"]
    return api.get(f"trades/{trade_id}", buyer).get_json()


def pay(api: ApiHelper, buyer: Actor, trade_id: str) -> dict[str, Any]:
    """A manual payment confirmed by an operator: the trade escrowed (its entitlement created)."""
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"})
    assert r.status_code == 201, r.get_json()
    r = api.post(f"payments/{r.get_json()['id']}/confirm", api.operator())
    assert r.status_code == 200, r.get_json()
    return api.get(f"trades/{trade_id}", buyer).get_json()


def upload(api: ApiHelper, vendor: Actor, release_id: str, name: str, data: bytes, expect: int = 201,
           **headers: str) -> Any:
    r = api.client.put(f"/api/v1/releases/{release_id}/files/{name}", data=data,
                       headers={**vendor.headers, "Content-Type": "application/octet-stream", **headers})
    assert r.status_code == expect, r.get_json()
    return r


def release(api: ApiHelper, vendor: Actor, product_id: str, files: dict[str, bytes] | None = None,
            publish: bool = True) -> dict[str, Any]:
    r = api.post(f"products/{product_id}/releases", vendor, json={"label": "2026-11", "notes": "November"})
    assert r.status_code == 201, r.get_json()
    rel = r.get_json()
    for name, data in (files if files is not None else {"traffic.csv": CSV}).items():
        upload(api, vendor, rel["id"], name, data)
    if publish:
        r = api.post(f"releases/{rel['id']}/publish", vendor)
        assert r.status_code == 200, r.get_json()
        rel = r.get_json()
    return rel


def entitlement_of(api: ApiHelper, actor: Actor, trade_id: str) -> dict[str, Any]:
    r = api.get(f"entitlements?trade_id={trade_id}", actor)
    assert r.status_code == 200, r.get_json()
    (ent,) = r.get_json()["items"]
    return ent


def link(api: ApiHelper, buyer: Actor, ent_id: str, release_id: str, file: str = "traffic.csv",
         expect: int = 201) -> dict[str, Any]:
    r = api.post(f"entitlements/{ent_id}/downloads", buyer, json={"release_id": release_id, "file": file})
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def fetch(api: ApiHelper, url: str, **headers: str) -> Any:
    """GET a download link with no credential but the link itself."""
    path = url.split("://", 1)[-1].split("/", 1)[1]
    r = api.client.get("/" + path, headers=headers)
    r.get_data()  # read the streamed body, then release the file it came from
    r.close()
    return r


def access_log(api: ApiHelper, actor: Actor, ent_id: str) -> list[dict[str, Any]]:
    """The whole access log of an entitlement, following its cursor."""
    items: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        r = api.get(f"entitlements/{ent_id}/accesses?limit=100" + (f"&after={after}" if after is not None else ""),
                    actor)
        assert r.status_code == 200, r.get_json()
        page = r.get_json()
        items += page["items"]
        if page["next"] is None:
            return items
        after = page["next"]
def bought(api: ApiHelper, vendor: Actor | None = None, buyer: Actor | None = None, published: bool = True,
           files: dict[str, bytes] | None = None, **product: Any) -> dict[str, Any]:
    """A file product sold and paid for (a release published first unless `published=False`):
    the parties, the trade, its entitlement and the release (None when not published)."""
    vendor, buyer = vendor or api.vendor(), buyer or api.enterprise()
    trade = signed_trade(api, vendor, buyer, **product)
    rel = release(api, vendor, trade["product_id"], files) if published else None
    trade = pay(api, buyer, trade["id"])
    return {"vendor": vendor, "buyer": buyer, "trade": trade, "ent": entitlement_of(api, buyer, trade["id"]),
            "release": rel}


def sweep(app: Any) -> str:
    """Run the `sweep` command as cron does (every registered sweep, each item its own transaction)."""
    result = app.test_cli_runner().invoke(args=["sweep"])
    assert result.exit_code == 0, result.output
    return result.output


def execute(app: Any, stmt: Any) -> None:
    """One statement committed straight to the database (moving the clock of one row)."""
    from exchange.db import db

    with app.app_context():
        db.session.execute(stmt)
        db.session.commit()


def accesses(api: ApiHelper, actor: Actor, ent_id: str, **query: Any) -> dict[str, Any]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    r = api.get(f"entitlements/{ent_id}/accesses" + (f"?{qs}" if qs else ""), actor)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def api_bought(api: ApiHelper, upstream_url: str, vendor: Actor | None = None, buyer: Actor | None = None,
               header: dict[str, str] | None = None, **product: Any) -> dict[str, Any]:
    """An `api` product with its upstream set, sold and paid for, and a key for the buyer."""
    vendor, buyer = vendor or api.vendor(), buyer or api.enterprise()
    calls = product.pop("calls", None)
    if calls is None:
        contract = contract_for(api, vendor, buyer, **{"delivery_mode": "api", **product})
    else:  # per_call: `calls` bought at the product's unit price
        listed = certify(api, vendor, **{"delivery_mode": "api", **product})
        offer = bid(api, buyer, listed, terms={**terms(listed), "calls": calls})
        r = api.post(f"offers/{offer['id']}/accept", vendor)
        assert r.status_code == 201, r.get_json()
        contract = r.get_json()
    sign(api, buyer, contract["id"])
    trade_id = sign(api, vendor, contract["id"])["trade_id"]
    body = {"base_url": upstream_url, "auth_header": header or {"name": "X-Api-Key", "value": "vendor-secret-1"},
            "timeout_ms": 3000}
    r = api.request("PUT", f"products/{contract['product_id']}/api-upstream", vendor, json=body)
    assert r.status_code == 200, r.get_json()
    trade = pay(api, buyer, trade_id)
    ent = entitlement_of(api, buyer, trade_id)
    r = api.post(f"entitlements/{ent['id']}/api-keys", buyer, json={"label": "tests"})
    assert r.status_code == 201, r.get_json()
    return {"vendor": vendor, "buyer": buyer, "trade": trade, "ent": ent, "key": r.get_json()["key"],
            "key_id": r.get_json()["id"], "product_id": contract["product_id"]}
