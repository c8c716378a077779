"""Who is hitting a limit: identifiers, ``EXEMPTED``, and the client address.

The default identifier is the peer address of the connection. ``X-Forwarded-For``
and ``Forwarded`` are honoured **only** when the peer is a configured trusted proxy:
otherwise any client could send a fresh header with each request and get a fresh
quota. Behind trusted proxies the client is the right-most address not itself a
trusted proxy — the left-most entries are whatever the client chose to send.
Addresses are compared and returned without a port and in one canonical text, so one
client never holds several quotas (nor a proxy several names).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

from starlette.requests import HTTPConnection

from ratescript.exceptions import ConfigurationError

__all__ = [
    "ANONYMOUS",
    "EXEMPTED",
    "Identifier",
    "default_identifier",
    "get_remote_address",
    "remote_address",
]

#: An identifier: the connection → a string naming the client, or ``EXEMPTED`` (or an
#: awaitable of either: sync and async functions both serve).
Identifier = Callable[[HTTPConnection], Any]

#: The identifier of a connection without a peer address (a test client, a socket).
ANONYMOUS: Final = "__anonymous__"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Where IPv4-mapped IPv6 addresses live (``::ffff:192.0.2.1``).
_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")

#: The one forwarding header trusted: the one your proxies *write*. Reading both would
#: let a client forge the other (nginx appends to X-Forwarded-For but passes a
#: client's ``Forwarded`` through untouched).
ForwardingHeader = Literal["x-forwarded-for", "forwarded"]


def _check_header(header: object) -> ForwardingHeader:
    if header not in ("x-forwarded-for", "forwarded"):
        raise ConfigurationError(f'header must be "x-forwarded-for" or "forwarded", got {header!r}')
    return header


class _Exempted:
    """The type of ``EXEMPTED``; one instance, compared by identity."""

    _instance: _Exempted | None = None

    def __new__(cls) -> _Exempted:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "EXEMPTED"

    def __reduce__(self) -> str:
        return "EXEMPTED"


#: Returned by an identifier: this connection bypasses the limit entirely.
EXEMPTED: Final = _Exempted()


def _networks(trusted_proxies: Iterable[str]) -> tuple[_Network, ...]:
    if isinstance(trusted_proxies, str):
        trusted_proxies = [trusted_proxies]
    found: list[_Network] = []
    for proxy in trusted_proxies:
        try:
            network = ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise ConfigurationError(f"not an IP address or network: {proxy!r}") from exc
        if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
            # Written as a dual-stack socket shows it (``::ffff:10.0.0.1``): addresses are
            # compared unwrapped (see ``_ip``), so the network is unwrapped too.
            network = ipaddress.IPv4Network(
                (int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96)
            )
        found.append(network)
    return tuple(found)


def _strip_port(address: str) -> str:
    """A hop as proxies write it — ``[v6]:port``, ``v4:port``, quoted or bare — without
    its port (a client's source port changes with every connection, its address does not).
    """
    address = address.strip().strip('"')
    if address.startswith("["):  # "[2001:db8::1]:4711"
        return address[1 : address.find("]")] if "]" in address else address[1:]
    if address.count(":") == 1:  # "192.0.2.1:4711"; a bare IPv6 address has several
        return address.partition(":")[0]
    return address


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``address`` parsed; an IPv4-mapped IPv6 address (``::ffff:10.0.0.1``, how a
    dual-stack socket shows an IPv4 peer) as the IPv4 address it carries."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _canonical(address: str) -> str:
    """One text per client: ``2001:DB8::1``, ``2001:db8:0::1`` and ``::ffff:192.0.2.1``
    would otherwise be separate keys, so separate quotas, for one address. Text that is
    not an address (``unknown``, an obfuscated RFC 7239 node) is kept as it is.
    """
    ip = _ip(address)
    return address if ip is None else str(ip)


def _forwarded_for(element: str) -> list[str]:
    """The ``for=`` addresses of one element of an RFC 7239 ``Forwarded`` field."""
    found = []
    for pair in element.split(";"):
        name, _, address = pair.strip().partition("=")
        if name.strip().lower() == "for":
            found.append(_canonical(_strip_port(address)))
    return found


def _x_forwarded_for(hop: str) -> list[str]:
    """The address of one ``X-Forwarded-For`` hop (none if the hop is blank)."""
    return [_canonical(_strip_port(hop))] if hop.strip() else []


def _raw_hops(
    connection: HTTPConnection, header: ForwardingHeader
) -> tuple[Callable[[str], list[str]], list[str]]:
    """The hops of ``header`` as written, client first, and how to read one's addresses.

    Split only (at C speed): a hop is parsed when it is looked at, so a client that
    sends thousands of hops through a trusted proxy costs a split, not thousands of
    address parses.
    """
    parse: Callable[[str], list[str]] = _x_forwarded_for
    if header == "forwarded":
        parse = _forwarded_for
    values = connection.headers.getlist(header)
    return parse, [hop for value in values for hop in value.split(",")]


def _is_trusted(address: str, networks: tuple[_Network, ...]) -> bool:
    ip = _ip(address)
    if ip is None:
        return False
    return any(ip in network for network in networks)


def get_remote_address(
    connection: HTTPConnection,
    trusted_proxies: Iterable[str] = (),
    header: ForwardingHeader = "x-forwarded-for",
) -> str | None:
    """The client's address: the peer, or — behind trusted proxies — the forwarded one.

    ``trusted_proxies`` lists addresses or networks (``"10.0.0.0/8"``). Without any, the
    forwarding headers are ignored, as they can be forged by anyone. ``header`` names
    the one forwarding header your proxies write.
    """
    peer = connection.client.host if connection.client else None
    networks = _networks(trusted_proxies)
    header = _check_header(header)
    if peer is None:
        return None
    peer = _canonical(peer)
    if not networks or not _is_trusted(peer, networks):
        return peer
    return _client_behind(peer, connection, header, networks)


def _client_behind(
    peer: str, connection: HTTPConnection, header: ForwardingHeader, networks: tuple[_Network, ...]
) -> str:
    """The address the trusted proxies forward for: the last hop none of them is, read
    from the right (the hops a client wrote itself, further left, are never parsed)."""
    parse, raw = _raw_hops(connection, header)
    for hop in reversed(raw):
        for address in reversed(parse(hop)):
            if not _is_trusted(address, networks):
                return address
    # Every hop is a trusted proxy: the first one recorded, else the peer.
    return next((address for hop in raw for address in parse(hop)), peer)


async def default_identifier(connection: HTTPConnection) -> str:
    """The peer address of the connection (forwarding headers ignored)."""
    client = connection.client
    return client.host if client is not None and client.host else ANONYMOUS


def remote_address(
    trusted_proxies: Iterable[str], header: ForwardingHeader = "x-forwarded-for"
) -> Identifier:
    """An identifier honouring the forwarding ``header`` from ``trusted_proxies`` only.

    ``HTTPThrottle(..., identifier=remote_address(["10.0.0.0/8"]))`` behind a load
    balancer in that network; a request from anywhere else is identified by its peer.
    ``header="forwarded"`` reads RFC 7239 ``Forwarded`` instead of ``X-Forwarded-For``.
    """
    networks = _networks(trusted_proxies)
    header = _check_header(header)
    if not networks:
        raise ConfigurationError("remote_address needs at least one trusted proxy")

    async def identify(connection: HTTPConnection) -> str:
        peer = connection.client.host if connection.client else None
        if peer is None:
            return ANONYMOUS
        peer = _canonical(peer)  # the address it forwards for would be canonical too
        if not _is_trusted(peer, networks):
            return peer
        return _client_behind(peer, connection, header, networks)

    return identify
