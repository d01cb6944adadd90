/**
 * The service under load, started as a user deploys it: a database of its own (created on the
 * Postgres server, migrated, dropped at the end), a Redis key prefix of its own (deleted at
 * the end), member API keys, `miniglm api` on 127.0.0.1 and `miniglm worker` processes, each
 * in a process of its own with its output in a log file. stop() undoes all of it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { createDb, migrate, type Db } from '@miniglm/core/db';
import { createTempDatabase } from '@miniglm/core/db/testing';
import {
  createApiKey,
  createRedis,
  deleteKeysWithPrefix,
  readWorkerAds,
  redactRedisUrl,
  type WorkerAd,
} from '@miniglm/core/service';
import type { LoadTestOptions } from './options.ts';

const MINIGLM = fileURLToPath(new URL('../../apps/cli/bin/miniglm.js', import.meta.url));
/** How long the API and the workers may take to start (tsx compiles the sources first). */
const START_TIMEOUT_MS = 90_000;
/** How long a stopped process may take to hand its work back before it is killed. */
const STOP_TIMEOUT_MS = 10_000;

export interface MemberKey {
  id: string;
  name: string;
  /** The bearer token, `mgk_<id>_<secret>`. */
  key: string;
}

export interface Services {
  apiUrl: string;
  /** The throw-away database, for reading the truth about runs (the API is what is measured). */
  db: Db;
  keys: MemberKey[];
  workers: WorkerAd[];
  /** What the load test made, and stop() removes. */
  resources: LoadTestResources;
  /** Service processes that ended on their own while the load test ran, with their last log lines. */
  unexpectedExits(): string[];
  /** Stops the processes and removes the database, the Redis keys and the folder; returns what could not be undone. */
  stop(): Promise<string[]>;
}

export interface LoadTestResources {
  database: string;
  redisPrefix: string;
  /** The workers' caches and every process's log. */
  folder: string;
}

interface ServiceProcess {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
  exit?: string;
}

/**
 * Starts everything, or undoes what it started and throws. `signal` aborts the start (Ctrl-C
 * while the workers are still loading).
 */
