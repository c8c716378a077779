-- ratescript script `fixed_window` from ratescript.builtin_scripts, line 49
-- generated code: do not edit
local _rs_fmt = string.format
local _rs_match = string.match
local _rs_floor = math.floor
local _rs_ceil = math.ceil
local _rs_min = math.min
local _rs_max = math.max
local _rs_pack = struct.pack
local _now = tonumber(ARGV[1])
if not _now then
  local t = redis.call('TIME')
  _now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local limit = tonumber(ARGV[2]) or error('ratescript: argument limit is not a number')
local period_ms = tonumber(ARGV[3]) or error('ratescript: argument period_ms is not a number')
local cost = tonumber(ARGV[4]) or error('ratescript: argument cost is not a number')
local now, start, w__start, w__count, used, reset
local _r
now = _now
start = (_rs_floor((period_ms ~= 0 and now / period_ms or error('ratescript: division by zero'))) * period_ms)
_r = redis.call('GET', KEYS[1])
if _r then
  w__start, w__count = _rs_match(_r, '^([0-9.e+-]*):([0-9.e+-]*)$')
  w__start, w__count = tonumber(w__start), tonumber(w__count)
  if not (w__start and w__count) or w__start - w__start ~= 0 or w__count - w__count ~= 0 then
    error('ratescript: corrupt value at key ' .. KEYS[1] .. ': expected 2 numbers', 0)
  end
else
  w__start, w__count = start, 0
end
used = ((w__start == start) and w__count or 0)
reset = ((start + period_ms) - now)
if ((used + cost) <= limit) then
  do
    local _v0, _v1 = start, (used + cost)
    if _v0 - _v0 ~= 0 or _v1 - _v1 ~= 0 then
      error('ratescript: line 61: cannot store a number that is not finite', 0)
    end
    redis.call('SET', KEYS[1], _rs_fmt('%.17g:%.17g', _v0, _v1), 'PX', _rs_fmt('%d', _rs_max(1, _rs_min(315360000000, _rs_ceil((reset + 1))))))
  end
  return _rs_pack('<dddd', 1, 0, ((limit - used) - cost), reset)
end
if (cost > limit) then
  return _rs_pack('<dddd', 0, 0, (limit - used), reset)
end
return _rs_pack('<dddd', 0, reset, (limit - used), reset)
