"""exchange.netguard.check_outbound_url: the SSRF guard of every outbound URL."""

from __future__ import annotations

import socket

import pytest

from exchange.errors import ValidationFailed
from exchange.netguard import check_outbound_url

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:4700:4700::1111"


def refused(url: str, **kw) -> str:
    with pytest.raises(ValidationFailed) as info:
        check_outbound_url(url, **kw)
    assert info.value.status == 422
    assert set(info.value.errors) == {kw.get("field", "url")}
    return info.value.errors[kw.get("field", "url")][0]


@pytest.mark.parametrize("url", [
    f"https://{PUBLIC_V4}/hook",
    f"http://{PUBLIC_V4}:8443/a/b?c=d",
    f"https://[{PUBLIC_V6}]/hook",
])
def test_public_addresses_pass_and_are_returned_for_pinning(url):
    target = check_outbound_url(url)
    assert target.url == url
    assert target.addresses and all(a in (PUBLIC_V4, PUBLIC_V6) for a in target.addresses)
    assert target.port in (443, 80, 8443)


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.1.2.3:8080/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://localhost:5000/", "loopback"),        # a name resolving to loopback
    ("http://2130706433/", "loopback"),            # 127.0.0.1 as one integer
    ("http://0x7f.1/", "loopback"),                # hex and short forms the resolver normalizes
    ("http://10.0.0.8/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "private"),             # carrier-grade NAT
    ("http://[fc00::1]/", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),  # cloud metadata
    ("http://[fe80::1]/", "link-local"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),    # IPv4-mapped IPv6
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[2002:a00:1::1]/", "private"),        # 6to4 of 10.0.0.1
    ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 of 169.254.169.254
])
def test_internal_addresses_are_refused(url, why):
    assert why in refused(url)


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://93.184.215.14/x", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("gopher://93.184.215.14/", "http or https"),
    ("//93.184.215.14/x", "http or https"),
    ("https://user:pw@93.184.215.14/", "credentials"),
    ("https:///path-only", "host"),
    ("https://93.184.215.14:99999/", "valid URL"),
    ("https://93.184.215.14/a b", "spaces"),
    ("https://93.184.215.14/\x00", "control"),
    ("https://93.184.215.14:0/", "port 0"),
    ("https://" + "a" * 2000 + ".example/", "at most"),
    ("", "must be a URL"),
])
def test_malformed_urls_are_refused(url, message):
    assert message in refused(url)


def test_https_only_when_required():
    assert "must use https" in refused(f"http://{PUBLIC_V4}/", require_https=True)
    assert check_outbound_url(f"https://{PUBLIC_V4}/", require_https=True).scheme == "https"


def test_allow_private_opens_loopback_and_private_but_never_metadata_or_multicast():
    for url in ("http://127.0.0.1:9000/", "http://localhost/", "http://10.1.2.3/", "http://[::1]/"):
        assert check_outbound_url(url, allow_private=True).addresses
    for url, why in (("http://169.254.169.254/", "link-local"), ("http://0.0.0.0/", "unspecified"),
                     ("http://224.0.0.1/", "multicast"), ("http://240.0.0.1/", "reserved")):
        assert why in refused(url, allow_private=True)


def test_the_error_names_the_callers_field():
    assert "loopback" in refused("http://127.0.0.1/", field="website")


def _fake_dns(monkeypatch, answers: dict[str, list[str]]):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kw):
        if host in answers:
            if not answers[host]:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                    for a in answers[host]]
        return real(host, port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_is_refused_if_any_of_its_addresses_is_internal(monkeypatch):
    # The DNS answer is the outside world here: a resolver we do not control.
    _fake_dns(monkeypatch, {"hooks.partner.example": [PUBLIC_V4, "10.0.0.5"],
                            "good.partner.example": [PUBLIC_V4, PUBLIC_V6],
                            "gone.partner.example": []})
    assert "10.0.0.5" in refused("https://hooks.partner.example/x")
    assert check_outbound_url("https://good.partner.example/x").addresses == (PUBLIC_V4, PUBLIC_V6)
    assert "does not resolve" in refused("https://gone.partner.example/x")
