"""Tests for ``ratescript.rates``: the rate string grammar and the ``Rate`` value."""

from __future__ import annotations

import copy
import math
import pickle
from fractions import Fraction

import pytest

from ratescript.exceptions import ConfigurationError
from ratescript.rates import Rate

# (text, limit, expire in milliseconds)
ACCEPTED: list[tuple[str, int, int | float]] = [
    ("5/m", 5, 60_000),
    ("2/5s", 2, 5_000),
    ("10/30 seconds", 10, 30_000),
    ("2 per second", 2, 1_000),
    ("2 persecond", 2, 1_000),
    ("1000/500ms", 1000, 500),
    ("20 per 2 mins", 20, 120_000),
    ("100/minute", 100, 60_000),
    ("5/10seconds", 5, 10_000),
    ("3/1.5s", 3, 1_500),
    ("1/.5s", 1, 500),
    ("1/0.25ms", 1, 0.25),
    ("7/1millisecond", 7, 1),
    ("7/3milliseconds", 7, 3),
    ("1/sec", 1, 1_000),
    ("1/2secs", 1, 2_000),
    ("1/2min", 1, 120_000),
    ("1/minutes", 1, 60_000),
    ("1/h", 1, 3_600_000),
    ("1/2hr", 1, 7_200_000),
    ("1/2hrs", 1, 7_200_000),
    ("1/hour", 1, 3_600_000),
    ("1/3 hours", 1, 10_800_000),
    ("1/d", 1, 86_400_000),
    ("1/day", 1, 86_400_000),
    ("1/7days", 1, 604_800_000),
    ("100/MINUTE", 100, 60_000),
    ("2 Per Second", 2, 1_000),
    ("  5/m\t\n", 5, 60_000),
    ("5 / 10 s", 5, 10_000),
    ("2per second", 2, 1_000),
    ("05/m", 5, 60_000),
]

UNLIMITED_TEXTS = ["0/0", "0/0s", "0/m", "0 per 5 minutes", "0/0.0", "unlimited", " Unlimited "]

# (text, what the message must also say)
REJECTED: list[tuple[str, str]] = [
    ("1.5/s", "whole-number"),
    ("", "whole-number"),
    ("   ", "whole-number"),
    ("abc", "whole-number"),
    ("100", "whole-number"),
    ("100 minute", "whole-number"),
    ("/s", "whole-number"),
    ("-1/s", "whole-number"),
    ("5/-1s", "whole-number"),
    ("5/10x", "whole-number"),
    ("5/10 fortnights", "whole-number"),
    ("5/1e3s", "whole-number"),
    ("5/1.s", "whole-number"),
    ("5//s", "whole-number"),
    ("5/s/s", "whole-number"),
    ("5/", "no period or unit"),
    ("5 per", "no period or unit"),
    ("0/5", "has no unit"),
    ("5/10", "has no unit"),
    ("5/0s", "greater than zero"),
    ("5/0", "greater than zero"),
    ("5/0.0m", "greater than zero"),
    ("٣/s", "whole-number"),
]


@pytest.mark.parametrize(("text", "limit", "expire"), ACCEPTED, ids=[t for t, _, _ in ACCEPTED])
def test_parse_accepts(text: str, limit: int, expire: int | float) -> None:
    rate = Rate.parse(text)
    assert rate.limit == limit
    assert rate.expire == expire
    assert type(rate.expire) is type(expire)
    assert not rate.unlimited


@pytest.mark.parametrize("text", UNLIMITED_TEXTS)
def test_parse_unlimited(text: str) -> None:
    rate = Rate.parse(text)
    assert rate.limit == 0
    assert rate.unlimited


@pytest.mark.parametrize(("text", "problem"), REJECTED, ids=[t or "<empty>" for t, _ in REJECTED])
def test_parse_rejects_with_quoted_input_and_example(text: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Rate.parse(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "'100/minute'" in message
    assert problem in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1" + "0" * 400 + "/s", "limit must be at most 2**53"),
        (f"{2**53 + 1}/h", "limit must be at most 2**53"),
        ("1/" + "9" * 400 + "d", "period is too long"),
        ("1/" + "9" * 310 + "ms", "period is too long"),
        ("5/0." + "0" * 400 + "1ms", "period is too short"),
    ],
    ids=["huge-limit", "limit-2**53+1", "huge-period", "period-overflows", "tiny-period"],
)
def test_parse_rejects_what_a_double_cannot_hold(text: str, problem: str) -> None:
    """A limit or period a double cannot hold would fail every hit (OverflowError), and
    a period that rounds to 0 would make a limited rate unlimited: rejected at parse."""
    with pytest.raises(ConfigurationError) as caught:
        Rate.parse(text)
    assert problem in str(caught.value) and "'100/minute'" in str(caught.value)
    assert len(str(caught.value)) < len(text) + 400  # the huge numbers are shortened


