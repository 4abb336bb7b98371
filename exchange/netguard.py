"""Outbound URL guard (SSRF): a URL the exchange stores for others to follow, or may fetch itself, must be
an absolute http(s) URL naming a public host.

`check_public_url` judges the URL as written, without DNS (validation must not depend on, or leak
through, a resolver): literal addresses in every spelling inet_aton accepts (`127.1`, `0x7f.1`,
`2130706433`, IPv4-mapped IPv6) and names that only exist inside a network (`localhost`, `*.internal`,
single labels) are refused. Code that connects must also check the address it actually connects to
(`is_public_address`), since a public name may resolve to a private address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
SCHEMES = frozenset({"http", "https"})
# Names that resolve only inside a host or an organization's network (RFC 6761, 6762, 8375, habits).
PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".localdomain", ".lan", ".home.arpa",
                    ".corp", ".home", ".private", ".arpa")
PRIVATE_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_NUMERIC_HOST = re.compile(r"^[0-9a-fA-Fx.]+$")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


class UnsafeURL(ValueError):
    """The URL is not an absolute http(s) URL to a public host."""


def is_public_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, *,
                      allow_private: bool = False) -> bool:
    """Whether an IP address may be connected to: globally routable (or, with `allow_private`, also
    private and loopback). Link-local (cloud metadata), multicast, unspecified and reserved addresses
    never are."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return is_public_address(embedded, allow_private=allow_private)
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return False
    if ip.is_global:
        return True
    return allow_private and (ip.is_private or ip.is_loopback)


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        # Legacy IPv4 spellings every resolver library still accepts: 127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_public_url(url: str, *, allow_private: bool = False) -> str:
    """Return `url` if it is an absolute http(s) URL without credentials to a public host; raise
    UnsafeURL (a ValueError) naming the reason otherwise. `allow_private` admits private and loopback
    hosts (development and tests), never link-local, multicast or unspecified addresses."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"must be a URL of 1..{MAX_URL_LENGTH} characters")
    if _FORBIDDEN_CHARS.search(url):
        raise UnsafeURL("must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in SCHEMES:
        raise UnsafeURL("must use http or https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL("must not carry credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("must name a host")
    if port == 0:
        raise UnsafeURL("must not use port 0")
    address = _literal_address(host)
    if address is not None:
        if not is_public_address(address, allow_private=allow_private):
            raise UnsafeURL(f"must not point to a private, loopback, link-local or reserved address ({address})")
        return url
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeURL("has an invalid host name") from None
    if allow_private:
        return url
    if ascii_host in PRIVATE_NAMES or ascii_host.endswith(PRIVATE_SUFFIXES) or "." not in ascii_host:
        raise UnsafeURL(f"must name a public host ({ascii_host} only resolves inside a network)")
    return url
