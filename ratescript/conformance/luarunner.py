"""Run Redis scripts on lupa's Lua 5.1 the way Redis 7.0 runs them, without a server.

Why: the conformance kit and the tests need to execute the Lua our compiler emits
thousands of times per second, deterministically, with a clock they control. A real
server gives neither speed nor a controllable clock; fakeredis is not faithful
(number replies, ``-0``, the sandbox and the error texts differ).

What is emulated, checked against a real redis-server 7.0.15 by
``tests/conformance/test_luarunner_fidelity.py``:

* the sandbox: a read-only global table (writing a global raises "Attempt to modify
  a readonly table", reading an unknown one raises "Script attempted to access
  nonexistent global variable"), read-only ``string``/``math``/``table``/``redis``,
  Redis's ``pcall`` that turns error tables into their ``err`` string, and the
  error handler that names the script line;
* ``redis.call``/``redis.pcall`` for GET, SET (NX/XX/GET/KEEPTTL/EX/PX/EXAT/PXAT),
  STRLEN, GETRANGE, SETRANGE, APPEND (offsets of up to 15 digits), DEL, EXISTS, MGET,
  EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT (NX/XX/GT/LT), PERSIST, TTL/PTTL, TIME,
  INCR/DECR/INCRBY/DECRBY (exact 64-bit), INCRBYFLOAT (exact x87
  ``long double`` arithmetic and ``%.17Lf`` formatting, as Redis computes it);
* the Lua → RESP2 → redis-py reply conversion, including integer truncation, nil
  holes, status and error tables, the RESP3 ``double``/``map``/``set`` fields, and the
  error text ``"<msg> script: <sha>, on @user_script:<line>."``.

* ``struct.pack``/``struct.unpack`` for little-endian doubles (``"<d"``, ``"<dd"``,
  ...), the only formats compiled scripts use (a stored log's entries), computed by
  Python's ``struct`` — numbers cross into Python as ``%.17g`` text, so ``-0.0`` keeps
  its sign.

Deliberate differences: ``loadstring``/``load``, ``coroutine``, ``cjson``, ``bit``,
``cmsgpack``, ``gcinfo``, ``collectgarbage`` and every other ``struct`` format are
absent (Redis has them; compiled strategies never use them, and a loader would need a
second sandbox);
``pairs``/``rawget`` see nothing inside the read-only library tables and
``getmetatable`` of one is ``false``, not nil (they are empty proxies); tail calls
are compiled as plain calls (see ``_without_tail_calls``), so unbounded tail
recursion overflows here; commands not listed above answer "Unknown Redis command";
only RESP2 replies are emulated (redis-py 8 asks for RESP3 by default, under which
Redis sends the ``double``/``map``/``set``/``big_number`` fields natively; every other
reply is the same). Where Redis 7.0.15 crashes (``error({})``) the emulator raises a
``LuaReplyError``.

Speed: the keyspace lives in Lua tables and every command is Lua code, so a
``redis.call`` never crosses into Python. Each ``evalsha`` crosses once into Lua
(clock, key count, keys and arguments as varargs) and once back; a reply that is
a flat array of strings comes back ``unpack``-ed, so Python only builds a list.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, TypeAlias

from lupa import lua51

__all__ = [
    "LuaRedisEmulator",
    "LuaReplyError",
    "NoScriptError",
    "Reply",
    "ReplyElement",
]


class LuaReplyError(Exception):
    """An error reply, carrying the text exactly as Redis would send it.

    ``message`` has no leading ``-``; its first word is the error code (``ERR``,
    ``WRONGTYPE``, ``NOSCRIPT``, or whatever a script put first in ``{err=...}``).
    Note that redis-py strips the code from its ``ResponseError`` for the codes it
    knows (``ERR``, ``NOSCRIPT``, ...) and keeps it otherwise.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        """The first word of the message, as Redis clients read the error code."""
        return self.message.split(" ", 1)[0]


class NoScriptError(LuaReplyError):
    """EVALSHA named a script this emulator has not loaded (or has flushed)."""


ReplyElement: TypeAlias = bytes | int | list["ReplyElement"] | LuaReplyError | None
"""One element of an array reply: like redis-py, an error nested inside an array is
returned in place as an exception object rather than raised."""

Reply: TypeAlias = bytes | int | list[ReplyElement] | None
"""What ``evalsha`` returns, as redis-py does with ``decode_responses=False``:
bulk and status strings as ``bytes``, integers as ``int``, nil as ``None``."""

_NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
_CORE_CHUNK_NAME = b"=ratescript-emulator"
# Past this many values Lua's unpack() fails ("too many results to unpack"), so
# bigger replies travel as a table instead.
_UNPACK_LIMIT = 7000

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_NOT_AN_INTEGER = b"ERR value is not an integer or out of range"
_NOT_A_FLOAT = b"ERR value is not a valid float"

