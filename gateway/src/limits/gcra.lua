-- GCRA check, atomic in Redis with Redis's clock. KEYS[1] = bucket; ARGV = interval ms,
-- period ms. Returns {allowed 0|1, retry_after_ms, used_ms}. Mirrors gcra.rs `check`.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, 0, new_tat - now}