def test_the_largest_exact_limit_and_the_smallest_period_are_accepted() -> None:
    assert Rate.parse(f"{2**53}/s").limit == 2**53
    assert Rate.parse("1/0.000001ms").expire == 1e-6
    assert Rate(1, milliseconds=5e-324).expire == 5e-324


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"1\.5/s"):
        Rate.parse("1.5/s")


def test_parse_rejects_non_string() -> None:
    with pytest.raises(ConfigurationError, match="'100/minute'"):
        Rate.parse(100)  # type: ignore[arg-type]


def test_parse_fails_fast_on_long_garbage() -> None:
    # Guards the regex against catastrophic backtracking; a slow regex would hang here.
    with pytest.raises(ConfigurationError):
        Rate.parse("5/" + " " * 20_000 + "x")
    with pytest.raises(ConfigurationError):
        Rate.parse("1" * 20_000 + "/" + "1" * 20_000 + ".1" * 10)


def test_parsed_and_constructed_rates_are_equal() -> None:
    assert Rate.parse("100/minute") == Rate(100, minutes=1)
    assert Rate.parse("100/60s") == Rate(100, seconds=60)
    assert Rate.parse("1000/500ms") == Rate(1000, milliseconds=500)
    assert Rate.parse("5/1d") == Rate(5, hours=24)


def test_constructor_adds_up_every_unit() -> None:
    rate = Rate(100, milliseconds=1, seconds=2, minutes=3, hours=4, days=5)
    assert rate.expire == 1 + 2_000 + 180_000 + 14_400_000 + 432_000_000
    assert Rate(limit=100, minutes=5, seconds=30).expire == 330_000


def test_constructor_accepts_positional_periods() -> None:
    assert Rate(3, 500, 1).expire == 1_500


def test_expire_is_an_int_when_whole() -> None:
    rate = Rate(10, seconds=1.5)
    assert rate.expire == 1_500
    assert isinstance(rate.expire, int)
    assert isinstance(Rate(10.0, minutes=2.0).expire, int)


def test_expire_keeps_a_fraction_of_a_millisecond() -> None:
    rate = Rate(1, milliseconds=0.5)
    assert rate.expire == 0.5
    assert isinstance(rate.expire, float)


def test_decimal_fractions_are_exact() -> None:
    # 0.1 s is 100 ms exactly, not 100.00000000000001 from binary floating point.
    assert Rate(1, seconds=0.1).expire == 100
    assert Rate(1, seconds=1.1).expire == 1_100
    assert Rate(1, minutes=0.7).expire == 42_000
    assert Rate.parse("1/4.35s").expire == 4_350


def test_whole_float_limit_becomes_int() -> None:
    rate = Rate(5.0, seconds=1)
    assert rate.limit == 5
    assert isinstance(rate.limit, int)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"limit": -1, "seconds": 1}, "limit must be >= 0"),
        ({"limit": 1.5, "seconds": 1}, "limit must be a whole number"),
        ({"limit": math.nan, "seconds": 1}, "limit must be finite"),
        ({"limit": math.inf, "seconds": 1}, "limit must be finite"),
        ({"limit": True, "seconds": 1}, "limit must be a number"),
        ({"limit": "5/m"}, "Rate.parse()"),
        ({"limit": 1, "milliseconds": -1}, "milliseconds must be >= 0"),
        ({"limit": 1, "seconds": -0.5}, "seconds must be >= 0"),
        ({"limit": 1, "minutes": math.inf}, "minutes must be finite"),
        ({"limit": 1, "hours": math.nan}, "hours must be finite"),
        ({"limit": 1, "days": -math.inf}, "days must be finite"),
        ({"limit": 1, "days": None}, "days must be a number"),
        ({"limit": 10**400, "seconds": 1}, "limit must be at most 2**53"),
        ({"limit": 1, "days": 10**400}, "period is too long"),
        ({"limit": 1, "milliseconds": Fraction(1, 10**400)}, "milliseconds rounds to 0"),
    ],
)
def test_constructor_rejects(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Rate(**kwargs)  # type: ignore[arg-type]
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    "rate", [Rate(0), Rate(5), Rate(0, seconds=10), Rate.parse("0/0")], ids=repr
)
def test_unlimited_rates(rate: Rate) -> None:
    assert rate.unlimited
    assert rate.rps == math.inf
    assert rate.rpm == math.inf
    assert rate.rph == math.inf
    assert rate.rpd == math.inf
    assert str(rate) == "unlimited"
    assert Rate.parse(str(rate)).unlimited


