"""Outbound URL guards (SSRF).

`check_public_url` judges a URL the exchange stores for others to follow (an organization's website)
as written, without DNS (validation must not depend on, or leak through, a resolver): literal
addresses in every spelling inet_aton accepts (`127.1`, `0x7f.1`, `2130706433`, IPv4-mapped IPv6) and
names that only exist inside a network (`localhost`, `*.internal`, single labels) are refused.

`check_outbound_url` is for URLs the exchange will itself call (webhook endpoints): it also resolves
the host with `socket.getaddrinfo` and refuses it if *any* address is loopback, private, link-local
(cloud metadata lives at 169.254.169.254), unspecified, multicast, reserved or otherwise not globally
routable (IPv4 hidden inside IPv6 — mapped, 6to4, Teredo, NAT64 — unwrapped first). Callers connect to
the addresses it returns and check again at each call, so DNS rebinding cannot slip through.
`allow_private=True` (development, tests, a compose network) additionally allows loopback and private
addresses; link-local, unspecified, multicast and reserved addresses are refused even then.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from exchange.errors import field_error

MAX_URL_LENGTH = 2000
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


def check_outbound_url(url: str, *, allow_private: bool = False, require_https: bool = False,
                     field: str = "url") -> PublicURL:
    """Validate a URL the exchange itself will call (webhooks), resolving its host: http(s) only (https
    only with `require_https`), no credentials, and
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
