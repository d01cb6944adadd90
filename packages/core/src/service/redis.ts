/**
 * Redis connections for BullMQ and our own channels. ioredis is an optional peer of BullMQ,
 * so we construct the clients ourselves (ESM cannot rely on BullMQ finding it).
 */
import { Redis, type RedisOptions } from 'ioredis';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export interface RedisConnectOptions {
  /** Workers block on Redis: BullMQ requires `maxRetriesPerRequest: null` for them. */
  blocking?: boolean;
  /** Fail a command instead of queueing it while disconnected (API requests, health checks). */
  failFast?: boolean;
}

export function createRedis(url: string, options: RedisConnectOptions = {}): Redis {
  const redisOptions: RedisOptions = {
    maxRetriesPerRequest: options.blocking ? null : options.failFast ? 1 : 20,
    enableOfflineQueue: !options.failFast,
    lazyConnect: false,
    // A Redis that is down should not flood the log with one line per reconnect attempt.
    retryStrategy: (times) => Math.min(times * 200, 2000),
  };
  const client = new Redis(url, redisOptions);
  // Connection errors surface through the calls that need Redis; without a listener ioredis
  // would print every reconnect failure as an unhandled error event.
  client.on('error', () => {});
  return client;
}

/** Deletes every key under a prefix (tests clean up after themselves with this). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** "redis://:secret@host:6379" → "redis://host:6379", for logs and error messages. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(unparseable Redis URL)';
  }
}
