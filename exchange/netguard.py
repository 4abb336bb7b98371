"""Outbound URL guards (SSRF).

Every URL is first *normalized* (`normalize_url`) the way a resolver or a browser reads its host, and
the checks judge that normalized host only:

- the host is percent-decoded, NFKC-normalized and IDNA-mapped (nameprep: case folding, fullwidth and
  circled digits to ASCII digits, soft hyphens and other invisible characters removed; bidi controls
  refused), the ideographic full stops 。．｡ are dots, trailing dots are dropped;
- a host whose last label is numeric is an IPv4 address in any spelling inet_aton and browsers accept
  (`127.1`, `0x7f.1`, `0177.0.0.1`, `2130706433`), or refused; IPv6 literals lose nothing but their
  zone id, which is refused.

Decision: the exchange stores (and connects to) the normalized URL, never the submitted spelling.
`http://ＥＸＡＭＰＬＥ。com./a` is stored as `http://example.com/a`; IDNs keep their Unicode form
(`http://例子.测试/`, `http://bücher.example/`), lowercased and mapped, and are resolved as their A-labels.
What is stored is exactly what was checked, so nothing downstream can read it differently.

`check_public_url` judges a URL the exchange stores for others to follow (an organization's website)
without DNS (validation must not depend on, or leak through, a resolver): literal addresses that are
not globally routable and names that only exist inside a network (`localhost`, `*.localhost`,
`*.internal`, `*.local`, single labels...) are refused.

`check_outbound_url` is for URLs the exchange will itself call (webhook endpoints): it also refuses
those names, then resolves the normalized ASCII host with `socket.getaddrinfo` and refuses it if *any*
address is not globally routable: loopback, private, link-local (cloud metadata lives at
169.254.169.254), site-local (fec0::/10, which Python's `ipaddress` calls global), unspecified,
multicast, reserved, documentation, shared (100.64/10) ... and IPv4 hidden inside IPv6 (mapped,
compatible, 6to4, Teredo, NAT64) is unwrapped and judged too. Callers connect to the addresses it
returns (sending the normalized host as Host and TLS server name) and check again at each call, so
DNS rebinding cannot slip through. `allow_private=True` (development, tests, a compose network)
additionally allows loopback and private addresses and intranet names; link-local, site-local,
unspecified, multicast and reserved addresses are refused even then.
"""

from __future__ import annotations

import encodings.idna
import ipaddress
import re
import socket
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

import urllib3

from exchange.errors import field_error

MAX_URL_LENGTH = 2000
SCHEMES = frozenset({"http", "https"})
# Names that resolve only inside a host or an organization's network (RFC 6761, 6762, 8375, habits).
PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".intranet", ".localdomain", ".lan", ".home.arpa",
                    ".corp", ".home", ".private", ".arpa")
PRIVATE_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_DOTS = re.compile("[.\u3002\uff0e\uff61]")
_ASCII_LABEL = re.compile(r"^[a-z0-9_-]{1,63}$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$")
# Never in a host, once percent-decoded (the WHATWG URL standard's forbidden host code points).
_HOST_FORBIDDEN = frozenset(" #%/:<>?@[\\]^|")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Ranges `ipaddress` may call global that are not (or must not be) reachable from here.
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "fec0::/10",        # site-local (deprecated by RFC 3879, still routed inside some networks)
    "64:ff9b:1::/48",   # local-use NAT64 (RFC 8215)
    "5f00::/16",        # SRv6 SIDs (RFC 9602)
    "2001:db8::/32",    # documentation
    "3fff::/20",        # documentation (RFC 9637)
    "100::/64",         # discard-only
    "192.0.0.0/24",     # IETF protocol assignments
    "192.88.99.0/24",   # 6to4 relay anycast (deprecated)
))


class UnsafeURL(ValueError):
    """The URL is not an absolute http(s) URL to a public host."""


@dataclass(frozen=True, slots=True)
class NormalizedURL:
    """A URL as the resolver will see it. `url` is the normalized URL to store; `host` its host as
    shown (Unicode labels, IPv6 without brackets); `ascii_host` what is resolved (A-labels, or the
    address); `address` the literal address if the host is one."""

    url: str
    scheme: str
    host: str
    ascii_host: str
    port: int
    address: IPAddress | None


