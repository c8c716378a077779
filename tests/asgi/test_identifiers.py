"""Who a client is: the peer address by default, forwarding headers only from trusted
proxies, ``EXEMPTED``, and keys that stay apart whatever an identifier returns."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from ratescript.asgi import EXEMPTED, HTTPThrottle, get_remote_address, identifiers, remote_address
from ratescript.exceptions import ConfigurationError
from ratescript.stores.base import Store

from .helpers import http, remaining, request_from

PROXY = ("10.0.0.1", 443)
TRUSTED = ["10.0.0.0/8", "2001:db8:ffff::/48"]


def app_with(throttle: HTTPThrottle) -> FastAPI:
    app = FastAPI()

    @app.get("/", dependencies=[Depends(throttle)])
    async def index() -> None:
        return None

    return app


async def statuses(client: Any, *header_sets: dict[str, str]) -> list[int]:
    return [(await client.get("/", headers=headers)).status_code for headers in header_sets]


@pytest.mark.asyncio
async def test_by_default_forwarding_headers_are_ignored(store: Store) -> None:
    throttle = HTTPThrottle("ids", "1/min", store=store)
    async with http(app_with(throttle), client=PROXY) as client:
        forged = [
            {"X-Forwarded-For": "198.51.100.1"},
            {"X-Forwarded-For": "198.51.100.2"},
            {"Forwarded": "for=198.51.100.3"},
        ]
        assert await statuses(client, *forged) == [200, 429, 429]
    assert await remaining(throttle, PROXY) == 0


@pytest.mark.asyncio
async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_quota(
    store: Store,
) -> None:
    throttle = HTTPThrottle("ids", "1/min", store=store, identifier=remote_address(TRUSTED))
    async with http(app_with(throttle), client=PROXY) as client:
        first, second = {"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"}
        assert await statuses(client, first, second, first, second) == [200, 200, 429, 429]
    # The proxy itself was never charged.
    assert await remaining(HTTPThrottle("ids", "1/min", store=store), PROXY) == 1


@pytest.mark.asyncio
async def test_a_spoofed_header_from_an_untrusted_peer_buys_no_fresh_quota(store: Store) -> None:
    throttle = HTTPThrottle("ids", "2/min", store=store, identifier=remote_address(TRUSTED))
    async with http(app_with(throttle), client=("192.0.2.50", 1)) as client:
        forged = [
            {"X-Forwarded-For": f"198.51.100.{i}", "Forwarded": f"for=198.51.100.{i}"}
            for i in range(4)
        ]
        assert await statuses(client, *forged) == [200, 200, 429, 429]


@pytest.mark.asyncio
async def test_entries_a_client_prepends_behind_a_trusted_proxy_are_ignored(store: Store) -> None:
    throttle = HTTPThrottle("ids", "1/min", store=store, identifier=remote_address(TRUSTED))
    async with http(app_with(throttle), client=PROXY) as client:
        # The proxy appends the address it saw (198.51.100.7), after whatever the client sent;
        # a second trusted proxy (10.0.0.2) is skipped too.
        sent = [
            {"X-Forwarded-For": "1.1.1.1, 198.51.100.7"},
            {"X-Forwarded-For": "2.2.2.2, 198.51.100.7, 10.0.0.2"},
            {"X-Forwarded-For": "1.1.1.1, 198.51.100.8"},  # another client: its own quota
        ]
        assert await statuses(client, *sent) == [200, 429, 200]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Forwarded": "for=198.51.100.9;proto=https"}, "198.51.100.9"),
        ({"Forwarded": 'for="[2001:db8::1]:4711"'}, "2001:db8::1"),
        ({"Forwarded": "for=192.0.2.1:4711, for=10.0.0.9"}, "192.0.2.1"),
        ({"X-Forwarded-For": "192.0.2.1,192.0.2.2"}, "192.0.2.2"),
        ({"X-Forwarded-For": "10.0.0.3, 10.0.0.4"}, "10.0.0.3"),  # all trusted: the first
        ({}, "10.0.0.1"),
        # Ports are dropped, and a trusted hop written with one is still trusted.
        ({"X-Forwarded-For": "192.0.2.1:50001"}, "192.0.2.1"),
        ({"X-Forwarded-For": "192.0.2.1, 10.0.0.3:80"}, "192.0.2.1"),
        ({"X-Forwarded-For": "[2001:db8::9]:50001"}, "2001:db8::9"),
        # One text per address: any case, any spelling, IPv4 mapped into IPv6.
        ({"X-Forwarded-For": "2001:DB8:0:0::9"}, "2001:db8::9"),
        ({"X-Forwarded-For": "::ffff:192.0.2.1"}, "192.0.2.1"),
        ({"Forwarded": 'for="[2001:DB8::1]:4711"'}, "2001:db8::1"),
        ({"X-Forwarded-For": "unknown"}, "unknown"),  # not an address: kept as sent
    ],
)
def test_get_remote_address_reads_forwarded_and_x_forwarded_for(
    headers: dict[str, str], expected: str
) -> None:
    header = "forwarded" if "Forwarded" in headers else "x-forwarded-for"
    assert get_remote_address(request_from(PROXY, headers), TRUSTED, header) == expected
    # From an untrusted peer, or with no trusted proxies, the peer it is.
    assert get_remote_address(request_from(("192.0.2.99", 1), headers), TRUSTED) == "192.0.2.99"
    assert get_remote_address(request_from(PROXY, headers)) == "10.0.0.1"


@pytest.mark.asyncio
async def test_a_new_source_port_buys_no_fresh_quota(store: Store) -> None:
    """A client's port changes with every connection: keyed by it, each would be a new client."""
    throttle = HTTPThrottle("ids", "2/min", store=store, identifier=remote_address(TRUSTED))
    async with http(app_with(throttle), client=PROXY) as client:
        sent = [{"X-Forwarded-For": f"198.51.100.9:{50000 + i}"} for i in range(4)]
        assert await statuses(client, *sent) == [200, 200, 429, 429]
        assert await statuses(client, {"X-Forwarded-For": "198.51.100.9"}) == [429]


