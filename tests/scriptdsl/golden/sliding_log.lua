-- ratescript script `sliding_log` from ratescript.builtin_scripts, line 69
-- generated code: do not edit
local _rs_fmt = string.format
local _rs_ceil = math.ceil
local _rs_min = math.min
local _rs_max = math.max
local _rs_unpack = struct.unpack
local _rs_pack = struct.pack
local function _rs_get_log(i)
  local raw = redis.call('GET', KEYS[i])
  if not raw then return '', 0, 1, 0, 0, {}, {} end
  if #raw < 12 or (#raw - 12) % 16 ~= 0 or string.sub(raw, 1, 4) ~= 'RSL1' then
    error('ratescript: corrupt value at key ' .. KEYS[i] .. ': expected a log', 0)
  end
  local n = (#raw - 12) / 16
  return raw, n, 1, n, (_rs_unpack('<d', raw, 5)), {}, {}
end
local function _rs_log_at(raw, clean, times, amounts, j)
  if j <= clean then
    local t, a = _rs_unpack('<dd', raw, j * 16 - 3)
    return t, a
  end
  return times[j], amounts[j]
end
local function _rs_log_time(raw, clean, times, j)
  if j <= clean then return (_rs_unpack('<d', raw, j * 16 - 3)) end
  return times[j]
end
local function _rs_encode_log(raw, clean, times, amounts, head, last, total)
  local parts, k = {'RSL1' .. _rs_pack('<d', total)}, 1
  if head <= clean then
    k = 2
    parts[2] = string.sub(raw, head * 16 - 3, clean * 16 + 12)
  end
  for j = head > clean and head or clean + 1, last do
    k = k + 1
    parts[k] = _rs_pack('<dd', times[j], amounts[j])
  end
  return table.concat(parts)
end
local function _rs_log_trim(raw, clean, times, amounts, head, last, total, cutoff)
  while head <= last do
    local t, a = _rs_log_at(raw, clean, times, amounts, head)
    if not (t <= cutoff) then break end
    total = total - a
    head = head + 1
  end
  if head > last then total = 0 end
  return head, total
end
local function _rs_log_append(raw, clean, times, amounts, head, last, total, t, a, line)
  if t - t ~= 0 or a - a ~= 0 then
    error('ratescript: line ' .. line .. ': cannot store a number that is not finite', 0)
  end
  if last >= head then
    local last_t, last_a = _rs_log_at(raw, clean, times, amounts, last)
    if t <= last_t then
      if last <= clean then clean, times[last] = last - 1, last_t end
      amounts[last] = last_a + a
      return last, clean, total + a
    end
  end
  last = last + 1
  times[last], amounts[last] = t, a
  return last, clean, total + a
end
local _now = tonumber(ARGV[1])
if not _now then
  local t = redis.call('TIME')
  _now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local limit = tonumber(ARGV[2]) or error('ratescript: argument limit is not a number')
local period_ms = tonumber(ARGV[3]) or error('ratescript: argument period_ms is not a number')
local cost = tonumber(ARGV[4]) or error('ratescript: argument cost is not a number')
local now, used, need, freed, wait, time, amount, entries__r
local entries__c, entries__t, entries__a, entries__h, entries__n, entries__s
now = _now
entries__r, entries__c, entries__h, entries__n, entries__s, entries__t, entries__a = _rs_get_log(1)
entries__h, entries__s = _rs_log_trim(entries__r, entries__c, entries__t, entries__a, entries__h, entries__n, entries__s, (now - period_ms))
used = entries__s
if (cost > limit) then
  return _rs_fmt('0 0 %.17g 0', (limit - used))
end
if ((used + cost) <= limit) then
  entries__n, entries__c, entries__s = _rs_log_append(entries__r, entries__c, entries__t, entries__a, entries__h, entries__n, entries__s, now, cost, 82)
  redis.call('SET', KEYS[1], _rs_encode_log(entries__r, entries__c, entries__t, entries__a, entries__h, entries__n, entries__s), 'PX', _rs_fmt('%d', _rs_max(1, _rs_min(315360000000, _rs_ceil((period_ms + 1))))))
  return _rs_fmt('1 0 %.17g %.17g', ((limit - used) - cost), (((entries__n >= entries__h and _rs_log_time(entries__r, entries__c, entries__t, entries__h) or now) + period_ms) - now))
end
need = ((used + cost) - limit)
freed = 0
wait = 0
for _i1 = entries__h, entries__n do
  time, amount = _rs_log_at(entries__r, entries__c, entries__t, entries__a, _i1)
  freed = (freed + amount)
  if (freed >= need) then
    wait = ((time + period_ms) - now)
    break
  end
end
return _rs_fmt('0 %.17g %.17g %.17g', wait, (limit - used), (((entries__n >= entries__h and _rs_log_time(entries__r, entries__c, entries__t, entries__h) or now) + period_ms) - now))