def _label(label: str) -> tuple[str, str]:
    """One label as (shown, ASCII): nameprep-mapped Unicode and its A-label. Raises UnsafeURL."""
    if label.isascii():
        label = label.lower()
        if not _ASCII_LABEL.match(label):
            raise UnsafeURL("has an invalid host name")
        return label, label
    try:
        shown = encodings.idna.nameprep(label)
        ascii_label = encodings.idna.ToASCII(label).decode("ascii").lower()
    except UnicodeError:
        raise UnsafeURL("has an invalid host name") from None
    if not _ASCII_LABEL.match(ascii_label):
        raise UnsafeURL("has an invalid host name")
    return (ascii_label if shown.isascii() else shown), ascii_label


def _normalize_host(raw: str) -> tuple[str, str, IPAddress | None]:
    try:
        host = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise UnsafeURL("has an invalid host name") from None
    host = unicodedata.normalize("NFKC", host)
    # Soft hyphens pass (nameprep removes them); every other control, format or space character is refused.
    if any(ch in _HOST_FORBIDDEN or (unicodedata.category(ch)[0] in "CZ" and ch != "\u00ad") for ch in host):
        raise UnsafeURL("has an invalid host name")
    labels = _DOTS.split(host)
    while len(labels) > 1 and labels[-1] == "":
        labels.pop()  # trailing dots: `localhost.` is `localhost`
    if any(label == "" for label in labels):
        raise UnsafeURL("must name a host")
    pairs = [_label(label) for label in labels]
    shown, ascii_host = ".".join(p[0] for p in pairs), ".".join(p[1] for p in pairs)
    if len(ascii_host) > 253:
        raise UnsafeURL("has a host name longer than 253 characters")
    if _NUMERIC_LABEL.match(ascii_host.rsplit(".", 1)[-1]):
        # An IPv4 address in one of the legacy spellings every resolver library and browser accepts
        # (127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1), or nothing: never a name.
        try:
            if not _NUMERIC_HOST.match(ascii_host):
                raise OSError
            address = ipaddress.IPv4Address(socket.inet_aton(ascii_host))
        except OSError:
            raise UnsafeURL(f"has a numeric host that is not an IPv4 address ({ascii_host})") from None
        return str(address), str(address), address
    return shown, ascii_host, None


def normalize_url(url: str) -> NormalizedURL:
    """Parse and normalize an absolute http(s) URL without credentials (see the module docstring).
    Raises UnsafeURL (a ValueError) naming the reason."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("must be a URL")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" or ch == "\\" for ch in url):
        raise UnsafeURL("must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeURL("must use http or https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL("must not carry credentials")
    raw = parts.hostname or ""
    if not raw:
        raise UnsafeURL("must name a host")
    if port == 0:
        raise UnsafeURL("must not use port 0")
    if parts.netloc.startswith("["):
        if "%" in raw:
            raise UnsafeURL("must not carry an IPv6 zone id")
        try:
            address: IPAddress | None = ipaddress.IPv6Address(raw)
        except ValueError:
            raise UnsafeURL("has an invalid IPv6 address") from None
        shown = ascii_host = str(address)
    else:
        shown, ascii_host, address = _normalize_host(raw)
    netloc = f"[{shown}]" if isinstance(address, ipaddress.IPv6Address) else shown
    if port is not None:
        netloc += f":{port}"
    normalized = urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))
    if len(normalized) > MAX_URL_LENGTH:  # NFKC can lengthen a host (㍱ -> hpa)
        raise UnsafeURL(f"must be at most {MAX_URL_LENGTH} characters once normalized")
    return NormalizedURL(url=normalized, scheme=scheme, host=shown, ascii_host=ascii_host,
                         port=port if port is not None else (443 if scheme == "https" else 80), address=address)


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
    """Why the exchange must not connect to (or send others to) `ip`, or None if it may: only globally
    routable addresses pass (with `allow_private`, also loopback and private ones)."""
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
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "is a site-local address"
    if ip.is_loopback:
        return None if allow_private else "is a loopback address"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "is the broadcast address"
    if ip.is_reserved:
        return "is a reserved address"
    if any(ip in net for net in _NOT_PUBLIC if net.version == ip.version):
        return "is a non-routable address"
    if ip.is_global:
        return None
    if allow_private and ip.is_private:
        return None
    return "is a private or non-routable address"


def is_public_address(address: str | IPAddress, *, allow_private: bool = False) -> bool:
    """Whether an IP address may be connected to (see `address_problem`)."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    return address_problem(ip, allow_private=allow_private) is None


