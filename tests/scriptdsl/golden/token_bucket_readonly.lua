-- ratescript script `token_bucket_readonly` from ratescript.builtin_scripts, line 25
-- generated code: do not edit
local _rs_fmt = string.format
local _rs_min = math.min
local _rs_max = math.max
local function _rs_num(x) return _rs_fmt('%.17g', x) end
local function _rs_div(a, b)
  if b == 0 then error('ratescript: division by zero', 2) end
  return a / b
end
local function _rs_arg(i, name)
  local v = tonumber(ARGV[i])
  if not v then error('ratescript: argument ' .. name .. ' is not a number', 2) end
  return v
end
local function _rs_corrupt(i, raw, expected)
  error('ratescript: corrupt value at key ' .. KEYS[i] .. ': expected ' .. expected, 0)
end
local function _rs_split(raw, sep)
  local parts, count, pos = {}, 0, 1
  while true do
    local at = string.find(raw, sep, pos, true)
    count = count + 1
    if not at then parts[count] = string.sub(raw, pos); return parts, count end
    parts[count] = string.sub(raw, pos, at - 1)
    pos = at + 1
  end
end
local function _rs_read(i, expected)
  local raw = redis.call('GET', KEYS[i])
  if raw and string.find(raw, '[^%d%.e%+%-:,]') then _rs_corrupt(i, raw, expected) end
  return raw
end
local function _rs_get_record(i, n)
  local raw = _rs_read(i, n .. ' numbers')
  if not raw then return false end
  local parts, count = _rs_split(raw, ':')
  if count ~= n then _rs_corrupt(i, raw, n .. ' numbers') end
  for j = 1, n do
    local v = tonumber(parts[j])
    if not v then _rs_corrupt(i, raw, n .. ' numbers') end
    parts[j] = v
  end
  return parts
end
local _now = tonumber(ARGV[1])
if not _now then
  local t = redis.call('TIME')
  _now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local capacity = _rs_arg(2, 'capacity')
local period_ms = _rs_arg(3, 'period_ms')
local cost = _rs_arg(4, 'cost')
local now, rate, b__tokens, b__stamp, elapsed, tokens, left, wait
local _r
now = _now
rate = _rs_div(capacity, period_ms)
_r = _rs_get_record(1, 2)
if _r then b__tokens, b__stamp = _r[1], _r[2] else b__tokens, b__stamp = capacity, now end
elapsed = _rs_max(0, (now - b__stamp))
tokens = _rs_min(capacity, (b__tokens + (elapsed * rate)))
if (cost > capacity) then
  return {'0', _rs_num(0), _rs_num(tokens), _rs_num(0), _rs_num(1)}
end
if (tokens >= cost) then
  left = (tokens - cost)
  return {'1', _rs_num(0), _rs_num(left), _rs_num(_rs_div((capacity - left), rate)), _rs_num(0)}
end
wait = _rs_div((cost - tokens), rate)
return {'0', _rs_num(wait), _rs_num(tokens), _rs_num(_rs_div((capacity - tokens), rate)), _rs_num(0)}
