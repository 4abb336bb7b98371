"""Every URL the API accepts is judged as the resolver (and a browser) will see its host: after
percent-decoding, NFKC/IDNA mapping (fullwidth and circled digits, soft hyphens), ideographic full
stops (。．｡) read as dots, trailing dots removed, and every integer spelling of IPv4. Site-local
(fec0::/10, which Python's `ipaddress` calls global) and every other non-public range is refused.

Table-driven: each hostile URL x each route that takes a URL -> 422 naming the field, nothing stored.
A few legitimate URLs (IDNs included) are still accepted, stored in their normalized form.
"""

from __future__ import annotations

import socket

import pytest

PUBLIC_V4 = "93.184.215.14"

HOSTILE = [
    # Fullwidth, circled and other compatibility digits (NFKC maps them to ASCII digits).
    "http://１２７.０.０.１/",
    "http://①②⑦.⓪.⓪.①/",
    "http://⑩.0.0.1/",
    "http://１０.０.０.１/",
    "http://①⑨②.①⑥⑧.①.①/",
    "http://０ｘ７ｆ.1/",
    "http://⒓7.0.0.1/",  # U+2493 is "12." under NFKC: five parts, not a name
    # Ideographic full stops as dots, trailing dots.
    "http://127。0。0。1/",
    "http://127．0．0．1/",
    "http://127｡0｡0｡1/",
    "http://169.254.169.254。/",
    "http://169.254.169.254./",
    "http://169.254.169.254../",
    "http://192。168。1。1/",
    "http://0x7f。0。0。1/",
    # Names that only exist inside a host or a network, in every spelling.
    "http://localhost。/",
    "http://localhost./",
    "http://ｌｏｃａｌｈｏｓｔ/",
    "http://LOCALHOST:8000/",
    "http://loc\u00adalhost/",  # soft hyphen: mapped to nothing
    "http://api.localhost。/",
    "http://printer.ｌｏｃａｌ/",
    "http://metadata.google.internal。/",
    "http://metadata.google.ｉｎｔｅｒｎａｌ/",
    "http://router.home.arpa。/",
    # Percent-encoding in the host (browsers decode it).
    "http://%31%32%37.0.0.1/",
    "http://%6c%6f%63%61%6c%68%6f%73%74/",
    "http://169.254.169.254%2e/",
    "http://%EF%BC%91%EF%BC%92%EF%BC%97.0.0.1/",  # fullwidth 127, percent-encoded
    "http://127.0.0.1%2f@example.com/",
    # Integer, octal and hex spellings of IPv4.
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://127.1/",
    "http://0/",
    "http://0x0a.0.0.1/",
    "http://3232235777/",  # 192.168.1.1
    "http://2852039166/",  # 169.254.169.254
    "http://1.2.3.4.5/",   # numeric but no address: a browser refuses it, a resolver guesses
    "http://08.0.0.1/",
    # IPv6: loopback, site-local, unique-local, embeddings of private IPv4.
    "http://[::1]/",
    "http://[::]/",
    "http://[fec0::1]/",
    "http://[fec0::a:1]:8080/",
    "http://[feff::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::127.0.0.1]/",           # IPv4-compatible (deprecated)
    "http://[64:ff9b::7f00:1]/",       # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",    # NAT64 of 169.254.169.254
    "http://[64:ff9b:1::a00:1]/",      # local-use NAT64
    "http://[2002:7f00:1::]/",         # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::]/",      # 6to4 of 169.254.169.254
    "http://[2002:c0a8:101::1]/",      # 6to4 of 192.168.1.1
    "http://[2001:db8::1]/",           # documentation
    # Other non-public IPv4 ranges.
    "http://0.0.0.0/",
    "http://100.64.0.1/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
]

LEGITIMATE = [
    # (as submitted, as stored)
    ("https://qianhai-data.example.com/path?q=1#frag", "https://qianhai-data.example.com/path?q=1#frag"),
    ("http://例子.测试/", "http://例子.测试/"),
    ("http://bücher.example/", "http://bücher.example/"),
    ("https://数据.中国/", "https://数据.中国/"),
    ("https://Example.COM./a", "https://example.com/a"),
    ("https://例子。测试/", "https://例子.测试/"),
    (f"https://{PUBLIC_V4}:8443/", f"https://{PUBLIC_V4}:8443/"),
]


@pytest.fixture
def outside_dns(monkeypatch):
    """A resolver we do not control: every name resolves to a public address (so only the guard's
    reading of the name stands between a hostile URL and the exchange), `localhost` to loopback.
    Literal addresses go to the real resolver, which parses them (inet_aton rules)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kw):
        asked.append(host)
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            return real(name, port, *args, flags=socket.AI_NUMERICHOST,
                        **{k: v for k, v in kw.items() if k != "flags"})
        except (socket.gaierror, UnicodeError):
            pass
        address = "127.0.0.1" if name.rstrip(".").lower().endswith("localhost") else PUBLIC_V4
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 80))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def set_website(api, actor, url):
    return api.patch(f"organizations/{actor.org_id}", actor, json={"website": url})


def website(api, actor):
    return api.get(f"organizations/{actor.org_id}", actor).get_json()["website"]


def add_webhook(api, actor, url):
    return api.post("webhook-endpoints", actor, json={"url": url, "events": ["trade.settled"]})


def webhooks(api, actor):
    return [e["url"] for e in api.get("webhook-endpoints", actor).get_json()["items"]]


ROUTES = {
    "organization.website": ("website", set_website, website, None),
    "webhook_endpoint.url": ("url", add_webhook, webhooks, []),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_hostile_urls_are_refused_on_every_route(api, outside_dns, route):
    field, submit, stored, empty = ROUTES[route]
    vendor = api.vendor()
    accepted = []
    for url in HOSTILE:
        r = submit(api, vendor, url)
        body = r.get_json()
        if r.status_code != 422 or field not in (body.get("errors") or {}):
            accepted.append((url, r.status_code, body))
    assert accepted == [], f"{route} accepted {len(accepted)} of {len(HOSTILE)}: {accepted}"
    assert stored(api, vendor) == empty


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_legitimate_urls_are_accepted_and_stored_normalized(api, outside_dns, route):
    field, submit, stored, _ = ROUTES[route]
    vendor = api.vendor()
    for url, normalized in LEGITIMATE:
        r = submit(api, vendor, url)
        assert r.status_code in (200, 201), (url, r.get_json())
        assert r.get_json()[field] == normalized, url
        shown = stored(api, vendor)
        assert (shown[-1] if isinstance(shown, list) else shown) == normalized


def test_webhook_checks_resolve_the_normalized_name_only(api, outside_dns):
    vendor = api.vendor()
    r = add_webhook(api, vendor, "https://ＨＯＯＫＳ。partner。example./x")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["url"] == "https://hooks.partner.example/x"
    assert outside_dns == ["hooks.partner.example"]


def test_a_website_that_normalization_lengthens_past_the_column_is_a_422(api):
    # ㍱ is "hpa" under NFKC: 479 characters as sent, 604 once normalized (the column holds 500;
    # PostgreSQL would refuse the row with a 500). The field's length bound applies to the normalized URL.
    host = ".".join(["㍱" * 21] * 2 + ["㍱" * 20])
    url = f"http://{host}.example/" + "a" * 399
    assert len(url) <= 500
    vendor = api.vendor()
    r = set_website(api, vendor, url)
    assert r.status_code == 422 and "website" in r.get_json()["errors"], r.get_json()
    assert website(api, vendor) is None