# The Redis 7.0 scripting surface. It runs inside lupa's Lua 5.1; the script itself
# only ever sees the read-only environment built at the end (`env`), so nothing
# here is reachable or replaceable from a script. Frames of this chunk are
# invisible to the error handler, as Redis's C functions are.
_CORE_LUA = r"""
local py_sha1hex, py_set_expire, py_expire_when, py_incrby, py_incrbyfloat,
      py_struct_pack, py_struct_unpack, INTERNAL, UNPACK_LIMIT = ...

local type, tostring, tonumber, select, error, next, rawget, pairs, ipairs =
      type, tostring, tonumber, select, error, next, rawget, pairs, ipairs
local setmetatable, pcall, xpcall, unpack = setmetatable, pcall, xpcall, unpack
local loadstring, setfenv = loadstring, setfenv
local floor, ceil = math.floor, math.ceil
local fmt, lower, upper, find, gsub, sub, byte, match =
      string.format, string.lower, string.upper, string.find, string.gsub,
      string.sub, string.byte, string.match
local getinfo = debug.getinfo

local TWO63 = 2 ^ 63
local INT64_MIN = -TWO63
local STACK_LIMIT = 7995   -- nesting depth at which 7.0 answers "reached lua stack limit"

-- The keyspace: values and absolute expiry times (integer ms), never in Python.
local data, expires = {}, {}
local now_ms, now_exact = 0, 0   -- frozen for a whole script, as Redis does
local read_only = false          -- the running script declared flags=no-writes

local function set_clock(clock)
  now_exact = clock
  now_ms = floor(clock)
end

local function lookup(key)
  local v = data[key]
  if v ~= nil then
    local e = expires[key]
    if e ~= nil and now_ms > e then
      data[key] = nil
      expires[key] = nil
      return nil
    end
  end
  return v
end

local function remove(key)
  data[key] = nil
  expires[key] = nil
end

-- A strict Redis integer (string2ll: no '+', no leading zeros) short enough that
-- doubles hold it and everything computed from it exactly. Anything else, valid
-- or not, goes to Python, which does exact 64-bit arithmetic and the errors.
local int_memo, int_memo_size = {}, 0   -- TTL arguments repeat call after call
local function small_int(s, maxlen)
  local v = int_memo[s]
  if v == nil then
    if #s > 15 or not (s == '0' or find(s, '^-?[1-9]%d*$')) then return nil end
    v = tonumber(s)
    if int_memo_size >= 1024 then int_memo, int_memo_size = {}, 0 end
    int_memo[s] = v
    int_memo_size = int_memo_size + 1
  end
  if #s > maxlen then return nil end
  return v
end

local function clean(s)   -- Redis maps CR and LF to spaces in error/status text
  if find(s, '[\r\n]') then s = (gsub(s, '[\r\n]', ' ')) end
  return s
end

-- Commands: each takes (argv, argc) with argv[1] the command name and returns
-- a reply converted the way Redis converts replies for Lua, or nil, errortext.
local commands = {}
local function define(name, arity, is_write, handler)
  local spec = {handler, arity, is_write}
  commands[name] = spec
  commands[upper(name)] = spec
end

define('get', 2, false, function(a)
  return lookup(a[2]) or false
end)

local SET_SYNTAX = 'ERR syntax error'
local SET_OPTIONS = {}
for _, opt in ipairs({'nx', 'xx', 'get', 'keepttl', 'ex', 'px', 'exat', 'pxat'}) do
  SET_OPTIONS[opt], SET_OPTIONS[upper(opt)] = opt, opt
end
local SET_EXPIRE = "ERR invalid expire time in 'set' command"

local function set_expire(arg, seconds, relative)
  local v = small_int(arg, 12)
  if v == nil then return py_set_expire(arg, seconds, relative, now_ms) end
  if v <= 0 then return false, SET_EXPIRE end
  if seconds then v = v * 1000 end
  if relative then v = v + now_ms end
  return true, v
end

define('set', -3, true, function(a, n)
  local key, value = a[2], a[3]
  local nx, xx, get, keepttl = false, false, false, false
  local unit, exparg
  local i = 4
  while i <= n do
    local opt = SET_OPTIONS[a[i]] or lower(a[i])
    local nxt = a[i + 1]
    -- The same acceptance rules as parseExtendedStringArgumentsOrReply: a
    -- repeated EX (or PX...) is allowed, mixing two expiry kinds is not.
    if opt == 'nx' and not xx then
      nx = true
    elseif opt == 'xx' and not nx then
      xx = true
    elseif opt == 'get' then
      get = true
    elseif opt == 'keepttl' and unit == nil then
      keepttl = true
    elseif (opt == 'ex' or opt == 'px' or opt == 'exat' or opt == 'pxat')
        and not keepttl and (unit == nil or unit == opt) and nxt ~= nil then
      unit, exparg = opt, nxt
      i = i + 1
    else
      return nil, SET_SYNTAX
    end
    i = i + 1
  end
  local when
  if unit ~= nil then
    local ok, w = set_expire(exparg, unit == 'ex' or unit == 'exat',
                             unit == 'ex' or unit == 'px')
    if not ok then return nil, w end
    when = w
  end
  local old = lookup(key)
  if (nx and old ~= nil) or (xx and old == nil) then
    if get then return old or false end
    return false
  end
  data[key] = value
  if when ~= nil then
    expires[key] = when
  elseif not keepttl then
    expires[key] = nil
  end
  if get then return old or false end
  return {ok = 'OK'}
end)

define('del', -2, true, function(a, n)
  local count = 0
  for i = 2, n do
    if lookup(a[i]) ~= nil then
      remove(a[i])
      count = count + 1
    end
  end
  return count
end)

define('exists', -2, false, function(a, n)
  local count = 0
  for i = 2, n do
    if lookup(a[i]) ~= nil then count = count + 1 end
  end
  return count
end)

-- String ranges, as a stored log is read and written in place. Offsets are parsed
-- as Redis parses them, for the lengths a script can reach (up to 15 digits).
local NOT_AN_INTEGER = 'ERR value is not an integer or out of range'

define('strlen', 2, false, function(a)
  local v = lookup(a[2])
  return v and #v or 0
end)

define('getrange', 4, false, function(a)
  local first, last = small_int(a[3], 15), small_int(a[4], 15)
  if first == nil or last == nil then return nil, NOT_AN_INTEGER end
  local v = lookup(a[2]) or ''
  local size = #v
  if first < 0 and last < 0 and first > last then return '' end
  if first < 0 then first = size + first end
  if last < 0 then last = size + last end
  if first < 0 then first = 0 end
  if last < 0 then last = 0 end
  if last >= size then last = size - 1 end
  if first > last or size == 0 then return '' end
  return sub(v, first + 1, last + 1)
end)

define('setrange', 4, true, function(a)
  local offset = small_int(a[3], 15)
  if offset == nil then return nil, NOT_AN_INTEGER end
  if offset < 0 then return nil, 'ERR offset is out of range' end
  local key, value = a[2], a[4]
  local old = lookup(key)
  if #value == 0 then return old and #old or 0 end
  old = old or ''
  if #old < offset then old = old .. string.rep('\0', offset - #old) end
  local new = sub(old, 1, offset) .. value .. sub(old, offset + #value + 1)
  data[key] = new
  return #new
end)

define('append', 3, true, function(a)
  local key = a[2]
  local new = (lookup(key) or '') .. a[3]
  data[key] = new
  return #new
end)

define('mget', -2, false, function(a, n)
  local out = {}
  for i = 2, n do out[i - 1] = lookup(a[i]) or false end
  return out
end)

local function expire_command(name, seconds, relative)
  return function(a, n)
    local nx, xx, gt, lt = false, false, false, false
    for i = 4, n do
      local opt = lower(a[i])
      if opt == 'nx' then nx = true
      elseif opt == 'xx' then xx = true
      elseif opt == 'gt' then gt = true
      elseif opt == 'lt' then lt = true
      else return nil, 'ERR Unsupported option ' .. a[i] end
    end
    if nx and (xx or gt or lt) then
      return nil, 'ERR NX and XX, GT or LT options at the same time are not compatible'
    end
    if gt and lt then
      return nil, 'ERR GT and LT options at the same time are not compatible'
    end
    local base = relative and now_ms or 0
    local when = small_int(a[3], 12)
    if when == nil then
      local ok, w = py_expire_when(a[3], seconds, base, name)
      if not ok then return nil, w end
      when = w
    else
      if seconds then when = when * 1000 end
      when = when + base
    end
    local key = a[2]
    if lookup(key) == nil then return 0 end
    local current = expires[key]
    if nx and current ~= nil then return 0 end
    if xx and current == nil then return 0 end
    -- No expiry counts as an infinite one: GT never beats it, LT always does.
    if gt and (current == nil or when <= current) then return 0 end
    if lt and current ~= nil and when >= current then return 0 end
    if when <= now_ms then
      remove(key)
    else
      expires[key] = when
    end
    return 1
  end
end

define('expire', -3, true, expire_command('expire', true, true))
define('pexpire', -3, true, expire_command('pexpire', false, true))
define('expireat', -3, true, expire_command('expireat', true, false))
define('pexpireat', -3, true, expire_command('pexpireat', false, false))

define('persist', 2, true, function(a)
  local key = a[2]
  if lookup(key) == nil or expires[key] == nil then return 0 end
  expires[key] = nil
  return 1
end)

local function ttl_command(in_ms)
  return function(a)
    local key = a[2]
    if lookup(key) == nil then return -2 end
    local e = expires[key]
    if e == nil then return -1 end
    local ttl = e - now_ms
    if ttl < 0 then ttl = 0 end
    if in_ms then return ttl end
    return floor((ttl + 500) / 1000)
  end
end

local pttl_command = ttl_command(true)
define('pttl', 2, false, pttl_command)
define('ttl', 2, false, ttl_command(false))

define('time', 1, false, function()
  local us = floor(now_exact * 1000)
  local s = floor(us / 1000000)
  return {fmt('%.0f', s), fmt('%.0f', us - s * 1000000)}
end)

-- INCR and friends keep the key's TTL, reply with an integer and store its
-- decimal text. Small operands are added here; the rest is exact in Python.
local function add_to_key(key, arg, mode, delta)
  local old = lookup(key)
  local base = 0
  if old ~= nil then base = small_int(old, 15) end
  if delta == nil or base == nil then
    local ok, text = py_incrby(old, arg, mode)
    if not ok then return nil, text end
    data[key] = text
    return tonumber(text)
  end
  local result = base + delta
  data[key] = fmt('%.0f', result)
  return result
end

define('incr', 2, true, function(a) return add_to_key(a[2], '1', 'incrby', 1) end)
define('decr', 2, true, function(a) return add_to_key(a[2], '-1', 'incrby', -1) end)
define('incrby', 3, true, function(a)
  return add_to_key(a[2], a[3], 'incrby', small_int(a[3], 15))
end)
define('decrby', 3, true, function(a)
  local delta = small_int(a[3], 15)
  if delta ~= nil then delta = -delta end
  return add_to_key(a[2], a[3], 'decrby', delta)
end)

define('incrbyfloat', 3, true, function(a)
  local key = a[2]
  local ok, text = py_incrbyfloat(lookup(key), a[3])
  if not ok then return nil, text end
  data[key] = text
  return text
end)

-- redis.call/redis.pcall: argument checks in Redis's order, then the command.
local NO_ARGS = 'ERR Please specify at least one argument for this redis lib call'
local BAD_ARG = 'ERR Lua redis lib command arguments must be strings or integers'

local function prepare(a, n)
  if n == 0 then return nil, NO_ARGS end
  for i = 1, n do
    local v = a[i]
    if type(v) ~= 'string' then
      -- Redis formats numbers with %.17g here, not Lua's lossy %.14g.
      if type(v) ~= 'number' then return nil, BAD_ARG end
      a[i] = fmt('%.17g', v)
    end
  end
  local spec = commands[a[1]] or commands[lower(a[1])]
  if spec == nil then return nil, 'ERR Unknown Redis command called from script' end
  local arity = spec[2]
  if (arity > 0 and n ~= arity) or n < -arity then
    return nil, 'ERR Wrong number of args calling Redis command from script'
  end
  if read_only and spec[3] then
    return nil, 'ERR Write commands are not allowed from read-only scripts.'
  end
  return spec[1]
end

local function redis_call(...)
  local a, n = {...}, select('#', ...)
  local handler, err = prepare(a, n)
  if handler ~= nil then
    local reply
    reply, err = handler(a, n)
    if reply ~= nil then return reply end
  end
  error({err = err, ignore_error_stats_update = true})
end

local function redis_pcall(...)
  local a, n = {...}, select('#', ...)
  local handler, err = prepare(a, n)
  if handler ~= nil then
    local reply
    reply, err = handler(a, n)
    if reply ~= nil then return reply end
  end
  return {err = err, ignore_error_stats_update = true}
end

local function one_string(...)
  return select('#', ...) == 1 and type((...)) == 'string'
end

local BAD_REPLY_ARGS = 'ERR wrong number or type of arguments'

local function redis_error_reply(...)
  if not one_string(...) then return {err = BAD_REPLY_ARGS} end
  local s = ...
  -- luaPushErrorBuff: "-CODE msg" keeps its code, anything else gets ERR.
  if byte(s, 1) ~= 45 then s = '-' .. s end
  local space = find(s, ' ', 1, true)
  local code, msg
  if space == nil then
    code, msg = 'ERR', sub(s, 2)
  else
    code, msg = sub(s, 2, space - 1), sub(s, space + 1)
  end
  msg = gsub(gsub(msg, '^[\r\n]+', ''), '[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end

local function redis_status_reply(...)
  if not one_string(...) then return {err = BAD_REPLY_ARGS} end
  return {ok = (...)}
end

local function redis_sha1hex(...)
  if select('#', ...) ~= 1 then error('wrong number of arguments', 0) end
  local s = ...
  if type(s) == 'number' then
    s = tostring(s)
  elseif type(s) ~= 'string' then
    s = ''
  end
  return py_sha1hex(s)
end

local function redis_log(...)
  if select('#', ...) < 2 then
    error('redis.log() requires two arguments or more.', 0)
  end
  local level = tonumber((...))
  if level == nil then error('First argument must be a number (log level).', 0) end
  if level < 0 or level >= 4 then error('Invalid debug level.', 0) end
end

local function redis_setresp(...)
  if select('#', ...) ~= 1 then error('redis.setresp() requires one argument.', 0) end
  local v = tonumber((...))
  if v ~= 2 and v ~= 3 then error('RESP version must be 2 or 3.', 0) end
  if v == 3 then error('the ratescript emulator only emulates RESP2 replies', 0) end
end

local function redis_acl_check_cmd(name)
  if type(name) ~= 'string' or commands[lower(name)] == nil then
    error('Invalid command passed to redis.acl_check_cmd()', 0)
  end
  return true
end

-- Redis 7.0 replaces pcall so that a caught error table comes back as its
-- err string (redis.call raises tables; scripts expect text).
local function pcall_result(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then return false, m end
  end
  return false, e
end

local function script_pcall(f, ...)
  return pcall_result(pcall(f, ...))
end

-- Read-only tables, as in Redis 7.0: empty proxies whose writes raise at the
-- script's line. The only other ways to write into a table from a script are
-- rawset, table.insert and setmetatable, and the sandbox's versions refuse
-- proxies too, so nothing a script does survives into the next call.
local is_readonly = {}
local READONLY = 'Attempt to modify a readonly table'
local function deny_write()
  error(READONLY, 2)
end
local function readonly(real, metatable_view)
  local proxy = {}
  if metatable_view == nil then metatable_view = false end
  setmetatable(proxy, {__index = real, __newindex = deny_write, __metatable = metatable_view})
  is_readonly[proxy] = true
  return proxy
end
local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- These call the real functions under their own names (and not as tail calls)
-- so that Lua's own "bad argument #1 to 'rawset'" texts come out unchanged; the
-- error handler moves their position from this chunk to the script's line.
local insert = table.insert
local function script_rawset(t, k, v)
  if is_readonly[t] then error(READONLY, 0) end
  rawset(t, k, v)
  return t
end
local function script_setmetatable(t, mt)
  if is_readonly[t] then error(READONLY, 0) end
  setmetatable(t, mt)
  return t
end
local function script_insert(t, ...)
  if is_readonly[t] then error(READONLY, 0) end
  insert(t, ...)
end

local redis_lib = readonly({
  call = redis_call,
  pcall = redis_pcall,
  error_reply = redis_error_reply,
  status_reply = redis_status_reply,
  sha1hex = redis_sha1hex,
  log = redis_log,
  setresp = redis_setresp,
  set_repl = function() end,
  replicate_commands = function() return true end,
  breakpoint = function() return false end,
  debug = function() end,
  acl_check_cmd = redis_acl_check_cmd,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
  REDIS_VERSION = '7.0.15', REDIS_VERSION_NUM = 458767,
})

-- struct, for the formats compiled scripts use: little-endian doubles only.
local function struct_format(format)
  if type(format) ~= 'string' or not find(format, '^<d+$') then
    error('struct format ' .. tostring(format) .. ' is not emulated', 2)
  end
end
local struct_lib = readonly({
  pack = function(format, ...)
    struct_format(format)
    local count = select('#', ...)
    if count ~= #format - 1 then error("bad argument to 'pack'", 2) end
    local printed = {...}
    for i = 1, count do
      local x = tonumber(printed[i])   -- as luaL_checknumber: numbers and numeric strings
      if x == nil then error("bad argument #" .. (i + 1) .. " to 'pack'", 2) end
      printed[i] = fmt('%.17g', x)   -- exact, and -0 keeps its sign
    end
    return py_struct_pack(format, unpack(printed, 1, count))
  end,
  unpack = function(format, data, init)
    struct_format(format)
    init = init or 1
    if type(data) ~= 'string' or init < 1 or init - 1 + 8 * (#format - 1) > #data then
      error('data string too short', 2)
    end
    return py_struct_unpack(format, data, init)
  end,
})

local globals = {
  string = readonly(copy(string)),
  math = readonly(copy(math)),
  table = readonly((function()
    local t = copy(table)
    t.insert = script_insert
    return t
  end)()),
  redis = redis_lib,
  struct = struct_lib,
  tonumber = tonumber, tostring = tostring, type = type,
  pairs = pairs, ipairs = ipairs, next = next, select = select, unpack = unpack,
  error = error, pcall = script_pcall, xpcall = xpcall, assert = assert,
  rawget = rawget, rawset = script_rawset, rawequal = rawequal,
  setmetatable = script_setmetatable, getmetatable = getmetatable,
  _VERSION = _VERSION,
}
setmetatable(globals, {__index = function(_, name)
  error("Script attempted to access nonexistent global variable '"
        .. tostring(name) .. "'", 2)
end})
-- getmetatable(_G) is a table in Redis (its protection); a read-only stand-in here.
local env = readonly(globals, readonly({}))
globals._G = env

-- "ratescript-emulator:123: msg": Lua put a position inside this chunk on an
-- error (a Lua library function called from one of our wrappers).
local INTERNAL_POSITION = '^' .. gsub(sub(INTERNAL, 2), '%p', '%%%0') .. ':%d+: (.*)$'

-- Redis's __redis__err__handler: blame the frame that raised, or its caller when
-- that is a C function; frames of this chunk stand in for Redis's C code, so they
-- are skipped, and a position inside them is replaced by the script's.
local function frame_after(level)
  local info = getinfo(level, 'Sl')
  while info ~= nil and (info.source == INTERNAL or info.what == 'tail') do
    level = level + 1
    info = getinfo(level, 'Sl')
  end
  return level, info
end

local function on_error(err)
  local level, info = frame_after(2)
  if info ~= nil and info.what == 'C' then
    level, info = frame_after(level + 1)
  end
  if type(err) == 'string' and info ~= nil and info.currentline > 0 then
    local rest = match(err, INTERNAL_POSITION)
    if rest ~= nil then err = sub(info.source, 2) .. ':' .. info.currentline .. ': ' .. rest end
  end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if info ~= nil then
    err.source = info.source
    err.line = info.currentline
  end
  return err
end

local function textual(v)
  local t = type(v)
  return t == 'string' or t == 'number'
end

local function failure(e)
  if type(e) ~= 'table' then   -- e.g. "error in error handling"
    return true, 1, clean('ERR ' .. tostring(e))
  end
  local msg = e.err
  if not textual(msg) then
    return true, 1, "ERR the script raised an error table without an 'err' string"
      .. ' (Redis 7.0.15 crashes on this)'
  end
  msg = clean(tostring(msg))
  local source, line = e.source, e.line
  if textual(source) and textual(line) then
    return true, 2, msg, tostring(source), tostring(line)
  end
  return true, 1, msg
end

-- (long long) of a double on x86-64: truncation; NaN, +-inf and out-of-range
-- values all become INT64_MIN.
local function to_integer(x)
  if x ~= x or x >= TWO63 or x < INT64_MIN then return INT64_MIN end
  if x >= 0 then return floor(x) end
  return ceil(x)
end

local function format_double(x)
  if x == 1 / 0 then return 'inf' end
  if x == -1 / 0 then return '-inf' end
  return fmt('%.17g', x)
end

-- The slow path: a flat token stream Python decodes without touching Lua.
--   string -> bulk, number -> integer, false -> nil,
--   true, n (n >= 0) -> array of n, true, -1, s -> status, true, -2, s -> error.
local encode
local function encode_items(out, n, depth, items, count)
  out[n + 1] = true
  out[n + 2] = count
  n = n + 2
  for i = 1, count do n = encode(items[i], out, n, depth + 1) end
  return n
end

encode = function(v, out, n, depth)
  local t = type(v)
  if t == 'string' then
    out[n + 1] = v
    return n + 1
  elseif t == 'number' then
    out[n + 1] = to_integer(v)
    return n + 1
  elseif t == 'boolean' then
    out[n + 1] = v and 1 or false
    return n + 1
  elseif t ~= 'table' then
    out[n + 1] = false
    return n + 1
  end
  if depth > STACK_LIMIT then
    out[n + 1], out[n + 2], out[n + 3] = true, -2, 'ERR reached lua stack limit'
    return n + 3
  end
  local f = rawget(v, 'err')
  if type(f) == 'string' then
    out[n + 1], out[n + 2], out[n + 3] = true, -2, clean(f)
    return n + 3
  end
  f = rawget(v, 'ok')
  if type(f) == 'string' then
    out[n + 1], out[n + 2], out[n + 3] = true, -1, clean(f)
    return n + 3
  end
  f = rawget(v, 'double')
  if type(f) == 'number' then
    out[n + 1] = format_double(f)
    return n + 1
  end
  f = rawget(v, 'map')
  if type(f) == 'table' then   -- RESP2 has no maps: key, value, key, value...
    local items, count = {}, 0
    for k, x in next, f do
      items[count + 1], items[count + 2] = k, x
      count = count + 2
    end
    return encode_items(out, n, depth, items, count)
  end
  f = rawget(v, 'set')
  if type(f) == 'table' then   -- RESP2 has no sets: the members
    local items, count = {}, 0
    for k in next, f do
      count = count + 1
      items[count] = k
    end
    return encode_items(out, n, depth, items, count)
  end
  f = rawget(v, 'big_number')
  if type(f) == 'string' then
    out[n + 1] = f
    return n + 1
  end
  f = rawget(v, 'verbatim_string')
  if type(f) == 'table' then
    local format, s = rawget(f, 'format'), rawget(f, 'string')
    if type(format) == 'string' and type(s) == 'string' then
      out[n + 1] = s
      return n + 1
    end
  end
  local count = 0
  while rawget(v, count + 1) ~= nil do count = count + 1 end
  return encode_items(out, n, depth, v, count)
end

-- The reply protocol with Python (the first value says what follows):
--   bytes -> bulk; int -> integer; None -> nil;
--   False, s1, s2, ... -> array of bulk strings (the fast path; False alone is []);
--   True, kind, ... -> error without position (1) or with it (2), status (3),
--   token stream unpacked (4) or as a table with its length (5).
local function convert(res)
  local t = type(res)
  if t == 'string' then return res end
  if t == 'table' then
    local f = rawget(res, 'err')
    if type(f) == 'string' then return true, 1, clean(f) end
    f = rawget(res, 'ok')
    if type(f) == 'string' then return true, 3, clean(f) end
    if rawget(res, 'double') == nil and rawget(res, 'map') == nil
        and rawget(res, 'set') == nil and rawget(res, 'big_number') == nil
        and rawget(res, 'verbatim_string') == nil then
      local i = 1
      local v = rawget(res, 1)
      while type(v) == 'string' do
        i = i + 1
        v = rawget(res, i)
      end
      if v == nil and i <= UNPACK_LIMIT then
        if i == 1 then return false end
        return false, unpack(res, 1, i - 1)
      end
    end
    local out = {}
    local n = encode(res, out, 0, 1)
    if n <= UNPACK_LIMIT then return true, 4, unpack(out, 1, n) end
    return true, 5, out, n
  end
  if t == 'number' then return to_integer(res) end
  if res == true then return 1 end
  return nil
end

local function split_one(key, ...)   -- the common single-key call, without a loop
  return {key}, {...}
end

local function run(fn, no_writes, clock, nkeys, ...)
  set_clock(clock)
  read_only = no_writes
  if nkeys == 1 then
    globals.KEYS, globals.ARGV = split_one(...)
  elseif nkeys == 0 then
    globals.KEYS, globals.ARGV = {}, {...}
  else
    local all = {...}
    local keys, argv = {}, {}
    for i = 1, nkeys do keys[i] = all[i] end
    for i = nkeys + 1, select('#', ...) do argv[i - nkeys] = all[i] end
    globals.KEYS, globals.ARGV = keys, argv
  end
  local ok, res = xpcall(fn, on_error)
  if not ok then return failure(res) end
  return convert(res)
end

local function compile(body)
  local fn, err = loadstring(body, '@user_script')
  if fn == nil then return nil, err end
  return string.dump(fn)
end

local function instantiate(binary)
  local fn = assert(loadstring(binary, '@user_script'))
  setfenv(fn, env)
  return fn
end

-- The keyspace as Python sees it, under the same expiry rules.
local function kv_get(key, clock)
  set_clock(clock)
  return lookup(key)
end

local function kv_set(key, value, px, clock)
  set_clock(clock)
  data[key] = value
  if px ~= nil then expires[key] = now_ms + px else expires[key] = nil end
end

local function kv_delete(key)
  remove(key)
end

local function kv_pttl(key, clock)
  set_clock(clock)
  return pttl_command({'pttl', key})
end

local function kv_keys(clock)
  set_clock(clock)
  local live, n = {}, 0
  for key in pairs(data) do
    if lookup(key) ~= nil then
      n = n + 1
      live[n] = key
    end
  end
  return live, n
end

local function kv_flush()
  data, expires = {}, {}
end

return {run = run, compile = compile, instantiate = instantiate, get = kv_get, set = kv_set,
        delete = kv_delete, pttl = kv_pttl, keys = kv_keys, flush = kv_flush}
"""


