/**
 * A private redis-server for `miniglm demo` when no REDIS_URL is given: started from PATH
 * on a free port, bound to localhost, keeping nothing on disk, and stopped with us.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';

export class LocalRedisError extends Error {
  override name = 'LocalRedisError';
}

export const REDIS_INSTALL_HINT =
  'redis-server was not found on PATH. Install Redis (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) ' +
  'or point REDIS_URL at a running Redis (for example: docker run -p 6379:6379 redis:7).';

export interface LocalRedis {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** A port nobody listens on now: bind port 0, read what the kernel chose, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startLocalRedis(options: { redisServer?: string; port?: number } = {}): Promise<LocalRedis> {
  const port = options.port ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'];
  const child = spawn(options.redisServer ?? 'redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output = (output + d).slice(-4000)));
  child.stderr!.on('data', (d) => (output = (output + d).slice(-4000)));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const exited = new Promise<{ code: number | null; error?: NodeJS.ErrnoException }>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => resolve({ code: null, error }));
    child.once('exit', (code) => resolve({ code }));
  });
  const url = `redis://127.0.0.1:${port}`;
  const ready = waitUntilReady(url, 10_000);
  const first = await Promise.race([ready.then(() => 'ready' as const), exited]);
  if (first !== 'ready') {
    process.removeListener('exit', killOnExit);
    ready.cancel();
    if (first.error?.code === 'ENOENT') throw new LocalRedisError(REDIS_INSTALL_HINT);
    throw new LocalRedisError(`redis-server exited (${first.error?.message ?? `code ${first.code}`}) before it accepted connections: ${output.trim().split('\n').slice(-3).join(' | ')}`);
  }
  return {
    url,
    port,
    pid: child.pid!,
    stop: async () => {
      process.removeListener('exit', killOnExit);
      await stopChild(child, exited);
    },
  };
}

/** REDIS_URL when set, else a private redis-server. */
export async function resolveRedis(env: Record<string, string | undefined> = process.env): Promise<{ url: string; local?: LocalRedis }> {
  if (env.REDIS_URL) return { url: env.REDIS_URL };
  const local = await startLocalRedis();
  return { url: local.url, local };
}

function waitUntilReady(url: string, timeoutMs: number): Promise<void> & { cancel(): void } {
  let cancelled = false;
  const promise = (async () => {
    const deadline = Date.now() + timeoutMs;
    while (!cancelled) {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
      client.on('error', () => {});
      try {
        await client.connect();
        if ((await client.ping()) === 'PONG') return;
      } catch {
        // not listening yet
      } finally {
        client.disconnect();
      }
      if (Date.now() > deadline) throw new LocalRedisError(`redis-server did not accept connections on ${url} within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return Object.assign(promise, { cancel: () => (cancelled = true) });
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
