"""Outbound URLs the exchange will call on someone's behalf (webhooks, and any other URL field):
refuse anything that could reach the exchange's own network (SSRF).

`check_public_url` parses the URL, then resolves its host with `socket.getaddrinfo` and refuses it
if *any* address is loopback, private, link-local (cloud metadata lives at 169.254.169.254),
unspecified, multicast, reserved or otherwise not globally routable. IPv4 addresses hidden inside
IPv6 (IPv4-mapped, 6to4, Teredo, NAT64) are unwrapped first, and odd spellings of IPv4 (`0x7f.1`,
`2130706433`) are caught because the resolver normalizes them. Callers that connect should connect
to the addresses it returns (never resolve again), so a DNS answer that changes between the check
and the connection (DNS rebinding) cannot slip through; and they should check again at each call.

`allow_private=True` (development, tests, a compose network) additionally allows loopback and
private (RFC 1918, unique-local) addresses; link-local, unspecified, multicast and reserved
addresses are refused even then.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from exchange.errors import field_error

MAX_URL_LENGTH = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class PublicURL:
    """A URL that passed the check, with the addresses its host resolved to (connect to these)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why the exchange must not connect to `ip`, or None if it may."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        problem = address_problem(inner, allow_private=allow_private)
        return f"embeds {inner}, which {problem}" if problem else None
    if ip.is_unspecified:
        return "is an unspecified address"
    if ip.is_multicast:
        return "is a multicast address"
    if ip.is_link_local:
        return "is a link-local address"
    if ip.is_loopback:
        return None if allow_private else "is a loopback address"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "is the broadcast address"
    if ip.is_reserved:
        return "is a reserved address"
    if ip.is_global:
        return None
    if allow_private and ip.is_private:
        return None
    return "is a private or non-routable address"


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (IPv4 and IPv6); raises OSError (socket.gaierror) if none."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: dict[str, IPAddress] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        seen.setdefault(addr, ipaddress.ip_address(addr))
    return list(seen.values())


def check_public_url(url: str, *, allow_private: bool = False, require_https: bool = False,
                     field: str = "url") -> PublicURL:
    """Validate an outbound URL: http(s) only (https only with `require_https`), no credentials, and
    a host whose every address is public (see the module docstring).

    Raises ValidationFailed (422) naming `field`.
    """
    if not isinstance(url, str) or not url:
        raise field_error(field, "must be a URL")
    if len(url) > MAX_URL_LENGTH:
        raise field_error(field, f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise field_error(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise field_error(field, "is not a valid URL") from None
    scheme = parts.scheme.lower()
    allowed = ("https",) if require_https else ("http", "https")
    if scheme not in allowed:
        raise field_error(field, "must use https" if require_https else "must use http or https")
    if parts.username is not None or parts.password is not None:
        raise field_error(field, "must not contain credentials")
    host = parts.hostname
    if not host:
        raise field_error(field, "must name a host")
    if port is None:
        port = 443 if scheme == "https" else 80
    if port == 0:
        raise field_error(field, "must not use port 0")
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError, ValueError):
        raise field_error(field, f"host {host!r} does not resolve") from None
    if not addresses:
        raise field_error(field, f"host {host!r} does not resolve")
    for ip in addresses:
        problem = address_problem(ip, allow_private=allow_private)
        if problem:
            shown = host if str(ip) == host else f"{host} ({ip})"
            raise field_error(field, f"must be a public address: {shown} {problem}")
    return PublicURL(url=url, scheme=scheme, host=host, port=port, addresses=tuple(str(a) for a in addresses))