@pytest.mark.asyncio
async def test_an_ipv4_mapped_peer_is_matched_against_ipv4_proxies(store: Store) -> None:
    """A dual-stack server (``--host ::``) sees an IPv4 proxy as ``::ffff:a.b.c.d``."""
    throttle = HTTPThrottle("ids", "1/min", store=store, identifier=remote_address(["127.0.0.1"]))
    async with http(app_with(throttle), client=("::ffff:127.0.0.1", 443)) as client:
        first, second = {"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"}
        assert await statuses(client, first, second, first) == [200, 200, 429]
    # Written the way such a socket shows it, the proxy is trusted too.
    mapped = request_from(("10.0.0.1", 1), {"X-Forwarded-For": "198.51.100.1"})
    assert get_remote_address(mapped, ["::ffff:10.0.0.0/104"]) == "198.51.100.1"
    # An untrusted mapped peer is the IPv4 client it carries, as when it reaches an IPv4 socket.
    direct = request_from(("::ffff:192.0.2.99", 1), {"X-Forwarded-For": "198.51.100.1"})
    assert get_remote_address(direct, TRUSTED) == "192.0.2.99"


def test_an_ipv6_proxy_network_is_trusted_too() -> None:
    behind = request_from(("2001:db8:ffff::1", 1), {"X-Forwarded-For": "2001:db8:1::5"})
    assert get_remote_address(behind, TRUSTED) == "2001:db8:1::5"
    outside = request_from(("2001:db8:fffe::1", 1), {"X-Forwarded-For": "2001:db8:1::5"})
    assert get_remote_address(outside, TRUSTED) == "2001:db8:fffe::1"


@pytest.mark.parametrize("trusted", [[], ["not-an-ip"], ["10.0.0.0/33"]])
def test_remote_address_needs_valid_trusted_proxies(trusted: list[str]) -> None:
    with pytest.raises(ConfigurationError):
        remote_address(trusted)


@pytest.mark.asyncio
async def test_exempted_bypasses_the_limit_and_charges_nothing(store: Store) -> None:
    async def staff_exempt(connection: HTTPConnection) -> Any:
        if connection.headers.get("x-staff") == "yes":
            return EXEMPTED
        return "shared"

    throttle = HTTPThrottle("ids", "1/min", store=store, identifier=staff_exempt)
    staff = {"x-staff": "yes"}
    async with http(app_with(throttle)) as client:
        assert await statuses(client, staff, staff, staff) == [200, 200, 200]
        assert await statuses(client, {}, {}, staff) == [200, 429, 200]
        stat = await throttle.stat(request_from(headers=staff))
        assert stat.hits_remaining == math.inf
        assert await throttle.check(request_from(headers=staff)) is None


@pytest.mark.asyncio
async def test_an_identity_with_lone_surrogates_gets_a_key_of_its_own(store: Store) -> None:
    """Header bytes that are not UTF-8, decoded with ``surrogateescape`` as Python does
    for undecodable bytes, hold lone surrogates: no UTF-8 encoder takes them as is."""

    async def from_header(connection: HTTPConnection) -> str:
        return connection.headers["who"].encode("latin-1").decode("utf-8", "surrogateescape")

    throttle = HTTPThrottle("ids", "1/min", store=store, identifier=from_header)
    # b"\xff" is the lone surrogate \udcff; "%ED%B3%BF" is how a key spells its UTF-8.
    who = [{"who": b"a\xffb"}, {"who": b"a\xfeb"}, {"who": b"a%ED%B3%BFb"}, {"who": b"a\xc3\xbfb"}]
    async with http(app_with(throttle)) as client:
        first = [(await client.get("/", headers=headers)).status_code for headers in who]
        again = [(await client.get("/", headers=headers)).status_code for headers in who]
    assert first == [200] * len(who)
    assert again == [429] * len(who)


