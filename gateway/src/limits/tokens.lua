-- Token budget, atomic in Redis with Redis's clock, in microseconds. KEYS[1] = bucket;
-- ARGV = interval us (one token's share of the period), period us, tokens to charge
-- (0: only look). Returns {allowed 0|1, retry_after_us, used_us}. Mirrors tokens.rs `step`.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if cost > 0 then
  tat = tat + cost * interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1)
end
local used = tat - now
if used >= period then
  return {0, used - period + interval, used}
end
return {1, 0, used}
