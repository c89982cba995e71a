/**
 * Lua for the per-session lease (mounts[].lock) on Redis. Every key a script touches
 * carries the session key as its hash tag (`sgw:<kind>:{<prefix><sid>}`), so each runs
 * atomically in the session's slot on Redis Cluster too.
 *
 * The fence is a counter per session, raised by every acquisition; a lease holds the
 * value it was given. A write under a lease passes only while the counter still equals
 * its fence: once the lease ran out and anyone acquired again, the late write is refused.
 */

/**
 * KEYS: session, lease, fence counter. ARGV: lease ms.
 * Returns {0} when the session does not exist (no lease for anonymous visitors), {-1, pttl}
 * while another request holds the lease, else {fence, stored session text}.
 */
export const ACQUIRE_LEASE = `
local cur = redis.call('GET', KEYS[1])
if not cur then return {0} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, redis.call('PTTL', KEYS[2])} end
local fence = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], 86400000)
redis.call('SET', KEYS[2], fence, 'PX', ARGV[1])
return {fence, cur}`;

/** KEYS: lease. ARGV: fence. Deletes the lease only if it is still this fence's. */
export const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

/**
 * Compare-and-set under a fence. KEYS: session, fence counter. ARGV: version, raw, ttl ms,
 * fence. Returns 1 ok, 0 gone, -1 conflict, -2 the fence is stale.
 */
export const CAS_SET_FENCED = `
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return -2 end
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if redis.sha1hex(cur) ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;
