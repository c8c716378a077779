"""Rate-limit headers on every response a throttle checks: the IETF ``RateLimit`` /
``RateLimit-Policy`` fields, the classic ``X-RateLimit-*``, or both — exact values."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from hypothesis import given
from hypothesis import strategies as st

from ratescript.asgi import HTTPThrottle, MiddlewareThrottle, ThrottleGroup, ThrottleMiddleware
from ratescript.asgi import limit_headers as build
from ratescript.asgi.headers import HeaderStyle, merge_fields, one_limit_headers, put_headers
from ratescript.decision import Decision
from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate
from ratescript.stores.base import Store
from ratescript.stores.memory import InMemoryStore
from ratescript.strategies import SlidingWindowCounterStrategy, TokenBucketStrategy

from .helpers import http

NAMES = (
    "RateLimit",
    "RateLimit-Policy",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)


def limit_headers(response: httpx.Response) -> dict[str, str]:
    headers = response.headers
    return {name: headers[name] for name in NAMES if name in headers}


def app_with(dependency: HTTPThrottle | ThrottleGroup) -> FastAPI:
    app = FastAPI()

    @app.get("/", dependencies=[Depends(dependency)])
    async def index() -> dict[str, bool]:
        return {"ok": True}

    return app


IETF_ADMITTED = {"RateLimit-Policy": '"api";q=2;w=60', "RateLimit": '"api";r=1;t=59'}
IETF_REJECTED = {"RateLimit-Policy": '"api";q=2;w=60', "RateLimit": '"api";r=0;t=59'}
CLASSIC_ADMITTED = {
    "X-RateLimit-Limit": "2",
    "X-RateLimit-Remaining": "1",
    "X-RateLimit-Reset": "59",
}
CLASSIC_REJECTED = {
    "X-RateLimit-Limit": "2",
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-Reset": "59",
}
EXPECTED: dict[str, tuple[dict[str, str], dict[str, str], dict[str, str]]] = {
    # style: (first admitted, second admitted, rejected)
    "ietf": (
        IETF_ADMITTED,
        {**IETF_ADMITTED, "RateLimit": '"api";r=0;t=59'},
        IETF_REJECTED,
    ),
    "classic": (
        CLASSIC_ADMITTED,
        {**CLASSIC_ADMITTED, "X-RateLimit-Remaining": "0"},
        CLASSIC_REJECTED,
    ),
    "all": (
        {**IETF_ADMITTED, **CLASSIC_ADMITTED},
        {**IETF_ADMITTED, "RateLimit": '"api";r=0;t=59', **CLASSIC_REJECTED},
        {**IETF_REJECTED, **CLASSIC_REJECTED},
    ),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("style", ["ietf", "classic", "all"])
async def test_each_style_on_admitted_and_rejected_responses(
    store: Store, now: list[float], style: HeaderStyle
) -> None:
    throttle = HTTPThrottle("api", "2/min", store=store, rate_limit_headers=style)
    now[0] += 1000  # 59 s left in the minute
    async with http(app_with(throttle)) as client:
        responses = [await client.get("/") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [limit_headers(r) for r in responses] == list(EXPECTED[style])
    assert responses[2].headers["Retry-After"] == "59"


@pytest.mark.asyncio
async def test_reset_rounds_up_to_whole_seconds(store: Store, now: list[float]) -> None:
    throttle = HTTPThrottle("api", "2/min", store=store, rate_limit_headers="ietf")
    now[0] += 1500  # 58.5 s left
    async with http(app_with(throttle)) as client:
        response = await client.get("/")
    assert response.headers["RateLimit"] == '"api";r=1;t=59'


@pytest.mark.asyncio
async def test_without_a_style_no_header_is_sent(store: Store) -> None:
    throttle = HTTPThrottle("api", "1/min", store=store)
    async with http(app_with(throttle)) as client:
        responses = [await client.get("/") for _ in range(2)]
    assert [limit_headers(r) for r in responses] == [{}, {}]
    assert responses[1].headers["Retry-After"] == "60"


@pytest.mark.asyncio
async def test_several_throttles_are_all_listed(store: Store) -> None:
    burst = HTTPThrottle("burst", "1/s", store=store, rate_limit_headers="all")
    daily = HTTPThrottle("daily", "5/day", store=store, rate_limit_headers="all")
    quiet = HTTPThrottle("quiet", "9/s", store=store)  # asks for no headers
    async with http(app_with(ThrottleGroup(burst, daily, quiet))) as client:
        admitted, rejected = await client.get("/"), await client.get("/")
    assert limit_headers(admitted) == {
        "RateLimit-Policy": '"burst";q=1;w=1, "daily";q=5;w=86400',
        "RateLimit": '"burst";r=0;t=1, "daily";r=4;t=86400',
        # The classic fields name the limit with the fewest hits left.
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1",
    }
    assert rejected.status_code == 429
    # "daily" was not charged by the rejected hit: it still has 4 left.
    assert limit_headers(rejected) == limit_headers(admitted)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("options", "admitted", "retry_after"),
    [
        # The window ends in 1 s; the previous window's weight keeps the limit for 6 s.
        ({"strategy": SlidingWindowCounterStrategy()}, [], "6"),
        # A token is back in 1 s; the bucket is full in 6 s.
        ({"strategy": TokenBucketStrategy()}, [200], "1"),
        ({"min_wait_period": 30_000}, [], "30"),  # told 30 s where the window ends in 1 s
    ],
    ids=["sliding-window-counter", "token-bucket", "min-wait-period"],
)
async def test_on_a_429_the_reset_is_the_retry_after(
    store: Store, now: list[float], options: dict[str, Any], admitted: list[int], retry_after: str
) -> None:
    """draft-ietf-httpapi-ratelimit-headers: with Retry-After, the reset names the same instant."""
    throttle = HTTPThrottle("api", "2/10s", store=store, rate_limit_headers="all", **options)
    async with http(app_with(throttle)) as client:
        assert [(await client.get("/")).status_code for _ in range(3)] == [200, 200, 429]
        now[0] += 9000
        assert [(await client.get("/")).status_code for _ in admitted] == admitted
        rejected = await client.get("/")
    assert rejected.status_code == 429
    assert rejected.headers["Retry-After"] == retry_after
    assert rejected.headers["RateLimit"] == f'"api";r=0;t={retry_after}'
    assert rejected.headers["X-RateLimit-Reset"] == retry_after


def test_on_a_rejection_the_classic_fields_name_a_limit_that_rejected() -> None:
    rate = Rate(5, seconds=10)
    spent = Decision(True, 0.0, 0.0, 4000.0)  # admitted, though nothing is left after it
    refused = Decision(False, 9000.0, 2.0, 9000.0)  # a strategy may refuse with some left
    headers = build("classic", [("spent", rate, spent), ("refused", rate, refused)])
    assert headers["X-RateLimit-Reset"] == "9"
    assert (
        build("classic", [("spent", rate, spent), ("more", rate, spent._replace(remaining=3))])[
            "X-RateLimit-Reset"
        ]
        == "4"
    )


@pytest.mark.asyncio
async def test_a_direct_call_sets_headers_on_the_response_it_is_given(store: Store) -> None:
    throttle = HTTPThrottle("api", "2/min", store=store, rate_limit_headers="ietf")
    app = FastAPI()

    @app.get("/")
    async def index(request: Request, response: Response) -> None:
        await throttle(request, response=response)

    async with http(app) as client:
        response = await client.get("/")
    assert response.headers["RateLimit"] == '"api";r=1;t=60'


@pytest.mark.asyncio
async def test_the_middleware_adds_headers_to_the_apps_response(store: Store) -> None:
    throttle = HTTPThrottle("mw", "2/min", store=store, rate_limit_headers="ietf")
    app = FastAPI()

    @app.get("/api/items")
    async def items(response: Response) -> str:
        response.headers["X-Own"] = "kept"
        return "items"

    app.add_middleware(
        ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle, path="/api/")]
    )
    async with http(app) as client:
        responses = [await client.get("/api/items") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert [r.headers["RateLimit"] for r in responses] == [
        '"mw";r=1;t=60',
        '"mw";r=0;t=60',
        '"mw";r=0;t=60',
    ]
    assert responses[0].headers["X-Own"] == "kept"
    assert responses[0].headers["RateLimit-Policy"] == '"mw";q=2;w=60'


@pytest.mark.asyncio
async def test_the_middleware_merges_the_rate_limit_fields_the_app_set(store: Store) -> None:
    throttle = HTTPThrottle("mw", "2/min", store=store, rate_limit_headers="all")
    app = FastAPI()

    @app.get("/api/items")
    async def items() -> Response:
        own = {"RateLimit": '"own";r=0;t=5', "X-RateLimit-Remaining": "0", "X-Own": "kept"}
        return Response("items", headers=own)

    app.add_middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle)])
    async with http(app) as client:
        response = await client.get("/api/items")
    # One field, both limits listed; a second X-RateLimit-Remaining would make the field
    # unreadable, and the app's is not a whole set (no limit, no reset): replaced.
    assert response.headers.get_list("RateLimit") == ['"own";r=0;t=5, "mw";r=1;t=60']
    assert response.headers.get_list("X-RateLimit-Remaining") == ["1"]
    assert response.headers["X-Own"] == "kept"


def two_dependencies_app(first: HTTPThrottle, second: HTTPThrottle) -> FastAPI:
    app = FastAPI()

    @app.get("/", dependencies=[Depends(first), Depends(second)])
    async def index() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.mark.asyncio
async def test_separate_checks_of_one_request_are_all_listed(store: Store) -> None:
    """Two ``Depends`` each set the fields: the second adds its limit, replacing nothing."""
    burst = HTTPThrottle("burst", "2/s", store=store, rate_limit_headers="all")
    daily = HTTPThrottle("daily", "5/day", store=store, rate_limit_headers="all")
    async with http(two_dependencies_app(daily, burst)) as client:
        first, second, rejected = [await client.get("/") for _ in range(3)]
    assert limit_headers(first) == {
        "RateLimit-Policy": '"daily";q=5;w=86400, "burst";q=2;w=1',
        "RateLimit": '"daily";r=4;t=86400, "burst";r=1;t=1',
        "X-RateLimit-Limit": "2",  # the limit with the fewest hits left
        "X-RateLimit-Remaining": "1",
        "X-RateLimit-Reset": "1",
    }
    assert limit_headers(second)["RateLimit"] == '"daily";r=3;t=86400, "burst";r=0;t=1'
    assert limit_headers(second)["X-RateLimit-Limit"] == "2"
    # "daily" admitted the third hit and was charged before "burst" rejected it: the 429
    # lists both, and the classic fields name the limit that rejected.
    assert rejected.status_code == 429
    assert limit_headers(rejected) == {
        "RateLimit-Policy": '"burst";q=2;w=1, "daily";q=5;w=86400',
        "RateLimit": '"burst";r=0;t=1, "daily";r=2;t=86400',
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1",
    }


@pytest.mark.asyncio
async def test_a_middleware_rule_and_a_routes_throttle_are_both_listed(store: Store) -> None:
    site = HTTPThrottle("site", "10/min", store=store, rate_limit_headers="all")
    route = HTTPThrottle("route", "1/min", store=store, rate_limit_headers="all")
    app = FastAPI()

    @app.get("/", dependencies=[Depends(route)])
    async def index() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(site)])
    async with http(app) as client:
        admitted, rejected = await client.get("/"), await client.get("/")
    assert admitted.headers.get_list("RateLimit") == ['"route";r=0;t=60, "site";r=9;t=60']
    assert admitted.headers.get_list("X-RateLimit-Limit") == ["1"]
    assert rejected.status_code == 429
    assert rejected.headers.get_list("RateLimit") == ['"route";r=0;t=60, "site";r=8;t=60']
    # The site limit has more left, but the response is the route's rejection.
    assert rejected.headers.get_list("X-RateLimit-Limit") == ["1"]
    assert rejected.headers.get_list("X-RateLimit-Remaining") == ["0"]


@pytest.mark.asyncio
async def test_a_group_on_two_stores_lists_the_limits_of_both(
    store: Store, now: list[float]
) -> None:
    other = InMemoryStore(clock=lambda: now[0])
    here = HTTPThrottle("here", "3/min", store=store, rate_limit_headers="ietf")
    there = HTTPThrottle("there", "4/min", store=other, rate_limit_headers="ietf")
    async with http(app_with(ThrottleGroup(here, there))) as client:
        response = await client.get("/")
    assert limit_headers(response) == {
        "RateLimit-Policy": '"here";q=3;w=60, "there";q=4;w=60',
        "RateLimit": '"here";r=2;t=60, "there";r=3;t=60',
    }


def classic(limit: int, remaining: int, reset: int) -> list[tuple[str, str]]:
    """A whole set of classic fields, as a list of fields."""
    names = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
    return list(zip(names, map(str, (limit, remaining, reset)), strict=True))


@pytest.mark.parametrize(
    ("existing", "added", "merged"),
    [
        # A name with a comma and a semicolon in it is one member.
        (
            [("RateLimit", '"a, b;c";r=1;t=2')],
            {"RateLimit": '"d";r=3;t=4'},
            [("RateLimit", '"a, b;c";r=1;t=2, "d";r=3;t=4')],
        ),
        # The same limit checked again: its latest member replaces the old one.
        (
            [("ratelimit", '"a";r=5;t=9, "b";r=1;t=2'), ("ratelimit", '"c";r=0;t=1')],
            {"RateLimit": '"a";r=4;t=9'},
            [("RateLimit", '"b";r=1;t=2, "c";r=0;t=1, "a";r=4;t=9')],
        ),
        # Classic: the set with fewer hits left stays, as a whole.
        (
            classic(5, 1, 7),
            dict(classic(9, 4, 2)),
            classic(5, 1, 7),
        ),
        (
            classic(5, 4, 7),
            dict(classic(9, 4, 2)),
            classic(9, 4, 2),
        ),
        # Fields about something else are replaced, as `update` does.
        ([("ETag", "x"), ("Vary", "y")], {"etag": "z"}, [("Vary", "y"), ("etag", "z")]),
    ],
    ids=["quoted-names", "same-limit", "fewer-left-stays", "tie-takes-the-latest", "others"],
)
def test_merge_fields(
    existing: list[tuple[str, str]], added: dict[str, str], merged: list[tuple[str, str]]
) -> None:
    assert merge_fields(existing, added) == merged


def test_merge_fields_keeps_the_classic_set_of_a_rejection() -> None:
    rejection = classic(5, 2, 7)  # a strategy may reject with hits left (test above)
    fewer = dict(classic(9, 0, 1))
    assert merge_fields(rejection, fewer, rejected=True) == rejection
    assert merge_fields(rejection, fewer) == list(fewer.items())


def test_names_are_structured_field_strings() -> None:
    # A uid with a quote, a backslash and non-ASCII is escaped, never sent raw.
    admitted = Decision(True, 0.0, 3.0, 1500.0)
    headers = build("ietf", [('a"b\\c·', Rate(5, seconds=2), admitted)])
    assert headers == {
        "RateLimit-Policy": '"a\\"b\\\\c?";q=5;w=2',
        "RateLimit": '"a\\"b\\\\c?";r=3;t=2',
    }


@pytest.mark.parametrize(
    ("rate", "policy"),
    [
        ("1/500ms", "q=2;w=1"),
        ("1000/500ms", "q=2000;w=1"),
        ("1/700ms", "q=1;w=1"),  # 1.43 a second: rounded down, never more than the rate
        ("3/1500ms", "q=4;w=2"),
        ("3/100ms", "q=30;w=1"),
        ("5/2s", "q=5;w=2"),  # whole seconds: as written
        ("0/0", "q=0;w=1"),
    ],
)
def test_a_window_of_no_whole_seconds_scales_the_quota_to_one(rate: str, policy: str) -> None:
    """The draft counts windows in whole seconds; ``1/500ms`` as ``q=1;w=1`` is half the rate."""
    decision = Decision(True, 0.0, 0.0, 100.0)
    headers = build("ietf", [("api", Rate.from_value(rate), decision)])
    assert headers["RateLimit-Policy"] == f'"api";{policy}'


def test_an_unknown_style_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="rate_limit_headers"):
        HTTPThrottle("api", "1/s", rate_limit_headers="draft-7")  # type: ignore[arg-type]


# --- the helpers a throttle's fast path uses: the same headers as the general ones ------

STYLES: tuple[HeaderStyle, ...] = ("ietf", "classic", "all")
decisions = st.builds(
    Decision,
    st.booleans(),
    st.floats(0, 1e9),
    st.one_of(st.floats(-10, 1e9), st.just(math.inf)),
    st.floats(0, 1e10),
)
rates = st.builds(
    Rate, st.integers(1, 10**9), milliseconds=st.floats(1, 1e9, allow_subnormal=False)
)


@given(st.sampled_from(STYLES), st.text(min_size=1), rates, decisions)
def test_one_limits_headers_are_the_general_ones(
    style: HeaderStyle, name: str, rate: Rate, decision: Decision
) -> None:
    assert one_limit_headers(style, name, rate)(decision) == build(style, [(name, rate, decision)])


header_names = st.sampled_from(["RateLimit", "ratelimit", "X-RateLimit-Reset", "X-Own", "ETag"])
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8)
RATE_LIMIT_NAMES = {name.lower() for name in NAMES}


@given(
    st.lists(st.tuples(header_names, header_values), max_size=6),
    st.dictionaries(header_names, header_values, max_size=3),
)
def test_put_headers_sets_what_update_sets_and_merges_rate_limit_fields(
    before: list[tuple[str, str]], added: dict[str, str]
) -> None:
    # Starlette's update and put_headers may order fields of different names differently;
    # each name's values, in order, must be the same — but for the rate-limit fields,
    # which are merged as `merge_fields` merges them.
    by_update, by_put = Response(), Response()
    for response in (by_update, by_put):
        for name, value in before:
            response.headers.append(name, value)
    by_update.headers.update(added)
    put_headers(by_put, added)
    expected: dict[str, list[str]] = {}
    for name, value in merge_fields(before, added):
        if name.lower() in RATE_LIMIT_NAMES:
            expected.setdefault(name.lower(), []).append(value)

    def fields(response: Response, rate_limit: bool) -> dict[str, list[str]]:
        return {
            name: response.headers.getlist(name)
            for name in response.headers
            if (name in RATE_LIMIT_NAMES) == rate_limit
        }

    assert fields(by_put, rate_limit=False) == fields(by_update, rate_limit=False)
    assert fields(by_put, rate_limit=True) == expected
