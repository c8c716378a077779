-- ratescript script `sliding_log_readonly` from ratescript.builtin_scripts, line 69
-- generated code: do not edit
local _rs_fmt = string.format
local _rs_source = {}
local function _rs_get_log(i)
  local raw = redis.call('GET', KEYS[i])
  local times, amounts = {}, {}
  if not raw or raw == '' then return times, amounts, 1, 0 end
  local ends, count, pos, last = {}, 0, 1, #raw
  while true do
    local _, e, t, a, sep = string.find(raw, '^([0-9.e+-]*):([0-9.e+-]*)(,?)', pos)
    t, a = tonumber(t), tonumber(a)
    if not (t and a) or (sep == '' and e < last) then
      error('ratescript: corrupt value at key ' .. KEYS[i] .. ': expected a log', 0)
    end
    count = count + 1
    times[count], amounts[count] = t, a
    if sep == '' then
      ends[count] = e
      _rs_source[times] = {raw, ends, count}
      return times, amounts, 1, count
    end
    ends[count] = e - 1
    pos = e + 1
  end
end
local function _rs_log_trim(times, head, last, cutoff)
  while head <= last and times[head] <= cutoff do head = head + 1 end
  return head
end
local function _rs_log_append(times, amounts, head, last, t, a, line)
  if t - t ~= 0 or a - a ~= 0 then
    error('ratescript: line ' .. line .. ': cannot store a number that is not finite', 0)
  end
  if last >= head and t <= times[last] then
    amounts[last] = amounts[last] + a
    local source = _rs_source[times]
    if source and last <= source[3] then source[3] = last - 1 end
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
local limit = tonumber(ARGV[2]) or error('ratescript: argument limit is not a number')
local period_ms = tonumber(ARGV[3]) or error('ratescript: argument period_ms is not a number')
local cost = tonumber(ARGV[4]) or error('ratescript: argument cost is not a number')
local now, used, need, freed, wait, time, amount, entries__t
local entries__a, entries__h, entries__n
now = _now
entries__t, entries__a, entries__h, entries__n = _rs_get_log(1)
entries__h = _rs_log_trim(entries__t, entries__h, entries__n, (now - period_ms))
used = _rs_log_sum(entries__a, entries__h, entries__n)
if (cost > limit) then
  return _rs_fmt('0 0 %.17g 0', (limit - used))
end
if ((used + cost) <= limit) then
  entries__n = _rs_log_append(entries__t, entries__a, entries__h, entries__n, now, cost, 82)
  return _rs_fmt('1 0 %.17g %.17g', ((limit - used) - cost), (((entries__n >= entries__h and entries__t[entries__h] or now) + period_ms) - now))
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
return _rs_fmt('0 %.17g %.17g %.17g', wait, (limit - used), (((entries__n >= entries__h and entries__t[entries__h] or now) + period_ms) - now))
