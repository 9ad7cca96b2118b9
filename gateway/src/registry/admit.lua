-- Admission of one more call for a tenant, across instances. KEYS[1] = the tenant's live-call
-- set (scores = expiry ms); ARGV = slot id, ttl ms, max. Expired members are dropped first.
-- Returns 1 (admitted) or 0 (the tenant has max).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
