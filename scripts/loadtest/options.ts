/**
 * What `npm run loadtest` does and where, from its command line: every knob with its default,
 * its bounds (the load is bounded in count and in time) and a message naming the flag when a
 * value is wrong.
 */
import { parseArgs } from 'node:util';

export interface LoadTestOptions {
  /** Runs submitted in all, spread evenly over the keys. */
  runs: number;
  /** Member API keys that submit them (each reads only its own runs). */
  keys: number;
  /** `miniglm worker` processes. */
  workers: number;
  /** Training iterations of each run's one stage. */
  iterations: number;
  /** Concurrent read loops (list, one run, its metrics, /healthz) while the runs go through. */
  readers: number;
  /** Pause of each read loop between two rounds of reads. */
  readPauseMs: number;
  /** The runs must be final this many seconds after the first submission; the rest are stuck. */
  deadlineS: number;
  /** Fail when a read route's p99 latency is this or more. */
  maxReadP99Ms: number;
  /** Scheduling priority of the workers (`nice -n`): 0 runs them as the API, 19 lowest. */
  workerNice: number;
  /** MINIGLM_THREADS of each worker (BLAS threads of the native backend). */
  workerThreads: number;
  /** The Postgres server on which a throw-away database is created (and dropped). */
  postgresUrl: string;
  redisUrl: string;
}

export const HELP = `usage: npm run loadtest -- [options]

Starts "miniglm api" and N "miniglm worker" processes on a throw-away database and Redis
prefix of their own, makes member API keys, submits tiny runs from every key at once while
it polls reads, waits for every run to end, prints what it saw, cleans up (also on Ctrl-C)
and exits 1 when a run failed or got stuck, a submission or read got an answer that was not
a success or a quota refusal (429), or a read route's p99 latency reached the threshold.

  --runs N               runs submitted in all (default 200)
  --keys N               member keys submitting them (default 4)
  --workers N            worker processes (default 2)
  --iterations N         iterations of each run's one stage (default 3)
  --readers N            concurrent read loops (default 2)
  --read-pause-ms N      pause of a read loop between rounds (default 50)
  --deadline-s N         seconds the runs have to end, from the first submission (default 1800)
  --max-read-p99-ms N    fail at this read p99 or more, per route (default 200)
  --worker-nice N        nice value of the workers, 0-19 (default 10)
  --worker-threads N     MINIGLM_THREADS of each worker (default 1)
  --postgres URL         server for the throw-away database (default MINIGLM_TEST_PG_URL,
                         then postgresql://postgres@127.0.0.1:5432/postgres)
  --redis URL            Redis (default REDIS_URL, then redis://127.0.0.1:6379)

Everything runs on this machine: the API listens on 127.0.0.1, and Postgres and Redis must
be loopback addresses too.`;

export const DEFAULT_OPTIONS: LoadTestOptions = {
  runs: 200,
  keys: 4,
  workers: 2,
  iterations: 3,
  readers: 2,
  readPauseMs: 50,
  deadlineS: 1800,
  maxReadP99Ms: 200,
  workerNice: 10,
  workerThreads: 1,
  postgresUrl: process.env.MINIGLM_TEST_PG_URL || 'postgresql://postgres@127.0.0.1:5432/postgres',
  redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
};

/** Each number flag: its option, and the bounds that keep a load test a bounded one. */
const NUMBERS = {
  runs: ['runs', 1, 10_000],
  keys: ['keys', 1, 64],
  workers: ['workers', 1, 16],
  iterations: ['iterations', 1, 1000],
  readers: ['readers', 0, 64],
  'read-pause-ms': ['readPauseMs', 0, 60_000],
  'deadline-s': ['deadlineS', 1, 4 * 3600],
  'max-read-p99-ms': ['maxReadP99Ms', 1, 60_000],
  'worker-nice': ['workerNice', 0, 19],
  'worker-threads': ['workerThreads', 1, 256],
} as const satisfies Record<string, [keyof LoadTestOptions, number, number]>;

export type ParsedArgs =
  { ok: true; options: LoadTestOptions } | { ok: true; help: true } | { ok: false; error: string };

export function parseLoadTestArgs(argv: string[]): ParsedArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    const stringFlags = Object.fromEntries(
      [...Object.keys(NUMBERS), 'postgres', 'redis'].map((name) => [name, { type: 'string' as const }]),
    );
    ({ values } = parseArgs({ args: argv, options: { ...stringFlags, help: { type: 'boolean' } }, strict: true }));
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
  if (values.help) return { ok: true, help: true };
  const options: LoadTestOptions = { ...DEFAULT_OPTIONS };
  for (const [flag, [key, min, max]] of Object.entries(NUMBERS)) {
    const text = values[flag];
    if (typeof text !== 'string') continue;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max)
      return { ok: false, error: `--${flag} must be a whole number from ${min} to ${max}, got "${text}"` };
    options[key] = n;
  }
  if (typeof values.postgres === 'string') options.postgresUrl = values.postgres;
  if (typeof values.redis === 'string') options.redisUrl = values.redis;
  for (const [flag, url] of [
    ['--postgres', options.postgresUrl],
    ['--redis', options.redisUrl],
  ] as const) {
    const host = hostOf(url);
    if (host === undefined) return { ok: false, error: `${flag}: "${url}" is not a URL` };
    if (!isLoopback(host))
      return {
        ok: false,
        error: `${flag}: the load test runs on this machine only, but "${host}" is not a loopback address`,
      };
  }
  return { ok: true, options };
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