IDENTITIES = [
    "a:b",
    "a%3Ab",
    "a b",
    "a%20b",
    "a\nb",
    "a\rb",
    "{a}",
    "a}:{b",
    "{}",
    "",
    "ünïcødé 🚦",
    "a/b",
    "x" * 600,
    "x" * 601,
]


@pytest.mark.asyncio
async def test_any_identifier_gets_a_key_of_its_own(store: Store) -> None:
    async def from_query(connection: HTTPConnection) -> str:
        return connection.query_params["who"]

    throttle = HTTPThrottle("ids", "1/min", store=store, identifier=from_query)
    async with http(app_with(throttle)) as client:
        first = [(await client.get("/", params={"who": who})).status_code for who in IDENTITIES]
        again = [(await client.get("/", params={"who": who})).status_code for who in IDENTITIES]
    assert first == [200] * len(IDENTITIES)  # no two identities share a quota
    assert again == [429] * len(IDENTITIES)  # and each one's quota is kept


def test_keys_are_namespaced_by_uid_and_identity() -> None:
    first, second = HTTPThrottle("one", "1/s"), HTTPThrottle("two", "1/s")
    keys = {t.key_for(who) for t in (first, second) for who in IDENTITIES}
    assert len(keys) == 2 * len(IDENTITIES)
    for key in keys:
        assert not any(c in key for c in " \r\n"), key
        # The identity is the one hash tag: nothing inside it can open or close another.
        assert key.count("{") == 1 and key.count("}") == 1, key


def test_only_the_configured_forwarding_header_is_read() -> None:
    """A proxy that writes X-Forwarded-For passes a client's forged Forwarded through."""
    forged = {"X-Forwarded-For": "198.51.100.20", "Forwarded": "for=203.0.113.66"}
    request = request_from(PROXY, forged)
    assert get_remote_address(request, TRUSTED) == "198.51.100.20"
    assert get_remote_address(request, TRUSTED, "forwarded") == "203.0.113.66"
    with pytest.raises(ConfigurationError, match="x-forwarded-for"):
        get_remote_address(request, TRUSTED, "x-real-ip")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_sync_identifier_serves_as_well(store: Store) -> None:
    def from_header(connection: HTTPConnection) -> str:
        return connection.headers.get("x-api-key", "anonymous")

    throttle = HTTPThrottle("ids", "1/min", store=store, identifier=from_header)
    async with http(app_with(throttle)) as client:
        keys = [{"x-api-key": "a"}, {"x-api-key": "b"}, {"x-api-key": "a"}]
        assert await statuses(client, *keys) == [200, 200, 429]


@pytest.mark.asyncio
async def test_an_identifier_returning_none_is_a_clear_error(store: Store) -> None:
    """Silently keying everyone as "None" would give all clients one shared quota."""

    async def broken(connection: HTTPConnection) -> Any:
        return None

    throttle = HTTPThrottle("ids", "5/min", store=store, identifier=broken)
    with pytest.raises(ConfigurationError, match="returned None"):
        await throttle(request_from(PROXY, {}))


@pytest.mark.parametrize("header", ["x-forwarded-for", "forwarded"])
def test_hops_a_client_wrote_itself_are_never_parsed(
    header: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client behind a trusted proxy may send thousands of hops: they cost a split,
    not an address parse each (read from the right, the search stops at the client)."""
    written = ", ".join(f"198.51.100.{i % 250}" for i in range(5000))
    forged = written if header == "x-forwarded-for" else written.replace("198", "for=198")
    appended = (
        "192.0.2.7, 10.0.0.2" if header == "x-forwarded-for" else "for=192.0.2.7, for=10.0.0.2"
    )
    parsed: list[str] = []
    real = identifiers.ipaddress.ip_address

    def counted(address: str) -> Any:
        parsed.append(address)
        return real(address)

    monkeypatch.setattr(identifiers.ipaddress, "ip_address", counted)
    request = request_from(PROXY, {header: f"{forged}, {appended}"})
    assert get_remote_address(request, TRUSTED, header) == "192.0.2.7"  # type: ignore[arg-type]
    # The peer and the hops read from the right up to the client: none the client wrote.
    assert set(parsed) == {"10.0.0.1", "10.0.0.2", "192.0.2.7"}
