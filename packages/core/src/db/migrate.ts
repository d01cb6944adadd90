/**
 * Applies the committed migrations in prisma/migrations, to a Postgres server and to PGlite
 * through the same code.
 *
 * Why not `prisma migrate deploy`: its native schema engine cannot be downloaded here, and
 * the JavaScript one fails against a Postgres server (prisma/orm issue 27403). This runner
 * keeps Prisma's own bookkeeping — the `_prisma_migrations` table, one row per migration with
 * the sha256 of its migration.sql, and the same advisory lock key — so a native
 * `prisma migrate deploy`/`status`, where one exists, sees the same state and agrees.
 *
 * Unlike Prisma, each migration runs inside a transaction together with its bookkeeping row:
 * a failed migration leaves nothing behind (no half-applied schema, no "failed" row to
 * resolve by hand), and is simply reported. The price: a migration cannot use statements
 * Postgres refuses inside a transaction (CREATE INDEX CONCURRENTLY, for one).
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { redact, resolveDbTarget, type Db } from './client.ts';
import { openPgSession, pgliteSession, type SqlSession } from './sql-session.ts';

/** prisma/migrations at the repository root. */
export const DEFAULT_MIGRATIONS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../../prisma/migrations',
);

/** The key Prisma Migrate itself locks (`SELECT pg_advisory_lock(72707369)`), so our runner and Prisma's exclude each other too. */
export const PRISMA_MIGRATE_LOCK_KEY = 72707369;

export interface Migration {
  /** The folder name, e.g. 20261128153139_init; migrations apply in the order of these names. */
  name: string;
  sql: string;
  /** sha256 (hex) of migration.sql's bytes, as Prisma records it. */
  checksum: string;
}

export interface MigrateReport {
  /** Migrations applied by this call, in order. */
  applied: string[];
  /** Migrations found already applied. */
  alreadyApplied: string[];
}

export interface MigrateOptions {
  migrationsDir?: string;
  /** Progress lines ("applied 20261128153139_init"). */
  log?: (line: string) => void;
}

export type MigrateResult = { ok: true; value: MigrateReport } | { ok: false; error: string };

/** Prisma's DDL for its table (checked against what `prisma migrate deploy` creates). */
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/** Reads prisma/migrations: every folder holding a migration.sql, sorted by name. */
export function readMigrations(
  dir: string = DEFAULT_MIGRATIONS_DIR,
): { ok: true; value: Migration[] } | { ok: false; error: string } {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    return { ok: false, error: `cannot read the migrations folder ${dir}: ${(error as Error).message}` };
  }
  const migrations: Migration[] = [];
  for (const entry of entries
    .filter((e) => e.isDirectory())
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const file = path.join(dir, entry.name, 'migration.sql');
    if (!fs.existsSync(file)) return { ok: false, error: `migration ${entry.name} has no migration.sql (${file})` };
    const bytes = fs.readFileSync(file);
    migrations.push({
      name: entry.name,
      sql: bytes.toString('utf8'),
      checksum: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  if (migrations.length === 0) return { ok: false, error: `no migrations in ${dir}` };
  return { ok: true, value: migrations };
}

/**
 * Brings the database up to date. `target` is an open Db (its PGlite, or its server URL on
 * a connection of our own), or a postgres:// URL. Idempotent: a second call applies nothing.
 * Two processes migrating the same server at once are serialized by the advisory lock; the
 * second finds everything applied.
 */
export async function migrate(target: Db | string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = readMigrations(options.migrationsDir);
  if (!migrations.ok) return migrations;

  if (typeof target !== 'string' && target.pglite) {
    return runLocked(pgliteSession(target.pglite), migrations.value, options, 'the embedded database');
  }
  const url = typeof target === 'string' ? target : target.target.kind === 'postgres' ? target.target.url : '';
  const resolved = resolveDbTarget({ url, env: {} });
  if (!resolved.ok || resolved.value.kind !== 'postgres') {
    return { ok: false, error: resolved.ok ? 'migrate needs a postgres:// URL or an open Db' : resolved.error };
  }
  let session: Awaited<ReturnType<typeof openPgSession>>;
  try {
    session = await openPgSession(url);
  } catch (error) {
    return { ok: false, error: `cannot connect to ${redact(url)}: ${(error as Error).message}` };
  }
  try {
    return await runLocked(session, migrations.value, options, redact(url));
  } finally {
    await session.close().catch(() => {});
  }
}

async function runLocked(
  session: SqlSession,
  migrations: Migration[],
  options: MigrateOptions,
  where: string,
): Promise<MigrateResult> {
  try {
    // Session-level lock: held across the per-migration transactions below, released on
    // unlock or when the connection ends (so a crashed migrator cannot leave it held).
    await session.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK_KEY]);
  } catch (error) {
    return { ok: false, error: `migrating ${where}: cannot take the migration lock: ${(error as Error).message}` };
  }
  try {
    return await apply(session, migrations, options, where);
  } catch (error) {
    return { ok: false, error: `migrating ${where}: ${(error as Error).message}` };
  } finally {
    await session.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_LOCK_KEY]).catch(() => {});
  }
}

async function apply(
  session: SqlSession,
  migrations: Migration[],
  options: MigrateOptions,
  where: string,
): Promise<MigrateResult> {
  await session.exec(CREATE_MIGRATIONS_TABLE);
  const rows = await session.query<MigrationRow>(
    'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at',
  );
  const report: MigrateReport = { applied: [], alreadyApplied: [] };

  for (const m of migrations) {
    const mine = rows.filter((r) => r.migration_name === m.name && r.rolled_back_at === null);
    const done = mine.find((r) => r.finished_at !== null);
    if (done) {
      if (done.checksum !== m.checksum) {
        return {
          ok: false,
          error: `migrating ${where}: migration ${m.name} was changed after it was applied (checksum ${done.checksum.slice(0, 12)}… in the database, ${m.checksum.slice(0, 12)}… on disk); add a new migration instead of editing an applied one`,
        };
      }
      report.alreadyApplied.push(m.name);
      continue;
    }
    if (mine.length > 0) {
      // Left by Prisma's own migrate (which does not use a transaction) after a failure.
      return {
        ok: false,
        error: `migrating ${where}: migration ${m.name} failed earlier and is not finished; fix the database, then mark it with "prisma migrate resolve --rolled-back ${m.name}" (or delete its row from _prisma_migrations)`,
      };
    }
    try {
      await session.transaction(async (tx) => {
        const id = randomUUID();
        await tx.query(
          'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)',
          [id, m.checksum, m.name],
        );
        await tx.exec(m.sql);
        // clock_timestamp(): now() is the transaction's start, the same as started_at.
        await tx.query(
          'UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1',
          [id],
        );
      });
    } catch (error) {
      return {
        ok: false,
        error: `migrating ${where}: migration ${m.name} failed and was rolled back: ${(error as Error).message}`,
      };
    }
    report.applied.push(m.name);
    options.log?.(`applied ${m.name}`);
  }
  return { ok: true, value: report };
}
