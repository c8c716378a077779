-- ratescript script `sliding_log_readonly` from ratescript.builtin_scripts, line 69
-- generated code: do not edit
local _rs_floor = math.floor
local _rs_unpack = struct.unpack
local _rs_pack = struct.pack
local _rs_whole_log = 256
local function _rs_get_log(i)
  local key = KEYS[i]
  local first = redis.call('GETRANGE', key, 0, _rs_whole_log - 1)
  local size, raw = #first, first
  if size >= _rs_whole_log then size, raw = redis.call('STRLEN', key), nil end
  local count, total, dropped = 0, 0, 0
  if size > 0 or redis.call('EXISTS', key) == 1 then
    count, total, dropped = (size - 20) / 16, nil, nil
    if size >= 20 and count == _rs_floor(count)
        and string.sub(first, 1, 4) == 'RSL1' then
      total, dropped = _rs_unpack('<dd', first, 5)
    end
    if not (dropped and dropped >= 0 and dropped <= count
            and dropped == _rs_floor(dropped)) then
      error('ratescript: corrupt value at key ' .. key .. ': expected a log', 0)
    end
  end
  return {slot = i, shift = 0, stored = count, clean = count, h = dropped + 1,
          n = count, s = total, t = {}, a = {}, raw = raw}
end
local function _rs_log_fetch(log, j, last)
  local at = 16 * (j - log.shift)
  local raw, from = log.raw, at + 5
  if not raw then
    raw = redis.call('GETRANGE', KEYS[log.slot], at + 4, at + 16 * (last - j) + 19)
    from = 1
  end
  local t, a = log.t, log.a
  for k = j, last do t[k], a[k] = _rs_unpack('<dd', raw, from + 16 * (k - j)) end
end
local function _rs_log_at(log, j)
  if log.t[j] == nil then
    _rs_log_fetch(log, j, j + 7 < log.clean and j + 7 or log.clean)
  end
  return log.t[j], log.a[j]
end
local function _rs_log_trim(log, cutoff)
  local h, n, s, t, a = log.h, log.n, log.s, log.t, log.a
  while h <= n do
    local th = t[h]
    if th == nil then
      _rs_log_fetch(log, h, h + 7 < log.clean and h + 7 or log.clean)
      th = t[h]
    end
    if not (th <= cutoff) then break end
    s = s - a[h]
    h = h + 1
  end
  if h > n then s = 0 end
  log.h, log.s = h, s
end
local function _rs_log_append(log, t, a, line)
  if t - t ~= 0 or a - a ~= 0 then
    error('ratescript: line ' .. line .. ': cannot store a number that is not finite', 0)
  end
  local n = log.n
  if n >= log.h then
    local last_t, last_a = _rs_log_at(log, n)
    if t <= last_t then
      if n <= log.clean then log.clean = n - 1 end
      log.a[n], log.s = last_a + a, log.s + a
      return
    end
  end
  n = n + 1
  log.t[n], log.a[n] = t, a
  log.n, log.s = n, log.s + a
end
local _now = tonumber(ARGV[1])
if not _now then
  local t = redis.call('TIME')
  _now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
local limit = tonumber(ARGV[2]) or error('ratescript: argument limit is not a number')
local period_ms = tonumber(ARGV[3]) or error('ratescript: argument period_ms is not a number')
local cost = tonumber(ARGV[4]) or error('ratescript: argument cost is not a number')
local now, used, need, freed, wait, time, amount, entries
now = _now
entries = _rs_get_log(1)
_rs_log_trim(entries, (now - period_ms))
used = entries.s
if (cost > limit) then
  return _rs_pack('<dddd', 0, 0, (limit - used), 0)
end
if ((used + cost) <= limit) then
  _rs_log_append(entries, now, cost, 82)
  return _rs_pack('<dddd', 1, 0, ((limit - used) - cost), (((entries.n >= entries.h and (_rs_log_at(entries, entries.h)) or now) + period_ms) - now))
end
need = ((used + cost) - limit)
freed = 0
wait = 0
for _i1 = entries.h, entries.n do
  time, amount = _rs_log_at(entries, _i1)
  freed = (freed + amount)
  if (freed >= need) then
    wait = ((time + period_ms) - now)
    break
  end
end
return _rs_pack('<dddd', 0, wait, (limit - used), (((entries.n >= entries.h and (_rs_log_at(entries, entries.h)) or now) + period_ms) - now))
