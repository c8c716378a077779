"""The Lua runner answers like a real Redis 7.0 server, reply for reply, error for error.

Every snippet in ``CASES`` runs on ``LuaRedisEmulator`` and, through redis-py
(``decode_responses=False``, over RESP2 and over RESP3, redis-py 8's default), on a
real redis-server; the replies must be equal. When
Redis answers with an error, its exact text is read again over a bare socket, because
redis-py strips known codes like ``ERR`` from the message, and the emulator's
``LuaReplyError.message`` must equal it (the SHA in it is the same: same source).

Real time passes on the real server, so the few TTL readings are compared with a
tolerance there, while the emulator runs on a clock the test controls.
"""

from __future__ import annotations

import socket
import struct
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from redis._parsers.base import BaseParser

from ratescript.conformance.luarunner import (
    LuaRedisEmulator,
    LuaReplyError,
    NoScriptError,
)

CLOCK_MS = 1_700_000_000_123.456
RUN = uuid.uuid4().hex[:8]  # keeps this run's keys apart on a shared server


@dataclass(frozen=True)
class Case:
    """A snippet; ``within_ms`` lets real-server integers be that much lower (TTLs)."""

    lua: str
    args: tuple[bytes, ...] = ()
    within_ms: int = 0


CASES: dict[str, Case] = {
    # String ranges: how a stored log is read and written in place
    "strlen-miss-and-hit": Case(
        "local a = redis.call('STRLEN', KEYS[1]) redis.call('SET', KEYS[1], 'hello')"
        " return {a, redis.call('STRLEN', KEYS[1])}"
    ),
    "getrange-positions": Case(
        "redis.call('SET', KEYS[1], 'abcdefgh') local r = {}"
        " for _, p in ipairs({{0, 3}, {2, -1}, {-3, -1}, {5, 100}, {4, 2}, {-100, 1},"
        " {-1, -3}, {8, 9}, {0, -100}}) do"
        "   r[#r + 1] = redis.call('GETRANGE', KEYS[1], p[1], p[2]) end"
        " r[#r + 1] = redis.call('GETRANGE', KEYS[2], 0, 10) return r"
    ),
    "getrange-not-an-integer": Case("return redis.call('GETRANGE', KEYS[1], 'x', 1)"),
    "setrange-overwrites-pads-and-keeps-ttl": Case(
        "redis.call('SET', KEYS[1], 'abcdef', 'PX', 100000)"
        " local a = redis.call('SETRANGE', KEYS[1], 2, 'XY')"
        " local b = redis.call('SETRANGE', KEYS[1], 9, 'Z')"
        " local c = redis.call('SETRANGE', KEYS[2], 3, 'Q')"
        " local d = redis.call('SETRANGE', KEYS[3], 3, '')"
        " return {a, b, c, d, redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]),"
        " redis.call('EXISTS', KEYS[3]), redis.call('PTTL', KEYS[1]) > 0 and 1 or 0}"
    ),
    "setrange-negative-offset": Case("return redis.call('SETRANGE', KEYS[1], -1, 'x')"),
    "append-creates-and-extends": Case(
        "local a = redis.call('APPEND', KEYS[1], 'ab')"
        " local b = redis.call('APPEND', KEYS[1], struct.pack('<d', 1.5))"
        " return {a, b, redis.call('GET', KEYS[1])}"
    ),
    # GET / SET and its options
    "get-miss-is-nil": Case("return redis.call('GET', KEYS[1])"),
    "get-miss-is-false": Case("return redis.call('GET', KEYS[1]) == false"),
    "set-replies-ok": Case("return redis.call('SET', KEYS[1], 'v')"),
    "set-reply-is-ok-table": Case(
        "local r = redis.call('SET', KEYS[1], 'v') return {type(r), r.ok}"
    ),
    "set-then-get": Case("redis.call('SET', KEYS[1], 'v') return redis.call('GET', KEYS[1])"),
    "set-lowercase-command": Case("return redis.call('set', KEYS[1], 'v')"),
    "set-mixed-case-command": Case("return redis.call('SeT', KEYS[1], 'v')"),
    "set-nx": Case(
        "return {redis.call('SET', KEYS[1], 'a', 'NX'), redis.call('SET', KEYS[1], 'b', 'nx'),"
        " redis.call('GET', KEYS[1])}"
    ),
    "set-xx": Case(
        "return {redis.call('SET', KEYS[1], 'a', 'XX'), redis.call('SET', KEYS[1], 'b'),"
        " redis.call('SET', KEYS[1], 'c', 'xx'), redis.call('GET', KEYS[1])}"
    ),
    "set-get": Case(
        "return {redis.call('SET', KEYS[1], 'a', 'GET'), redis.call('SET', KEYS[1], 'b', 'GET'),"
        " redis.call('SET', KEYS[1], 'c', 'NX', 'GET'), redis.call('GET', KEYS[1])}"
    ),
    "set-xx-get-missing": Case(
        "return {redis.call('SET', KEYS[1], 'a', 'XX', 'GET'), redis.call('EXISTS', KEYS[1])}"
    ),
    "set-keepttl": Case(
        "redis.call('SET', KEYS[1], 'a', 'PX', 100000)"
        " redis.call('SET', KEYS[1], 'b', 'KEEPTTL')"
        " local kept = redis.call('PTTL', KEYS[1])"
        " redis.call('SET', KEYS[1], 'c')"
        " return {kept > 0 and kept <= 100000, redis.call('PTTL', KEYS[1]),"
        " redis.call('GET', KEYS[1])}"
    ),
    "set-ex-ttl": Case(
        "redis.call('SET', KEYS[1], 'a', 'EX', 100) return redis.call('TTL', KEYS[1])"
    ),
    "set-px-pttl": Case(
        "redis.call('SET', KEYS[1], 'a', 'PX', 100000) return redis.call('PTTL', KEYS[1])",
        within_ms=100,
    ),
    "set-px-number-arg": Case(
        "redis.call('SET', KEYS[1], 'a', 'PX', 100000.0) return redis.call('PTTL', KEYS[1])",
        within_ms=100,
    ),
    "set-repeated-px": Case(
        "redis.call('SET', KEYS[1], 'a', 'PX', 5, 'PX', 100000) return redis.call('PTTL', KEYS[1])",
        within_ms=100,
    ),
    "set-pxat-from-time": Case(
        "local t = redis.call('TIME')"
        " local now = t[1] * 1000 + math.floor(t[2] / 1000)"
        " redis.call('SET', KEYS[1], 'a', 'PXAT', now + 100000)"
        " return redis.call('PTTL', KEYS[1])",
        within_ms=100,
    ),
    "set-exat-in-the-past": Case(
        "redis.call('SET', KEYS[1], 'a', 'EXAT', 1)"
        " return {redis.call('GET', KEYS[1]), redis.call('EXISTS', KEYS[1])}"
    ),
    "set-px-zero": Case("return redis.call('SET', KEYS[1], 'v', 'PX', 0)"),
    "set-px-negative": Case("return redis.call('SET', KEYS[1], 'v', 'PX', -1)"),
    "set-ex-zero": Case("return redis.call('SET', KEYS[1], 'v', 'EX', 0)"),
    "set-px-not-integer": Case("return redis.call('SET', KEYS[1], 'v', 'PX', 'abc')"),
    "set-px-fraction": Case("return redis.call('SET', KEYS[1], 'v', 'PX', 1.5)"),
    "set-px-leading-plus": Case("return redis.call('SET', KEYS[1], 'v', 'PX', '+5')"),
    "set-px-out-of-range": Case(
        "return redis.call('SET', KEYS[1], 'v', 'PX', '9223372036854775808')"
    ),
    "set-px-overflows-with-now": Case(
        "return redis.call('SET', KEYS[1], 'v', 'PX', '9223372036854775807')"
    ),
    "set-ex-overflows-ms": Case("return redis.call('SET', KEYS[1], 'v', 'EX', '9223372036854776')"),
    "set-ex-overflows-with-now": Case(
        "return redis.call('SET', KEYS[1], 'v', 'EX', '9223372036854775')"
    ),
    "set-pxat-huge": Case(
        "redis.call('SET', KEYS[1], 'v', 'PXAT', '9223372036854775807')"
        " return redis.call('PTTL', KEYS[1]) > 0"
    ),
    "set-unknown-option": Case("return redis.call('SET', KEYS[1], 'v', 'bogus')"),
    "set-nx-and-xx": Case("return redis.call('SET', KEYS[1], 'v', 'NX', 'XX')"),
    "set-px-and-ex": Case("return redis.call('SET', KEYS[1], 'v', 'PX', 10, 'EX', 10)"),
    "set-px-and-keepttl": Case("return redis.call('SET', KEYS[1], 'v', 'PX', 10, 'KEEPTTL')"),
    "set-ex-without-value": Case("return redis.call('SET', KEYS[1], 'v', 'EX')"),
    "set-missing-value": Case("return redis.call('SET', KEYS[1])"),
    # DEL, EXISTS, MGET
    "del-counts": Case(
        "redis.call('SET', KEYS[1], 'a') redis.call('SET', KEYS[2], 'b')"
        " local both = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])"
        " redis.call('SET', KEYS[1], 'a')"
        " return {both, redis.call('DEL', KEYS[3]), redis.call('DEL', KEYS[1], KEYS[1])}"
    ),
    "exists-counts-repeats": Case(
        "redis.call('SET', KEYS[1], 'a')"
        " return {redis.call('EXISTS', KEYS[1], KEYS[1], KEYS[2]), redis.call('EXISTS', KEYS[2])}"
    ),
    "mget": Case(
        "redis.call('SET', KEYS[1], 'a') return redis.call('MGET', KEYS[1], KEYS[2], KEYS[1])"
    ),
    # expiry commands
    "ttl-missing-and-persistent": Case(
        "redis.call('SET', KEYS[1], 'a')"
        " return {redis.call('PTTL', KEYS[1]), redis.call('TTL', KEYS[1]),"
        " redis.call('PTTL', KEYS[2]), redis.call('TTL', KEYS[2])}"
    ),
    "pexpire-options": Case(
        "redis.call('SET', KEYS[1], 'a')"
        " return {redis.call('PEXPIRE', KEYS[1], 100000, 'XX'),"
        " redis.call('PEXPIRE', KEYS[1], 100000, 'NX'),"
        " redis.call('PEXPIRE', KEYS[1], 200000, 'NX'),"
        " redis.call('PEXPIRE', KEYS[1], 50000, 'GT'),"
        " redis.call('PEXPIRE', KEYS[1], 300000, 'gt'),"
        " redis.call('PEXPIRE', KEYS[1], 400000, 'LT'),"
        " redis.call('EXPIRE', KEYS[1], 10, 'LT'),"
        " redis.call('TTL', KEYS[1]),"
        " redis.call('PEXPIRE', KEYS[2], 100)}"
    ),
    "expire-gt-on-persistent-key": Case(
        "redis.call('SET', KEYS[1], 'a')"
        " return {redis.call('EXPIRE', KEYS[1], 100, 'GT'),"
        " redis.call('EXPIRE', KEYS[1], 100, 'LT')}"
    ),
    "pexpire-negative-deletes": Case(
        "redis.call('SET', KEYS[1], 'a')"
        " return {redis.call('PEXPIRE', KEYS[1], -1), redis.call('EXISTS', KEYS[1])}"
    ),
    "pexpireat-past-deletes": Case(
        "redis.call('SET', KEYS[1], 'a')"
        " return {redis.call('PEXPIREAT', KEYS[1], 1000), redis.call('EXISTS', KEYS[1])}"
    ),
    "expire-nx-and-xx": Case("return redis.call('EXPIRE', KEYS[1], 10, 'NX', 'XX')"),
    "expire-gt-and-lt": Case("return redis.call('EXPIRE', KEYS[1], 10, 'GT', 'LT')"),
    "expire-unknown-option": Case("return redis.call('EXPIRE', KEYS[1], 10, 'Bogus')"),
    "expire-not-integer": Case("return redis.call('PEXPIRE', KEYS[1], 'x')"),
    "expire-overflow": Case("return redis.call('EXPIRE', KEYS[1], '9223372036854775807')"),
    "pexpire-overflow": Case("return redis.call('PEXPIRE', KEYS[1], '9223372036854775807')"),
    "persist": Case(
        "redis.call('SET', KEYS[1], 'a', 'PX', 100000)"
        " return {redis.call('PERSIST', KEYS[1]), redis.call('PERSIST', KEYS[1]),"
        " redis.call('PTTL', KEYS[1]), redis.call('PERSIST', KEYS[2])}"
    ),
    "time-shape": Case(
        "local t = redis.call('TIME')"
        " return {#t, type(t[1]), type(t[2]), tonumber(t[2]) < 1000000, tonumber(t[1]) > 1.6e9}"
    ),
    "time-extra-argument": Case("return redis.call('TIME', 'x')"),
    # INCRBY family
    "incrby": Case(
        "return {redis.call('INCRBY', KEYS[1], 5), redis.call('INCRBY', KEYS[1], '-7'),"
        " redis.call('INCR', KEYS[1]), redis.call('DECR', KEYS[1]),"
        " redis.call('DECRBY', KEYS[1], 3),"
        " redis.call('GET', KEYS[1])}"
    ),
    "incrby-keeps-ttl": Case(
        "redis.call('SET', KEYS[1], '1', 'PX', 100000) redis.call('INCRBY', KEYS[1], 1)"
        " redis.call('INCRBYFLOAT', KEYS[1], '0.5')"
        " return {redis.call('PTTL', KEYS[1]) > 0, redis.call('GET', KEYS[1])}"
    ),
    "incrby-non-numeric-value": Case(
        "redis.call('SET', KEYS[1], 'abc') return redis.call('INCRBY', KEYS[1], 1)"
    ),
    "incrby-non-canonical-value": Case(
        "redis.call('SET', KEYS[1], '01') return redis.call('INCRBY', KEYS[1], 1)"
    ),
    "incrby-fraction": Case("return redis.call('INCRBY', KEYS[1], '1.5')"),
    "incrby-empty": Case("return redis.call('INCRBY', KEYS[1], '')"),
    "incrby-overflow": Case(
        "redis.call('SET', KEYS[1], '9223372036854775807') return redis.call('INCRBY', KEYS[1], 1)"
    ),
    "incrby-to-int64-min": Case("return redis.call('INCRBY', KEYS[1], '-9223372036854775808')"),
    "incrby-big-exact": Case(
        "redis.call('INCRBY', KEYS[1], '9007199254740993') redis.call('INCRBY', KEYS[1], 2)"
        " return redis.call('GET', KEYS[1])"
    ),
    "decrby-int64-min": Case("return redis.call('DECRBY', KEYS[1], '-9223372036854775808')"),
    "incr-wrong-arity": Case("return redis.call('INCRBY', KEYS[1])"),
    "incrbyfloat-tenths": Case(
        "return {redis.call('INCRBYFLOAT', KEYS[1], '0.1'),"
        " redis.call('INCRBYFLOAT', KEYS[1], 0.2)}"
    ),
    "incrbyfloat-huge": Case("return redis.call('INCRBYFLOAT', KEYS[1], '1e400')"),
    "incrbyfloat-overflow": Case(
        "redis.call('SET', KEYS[1], '1e4932') return redis.call('INCRBYFLOAT', KEYS[1], '1e4932')"
    ),
    "incrbyfloat-underflow-rejected": Case("return redis.call('INCRBYFLOAT', KEYS[1], '1e-5000')"),
    "incrbyfloat-subnormal": Case("return redis.call('INCRBYFLOAT', KEYS[1], '1e-4940')"),
    "incrbyfloat-inf": Case("return redis.call('INCRBYFLOAT', KEYS[1], 'inf')"),
    "incrbyfloat-nan": Case("return redis.call('INCRBYFLOAT', KEYS[1], 'nan')"),
    "incrbyfloat-hex": Case("return redis.call('INCRBYFLOAT', KEYS[1], '0x1.8p1')"),
    "incrbyfloat-space": Case("return redis.call('INCRBYFLOAT', KEYS[1], ' 1')"),
    "incrbyfloat-not-a-number": Case("return redis.call('INCRBYFLOAT', KEYS[1], 'x')"),
    "incrbyfloat-non-numeric-value": Case(
        "redis.call('SET', KEYS[1], 'abc') return redis.call('INCRBYFLOAT', KEYS[1], 1)"
    ),
    "incrbyfloat-to-zero": Case(
        "redis.call('SET', KEYS[1], '-1.5') return redis.call('INCRBYFLOAT', KEYS[1], '1.5')"
    ),
    "incrbyfloat-negative-tiny": Case("return redis.call('INCRBYFLOAT', KEYS[1], '-1e-30')"),
    "incrbyfloat-third": Case(
        "redis.call('SET', KEYS[1], '10') return redis.call('INCRBYFLOAT', KEYS[1], 1/3)"
    ),
    # Lua numbers passed to redis.call are formatted with %.17g
    "number-args": Case(
        "local out = {}"
        " for i, x in ipairs({0.1, 1e300, 2^53, 3, -0.0, 1/3, 1/0, -1/0, 0/0,"
        "  123456789012345678}) do"
        "  redis.call('SET', KEYS[1], x) out[i] = redis.call('GET', KEYS[1])"
        " end return out"
    ),
    # reply conversion
    "number-3.7": Case("return 3.7"),
    "number-minus-3.7": Case("return -3.7"),
    "number-half": Case("return {0.5, -0.5, 0.9999999, -0.9999999}"),
    "number-1e300": Case("return 1e300"),
    "number-minus-1e300": Case("return -1e300"),
    "number-nan": Case("return 0/0"),
    "number-inf": Case("return 1/0"),
    "number-minus-inf": Case("return -1/0"),
    "number-minus-zero": Case("return -0.0"),
    "number-2^53+1": Case("return 9007199254740993"),
    "number-2^63": Case("return 2^63"),
    "number-minus-2^63": Case("return -2^63"),
    "number-below-2^63": Case("return 2^63 - 1024"),
    "boolean-true": Case("return true"),
    "boolean-false": Case("return false"),
    "nil": Case("return nil"),
    "nothing": Case("local x = 1"),
    "function": Case("return function() end"),
    "booleans-in-array": Case("return {true, false, 1}"),
    "flat-strings": Case("return {'a', 'b', 'c', 'd'}"),
    "empty-table": Case("return {}"),
    "nil-hole": Case("return {1, 2, nil, 3}"),
    "leading-nil": Case("return {nil, 1}"),
    "sparse": Case("return {[1] = 'a', [2] = 'b', [4] = 'd'}"),
    "hash-part-ignored": Case("return {'a', 'b', x = 'y'}"),
    "nested": Case("return {{1, {2}}, 'a', {}}"),
    "function-in-array": Case("return {1, function() end, 2}"),
    "deep-nesting": Case("local t = {'a'} for i = 1, 200 do t = {t} end return t"),
    "keys-and-argv": Case("return {KEYS[1] ~= nil, #KEYS, ARGV[1], ARGV[2], #ARGV}", (b"x", b"")),
    "status-table": Case("return {ok = 'FINE'}"),
    "status-with-newline": Case("return {ok = 'a\\nb'}"),
    "status-not-a-string": Case("return {ok = 1}"),
    "status-beats-array": Case("return {ok = 'y', 1, 2}"),
    "error-table": Case("return {err = 'My Error'}"),
    "error-table-err-code": Case("return {err = 'ERR something'}"),
    "error-with-newlines": Case("return {err = 'a\\nb\\r\\nc'}"),
    "error-not-a-string": Case("return {err = 1}"),
    "error-beats-status": Case("return {err = 'x', ok = 'y'}"),
    "error-empty": Case("return {err = ''}"),
    "nested-status-and-error": Case(
        "return {1, {err = 'nested'}, {ok = 'st'}, {err = 'ERR deeper'}}"
    ),
    "resp3-double": Case("return {double = 0.1}"),
    "resp3-double-specials": Case("return {{double = 1/0}, {double = -1/0}, {double = 0/0}}"),
    "resp3-map": Case("return {map = {a = 1, b = 'x'}}"),
    "resp3-set": Case("return {set = {a = true, b = false}}"),
    "resp3-big-number": Case("return {{big_number = '123'}, {big_number = 5}}"),
    "resp3-verbatim": Case(
        "return {{verbatim_string = {format = 'txt', string = 'hi'}},"
        " {verbatim_string = {string = 'hi'}}}"
    ),
    # redis.* helpers
    "error-reply-plain": Case("return redis.error_reply('foo')"),
    "error-reply-with-code": Case("return redis.error_reply('My Error')"),
    "error-reply-err": Case("return redis.error_reply('ERR foo\\r\\n')"),
    "error-reply-dash": Case("return redis.error_reply('-x')"),
    "error-reply-number": Case("return redis.error_reply(1)"),
    "error-reply-no-argument": Case("return redis.error_reply()"),
    "error-reply-table": Case("local t = redis.error_reply('WRONGTYPE bad') return {t.err}"),
    "status-reply": Case("return redis.status_reply('a b')"),
    "status-reply-number": Case("return redis.status_reply(1)"),
    "sha1hex": Case("return {redis.sha1hex('abc'), redis.sha1hex(12), redis.sha1hex('')}"),
    "sha1hex-no-argument": Case("return redis.sha1hex()"),
    "log": Case("return redis.log(redis.LOG_WARNING, 'from the fidelity test')"),
    "log-no-arguments": Case("return redis.log()"),
    "log-bad-level": Case("return redis.log(9, 'x')"),
    "log-level-not-number": Case("return redis.log('a', 'x')"),
    "log-constants": Case(
        "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}"
    ),
    # redis.call / redis.pcall failures
    "unknown-command": Case("return redis.call('nosuch')"),
    "unknown-command-pcall": Case("return redis.pcall('nosuch')"),
    "numeric-command": Case("return redis.call(1)"),
    "get-without-key": Case("return redis.call('GET')"),
    "get-two-keys": Case("return redis.call('GET', KEYS[1], KEYS[2])"),
    "del-without-key": Case("return redis.call('DEL')"),
    "call-without-arguments": Case("return redis.call()"),
    "pcall-without-arguments": Case("return redis.pcall()"),
    "boolean-argument": Case("return redis.call('GET', true)"),
    "nil-argument": Case("return redis.call('GET', nil)"),
    "table-argument": Case("return redis.pcall('GET', {})"),
    "pcall-error-table": Case(
        "local t = redis.pcall('SET', KEYS[1], 'v', 'PX', 0)"
        " return {t.err, tostring(t.ignore_error_stats_update)}"
    ),
    "pcall-error-table-arity": Case(
        "local t = redis.pcall('GET') return {t.err, tostring(t.ignore_error_stats_update)}"
    ),
    "pcall-of-redis-call": Case(
        "local ok, e = pcall(redis.call, 'nosuch') return {tostring(ok), type(e), e}"
    ),
    "pcall-of-error-table": Case("return {pcall(error, {err = 'boo'})}"),
    "pcall-of-error-number": Case("return {pcall(error, {err = 5})}"),
    "pcall-success": Case("return {pcall(function() return 1, 2 end)}"),
    "xpcall-sees-tables": Case(
        "return {xpcall(function() error({err = 'boo'}) end, function(e) return type(e) end)}"
    ),
    "failed-call-keeps-earlier-writes": Case(
        "redis.call('SET', KEYS[1], 'kept') redis.call('nosuch')"
    ),
    # runtime errors and their text
    "error-string": Case("error('boom')"),
    "error-level-zero": Case("error('boom', 0)"),
    "error-multiline-message": Case("error('a\\nb')"),
    "error-on-line-3": Case("local a = 1\nlocal b = 2\nerror('third')"),
    "error-in-function": Case("local function f()\n  error('inner')\nend\nf()"),
    "error-number": Case("error(123)"),
    "error-nil": Case("error()"),
    "error-boolean": Case("error(true)"),
    "error-empty-string": Case("error('')"),
    "error-table-thrown": Case("error({err = 'custom'})"),
    "error-table-thrown-with-code": Case("error({err = 'WRONGTYPE custom'})"),
    "error-table-thrown-with-position": Case("error({err = 'x', source = 'src', line = 7})"),
    "index-nil": Case("local x = nil; return x.y"),
    "arithmetic-on-nil": Case("local x\nreturn x + 1"),
    "call-error-on-line-2": Case("local a = 1\nreturn redis.call('nosuch')"),
    "call-error-not-tail": Case("local a = 1\nlocal r = redis.call('SET', KEYS[1], 'v', 'PX', 0)"),
    "call-error-in-function": Case(
        "local function g()\n  return redis.call('GET')\nend\nreturn g()"
    ),
    "c-function-bad-argument": Case("return string.rep()"),
    "rawset-bad-argument": Case("return rawset(nil, 1, 2)"),
    "compile-error": Case("return 1 +"),
    "compile-error-unfinished-string": Case("return 'abc"),
    "shebang-keeps-line-numbers": Case("#!lua\nerror('x')"),
    "shebang-no-writes": Case("#!lua flags=no-writes\nreturn redis.call('SET', KEYS[1], 'b')"),
    "shebang-no-writes-allows-reads": Case(
        "#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])"
    ),
    "shebang-unknown-flag": Case("#!lua flags=bogus\nreturn 1"),
    "shebang-unknown-engine": Case("#!py\nreturn 1"),
    "shebang-unknown-option": Case("#!lua foo\nreturn 1"),
    "shebang-alone": Case("#!lua"),
    # the sandbox
    "global-write": Case("x = 1"),
    "global-write-in-function": Case("local function f() y = 2 end f()"),
    "global-rawset": Case("rawset(_G, 'x', 1)"),
    "global-setmetatable": Case("setmetatable(_G, {})"),
    "global-metatable-is-a-table": Case("return type(getmetatable(_G))"),
    "library-write": Case("string.x = 1"),
    "library-overwrite": Case("string.format = nil"),
    "redis-table-write": Case("redis.call = nil"),
    "library-insert": Case("table.insert(string, 1)"),
    "local-tables-are-writable": Case(
        "local t = {} t.x = 1 rawset(t, 'y', 2) table.insert(t, 'z')"
        " setmetatable(t, {}) return {t.x, t.y, t[1]}"
    ),
    "G-is-a-table": Case("return {type(_G), _G == _G._G, _VERSION}"),
    "no-os": Case("return os"),
    "no-io": Case("return io"),
    "no-python": Case("return python"),
    "no-dofile": Case("return dofile"),
    "no-require": Case("return require"),
    "no-print": Case("return print"),
    "no-debug": Case("return debug"),
    "no-getfenv": Case("return getfenv"),
    "no-setfenv": Case("return setfenv"),
    "no-module": Case("return module"),
    "no-newproxy": Case("return newproxy"),
    "whitelisted-globals": Case(
        "return {type(string), type(math), type(table), type(tonumber), type(tostring),"
        " type(type), type(pairs), type(ipairs), type(next), type(select), type(unpack),"
        " type(error), type(pcall), type(xpcall), type(assert), type(rawget), type(rawset),"
        " type(rawequal), type(setmetatable), type(getmetatable), type(redis)}"
    ),
    # Lua 5.1 number semantics, which the compiler relies on
    "tostring-14-digits": Case(
        "return {tostring(0.1), 0.1 .. '', tostring(1/3), tostring(1e15), tostring(1e16),"
        " tostring(2^53), tostring(-0.0), tostring(1/0), tostring(-1/0),"
        " tostring(123456789.123456789)}"
    ),
    "format-17g": Case(
        "local out = {}"
        " for i, x in ipairs({0.1, 1/3, 2^53 + 1, 5e-324, 1.7976931348623157e308, -0.0,"
        "  123456789.123, 1e21, 1e-7, 100}) do out[i] = string.format('%.17g', x) end"
        " return out"
    ),
    "tonumber-corners": Case(
        "local out = {}"
        " for i, s in ipairs({'0x10', ' 10 ', '10 x', '1e1', '', '  ', 'inf', 'nan', '1e500',"
        "  '-0', '.5', '5.', '0x', '1e', '- 1', '+1', '1E+2', '0X1P4'}) do"
        "  out[i] = tostring(tonumber(s)) end"
        " return out"
    ),
    "tonumber-bases": Case(
        "return {tostring(tonumber('10', 16)), tostring(tonumber('ff', 16)),"
        " tostring(tonumber('zz', 36)), tostring(tonumber('8', 8)), tostring(tonumber('-10', 2))}"
    ),
    "modulo-negative-floats": Case(
        "local out = {}"
        " for i, p in ipairs({{-5.5, 2}, {5.5, -2}, {-0.5, 1}, {-7, 3}, {7, -3}, {0.1, 0.01},"
        "  {5, 0}, {-1e-300, 1}, {1e300, 7}}) do"
        "  out[i] = string.format('%.17g', p[1] % p[2]) end"
        " return out"
    ),
    "floor-ceil-small-negatives": Case(
        "local out = {}"
        " for i, x in ipairs({-0.5, -1e-300, -0.0, -1, -1.5, 0.5}) do"
        "  out[#out + 1] = string.format('%.17g', math.floor(x))"
        "  out[#out + 1] = string.format('%.17g', math.ceil(x)) end"
        " return out"
    ),
    "length-operator": Case(
        "local t = {} t[1] = 1 t[2] = 2 t[4] = 4"
        " return {#{1, 2, nil, 4}, #{nil, nil, 3}, #{1, nil}, #t, #'abc', #{n = 3}}"
    ),
    "math-library": Case(
        "return {string.format('%.17g', math.huge), string.format('%.17g', math.pi),"
        " string.format('%.17g', math.fmod(-5.5, 2)), string.format('%.17g', math.sqrt(2)),"
        " string.format('%.17g', math.max(-0.0, 0.0)), string.format('%.17g', math.min(0.0, -0.0))}"
    ),
}


