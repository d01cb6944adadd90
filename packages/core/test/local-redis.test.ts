/** The private redis-server of `miniglm demo`, started from this machine's PATH. */
import net from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { LocalRedisError, resolveRedis, startLocalRedis } from '../src/service/local-redis.ts';

describe('startLocalRedis', () => {
  it('starts a redis-server on a free port that answers, and stops it', async () => {
    const local = await startLocalRedis();
    const client = new Redis(local.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      expect(await client.ping()).toBe('PONG');
      await client.set('k', 'v');
      expect(await client.get('k')).toBe('v');
    } finally {
      client.disconnect();
    }
    await local.stop();
    const refused = await new Promise<string>((resolve) => {
      const socket = net.connect(local.port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve('connected')));
      socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('says how to get Redis when redis-server is not installed', async () => {
    const error = await startLocalRedis({ redisServer: '/nonexistent/redis-server' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalRedisError);
    expect((error as Error).message).toMatch(/redis-server was not found on PATH.*apt-get install redis-server.*REDIS_URL/);
  });

  it('uses REDIS_URL when it is set, starting nothing', async () => {
    expect(await resolveRedis({ REDIS_URL: 'redis://example:6379' })).toEqual({ url: 'redis://example:6379' });
  });
});
