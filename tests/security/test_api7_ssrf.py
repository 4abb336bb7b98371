"""OWASP API7:2023 Server Side Request Forgery: every URL the API accepts (today the organization's
`website`) must name a public http(s) host; exchange.netguard.check_public_url is the one judge.

The exchange fetches none of these URLs itself; it stores them for others to follow and for
whatever later delivers to them, so they are refused at the door, in every spelling of an address.
"""

from __future__ import annotations

import pytest

from exchange.netguard import UnsafeURL, check_public_url, is_public_address

REFUSED = [
    "ftp://files.example.com/data.csv",  # not http(s)
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "//example.com/no-scheme",
    "example.com",
    "http://",
    "http://127.0.0.1/",  # loopback in every spelling
    "http://127.1/",
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",
    "http://2130706433/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://localhost:8000/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://10.0.0.5/",  # private
    "http://172.16.3.4/",
    "http://192.168.1.1/admin",
    "http://[fd00::1]/",
    "http://100.64.0.1/",  # shared address space (carrier NAT)
    "http://169.254.169.254/latest/meta-data/",  # link-local: cloud metadata
    "http://[fe80::1]/",
    "http://0.0.0.0/",  # unspecified
    "http://224.0.0.1/",  # multicast
    "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
    "http://metadata.google.internal/computeMetadata/v1/",  # intranet names
    "http://printer.local/",
    "http://intranet/",
    "http://router.home.arpa/",
    "https://user:pass@example.com/",  # credentials (and the user@host confusion)
    "https://example.com@127.0.0.1/",
    "https://example.com:0/",
    "https://example.com:99999/",
    "https://exa mple.com/",
    "https://example.com/\x00",
    "https://example.com\\@evil.test/",
    "https://" + "a" * 2050 + ".com/",
]

ACCEPTED = [
    "https://qianhai-data.example.com",
    "http://example.com:8080/path?q=1#frag",
    "https://数据.中国/",
    "https://93.184.216.34/",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_check_public_url_refuses(url):
    with pytest.raises(UnsafeURL):
        check_public_url(url)


@pytest.mark.parametrize("url", ACCEPTED)
def test_check_public_url_accepts_public_http_urls(url):
    assert check_public_url(url) == url


def test_allow_private_admits_private_and_loopback_but_never_metadata_or_other_schemes():
    for url in ("http://127.0.0.1:8000/hook", "http://10.1.2.3/", "http://localhost:5000/", "http://intranet/"):
        assert check_public_url(url, allow_private=True) == url
    for url in ("http://169.254.169.254/", "http://[fe80::1]/", "http://0.0.0.0/", "ftp://10.0.0.1/",
                "http://u:p@10.0.0.1/"):
        with pytest.raises(UnsafeURL):
            check_public_url(url, allow_private=True)


def test_is_public_address_for_code_that_connects():
    assert is_public_address("93.184.216.34")
    assert not is_public_address("10.0.0.1") and is_public_address("10.0.0.1", allow_private=True)
    assert not is_public_address("::ffff:169.254.169.254", allow_private=True)


@pytest.mark.parametrize("url", [u for u in REFUSED if "\x00" not in u and len(u) < 500])
def test_an_organization_website_must_be_public(api, url):
    vendor = api.vendor()
    r = api.patch(f"organizations/{vendor.org_id}", vendor, json={"website": url})
    assert r.status_code == 422, (url, r.get_json())
    assert "website" in r.get_json()["errors"]
    assert api.get(f"organizations/{vendor.org_id}", vendor).get_json()["website"] is None


def test_a_public_website_is_stored_and_shown(api):
    vendor = api.vendor()
    for url in ("https://数据.中国/", "https://qianhai-data.example.com"):
        r = api.patch(f"organizations/{vendor.org_id}", vendor, json={"website": url})
        assert r.status_code == 200, r.get_json()
        assert api.get(f"organizations/{vendor.org_id}").get_json()["website"] == url
    assert api.patch(f"organizations/{vendor.org_id}", vendor, json={"website": None}).status_code == 200


def test_operators_are_held_to_the_same_rule(api):
    vendor, op = api.vendor(), api.operator()
    r = api.patch(f"organizations/{vendor.org_id}", op, json={"website": "http://169.254.169.254/"})
    assert r.status_code == 422