def test_per_unit_rates() -> None:
    rate = Rate(120, minutes=1)
    assert rate.rps == 2.0
    assert rate.rpm == 120.0
    assert rate.rph == 7_200.0
    assert rate.rpd == 172_800.0
    assert Rate.parse("1000/500ms").rps == 2_000.0
    assert isinstance(Rate(1, seconds=1).rps, float)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (Rate(1, milliseconds=1), True),
        (Rate(1, milliseconds=999), True),
        (Rate(1, milliseconds=0.5), True),
        (Rate(1, seconds=1), False),
        (Rate(1, minutes=1), False),
        (Rate(1), False),
        (Rate(0), False),
    ],
    ids=repr,
)
def test_is_subsecond(rate: Rate, expected: bool) -> None:
    assert rate.is_subsecond is expected


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (Rate(100, minutes=1), "100/60s"),
        (Rate(5, seconds=1), "5/1s"),
        (Rate(1000, milliseconds=500), "1000/500ms"),
        (Rate(3, seconds=1.5), "3/1500ms"),
        (Rate(1, milliseconds=0.25), "1/0.25ms"),
        (Rate(1, milliseconds=0.00001), "1/0.00001ms"),
        (Rate(2, days=1), "2/86400s"),
    ],
    ids=repr,
)
def test_str_is_canonical_and_parses_back(rate: Rate, text: str) -> None:
    assert str(rate) == text
    assert Rate.parse(text) == rate


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (Rate(100, minutes=1), "Rate(100, minutes=1)"),
        (Rate(2, hours=48), "Rate(2, days=2)"),
        (Rate(2, minutes=90), "Rate(2, minutes=90)"),
        (Rate(3, seconds=1.5), "Rate(3, milliseconds=1500)"),
        (Rate(1, milliseconds=0.25), "Rate(1, milliseconds=0.25)"),
        (Rate(0), "Rate(0)"),
    ],
    ids=str,
)
def test_repr_rebuilds_an_equal_rate(rate: Rate, text: str) -> None:
    assert repr(rate) == text
    assert eval(text, {"Rate": Rate}) == rate


def test_equality_and_hash_follow_limit_and_period() -> None:
    assert Rate(10, seconds=60) == Rate(10, minutes=1)
    assert hash(Rate(10, seconds=60)) == hash(Rate(10, minutes=1))
    assert Rate(10, seconds=1.5) == Rate(10, milliseconds=1500)
    assert Rate(10, seconds=1) != Rate(11, seconds=1)
    assert Rate(10, seconds=1) != Rate(10, seconds=2)
    assert Rate(10, seconds=1) != "10/1s"
    distinct = {Rate.parse("5/m"), Rate(5, minutes=1), Rate(5, seconds=60), Rate(6, minutes=1)}
    assert len(distinct) == 2


def test_rate_is_immutable() -> None:
    rate = Rate(5, seconds=1)
    with pytest.raises(AttributeError):
        rate.limit = 6  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rate._limit = 6
    with pytest.raises(AttributeError):
        del rate._expire
    with pytest.raises(AttributeError):
        rate.extra = 1  # type: ignore[attr-defined]
    assert rate == Rate(5, seconds=1)


@pytest.mark.parametrize(
    "rate", [Rate(5, seconds=1), Rate(1, milliseconds=0.25), Rate(0)], ids=repr
)
def test_pickle_and_copy_round_trip(rate: Rate) -> None:
    assert pickle.loads(pickle.dumps(rate)) == rate
    assert copy.copy(rate) == rate
    assert copy.deepcopy(rate) == rate


def test_from_value_passes_rates_through_and_parses_strings() -> None:
    rate = Rate(5, seconds=1)
    assert Rate.from_value(rate) is rate
    assert Rate.from_value("5/s") == rate
    with pytest.raises(ConfigurationError, match="'100/minute'"):
        Rate.from_value("five a second")


def test_from_value_rejects_other_types() -> None:
    with pytest.raises(ConfigurationError, match="expected a Rate or a rate string"):
        Rate.from_value(5)  # type: ignore[arg-type]
