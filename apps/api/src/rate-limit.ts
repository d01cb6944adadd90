/**
 * Rate limits kept in Redis, so that every API process of a service (they share its key
 * prefix) counts against the same allowance: submissions per key (server.ts, POST /v1/runs)
 * and failed API-key checks per client address (auth.ts).
 *
 * A fixed window: the first hit of a client starts a window of `windowSeconds`, its hits are
 * counted in one Redis key that expires with the window, and a hit past `limit` is refused
 * until then (Retry-After says how long). Chosen over a sliding window because it costs one
 * counter per client where a sliding log keeps an entry per request; the price is that a
 * client may get up to twice `limit` through around the end of a window, which is harmless
 * for what these limits are for (floods, not billing). Counting and starting the window is
 * one Lua script, atomic in Redis: two API processes never read the same count, and a counter
 * never exists without its expiry.
 */
import type { Redis } from 'ioredis';
import { SettingError } from '@miniglm/core/service';

export interface Rate {
  limit: number;
  windowSeconds: number;
}

/** 60 submissions a minute per key: far above a person's pace, well below a runaway script's. */
export const DEFAULT_SUBMIT_RATE: Rate = { limit: 60, windowSeconds: 60 };
/** 20 failed key checks a minute per address: a person mistyping never meets it; each costs ~50 ms of scrypt. */
export const DEFAULT_AUTH_FAILURE_RATE: Rate = { limit: 20, windowSeconds: 60 };

export const SUBMIT_RATE_ENV = 'MINIGLM_SUBMIT_RATE';
export const AUTH_FAILURE_RATE_ENV = 'MINIGLM_AUTH_FAILURE_RATE';

/**
 * A rate from the environment: "N/SECONDS" (60/60: sixty in a minute), "off" for none, the
 * fallback when unset. Anything else is an error naming the variable.
 */
export function rateFromEnv(name: string, fallback: Rate, env: NodeJS.ProcessEnv = process.env): Rate | null {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (raw.toLowerCase() === 'off') return null;
  const m = /^(\d+)\s*\/\s*(\d+)\s*s?$/.exec(raw);
  const rate = m ? { limit: Number(m[1]), windowSeconds: Number(m[2]) } : undefined;
  if (!rate || rate.limit < 1 || rate.windowSeconds < 1)
    throw new SettingError(`${name} must be N/SECONDS (e.g. 60/60: 60 in a minute) or off, got "${raw}"`);
  return rate;
}

/** Per Redis client, once: ioredis sends these by EVALSHA, and the whole script only when Redis has not seen it. */
interface RateCommands {
  miniglmRateHit(key: string, windowMs: number): Promise<[number, number]>;
  miniglmRateGiveBack(key: string): Promise<number>;
}

function withRateCommands(redis: Redis): Redis & RateCommands {
  const client = redis as Redis & Partial<RateCommands>;
  if (typeof client.miniglmRateHit !== 'function') {
    client.defineCommand('miniglmRateHit', {
      numberOfKeys: 1,
      // The count, and the milliseconds until the window ends. A counter found without an
      // expiry (which no path here leaves) gets one, so that it cannot refuse forever.
      lua: `
        local count = redis.call('INCR', KEYS[1])
        if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl < 0 then
          redis.call('PEXPIRE', KEYS[1], ARGV[1])
          ttl = tonumber(ARGV[1])
        end
        return {count, ttl}`,
    });
    client.defineCommand('miniglmRateGiveBack', {
      numberOfKeys: 1,
      // Only within a window: a DECR after it ended would make a counter without an expiry.
      lua: `
        if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
        return 0`,
    });
  }
  return client as Redis & RateCommands;
}

export type RateHit = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export class RateLimiter {
  private readonly redis: Redis & RateCommands;

  /** `name` tells the limits apart under the prefix: <prefix>:rate:<name>:<client>. */
  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly name: string,
    readonly rate: Rate,
  ) {
    this.redis = withRateCommands(redis);
  }

  private key(client: string): string {
    return `${this.prefix}:rate:${this.name}:${client}`;
  }

  /** Counts one hit of `client`; refused once it has had `limit` in the current window. */
  async hit(client: string): Promise<RateHit> {
    const [count, ttlMs] = await this.redis.miniglmRateHit(this.key(client), this.rate.windowSeconds * 1000);
    if (count <= this.rate.limit) return { allowed: true };
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(ttlMs / 1000)) };
  }

  /** Takes back one hit of `client` in the current window (a key check that turned out right). */
  async giveBack(client: string): Promise<void> {
    await this.redis.miniglmRateGiveBack(this.key(client));
  }

  /** "60 in 60 s (MINIGLM_SUBMIT_RATE)", for messages. */
  describe(envName: string): string {
    return `${this.rate.limit} in ${this.rate.windowSeconds} s (${envName})`;
  }
}
