-- ratescript script `token_bucket_readonly` from ratescript.builtin_scripts, line 25
-- generated code: do not edit
local _rs_match = string.match
local _rs_min = math.min
local _rs_max = math.max
local _rs_pack = struct.pack
local _now = tonumber(ARGV[1])
if not _now then
  local t = redis.call('TIME')
  _now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local capacity = tonumber(ARGV[2]) or error('ratescript: argument capacity is not a number')
local period_ms = tonumber(ARGV[3]) or error('ratescript: argument period_ms is not a number')
local cost = tonumber(ARGV[4]) or error('ratescript: argument cost is not a number')
local now, rate, b__tokens, b__stamp, elapsed, tokens, left, wait
local _r
now = _now
rate = (period_ms ~= 0 and capacity / period_ms or error('ratescript: division by zero'))
_r = redis.call('GET', KEYS[1])
if _r then
  b__tokens, b__stamp = _rs_match(_r, '^([0-9.e+-]*):([0-9.e+-]*)$')
  b__tokens, b__stamp = tonumber(b__tokens), tonumber(b__stamp)
  if not (b__tokens and b__stamp) or b__tokens - b__tokens ~= 0 or b__stamp - b__stamp ~= 0 then
    error('ratescript: corrupt value at key ' .. KEYS[1] .. ': expected 2 numbers', 0)
  end
else
  b__tokens, b__stamp = capacity, now
end
elapsed = _rs_max(0, (now - b__stamp))
tokens = _rs_min(capacity, (b__tokens + (elapsed * rate)))
if (cost > capacity) then
  return _rs_pack('<ddddd', 0, 0, tokens, 0, 1)
end
if (tokens >= cost) then
  left = (tokens - cost)
  return _rs_pack('<ddddd', 1, 0, left, (rate ~= 0 and (capacity - left) / rate or error('ratescript: division by zero')), 0)
end
wait = (rate ~= 0 and (cost - tokens) / rate or error('ratescript: division by zero'))
return _rs_pack('<ddddd', 0, wait, tokens, (rate ~= 0 and (capacity - tokens) / rate or error('ratescript: division by zero')), 0)
