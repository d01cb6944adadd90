/**
 * The database client factory: a Prisma client on a Postgres server when `DATABASE_URL` (or
 * `url`) names one, else on an embedded PGlite kept in a local folder, so that the service
 * and `miniglm demo` run with no database server installed.
 *
 * Both go through driver adapters with Prisma's WebAssembly query compiler
 * (`engineType = "client"` in prisma/schema.prisma): no native engine is downloaded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import type { PrismaClient } from './generated/client/index.js';
import { pgliteAdapterFactory } from './pglite-adapter.ts';

/** Where the embedded database lives when neither `pgliteDir` nor MINIGLM_PGLITE_DIR says. */
export const DEFAULT_PGLITE_DIR = '.miniglm/pglite';

export type DbTarget =
  | { kind: 'postgres'; url: string }
  /** `dataDir` is a folder, or `memory://` for a database that lives only in this process. */
  | { kind: 'pglite'; dataDir: string };

export interface DbOptions {
  /** A postgres:// or postgresql:// URL; default `DATABASE_URL`. Empty means unset. */
  url?: string;
  /** Folder of the embedded database when there is no URL; default MINIGLM_PGLITE_DIR, then DEFAULT_PGLITE_DIR (relative to the working directory). */
  pgliteDir?: string;
  /** Where to read DATABASE_URL / MINIGLM_PGLITE_DIR from; default process.env. */
  env?: Record<string, string | undefined>;
  /** Connections in the pool to a Postgres server (default 10). */
  poolSize?: number;
}

/** Plain parameterized SQL on the same database, for the few paths where Prisma is too slow (bulk bytes). */
export interface SqlExecutor {
  query<R extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
}

export interface Db {
  readonly target: DbTarget;
  readonly prisma: PrismaClient;
  /** Shares the Prisma client's pool (server) or database (PGlite). */
  readonly sql: SqlExecutor;
  /** The embedded database itself (the migration runner talks to it directly). */
  readonly pglite?: PGlite;
  /** Disconnects Prisma and, for PGlite, closes the database: an open PGlite keeps the process alive. Safe to call twice. */
  close(): Promise<void>;
}

/** A configuration or connection problem, worded for the person running the service. */
export class DbError extends Error {
  override name = 'DbError';
}

/** Decides where the database is, without connecting. */
export function resolveDbTarget(options: DbOptions = {}): { ok: true; value: DbTarget } | { ok: false; error: string } {
  const env = options.env ?? process.env;
  const url = options.url || env.DATABASE_URL || undefined;
  if (url) {
    if (!/^postgres(ql)?:\/\//i.test(url)) {
      return {
        ok: false,
        error: `DATABASE_URL must be a postgres:// or postgresql:// URL, not "${redact(url)}" (leave it unset to use the embedded PGlite database)`,
      };
    }
    return { ok: true, value: { kind: 'postgres', url } };
  }
  const dir = options.pgliteDir || env.MINIGLM_PGLITE_DIR || DEFAULT_PGLITE_DIR;
  return { ok: true, value: { kind: 'pglite', dataDir: dir.startsWith('memory://') ? dir : path.resolve(dir) } };
}

/**
 * Opens the database. For a server this only builds the pool (connections open on first
 * use); for PGlite it opens the folder, so errors such as a folder written by another
 * PostgreSQL version surface here. Apply migrations with `migrate(db)` before use.
 */
export async function createDb(options: DbOptions = {}): Promise<Db> {
  const target = resolveDbTarget(options);
  if (!target.ok) throw new DbError(target.error);
  const { PrismaClient } = await loadClient();

  if (target.value.kind === 'postgres') {
    // Our pool, handed to the adapter, so that `sql` and Prisma share its connections.
    const pool = new pg.Pool({ connectionString: target.value.url, max: options.poolSize ?? 10 });
    // An idle connection dropped by the server must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
    return {
      target: target.value,
      prisma,
      sql: { query: async (text, params) => (await pool.query(text, params)).rows },
      close: once(async () => {
        try {
          await prisma.$disconnect();
        } finally {
          await pool.end();
        }
      }),
    };
  }

  const { dataDir } = target.value;
  if (dataDir === path.resolve(DEFAULT_PGLITE_DIR)) ignoreInGit(path.dirname(dataDir));
  const unlock = dataDir.startsWith('memory://') ? () => {} : lockDataDir(dataDir);
  let pglite: PGlite;
  try {
    if (!dataDir.startsWith('memory://')) fs.mkdirSync(dataDir, { recursive: true });
    pglite = await PGlite.create(dataDir);
  } catch (error) {
    unlock();
    throw new DbError(`cannot open the embedded database in ${dataDir}: ${message(error)}`);
  }
  // pglite-prisma-adapter 0.6 is typed against Prisma 6.10's adapter interface; the shim
  // makes it behave for 6.19 (see pglite-adapter.ts), the cast makes the types agree.
  type AdapterFactory = NonNullable<ConstructorParameters<typeof PrismaClient>[0]>['adapter'];
  const adapter = pgliteAdapterFactory(pglite) as AdapterFactory;
  const prisma = new PrismaClient({ adapter });
  return {
    target: target.value,
    prisma,
    sql: {
      query: async <R extends object>(text: string, params?: unknown[]) => (await pglite.query<R>(text, params)).rows,
    },
    pglite,
    close: once(async () => {
      try {
        await prisma.$disconnect();
      } finally {
        await pglite.close().finally(unlock);
      }
    }),
  };
}

/** The default folder sits in the working tree (a checkout, usually): keep it out of git. */
function ignoreInGit(dir: string): void {
  if (fs.existsSync(dir)) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, '.gitignore'), '# local state of miniglm (embedded database); never committed\n*\n');
}

/**
 * PGlite is PostgreSQL inside this process: a second process opening the same folder would
 * corrupt it, and PGlite does not check. A lock file next to the folder (`<dir>.lock`,
 * holding the pid) turns that into a clear error; a lock left by a dead process is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const lock = `${dataDir}.lock`;
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lock, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new DbError(`cannot lock the embedded database ${dataDir}: ${message(error)}`);
      const owner = Number.parseInt(fs.readFileSync(lock, 'utf8'), 10);
      if (owner === process.pid || (Number.isInteger(owner) && alive(owner))) {
        throw new DbError(
          `the embedded database in ${dataDir} is already open in ${owner === process.pid ? 'this process' : `process ${owner}`}; ` +
            'PGlite serves one process at a time (close it first, or set DATABASE_URL to share a Postgres server)',
        );
      }
      fs.rmSync(lock, { force: true }); // stale: its process is gone
    }
  }
  throw new DbError(`cannot lock the embedded database ${dataDir}: ${lock} keeps reappearing`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Hides the password of a URL that appears in a message. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}

/** The generated client is loaded lazily so that a missing `prisma generate` gets a clear message. */
async function loadClient(): Promise<typeof import('./generated/client/index.js')> {
  try {
    return await import('./generated/client/index.js');
  } catch (error) {
    throw new DbError(
      `the Prisma client is not generated (${message(error)}); run "node scripts/ensure-deps.mjs" or "npx prisma generate"`,
    );
  }
}