# -- the real server ------------------------------------------------------------------


class RawRedis:
    """Just enough RESP2 to read an error reply's exact text, which redis-py edits."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.sock = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379))
        self.reader = self.sock.makefile("rb")
        if parsed.password:
            user = [parsed.username] if parsed.username else []
            self.command("AUTH", *user, parsed.password)
        if parsed.path.strip("/"):
            self.command("SELECT", parsed.path.strip("/"))

    def command(self, *parts: str | bytes) -> Any:
        encoded = [p.encode() if isinstance(p, str) else p for p in parts]
        out = b"*%d\r\n" % len(encoded)
        for part in encoded:
            out += b"$%d\r\n%s\r\n" % (len(part), part)
        self.sock.sendall(out)
        return self._read()

    def _read(self) -> Any:
        line = self.reader.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-"):
            return (kind, rest.decode("utf-8", errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.reader.read(size + 2)[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._read() for _ in range(size)]
        raise AssertionError(f"unexpected RESP line {line!r}")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture(scope="module", params=[2, 3], ids=["resp2", "resp3"])
def client(redis_url: str, request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    # redis-py 8 speaks RESP3 unless told otherwise. The emulator models RESP2; a
    # script's reply only differs under RESP3 for the RESP3 fields (double, map,
    # set, big_number), so every other case must hold for both protocols.
    connection = redis.Redis.from_url(redis_url, decode_responses=False, protocol=request.param)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def raw(redis_url: str) -> Iterator[RawRedis]:
    connection = RawRedis(redis_url)
    yield connection
    connection.close()


# How redis-py turns an error line into an exception (it strips the codes it knows).
redis_py_error: Callable[[str], Exception] = BaseParser.parse_error


def normalise(reply: Any) -> Any:
    """Replies as comparable values; an error nested in an array becomes
    ("error", class name, text) as redis-py would present it."""
    if isinstance(reply, list):
        return [normalise(item) for item in reply]
    if isinstance(reply, LuaReplyError):
        reply = redis_py_error(reply.message)
    if isinstance(reply, Exception):
        return ("error", type(reply).__name__, str(reply))
    return reply


def keys_for(case_id: str, count: int = 3) -> list[bytes]:
    return [f"ratescript-fidelity:{RUN}:{case_id}:{i}".encode() for i in range(1, count + 1)]


def on_redis(
    client: redis.Redis, raw: RawRedis, lua: str, keys: Sequence[bytes], args: Sequence[bytes]
) -> tuple[str, Any]:
    client.delete(*keys)
    try:
        return "reply", normalise(client.eval(lua, len(keys), *keys, *args))
    except redis.ResponseError:
        client.delete(*keys)  # run again from the same state, for the exact text
        kind, text = raw.command("EVAL", lua, str(len(keys)), *keys, *args)
        assert kind == b"-"
        return "error", text
    finally:
        client.delete(*keys)


def on_emulator(lua: str, keys: Sequence[bytes], args: Sequence[bytes]) -> tuple[str, Any]:
    emulator = LuaRedisEmulator(clock_ms=lambda: CLOCK_MS)
    try:
        return "reply", normalise(emulator.eval(lua, keys, args))
    except LuaReplyError as exc:
        return "error", exc.message


def close_enough(emulated: Any, real: Any, within_ms: int) -> bool:
    """Equal, except that real-server integers may be up to ``within_ms`` lower."""
    if isinstance(emulated, list) and isinstance(real, list):
        return len(emulated) == len(real) and all(
            close_enough(e, r, within_ms) for e, r in zip(emulated, real, strict=True)
        )
    if type(emulated) is int and type(real) is int:
        return emulated - within_ms <= real <= emulated
    return bool(emulated == real)


@pytest.mark.redis
@pytest.mark.parametrize("case_id", [c for c in CASES if not c.startswith("resp3-")])
def test_emulator_answers_like_redis(case_id: str, client: redis.Redis, raw: RawRedis) -> None:
    check_case(case_id, client, raw)


@pytest.mark.redis
@pytest.mark.parametrize("case_id", [c for c in CASES if c.startswith("resp3-")])
def test_resp3_fields_reach_a_resp2_client_like_redis(
    case_id: str, redis_url: str, raw: RawRedis
) -> None:
    """RESP3-only reply fields (double, map, set, big_number), as RESP2 clients see them:
    the emulator models RESP2, and a RESP3 client sees these natively."""
    connection = redis.Redis.from_url(redis_url, decode_responses=False, protocol=2)
    try:
        check_case(case_id, connection, raw)
    finally:
        connection.close()


def check_case(case_id: str, client: redis.Redis, raw: RawRedis) -> None:
    case = CASES[case_id]
    keys = keys_for(case_id)
    real = on_redis(client, raw, case.lua, keys, case.args)
    emulated = on_emulator(case.lua, keys, case.args)
    assert emulated[0] == real[0], f"emulator {emulated!r} vs redis {real!r}"
    assert close_enough(emulated[1], real[1], case.within_ms), (
        f"emulator {emulated[1]!r} vs redis {real[1]!r}"
    )


def test_every_case_compares_something() -> None:
    # The emulator alone: no case may crash it with anything but an error reply.
    for case_id, case in CASES.items():
        kind, _ = on_emulator(case.lua, keys_for(case_id), case.args)
        assert kind in ("reply", "error")


# -- properties over random inputs ---------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)


@pytest.mark.redis
@settings(max_examples=150, deadline=None)
@given(x=finite)
def test_format_17g_matches_python_and_redis(x: float, client: redis.Redis) -> None:
    lua = "return string.format('%.17g', tonumber(ARGV[1]))"
    arg = repr(x).encode()
    expected = b"%.17g" % x
    assert LuaRedisEmulator().eval(lua, [], [arg]) == expected
    assert client.eval(lua, 0, arg) == expected


@pytest.mark.redis
@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(
        st.floats(allow_nan=False) | st.sampled_from([-0.0, 5e-324, -2.2250738585072014e-308]),
        min_size=1,
        max_size=3,
    )
)
def test_struct_doubles_match_redis(values: list[float], client: redis.Redis) -> None:
    # What a stored log's entries go through: packed, sliced, unpacked at an offset.
    layout = "<" + "d" * len(values)
    lua = (
        "local packed = struct.pack(ARGV[1], unpack(ARGV, 2))"
        " local out = {packed}"
        " for i = 1, #ARGV - 1 do"
        "   local x, pos = struct.unpack('<d', packed, i * 8 - 7)"
        "   out[#out + 1] = string.format('%.17g %d', x, pos)"
        "   out[#out + 1] = tostring(1 / x)"  # the sign of a zero, as inf or -inf
        " end"
        " return out"
    )
    args = [layout.encode(), *(repr(v).encode() for v in values)]
    expected = client.eval(lua, 0, *args)
    assert expected[0] == struct.pack(layout, *values)
    assert LuaRedisEmulator().eval(lua, [], args) == expected


def test_struct_formats_other_than_doubles_are_not_emulated() -> None:
    with pytest.raises(LuaReplyError, match="struct format >i is not emulated"):
        LuaRedisEmulator().eval("return struct.pack('>i', 1)", [], [])
    with pytest.raises(LuaReplyError, match="data string too short"):
        LuaRedisEmulator().eval("return struct.unpack('<dd', string.rep('x', 15))", [], [])


def _float_text() -> st.SearchStrategy[bytes]:
    return st.one_of(
        finite.map(lambda x: repr(x).encode()),
        st.integers(-(2**70), 2**70).map(lambda i: str(i).encode()),
        st.sampled_from([b"0.1", b"0.2", b"-0", b"1e4000", b"-1e4000", b"1e-4950", b"0x1p-16445",
                         b"0x1p-16446", b"1.8e-4951", b"1.19e4932", b"1.18e4932", b"1.5\x00",
                         b"1.5e", b"", b"abc", b"inf", b"-INFINITY", b"nan", b" 1", b"1 ", b"0x",
                         b"3.0000000000000000001", b"1" * 300, b"1" * 5119, b"0." + b"0" * 5000]),
    )  # fmt: skip


@pytest.mark.redis
@settings(max_examples=150, deadline=None)
@given(value=_float_text(), increment=_float_text())
def test_incrbyfloat_matches_redis(
    value: bytes, increment: bytes, client: redis.Redis, raw: RawRedis
) -> None:
    lua = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('INCRBYFLOAT', KEYS[1], ARGV[2])"
    keys = keys_for("incrbyfloat-property", 1)
    real = on_redis(client, raw, lua, keys, [value, increment])
    assert on_emulator(lua, keys, [value, increment]) == real


@pytest.mark.redis
@settings(max_examples=100, deadline=None)
@given(
    value=st.integers(-(2**63), 2**63 - 1) | st.sampled_from([2**63 - 1, -(2**63), 0]),
    increment=st.integers(-(2**64), 2**64),
)
def test_incrby_matches_redis(
    value: int, increment: int, client: redis.Redis, raw: RawRedis
) -> None:
    lua = (
        "redis.call('SET', KEYS[1], ARGV[1])"
        " local r = redis.call('INCRBY', KEYS[1], ARGV[2])"
        " return {string.format('%.17g', r), redis.call('GET', KEYS[1])}"
    )
    keys = keys_for("incrby-property", 1)
    args = [str(value).encode(), str(increment).encode()]
    assert on_emulator(lua, keys, args) == on_redis(client, raw, lua, keys, args)


# -- where the emulator deliberately differs -------------------------------------------


@pytest.mark.redis
def test_loaders_are_absent_though_redis_has_them(client: redis.Redis) -> None:
    # Redis 7.0 keeps loadstring and load; compiled strategies never need them and a
    # loader would need a sandbox of its own, so the emulator leaves them out.
    assert client.eval("return type(loadstring)", 0) == b"function"
    with pytest.raises(LuaReplyError, match="nonexistent global variable 'loadstring'"):
        LuaRedisEmulator().eval("return type(loadstring)", [], [])


def test_redis_crash_on_error_table_without_err_is_an_error_here() -> None:
    # redis-server 7.0.15 segfaults on error({}); the emulator must not take the
    # process down, so it answers with an error instead.
    with pytest.raises(LuaReplyError, match="without an 'err' string"):
        LuaRedisEmulator().eval("error({})", [], [])


def test_reply_nesting_stops_where_redis_stops() -> None:
    # Measured on 7.0.15: a self-referencing table nests 7995 arrays deep, then the
    # innermost element is the error "ERR reached lua stack limit".
    reply: Any = LuaRedisEmulator().eval("local t = {} t[1] = t return t", [], [])
    depth = 0
    while isinstance(reply, list):
        assert len(reply) == 1
        depth, reply = depth + 1, reply[0]
    assert depth == 7995
    assert isinstance(reply, LuaReplyError)
    assert reply.message == "ERR reached lua stack limit"


# -- the emulator's own controls -------------------------------------------------------


class FakeClock:
    def __init__(self, now_ms: float) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms


def test_expiry_follows_the_injected_clock() -> None:
    clock = FakeClock(1_000_000.0)
    emulator = LuaRedisEmulator(clock_ms=clock)
    emulator.eval("redis.call('SET', KEYS[1], 'v', 'PX', 1000)", [b"k"], [])
    emulator.set(b"other", b"w", px=5000)
    emulator.set("forever", "x")
    assert emulator.pttl(b"k") == 1000
    clock.now_ms += 1000  # at the expiry instant the key still lives, as in Redis
    assert emulator.get(b"k") == b"v"
    assert emulator.pttl(b"k") == 0
    assert emulator.eval("return redis.call('PTTL', KEYS[1])", [b"k"], []) == 0
    clock.now_ms += 1
    assert emulator.get(b"k") is None
    assert emulator.pttl(b"k") == -2
    assert emulator.eval("return redis.call('EXISTS', KEYS[1])", [b"k"], []) == 0
    assert sorted(emulator.keys()) == [b"forever", b"other"]
    assert emulator.pttl(b"forever") == -1
    clock.now_ms += 4000
    assert emulator.keys() == [b"forever"]
    emulator.delete(b"forever")
    assert emulator.keys() == []


def test_time_reads_the_injected_clock() -> None:
    emulator = LuaRedisEmulator(clock_ms=FakeClock(1_700_000_000_123.456))
    assert emulator.eval("return redis.call('TIME')", [], []) == [b"1700000000", b"123456"]


def test_clock_is_read_once_per_call() -> None:
    clock = FakeClock(0.0)
    calls = 0

    def ticking() -> float:
        nonlocal calls
        calls += 1
        clock.now_ms += 1000
        return clock.now_ms

    emulator = LuaRedisEmulator(clock_ms=ticking)
    reply = emulator.eval(
        "local a = redis.call('TIME') local b = redis.call('TIME') return {a[1], b[1]}", [], []
    )
    assert reply == [b"1", b"1"]
    assert calls == 1


def test_script_flush_forgets_scripts() -> None:
    emulator = LuaRedisEmulator()
    sha = emulator.script_load("return 'hello'")
    assert emulator.evalsha(sha.upper(), [], []) == b"hello"
    emulator.script_flush()
    with pytest.raises(NoScriptError) as caught:
        emulator.evalsha(sha, [], [])
    assert caught.value.message == "NOSCRIPT No matching script. Please use EVAL."
    assert caught.value.code == "NOSCRIPT"
    with pytest.raises(NoScriptError):
        emulator.evalsha("nope", [], [])


def test_flushall_empties_the_keyspace_but_keeps_scripts() -> None:
    emulator = LuaRedisEmulator()
    sha = emulator.script_load("return redis.call('GET', KEYS[1])")
    emulator.set(b"k", b"v")
    emulator.flushall()
    assert emulator.keys() == []
    assert emulator.evalsha(sha, [b"k"], []) is None


def test_script_load_returns_the_redis_sha() -> None:
    # The SHA Redis reports for SCRIPT LOAD 'return 1' (measured on 7.0.15).
    assert LuaRedisEmulator().script_load(b"return 1") == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"


def test_arguments_are_encoded_like_redis_py() -> None:
    emulator = LuaRedisEmulator()
    assert emulator.eval("return ARGV", ["k"], ["é", 7, 0.1, b"\x00"]) == [
        "é".encode(),
        b"7",
        b"0.1",
        b"\x00",
    ]
    with pytest.raises(TypeError):
        emulator.eval("return 1", [], [True])


def test_nothing_a_script_does_leaks_into_the_next_call() -> None:
    emulator = LuaRedisEmulator()
    for attempt in ("x = 1", "rawset(_G, 'x', 1)", "string.x = 1", "table.insert(string, 1)"):
        with pytest.raises(LuaReplyError):
            emulator.eval(attempt, [], [])
    assert emulator.eval("return {type(string.x), type(string[1])}", [], []) == [b"nil", b"nil"]
    with pytest.raises(LuaReplyError, match="nonexistent global variable 'x'"):
        emulator.eval("return x", [], [])
