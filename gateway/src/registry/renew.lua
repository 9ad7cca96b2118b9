-- Heartbeat: renew (or re-create after a Redis restart) calls of one instance in one call.
-- ARGV[1] = ttl ms, ARGV[2] = instance; per call, KEYS = its record and its tenant's set,
-- ARGV = id, tenant, channel, started_ms, a slot id to drop ('' for none).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS / 2 do
  local call, set = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 2 + (i - 1) * 5
  redis.call('HSET', call, 'instance', ARGV[2], 'tenant', ARGV[a + 2], 'channel', ARGV[a + 3], 'started_ms', ARGV[a + 4])
  redis.call('PEXPIRE', call, ttl)
  if ARGV[a + 5] ~= '' then redis.call('ZREM', set, ARGV[a + 5]) end
  redis.call('ZADD', set, now + ttl, ARGV[a + 1])
  redis.call('PEXPIRE', set, ttl)
end
return #KEYS / 2