export async function startServices(options: LoadTestOptions, signal?: AbortSignal): Promise<Services> {
  const prefix = `miniglm-loadtest-${randomBytes(4).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-loadtest-'));
  const undo: { what: string; run: () => Promise<unknown> }[] = [
    { what: `remove ${dir}`, run: async () => fs.rmSync(dir, { recursive: true, force: true }) },
  ];
  const processes: ServiceProcess[] = [];
  let stopping = false;
  const stop = async () => {
    stopping = true;
    await Promise.all(processes.map(stopProcess));
    const problems: string[] = [];
    // Last made, first undone: the Redis keys and the database go before the folder.
    for (const step of undo.reverse())
      await step.run().catch((error: Error) => problems.push(`could not ${step.what}: ${error.message}`));
    return problems;
  };

  try {
    const database = await createTempDatabase('loadtest', options.postgresUrl);
    undo.push({ what: `drop the database ${database.name}`, run: database.drop });
    const db = await createDb({ url: database.url, env: {}, poolSize: 2 });
    undo.push({ what: 'close the database client', run: db.close });
    const migrated = await migrate(db);
    if (!migrated.ok) throw new Error(`database: ${migrated.error}`);

    const redis = createRedis(options.redisUrl, { failFast: true });
    undo.push({ what: 'close the Redis client', run: async () => redis.disconnect() });
    await untilReady(redis, options.redisUrl);
    undo.push({ what: `delete the Redis keys under ${prefix}`, run: () => deleteKeysWithPrefix(redis, prefix) });

    // Made as `miniglm keys create` makes them (the same core function, without a process each).
    const keys: MemberKey[] = [];
    for (let i = 1; i <= options.keys; i++) {
      const made = await createApiKey(db.prisma, { name: `loadtest-${i}`, role: 'member' });
      keys.push({ id: made.id, name: made.name, key: made.key });
    }

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: database.url,
      REDIS_URL: options.redisUrl,
      MINIGLM_PREFIX: prefix,
    };
    // Keys come from the database alone: a key in this shell's environment is not ours to store.
    delete env.MINIGLM_ADMIN_KEY;
    delete env.MINIGLM_ADMIN_KEY_FILE;

    // All at once: each spends seconds loading its sources.
    const api = spawnService('api', ['api', '--port', '0'], env, dir, 0, processes, () => stopping);
    for (let i = 1; i <= options.workers; i++) {
      const id = `loadtest-w${i}`;
      const workerEnv = { ...env, MINIGLM_THREADS: String(options.workerThreads) };
      const args = ['worker', '--id', id, '--work-dir', path.join(dir, id)];
      spawnService(id, args, workerEnv, dir, options.workerNice, processes, () => stopping);
    }
    const apiUrl = await waitForListening(api, processes, signal);
    const workers = await waitForWorkers(redis, prefix, options.workers, processes, signal);
    return {
      apiUrl,
      db,
      keys,
      workers,
      resources: { database: database.name, redisPrefix: prefix, folder: dir },
      unexpectedExits: () => processes.filter((p) => p.exit).map((p) => `${p.name} ${p.exit}: ${lastLines(p.log)}`),
      stop,
    };
  } catch (error) {
    const problems = await stop();
    if (problems.length) (error as Error).message += `; and cleaning up: ${problems.join('; ')}`;
    throw error;
  }
}

/** `miniglm <args>` under `nice -n <nice>` (from its start, so every thread and child inherits it). */
function spawnService(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  dir: string,
  nice: number,
  processes: ServiceProcess[],
  stopping: () => boolean,
): ServiceProcess {
  const log = path.join(dir, `${name}.log`);
  const out = fs.openSync(log, 'a');
  const command = [process.execPath, MINIGLM, ...args];
  const [file, ...rest] = nice > 0 ? ['nice', '-n', String(nice), ...command] : command;
  const child = spawn(file!, rest, { env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const service: ServiceProcess = { name, child, log, exited: Promise.resolve() };
  service.exited = new Promise((resolve) => {
    child.once('error', (error) => {
      service.exit = `could not start (${error.message})`;
      resolve();
    });
    child.once('exit', (code, sig) => {
      if (!stopping()) service.exit = `exited on its own (${sig ?? `code ${code}`})`;
      resolve();
    });
  });
  processes.push(service);
  return service;
}

/** SIGTERM (workers hand their stages back), then SIGKILL after STOP_TIMEOUT_MS. */
async function stopProcess(p: ServiceProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null || p.child.pid === undefined) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await p.exited;
  clearTimeout(timer);
}

/** The API's address, from the line `miniglm api` prints once it listens (it was given port 0). */
async function waitForListening(
  api: ServiceProcess,
  processes: ServiceProcess[],
  signal?: AbortSignal,
): Promise<string> {
  return waitUntil(`the API to listen (log: ${api.log})`, processes, signal, async () => {
    const url = /miniglm api: listening on (http:\/\/\S+)/.exec(fs.readFileSync(api.log, 'utf8'))?.[1];
    if (!url) return undefined;
    return (await fetch(`${url}/healthz`).catch(() => undefined))?.ok ? url : undefined;
  });
}

/** Every worker has advertised itself in Redis, which it does once its queues are ready. */
async function waitForWorkers(
  redis: Redis,
  prefix: string,
  count: number,
  processes: ServiceProcess[],
  signal?: AbortSignal,
): Promise<WorkerAd[]> {
  return waitUntil(`${count} workers to be ready`, processes, signal, async () => {
    const ads = await readWorkerAds(redis, prefix);
    return ads && ads.length >= count ? ads : undefined;
  });
}

async function waitUntil<T>(
  what: string,
  watched: ServiceProcess[],
  signal: AbortSignal | undefined,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    signal?.throwIfAborted();
    const dead = watched.find((p) => p.exit);
    if (dead) throw new Error(`${dead.name} ${dead.exit} while waiting for ${what}: ${lastLines(dead.log)}`);
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${START_TIMEOUT_MS / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** A fail-fast client refuses commands until it is connected: wait for that, briefly. */
async function untilReady(redis: Redis, url: string): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`Redis is not reachable at ${redactRedisUrl(url)} (--redis)`)),
      5000,
    );
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
}

function lastLines(file: string, count = 5): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-count).join(' | ') || '(no output)';
  } catch {
    return '(no log)';
  }
}
