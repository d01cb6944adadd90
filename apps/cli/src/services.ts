/**
 * How the service commands (api, worker, demo) find Postgres and Redis: DATABASE_URL, else
 * an embedded PGlite folder; REDIS_URL, else (demo only) a private redis-server.
 */
import { createDb, migrate, type Db } from '@miniglm/core/db';
import { DEFAULT_PREFIX } from '@miniglm/core/service';
import { UsageError } from './errors.ts';

/** Opens the database and brings its schema up to date. */
export async function openServiceDb(options: { pgliteDir?: string } = {}): Promise<Db> {
  const db = await createDb({ pgliteDir: options.pgliteDir });
  const migrated = await migrate(db);
  if (!migrated.ok) {
    await db.close();
    throw new UsageError(`database: ${migrated.error}`);
  }
  return db;
}

export function queuePrefix(flag?: string): string {
  const prefix = flag ?? process.env.MINIGLM_PREFIX ?? DEFAULT_PREFIX;
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix))
    throw new UsageError(`--prefix must be letters, digits, "_", ".", ":" or "-", got "${prefix}"`);
  return prefix;
}

export function requireRedisUrl(flag?: string): string {
  const url = flag ?? process.env.REDIS_URL;
  if (!url)
    throw new UsageError(
      'no Redis: set REDIS_URL (for example redis://127.0.0.1:6379) or pass --redis-url; "miniglm demo" starts a private one',
    );
  return url;
}

/** Milliseconds from an environment variable, for the few knobs tests and operators turn. */
export function envMs(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 100)
    throw new UsageError(`${name} must be a whole number of milliseconds (at least 100), got "${v}"`);
  return n;
}

/** Seconds (0 or more, fractions allowed) from an environment variable, or `fallback` when unset. */
export function envSeconds(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 86_400)
    throw new UsageError(`${name} must be a number of seconds from 0 to 86400, got "${v}"`);
  return n;
}

/** Runs `stop` once on SIGTERM or SIGINT; a second signal exits at once. */
export function onShutdownSignal(stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1);
      stopping = true;
      stop(signal).then(
        () => process.exit(process.exitCode ?? 0),
        (error: Error) => {
          console.error(`miniglm: error: ${error.message}`);
          process.exit(1);
        },
      );
    });
  }
}
