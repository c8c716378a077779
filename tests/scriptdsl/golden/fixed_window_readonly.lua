-- ratescript script `fixed_window_readonly` from ratescript.builtin_scripts, line 49
-- generated code: do not edit
local _rs_match = string.match
local _rs_floor = math.floor
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
  return _rs_pack('<dddd', 1, 0, ((limit - used) - cost), reset)
end
if (cost > limit) then
  return _rs_pack('<dddd', 0, 0, (limit - used), reset)
end
return _rs_pack('<dddd', 0, reset, (limit - used), reset)
