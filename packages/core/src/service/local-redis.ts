/**
 * A private redis-server for `miniglm demo` when no REDIS_URL is given: started from PATH
 * on a free port, bound to localhost, keeping nothing on disk, and stopped with us.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { UserError } from '@miniglm/data';

/** The private Redis cannot start; the message says what to install or stop. */
export class LocalRedisError extends UserError {}

export const REDIS_INSTALL_HINT =
  'redis-server was not found on PATH. Install Redis (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) ' +
  'or point REDIS_URL at a running Redis (for example: docker run -p 6379:6379 redis:7).';

export interface LocalRedis {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export interface LocalRedisOptions {
  /** The executable (default: `redis-server` from PATH). */
  redisServer?: string;
  /** Default: a free port (bind 127.0.0.1:0, read it, close). */
  port?: number;
  /** Working directory of the server (created if missing); nothing is saved there. */
  dir?: string;
  /** Keep the data in an append-only file in `dir` across restarts (default: keep nothing). */
  persist?: boolean;
}

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

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

export async function startLocalRedis(options: LocalRedisOptions = {}): Promise<LocalRedis> {
  if (options.dir) await claimDir(path.resolve(options.dir));
  // A free port can be taken by someone else between our probe and redis-server's bind:
  // when we chose it, try another one.
  for (let attempt = 1; ; attempt++) {
    try {
      const local = await startOnce(options, options.port ?? (await freePort()));
      if (options.dir)
        fs.writeFileSync(
          path.join(path.resolve(options.dir), OWNER_FILE),
          JSON.stringify({ owner: process.pid, redis: local.pid }),
        );
      return local;
    } catch (error) {
      const retry = options.port === undefined && attempt < 3 && error instanceof PortInUseError;
      if (!retry) throw error;
    }
  }
}

/** Who uses a Redis folder: our process and its redis-server (two servers must never share one append-only file). */
const OWNER_FILE = 'miniglm-owner.json';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Makes `dir` ours: refuses while the process that started a server there is alive, and
 * stops the server a dead owner left behind (a demo killed with SIGKILL leaves its Redis).
 */
async function claimDir(dir: string): Promise<void> {
  let previous: { owner?: number; redis?: number } = {};
  try {
    previous = JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as typeof previous;
  } catch {
    return; // nobody has used it, or the file is unreadable: nothing to clean up
  }
  if (previous.owner && previous.owner !== process.pid && alive(previous.owner))
    throw new LocalRedisError(`${dir} is in use by process ${previous.owner} (another "miniglm demo"?); stop it first`);
  if (previous.redis && alive(previous.redis) && /redis-server/.test(readCommandLine(previous.redis))) {
    process.kill(previous.redis, 'SIGTERM');
    for (let i = 0; i < 100 && alive(previous.redis); i++) await new Promise((r) => setTimeout(r, 50));
  }
}

function readCommandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return ''; // not Linux, or gone: leave it alone
  }
}

class PortInUseError extends LocalRedisError {}

async function startOnce(options: LocalRedisOptions, port: number): Promise<LocalRedis> {
  // With `persist`, queues survive a restart (an append-only file in `dir`): stages handed
  // back at Ctrl-C are still queued when the demo starts again.
  const persist = Boolean(options.persist && options.dir);
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    persist ? 'yes' : 'no',
    '--protected-mode',
    'yes',
  ];
  let cwd: string | undefined;
  if (options.dir) {
    cwd = path.resolve(options.dir);
    fs.mkdirSync(cwd, { recursive: true });
    args.push('--dir', cwd);
  }
  // Foreground (not daemonized), no shell: the server is our child and goes with us. In its
  // own process group, so a terminal's Ctrl-C reaches only us: Redis must outlive our
  // graceful shutdown, which hands running stages back through it.
  const child = spawn(options.redisServer ?? 'redis-server', args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const killOnExit = () => {
    child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: NodeJS.ErrnoException }>(
    (resolve) => {
      child.once('error', (error: NodeJS.ErrnoException) => resolve({ code: null, signal: null, error }));
      child.once('exit', (code, signal) => resolve({ code, signal }));
    },
  );
  void exited.then(() => process.removeListener('exit', killOnExit));

  const url = `redis://127.0.0.1:${port}`;
  const ready = waitUntilReady(url, child, READY_TIMEOUT_MS);
  let first: 'ready' | Awaited<typeof exited>;
  try {
    first = await Promise.race([ready.then(() => 'ready' as const), exited]);
  } catch (error) {
    // Not answering in time: do not leave it running.
    await stopChild(child, exited);
    throw new LocalRedisError(`${(error as Error).message}${tail(output)}`);
  } finally {
    ready.cancel();
  }
  if (first !== 'ready') {
    if (first.error?.code === 'ENOENT') throw new LocalRedisError(REDIS_INSTALL_HINT);
    const how = first.error ? first.error.message : first.signal ? `signal ${first.signal}` : `code ${first.code}`;
    const message = `redis-server exited (${how}) before it accepted connections on port ${port}${tail(output)}`;
    throw /address already in use/i.test(output) ? new PortInUseError(message) : new LocalRedisError(message);
  }
  return {
    url,
    port,
    pid: child.pid!,
    stop: () => stopChild(child, exited),
  };
}

/** REDIS_URL when set (non-empty), else a private redis-server. */
export async function resolveRedis(
  env: Record<string, string | undefined> = process.env,
  localOptions: LocalRedisOptions = {},
): Promise<{ url: string; local?: LocalRedis }> {
  if (env.REDIS_URL) return { url: env.REDIS_URL };
  const local = await startLocalRedis(localOptions);
  return { url: local.url, local };
}

function tail(output: string): string {
  const lines = output.trim().split('\n').filter(Boolean).slice(-5);
  return lines.length ? `: ${lines.join(' | ')}` : '';
}

/**
 * Resolves once the server on `url` answers PING and is our child (INFO's process_id), so a
 * server someone else started on the same port is never taken for ours.
 */
function waitUntilReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> & { cancel(): void } {
  let cancelled = false;
  const promise = (async () => {
    const deadline = Date.now() + timeoutMs;
    while (!cancelled) {
      const client = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        enableOfflineQueue: false,
      });
      client.on('error', () => {});
      try {
        await client.connect();
        if ((await client.ping()) === 'PONG') {
          const info = await client.info('server');
          if (new RegExp(`^process_id:${child.pid}\\r?$`, 'm').test(info)) return;
        }
      } catch {
        // not listening yet
      } finally {
        client.disconnect();
      }
      if (Date.now() > deadline)
        throw new LocalRedisError(`redis-server did not accept connections on ${url} within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return Object.assign(promise, { cancel: () => void (cancelled = true) });
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the process has exited. */
async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    await exited;
    return;
  }
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}
