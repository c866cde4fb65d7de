"""Which hosts a merchant may name as their store: public internet addresses only (server-side request forgery guard).

Our servers call the store URL a merchant types (the WooCommerce key check, every sync), so an address inside our
network must never pass: loopback, private, link-local (cloud metadata at 169.254.169.254), shared (CGNAT,
100.64.0.0/10), unique-local IPv6, unspecified (0.0.0.0, ::), multicast and reserved ranges, and IPv6 forms that
carry such an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo). Host names that browsers and resolvers read as an
IPv4 address (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) are recognised as addresses, names reserved for
internal use (`localhost`, `*.internal`, `*.local` …) are refused without a lookup, and any other name is refused
when it resolves to an internal address.
"""

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Suffixes reserved for names inside a network (RFC 6761, RFC 6762, RFC 8375, ICANN's .internal) and the cloud
# metadata names; a store on the internet never has one.
INTERNAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa", "arpa", "lan", "intranet")
INTERNAL_NAMES = frozenset({"metadata", "instance-data", "metadata.google.internal", "metadata.azure.com"})
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)

Resolver = Callable[[str], Iterable[str]]


class InternalHost(ValueError):
    """The host names (or resolves to) an address inside a private network; the message says which."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, NAT64 64:ff9b::/96, 6to4, Teredo client), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_internal_address(address: IpAddress) -> bool:
    """True unless the address is a public unicast internet address (for IPv6, also the IPv4 one it carries)."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried is not None and is_internal_address(carried):
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
    )


def parse_numeric_host(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host written in numbers means (inet_aton and WHATWG URL rules), or None for a name.

    `2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1` and `127.0.0.1` all mean 127.0.0.1. Raises ValueError for a
    host whose last label is a number but which is no valid address (browsers refuse it too).
    """
    labels = host.rstrip(".").split(".")
    if not labels or not _NUMBER.fullmatch(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMBER.fullmatch(label) for label in labels):
        raise ValueError(f"{host!r} is neither a host name nor an IPv4 address.")
    numbers = []
    for label in labels:
        if label[:2].lower() == "0x":
            numbers.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            if not set(label) <= set("01234567"):
                raise ValueError(f"{host!r} is neither a host name nor an IPv4 address.")
            numbers.append(int(label, 8))
        else:
            numbers.append(int(label))
    *leading, last = numbers
    if any(part > 255 for part in leading) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} is neither a host name nor an IPv4 address.")
    value = last
    for index, part in enumerate(leading):
        value += part << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_address(host: str) -> IpAddress | None:
    """The address a host is written as (an IPv6 or dotted/numeric IPv4 literal), or None for a name."""
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    return parse_numeric_host(host)


def is_internal_name(host: str) -> bool:
    """True for names reserved for use inside a network (localhost, *.internal, *.local …) and metadata names."""
    name = host.rstrip(".").lower()
    return name in INTERNAL_NAMES or any(name == suffix or name.endswith("." + suffix) for suffix in INTERNAL_SUFFIXES)


def resolve_host(host: str) -> list[str]:
    """Every address the system resolver gives for a host (no port); socket.gaierror when it has none."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


def check_public_host(*, host: str, resolve: Resolver | None = None) -> None:
    """Raise InternalHost when the host is, or (with `resolve`) resolves to, an address inside a private network.

    `resolve` returns the host's addresses; it may raise OSError (socket.gaierror), which the caller maps.
    """
    address = parse_address(host)
    if address is not None:
        if is_internal_address(address):
            raise InternalHost(f"{host} is {address}, which is not a public internet address.")
        return
    if is_internal_name(host):
        raise InternalHost(f"{host} is a name for a host inside a private network, not a public one.")
    if resolve is None:
        return
    for value in resolve(host):
        resolved = ipaddress.ip_address(value.split("%")[0])
        if is_internal_address(resolved):
            raise InternalHost(f"{host} resolves to {resolved}, which is not a public internet address.")