# --- exact 64-bit integer arithmetic, for operands Lua's doubles cannot hold ---

_INTEGER_RE = re.compile(rb"-?[1-9][0-9]*|0")


def _string2ll(text: bytes) -> int | None:
    """Parse like Redis's string2ll: strict decimal, at most 20 bytes, in int64 range."""
    if len(text) > 20 or not _INTEGER_RE.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _wrap_int64(value: int) -> int:
    """Two's-complement wrap, as Redis's signed additions overflow on x86-64."""
    return (value + 2**63) % 2**64 - 2**63


def _set_expire(arg: bytes, seconds: bool, relative: bool, now_ms: float) -> tuple[bool, Any]:
    """SET's EX/PX/EXAT/PXAT argument → absolute expiry ms, with Redis's checks."""
    value = _string2ll(arg)
    if value is None:
        return False, _NOT_AN_INTEGER
    invalid = b"ERR invalid expire time in 'set' command"
    if value <= 0 or (seconds and value > _INT64_MAX // 1000):
        return False, invalid
    if seconds:
        value *= 1000
    if relative:
        value = _wrap_int64(value + int(now_ms))
    if value <= 0:
        return False, invalid
    return True, value


def _expire_when(arg: bytes, seconds: bool, base_ms: float, name: bytes) -> tuple[bool, Any]:
    """EXPIRE-family argument → absolute expiry ms (negative allowed), with the
    overflow checks of expireGenericCommand."""
    value = _string2ll(arg)
    if value is None:
        return False, _NOT_AN_INTEGER
    invalid = b"ERR invalid expire time in '" + name + b"' command"
    if seconds:
        # C's LLONG_MIN / 1000 truncates toward zero.
        if value > _INT64_MAX // 1000 or value < -(2**63 // 1000):
            return False, invalid
        value *= 1000
    base = int(base_ms)
    if value > _INT64_MAX - base:
        return False, invalid
    return True, value + base


def _incrby(old: bytes | None, arg: bytes, mode: bytes) -> tuple[bool, bytes]:
    """INCRBY/DECRBY on exact integers, with Redis's checks in Redis's order."""
    increment = _string2ll(arg)
    if increment is None:
        return False, _NOT_AN_INTEGER
    if mode == b"decrby":
        if increment == _INT64_MIN:
            return False, b"ERR decrement would overflow"
        increment = -increment
    value = 0 if old is None else _string2ll(old)
    if value is None:
        return False, _NOT_AN_INTEGER
    result = value + increment
    if not _INT64_MIN <= result <= _INT64_MAX:
        return False, b"ERR increment or decrement would overflow"
    return True, b"%d" % result


# --- x87 long double, because INCRBYFLOAT computes in it ---------------------
# Redis parses both operands with strtold, adds them as 80-bit long doubles and
# prints "%.17Lf" with trailing zeros trimmed. Doing the same in binary64 gives
# different text (0.1 + 0.2 is "0.3" in Redis, 0.30000000000000004 in doubles),
# so the arithmetic here is exact with Fraction and rounded to a 64-bit significand.

_X87_QUANTUM_MIN = -16445  # exponent of the smallest subnormal
_X87_MAX = Fraction((2**64 - 1) * 2 ** (16383 - 63))
_DECIMAL_RE = re.compile(rb"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_HEX_RE = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?")
_INF_RE = re.compile(rb"[+-]?(?:inf|infinity)", re.IGNORECASE)


def _round_x87(value: Fraction) -> Fraction | None:
    """Round to the nearest x87 extended value (ties to even); None on overflow."""
    if value == 0:
        return value
    magnitude = abs(value)
    num, den = magnitude.numerator, magnitude.denominator
    exponent = num.bit_length() - den.bit_length()
    if (num << max(0, -exponent)) < (den << max(0, exponent)):
        exponent -= 1
    quantum = max(exponent - 63, _X87_QUANTUM_MIN)
    scaled = round(magnitude / Fraction(2) ** quantum)
    rounded = Fraction(scaled) * Fraction(2) ** quantum
    if rounded > _X87_MAX:
        return None
    return rounded if value > 0 else -rounded


def _parse_digits(digits: bytes, radix: int) -> int:
    """int(digits, radix) in slices: Python refuses single decimal conversions
    above 4300 digits, and Redis accepts operands of up to 5119 bytes."""
    value = 0
    for start in range(0, len(digits), 1000):
        piece = digits[start : start + 1000]
        value = value * radix ** len(piece) + int(piece, radix)
    return value


def _decimal_digits(value: int) -> str:
    """str(value) in slices, for the same reason as ``_parse_digits``."""
    pieces: list[str] = []
    while value >= 10**1000:
        value, low = divmod(value, 10**1000)
        pieces.append(str(low).rjust(1000, "0"))
    pieces.append(str(value))
    return "".join(reversed(pieces))


def _strtold(text: bytes) -> Fraction | float | None:
    """Redis's string2ld: the x87 value of ``text``, ±inf, or None when rejected."""
    # string2ld also insists that strtold consumed every byte, so a NUL inside fails.
    if not text or len(text) >= 5 * 1024 or text[:1].isspace() or b"\0" in text:
        return None
    if _INF_RE.fullmatch(text):
        return float("-inf") if text.startswith(b"-") else float("inf")
    radix = 16
    match = _HEX_RE.fullmatch(text)
    if not match or not (match.group(2) or match.group(3)):
        radix = 10
        match = _DECIMAL_RE.fullmatch(text)
        if not match or not (match.group(2) or match.group(3)):
            return None
    sign, whole, frac, exp = match.groups()
    frac = frac or b""
    significant = (whole + frac).lstrip(b"0")
    if not significant:
        return Fraction(0)
    exp_text = exp or b"0"
    exp_digits = exp_text.lstrip(b"+-").lstrip(b"0") or b"0"
    if len(exp_digits) > 9:  # absurd exponent: certain overflow or underflow
        return None
    exponent = -int(exp_digits) if exp_text.startswith(b"-") else int(exp_digits)
    mantissa = _parse_digits(significant, radix)
    if radix == 16:
        # value = mantissa * 2**(exponent - 4*len(frac)); exponent counts in bits.
        power, base, length = exponent - 4 * len(frac), 2, mantissa.bit_length()
        top = 16384  # 2**16384 is past the largest x87 value
        bottom = -16446  # below half the smallest subnormal
    else:
        power, base, length = exponent - len(frac), 10, len(significant)
        top, bottom = 4933, -4952
    # mantissa * base**power lies in [base**(length+power-1), base**(length+power)).
    if length + power - 1 > top or length + power < bottom:
        return None
    rounded = _round_x87(Fraction(mantissa) * Fraction(base) ** power)
    if rounded is None or rounded == 0:  # strtold's ERANGE, which string2ld rejects
        return None
    return -rounded if sign == b"-" else rounded


def _format_long_double(value: Fraction) -> bytes:
    """printf("%.17Lf") with trailing zeros (and a bare '.') removed, and "-0" as "0"."""
    digits = _decimal_digits(round(abs(value) * 10**17)).rjust(18, "0")
    text = f"{'-' if value < 0 else ''}{digits[:-17]}.{digits[-17:]}".rstrip("0").rstrip(".")
    return b"0" if text == "-0" else text.encode()


def _incrbyfloat(old: bytes | None, arg: bytes) -> tuple[bool, bytes]:
    """INCRBYFLOAT exactly as Redis 7.0 computes it on x86-64."""
    value = Fraction(0) if old is None else _strtold(old)
    increment = _strtold(arg)
    if value is None or increment is None:
        return False, _NOT_A_FLOAT
    if isinstance(value, float) or isinstance(increment, float):
        return False, b"ERR increment would produce NaN or Infinity"
    total = _round_x87(value + increment)
    if total is None:
        return False, b"ERR increment would produce NaN or Infinity"
    return True, _format_long_double(total)


def _struct_pack(format: bytes, *printed: bytes) -> bytes:
    """Redis's ``struct.pack`` of doubles; the numbers arrive as ``%.17g`` text."""
    return struct.pack(format.decode("ascii"), *map(float, printed))


def _struct_unpack(format: bytes, data: bytes, init: int) -> tuple[Any, ...]:
    """Redis's ``struct.unpack``: the values, then the position after them (1-based)."""
    layout = format.decode("ascii")
    values = struct.unpack_from(layout, data, int(init) - 1)
    return (*values, int(init) + struct.calcsize(layout))


def _sha1hex(data: bytes) -> bytes:
    return hashlib.sha1(data).hexdigest().encode()


# --- the Python face ----------------------------------------------------------


def _wall_clock_ms() -> float:
    return time.time() * 1000.0


def _as_bytes(value: bytes | str | int | float) -> bytes:
    """Encode an argument the way redis-py does (str → UTF-8, numbers → repr)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        raise TypeError("booleans are not valid Redis arguments (redis-py rejects them too)")
    if isinstance(value, (int, float)):
        return repr(value).encode()
    raise TypeError(f"invalid Redis argument type {type(value).__name__}")


def _text(value: Any) -> str:
    """Error text as redis-py decodes it."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _decode_tokens(tokens: Sequence[Any]) -> ReplyElement:
    """Rebuild a nested reply from the Lua side's token stream (see ``encode``).

    Iterative, because Redis allows nesting ~8000 deep and Python's recursion
    limit is lower.
    """
    root: list[ReplyElement] = []
    stack: list[tuple[list[ReplyElement], list[int]]] = [(root, [1])]
    it = iter(tokens)
    for token in it:
        size = 0
        value: ReplyElement
        if token is True:
            marker = next(it)
            if marker >= 0:
                value, size = [], marker
            elif marker == -1:
                value = next(it)
            else:
                value = LuaReplyError(_text(next(it)))
        elif token is False:
            value = None
        elif isinstance(token, bytes):
            value = token
        else:
            value = int(token)
        container, remaining = stack[-1]
        container.append(value)
        remaining[0] -= 1
        while stack and stack[-1][1][0] == 0:
            stack.pop()
        if size:
            assert isinstance(value, list)
            stack.append((value, [size]))
    return root[0]


class _ChunkReader:
    """Walks a Lua 5.1 binary chunk (lundump.c's layout) to find its instructions."""

    def __init__(self, dump: bytes) -> None:
        if dump[:5] != b"\x1bLua\x51" or dump[6] != 1:
            raise ValueError("not a little-endian Lua 5.1 binary chunk")
        self.dump = dump
        self.int_size, self.size_t_size = dump[7], dump[8]
        self.number_size = dump[10]
        self.pos = 12
        self.code_spans: list[tuple[int, int]] = []  # (offset, count) per function

    def _int(self, size: int) -> int:
        value = int.from_bytes(self.dump[self.pos : self.pos + size], "little")
        self.pos += size
        return value

    def _string(self) -> None:
        size = self._int(self.size_t_size)
        self.pos += size

    def function(self) -> None:
        self._string()  # source
        self.pos += 2 * self.int_size + 4  # line range, nups, params, vararg, stack
        count = self._int(self.int_size)
        self.code_spans.append((self.pos, count))
        self.pos += 4 * count
        for _ in range(self._int(self.int_size)):  # constants
            kind = self.dump[self.pos]
            self.pos += 1
            if kind == 1:
                self.pos += 1
            elif kind == 3:
                self.pos += self.number_size
            elif kind == 4:
                self._string()
        for _ in range(self._int(self.int_size)):  # nested functions
            self.function()
        lines = self._int(self.int_size)  # line info: one int per instruction
        self.pos += self.int_size * lines
        for _ in range(self._int(self.int_size)):  # local names
            self._string()
            self.pos += 2 * self.int_size
        for _ in range(self._int(self.int_size)):  # upvalue names
            self._string()


_OP_CALL, _OP_TAILCALL = 28, 29


def _without_tail_calls(dump: bytes) -> bytes:
    """Turn every ``return f(...)`` (OP_TAILCALL) into a plain call and return.

    Why: in Redis, ``redis.call`` is a C function, and a tail call to a C function
    keeps the script's frame, so an error names the script line. Our ``redis.call``
    is Lua, and a Lua tail call would replace that frame ("=(tail call):-1"). The
    cost is that unbounded tail recursion overflows the stack here and not in Redis.
    """
    reader = _ChunkReader(dump)
    reader.function()
    patched = bytearray(dump)
    for offset, count in reader.code_spans:
        for at in range(offset, offset + 4 * count, 4):
            if patched[at] & 0x3F == _OP_TAILCALL:
                patched[at] = (patched[at] & 0xC0) | _OP_CALL
    return bytes(patched)


def _split_shebang(body: bytes) -> tuple[bytes, bool]:
    """Validate a ``#!lua flags=...`` first line like Redis 7.0; return the code to
    compile (the shebang line blanked, so line numbers stay) and whether the
    script declared ``no-writes``."""
    if not body.startswith(b"#!"):
        return body, False
    end = body.find(b"\n")
    if end < 0:
        raise LuaReplyError("ERR Invalid script shebang")
    parts = body[:end].split()
    if not parts:
        raise LuaReplyError("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise LuaReplyError(f"ERR Unexpected engine in script shebang: {_text(parts[0])}")
    known = {b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster", b"allow-cross-slot-keys"}
    flags: set[bytes] = set()
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise LuaReplyError(f"ERR Unknown lua shebang option: {_text(part)}")
        for flag in part[len(b"flags=") :].split(b","):
            if flag not in known:
                raise LuaReplyError(f"ERR Unexpected flag in script shebang: {_text(flag)}")
            flags.add(flag)
    return body[end:], b"no-writes" in flags


class LuaRedisEmulator:
    """A Redis 7.0 scripting engine and string keyspace, in process.

    Args:
        clock_ms: returns the current time in milliseconds (may be fractional). It
            is read once per call and drives key expiry, ``PTTL`` and ``TIME``; pass
            a fake clock to test expiry without sleeping. Defaults to the wall clock.
    """

    def __init__(self, clock_ms: Callable[[], float] | None = None) -> None:
        self._clock: Callable[[], float] = clock_ms if clock_ms is not None else _wall_clock_ms
        self._lua: Any = lua51.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
        )
        loader = self._lua.eval("loadstring")
        chunk = loader(_CORE_LUA.encode(), _CORE_CHUNK_NAME)
        core = chunk(
            _sha1hex,
            _set_expire,
            _expire_when,
            _incrby,
            _incrbyfloat,
            _struct_pack,
            _struct_unpack,
            _CORE_CHUNK_NAME,
            _UNPACK_LIMIT,
        )
        self._run: Any = core[b"run"]
        self._compile: Any = core[b"compile"]
        self._instantiate: Any = core[b"instantiate"]
        self._kv_get: Any = core[b"get"]
        self._kv_set: Any = core[b"set"]
        self._kv_delete: Any = core[b"delete"]
        self._kv_pttl: Any = core[b"pttl"]
        self._kv_keys: Any = core[b"keys"]
        self._kv_flush: Any = core[b"flush"]
        # sha → (compiled function, declared no-writes)
        self._scripts: dict[str, tuple[Any, bool]] = {}

    # -- scripts ---------------------------------------------------------------

    def script_load(self, source: str | bytes) -> str:
        """Compile ``source`` once and cache it by SHA1, like ``SCRIPT LOAD``.

        Raises ``LuaReplyError`` ("ERR Error compiling script ...") on a syntax error.
        """
        body = source.encode() if isinstance(source, str) else source
        sha = hashlib.sha1(body).hexdigest()
        if sha not in self._scripts:
            code, no_writes = _split_shebang(body)
            result = self._compile(code)
            if isinstance(result, tuple):
                detail = _text(result[1]).replace("\r", " ").replace("\n", " ")
                raise LuaReplyError(f"ERR Error compiling script (new function): {detail}")
            function = self._instantiate(_without_tail_calls(result))
            self._scripts[sha] = (function, no_writes)
        return sha

    def evalsha(
        self,
        sha: str,
        keys: Sequence[bytes | str],
        args: Sequence[bytes | str | int | float],
    ) -> Reply:
        """Run a loaded script, like ``EVALSHA sha len(keys) *keys *args``.

        Raises ``NoScriptError`` for an unknown SHA and ``LuaReplyError`` for an
        error reply (a failed ``redis.call``, a runtime error, ``{err=...}``).
        """
        script = self._scripts.get(sha)
        if script is None:
            script = self._scripts.get(sha.lower()) if len(sha) == 40 else None
            if script is None:
                raise NoScriptError(_NOSCRIPT)
        res = self._run(
            script[0],
            script[1],
            self._clock(),
            len(keys),
            *[k if type(k) is bytes else _as_bytes(k) for k in keys],
            *[a if type(a) is bytes else _as_bytes(a) for a in args],
        )
        kind = type(res)
        if kind is bytes:
            return res  # type: ignore[no-any-return]
        if kind is tuple:
            if res[0] is False:
                return list(res[1:])
            return self._slow_reply(res, sha)
        if kind is int:
            return res  # type: ignore[no-any-return]
        if res is None:
            return None
        if res is False:
            return []
        return int(res)

    def eval(
        self,
        source: str | bytes,
        keys: Sequence[bytes | str],
        args: Sequence[bytes | str | int | float],
    ) -> Reply:
        """``EVAL``: load (compiling only the first time) and run."""
        return self.evalsha(self.script_load(source), keys, args)

    def script_flush(self) -> None:
        """Forget every loaded script, like ``SCRIPT FLUSH``."""
        self._scripts.clear()

    @staticmethod
    def _slow_reply(res: tuple[Any, ...], sha: str) -> Reply:
        kind = res[1]
        if kind == 3:
            return res[2]  # type: ignore[no-any-return]
        if kind == 4:
            return _decode_tokens(res[2:])  # type: ignore[return-value]
        if kind == 5:
            table, count = res[2], res[3]
            return _decode_tokens([table[i] for i in range(1, count + 1)])  # type: ignore[return-value]
        if kind == 1:
            raise LuaReplyError(_text(res[2]))
        raise LuaReplyError(f"{_text(res[2])} script: {sha}, on {_text(res[3])}:{_text(res[4])}.")

    # -- the keyspace, for tests and the conformance kit ----------------------------

    def get(self, key: bytes | str) -> bytes | None:
        """The value at ``key``, or None when it is missing or expired."""
        return self._kv_get(_as_bytes(key), self._clock())  # type: ignore[no-any-return]

    def set(self, key: bytes | str, value: bytes | str, px: int | None = None) -> None:
        """Store ``value``; ``px`` is a time to live in ms (None: no expiry)."""
        if px is not None and px <= 0:
            raise ValueError("px must be a positive number of milliseconds")
        self._kv_set(_as_bytes(key), _as_bytes(value), px, self._clock())

    def delete(self, key: bytes | str) -> None:
        """Remove ``key`` if present."""
        self._kv_delete(_as_bytes(key))

    def pttl(self, key: bytes | str) -> int:
        """Milliseconds to live: -2 when missing, -1 when it never expires."""
        return int(self._kv_pttl(_as_bytes(key), self._clock()))

    def keys(self) -> list[bytes]:
        """Every live key, in no particular order."""
        table, count = self._kv_keys(self._clock())
        return [table[i] for i in range(1, count + 1)]

    def flushall(self) -> None:
        """Empty the keyspace (loaded scripts stay, as with ``FLUSHALL``)."""
        self._kv_flush()
