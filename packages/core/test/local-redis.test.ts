/** The private redis-server of `miniglm demo`, started from this machine's PATH. */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  freePort,
  LocalRedisError,
  resolveRedis,
  startLocalRedis,
  type LocalRedis,
} from '../src/service/local-redis.ts';

const started: LocalRedis[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()));
});

async function start(options?: Parameters<typeof startLocalRedis>[0]): Promise<LocalRedis> {
  const local = await startLocalRedis(options);
  started.push(local);
  return local;
}

function client(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => {});
  return c;
}

function connectResult(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve('connected')));
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startLocalRedis', () => {
  it('starts a redis-server on a free port that answers, and stops it', async () => {
    const local = await start();
    expect(local.url).toBe(`redis://127.0.0.1:${local.port}`);
    const c = client(local.url);
    try {
      expect(await c.ping()).toBe('PONG');
      await c.set('k', 'v');
      expect(await c.get('k')).toBe('v');
      // The options it was started with: nothing kept on disk, localhost only.
      expect(await c.config('GET', 'save')).toEqual(['save', '']);
      expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      expect(await c.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
      expect(await c.info('server')).toContain(`process_id:${local.pid}`);
    } finally {
      c.disconnect();
    }
    expect(alive(local.pid)).toBe(true);
    await local.stop();
    expect(alive(local.pid)).toBe(false);
    expect(await connectResult(local.port)).toBe('ECONNREFUSED');
    await local.stop(); // a second stop is harmless
  });

  it('runs in the given dir', async () => {
    const dir = path.join(fs.realpathSync(os.tmpdir()), `miniglm-redis-${process.pid}-${Date.now()}`, 'nested');
    try {
      const local = await start({ dir });
      const c = client(local.url);
      try {
        expect(await c.config('GET', 'dir')).toEqual(['dir', dir]);
      } finally {
        c.disconnect();
      }
    } finally {
      fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    }
  });

  it('rejects with the server output when it exits early, and never takes another server for its own', async () => {
    const first = await start();
    const error = await start({ port: first.port }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalRedisError);
    expect((error as Error).message).toMatch(/redis-server exited .*before it accepted connections/);
    expect((error as Error).message).toMatch(/Address already in use/i);
  });

  it('says how to get Redis when redis-server is not installed', async () => {
    const error = await startLocalRedis({ redisServer: '/nonexistent/redis-server' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalRedisError);
    expect((error as Error).message).toBe(
      'redis-server was not found on PATH. Install Redis (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) ' +
        'or point REDIS_URL at a running Redis (for example: docker run -p 6379:6379 redis:7).',
    );
  });
});

describe('resolveRedis', () => {
  it('uses REDIS_URL when it is set, starting nothing', async () => {
    expect(await resolveRedis({ REDIS_URL: 'redis://example:6379' })).toEqual({ url: 'redis://example:6379' });
  });

  it('starts a private redis-server when REDIS_URL is unset or empty', async () => {
    const { url, local } = await resolveRedis({ REDIS_URL: '' });
    expect(local).toBeDefined();
    started.push(local!);
    expect(url).toBe(local!.url);
    const c = client(url);
    try {
      expect(await c.ping()).toBe('PONG');
    } finally {
      c.disconnect();
    }
  });
});

describe('a Redis folder has one owner', () => {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('stops the redis-server a dead owner left in the folder, and refuses a folder whose owner lives', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-redis-owner-'));
    // A demo killed with SIGKILL: its redis-server (here one we start) runs on, its owner is gone.
    const orphan = spawn(
      'redis-server',
      ['--port', String(await freePort()), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore', detached: true },
    );
    const deadOwner = spawnSync(process.execPath, ['-e', 'process.pid']).pid!;
    fs.writeFileSync(path.join(dir, 'miniglm-owner.json'), JSON.stringify({ owner: deadOwner, redis: orphan.pid }));
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(orphan.pid!)).toBe(true);

    const local = await startLocalRedis({ dir, persist: true });
    started.push(local);
    await new Promise((r) =>
      orphan.exitCode !== null || orphan.signalCode !== null ? r(undefined) : orphan.once('exit', r),
    );
    expect(alive(orphan.pid!)).toBe(false);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'miniglm-owner.json'), 'utf8'))).toEqual({
      owner: process.pid,
      redis: local.pid,
    });

    // Another live process owns it now: refused, and its server is left alone.
    fs.writeFileSync(path.join(dir, 'miniglm-owner.json'), JSON.stringify({ owner: process.ppid, redis: local.pid }));
    await expect(startLocalRedis({ dir, persist: true })).rejects.toThrow(
      new RegExp(`in use by process ${process.ppid}`),
    );
    expect(alive(local.pid)).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
