-- ratescript script `sliding_log` from ratescript.builtin_scripts, line 69
-- generated code: do not edit
local _rs_fmt = string.format
local _rs_ceil = math.ceil
local _rs_min = math.min
local _rs_max = math.max
local function _rs_num(x) return _rs_fmt('%.17g', x) end
local function _rs_arg(i, name)
  local v = tonumber(ARGV[i])
  if not v then error('ratescript: argument ' .. name .. ' is not a number', 2) end
  return v
end
local function _rs_finite(line, ...)
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    if v - v ~= 0 then
      error('ratescript: line ' .. line ..
        ': cannot store a number that is not finite', 0)
    end
  end
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
local function _rs_get_log(i)
  local raw = _rs_read(i, 'a log')
  local times, amounts = {}, {}
  if not raw or raw == '' then return times, amounts, 1, 0 end
  local entries, count = _rs_split(raw, ',')
  for j = 1, count do
    local entry = entries[j]
    local at = string.find(entry, ':', 1, true)
    local t = at and tonumber(string.sub(entry, 1, at - 1))
    local a = at and tonumber(string.sub(entry, at + 1))
    if not (t and a) then _rs_corrupt(i, raw, 'a log') end
    times[j], amounts[j] = t, a
  end
  return times, amounts, 1, count
end
local function _rs_ttl(ms)
  return _rs_fmt('%d', _rs_max(1, _rs_min(315360000000, _rs_ceil(ms))))
end
local function _rs_put(i, value, ttl)
  if ttl then redis.call('SET', KEYS[i], value, 'PX', ttl)
  else redis.call('SET', KEYS[i], value) end
end
local function _rs_encode_log(times, amounts, head, last)
  local parts = {}
  for j = head, last do
    parts[j - head + 1] = _rs_fmt('%.17g:%.17g', times[j], amounts[j])
  end
  return table.concat(parts, ',')
end
local function _rs_log_trim(times, head, last, cutoff)
  while head <= last and times[head] <= cutoff do head = head + 1 end
  return head
end
local function _rs_log_append(times, amounts, head, last, t, a, line)
  _rs_finite(line, t, a)
  if last >= head and t <= times[last] then
    amounts[last] = amounts[last] + a
    return last
  end
  last = last + 1
  times[last], amounts[last] = t, a
  return last
end
local function _rs_log_sum(amounts, head, last)
  local total = 0
  for j = head, last do total = total + amounts[j] end
  return total
end
local _now = tonumber(ARGV[1])
if not _now then
  local t = redis.call('TIME')
  _now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local limit = _rs_arg(2, 'limit')
local period_ms = _rs_arg(3, 'period_ms')
local cost = _rs_arg(4, 'cost')
local now, used, need, freed, wait, time, amount, entries__t
local entries__a, entries__h, entries__n
now = _now
entries__t, entries__a, entries__h, entries__n = _rs_get_log(1)
entries__h = _rs_log_trim(entries__t, entries__h, entries__n, (now - period_ms))
used = _rs_log_sum(entries__a, entries__h, entries__n)
if (cost > limit) then
  return {'0', _rs_num(0), _rs_num((limit - used)), _rs_num(0)}
end
if ((used + cost) <= limit) then
  entries__n = _rs_log_append(entries__t, entries__a, entries__h, entries__n, now, cost, 82)
  _rs_put(1, _rs_encode_log(entries__t, entries__a, entries__h, entries__n), _rs_ttl((period_ms + 1)))
  return {'1', _rs_num(0), _rs_num(((limit - used) - cost)), _rs_num((((entries__n >= entries__h and entries__t[entries__h] or now) + period_ms) - now))}
end
need = ((used + cost) - limit)
freed = 0
wait = 0
for _i1 = entries__h, entries__n do
  time, amount = entries__t[_i1], entries__a[_i1]
  freed = (freed + amount)
  if (freed >= need) then
    wait = ((time + period_ms) - now)
    break
  end
end
return {'0', _rs_num(wait), _rs_num((limit - used)), _rs_num((((entries__n >= entries__h and entries__t[entries__h] or now) + period_ms) - now))}
