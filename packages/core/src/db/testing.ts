/**
 * Throw-away Postgres databases for test suites (core's, the API's, the workers', the CLI's
 * and the dashboard's): each suite creates its own, uniquely named database and drops it
 * afterwards, so suites can run in parallel against one server without touching any other.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createDb, redact, type Db } from './client.ts';
import { migrate } from './migrate.ts';

/** The server the tests use: MINIGLM_TEST_PG_URL, else the development default (trust auth). */
export const TEST_ADMIN_URL = process.env.MINIGLM_TEST_PG_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TempDatabase {
  name: string;
  url: string;
  /** Drops the database, closing whatever connections are still open on it. */
  drop(): Promise<void>;
}

/**
 * Creates an empty database named miniglm_test_<prefix>_<random>. Fails with a message that
 * says what to do when the server is not reachable: tests that need Postgres must fail,
 * not skip, when it is missing.
 */
export async function createTempDatabase(prefix = 'db', adminUrl = TEST_ADMIN_URL): Promise<TempDatabase> {
  const name = `miniglm_test_${prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_${randomBytes(5).toString('hex')}`;
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () =>
      withAdmin(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(
        () => undefined,
      ),
  };
}

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is not reachable at ${redact(adminUrl)} (${describe(error)}). ` +
        'The database tests need a real server: start one on 127.0.0.1:5432 (user postgres, trust auth; .ci/run starts it) ' +
        'or point MINIGLM_TEST_PG_URL at one.',
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Node's connection errors can carry an empty message (an AggregateError of ECONNREFUSEDs). */
function describe(error: unknown): string {
  const e = error as { message?: string; code?: string; errors?: { message?: string }[] };
  return e.message || e.code || e.errors?.[0]?.message || String(error);
}

export type TestBackend = 'postgres' | 'pglite';

export interface TestDb {
  db: Db;
  /** The server database's URL (postgres) or the PGlite folder. */
  where: string;
  /** Closes the client and drops the database / removes the folder. */
  cleanup(): Promise<void>;
}

/**
 * A migrated database of its own for one test file: a fresh database on the test server,
 * or a PGlite in a fresh temporary folder. DATABASE_URL is ignored on purpose.
 */
export async function openTestDb(backend: TestBackend, prefix: string): Promise<TestDb> {
  let db: Db;
  let where: string;
  let drop: () => Promise<void>;
  if (backend === 'postgres') {
    const tmp = await createTempDatabase(prefix);
    where = tmp.url;
    drop = tmp.drop;
    db = await createDb({ url: tmp.url, env: {}, poolSize: 4 });
  } else {
    where = fs.mkdtempSync(path.join(os.tmpdir(), `miniglm-${prefix}-`));
    drop = async () => fs.rmSync(where, { recursive: true, force: true });
    db = await createDb({ pgliteDir: where, env: {} });
  }
  const cleanup = async () => {
    await db.close().catch(() => {});
    await drop();
  };
  const migrated = await migrate(db);
  if (!migrated.ok) {
    await cleanup();
    throw new Error(migrated.error);
  }
  return { db, where, cleanup };
}