def name_problem(ascii_host: str) -> str | None:
    """Why a (normalized, ASCII) host name only resolves inside a host or a network, or None."""
    if ascii_host in PRIVATE_NAMES or ascii_host.endswith(".localhost"):
        return "is a loopback name"
    if ascii_host.endswith(PRIVATE_SUFFIXES) or "." not in ascii_host:
        return "only resolves inside a network"
    return None


def check_public_url(url: str, *, allow_private: bool = False) -> str:
    """Return the normalized form of `url` if it is an absolute http(s) URL without credentials to a
    public host; raise UnsafeURL (a ValueError) naming the reason otherwise. `allow_private` admits
    private and loopback hosts (development and tests), never link-local, multicast or unspecified."""
    target = normalize_url(url)
    if target.address is not None:
        problem = address_problem(target.address, allow_private=allow_private)
        if problem:
            raise UnsafeURL(f"must not point to a private, loopback, link-local or reserved address "
                            f"({target.address} {problem})")
        return target.url
    problem = None if allow_private else name_problem(target.ascii_host)
    if problem:
        raise UnsafeURL(f"must name a public host ({target.ascii_host} {problem})")
    return target.url


@dataclass(frozen=True, slots=True)
class PublicURL:
    """A URL that passed the check (normalized), its ASCII host (send it as Host and TLS server name)
    and the addresses that host resolved to (connect to these)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


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
    """Validate a URL the exchange itself will call (webhooks), resolving its normalized host: http(s)
    only (https only with `require_https`), no credentials, no intranet name, and a host whose every
    address is public (see the module docstring). The result carries the normalized URL (store it).

    Raises ValidationFailed (422) naming `field`.
    """
    try:
        target = normalize_url(url)
    except UnsafeURL as exc:
        raise field_error(field, str(exc)) from None
    if require_https and target.scheme != "https":
        raise field_error(field, "must use https")
    host, port = target.ascii_host, target.port
    if target.address is not None:
        addresses: list[IPAddress] = [target.address]
    else:
        problem = None if allow_private else name_problem(host)
        if problem:
            raise field_error(field, f"must be a public address: {host} {problem}")
        try:
            addresses = resolve(host, port)  # the normalized ASCII name: what was checked is what resolves
        except (OSError, UnicodeError, ValueError):
            raise field_error(field, f"host {host!r} does not resolve") from None
        if not addresses:
            raise field_error(field, f"host {host!r} does not resolve")
    for ip in addresses:
        problem = address_problem(ip, allow_private=allow_private)
        if problem:
            shown = host if str(ip) == host else f"{host} ({ip})"
            raise field_error(field, f"must be a public address: {shown} {problem}")
    return PublicURL(url=target.url, scheme=target.scheme, host=host, port=port,
                     addresses=tuple(str(a) for a in addresses))


def pinned_pool(target: PublicURL, address: str, *, timeout: urllib3.Timeout) -> urllib3.HTTPConnectionPool:
    """A one-connection pool to `address`, one of the addresses `target`'s host was checked to have
    (never resolving again), that speaks to the host by its name: TLS server name and certificate
    check for https. No retries: the caller decides what a failure means."""
    kw = {"timeout": timeout, "retries": False, "maxsize": 1}
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(address, target.port, server_hostname=target.host,
                                           assert_hostname=target.host, cert_reqs="CERT_REQUIRED", **kw)
    return urllib3.HTTPConnectionPool(address, target.port, **kw)
