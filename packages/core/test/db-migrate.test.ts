/**
 * The migration runner against a real Postgres server and against PGlite: Prisma's
 * `_prisma_migrations` bookkeeping, idempotence, two migrators at once, edited and failing
 * migrations. Each server test uses databases of its own, dropped at the end.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDb,
  DEFAULT_MIGRATIONS_DIR,
  DbError,
  migrate,
  readMigrations,
  resolveDbTarget,
  type Db,
} from '../src/db/index.ts';
import { createTempDatabase, type TempDatabase } from '../src/db/testing.ts';

const committed = (() => {
  const r = readMigrations();
  if (!r.ok) throw new Error(r.error);
  return r.value;
})();
const names = committed.map((m) => m.name);
const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

interface Row {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}
const ROWS = 'SELECT * FROM "_prisma_migrations" ORDER BY migration_name';

async function pgRows(url: string, sql = ROWS): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as Row[];
  } finally {
    await client.end();
  }
}

/** One finished row per committed migration, with the sha256 of its file: what Prisma writes. */
function expectPrismaBookkeeping(rows: Row[]) {
  expect(rows.map((r) => r.migration_name)).toEqual(names);
  for (const row of rows) {
    expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(row.checksum).toBe(sha256(path.join(DEFAULT_MIGRATIONS_DIR, row.migration_name, 'migration.sql')));
    expect(row.finished_at).toBeInstanceOf(Date);
    expect(row.finished_at!.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
    expect(row.applied_steps_count).toBe(1);
    expect(row.logs).toBeNull();
    expect(row.rolled_back_at).toBeNull();
  }
}

/** A copy of the committed migrations that a test may change. */
function copyMigrations(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-migrations-'));
  fs.cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

describe('readMigrations', () => {
  it('finds the committed migrations in order, with migration_lock.toml for Prisma', () => {
    expect(names.length).toBeGreaterThan(0);
    expect([...names].sort()).toEqual(names);
    expect(names[0]).toMatch(/^\d{14}_init$/);
    expect(fs.readFileSync(path.join(DEFAULT_MIGRATIONS_DIR, 'migration_lock.toml'), 'utf8')).toContain(
      'provider = "postgresql"',
    );
  });

  it('says what is wrong with a folder that is not a migrations folder', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-migrations-'));
    expect(readMigrations(dir)).toEqual({ ok: false, error: `no migrations in ${dir}` });
    fs.mkdirSync(path.join(dir, '20990101000000_x'));
    expect(readMigrations(dir)).toMatchObject({
      ok: false,
      error: expect.stringContaining('20990101000000_x has no migration.sql'),
    });
    expect(readMigrations(path.join(dir, 'absent'))).toMatchObject({
      ok: false,
      error: expect.stringContaining('cannot read the migrations folder'),
    });
    fs.rmSync(dir, { recursive: true });
  });
});

describe('resolveDbTarget / createDb', () => {
  it('uses DATABASE_URL for a server, else PGlite under MINIGLM_PGLITE_DIR or .miniglm/pglite', () => {
    expect(resolveDbTarget({ env: { DATABASE_URL: 'postgres://u@h/db' } })).toEqual({
      ok: true,
      value: { kind: 'postgres', url: 'postgres://u@h/db' },
    });
    expect(resolveDbTarget({ url: 'postgresql://a@b/c', env: { DATABASE_URL: 'postgres://u@h/db' } })).toMatchObject({
      value: { url: 'postgresql://a@b/c' },
    });
    expect(resolveDbTarget({ env: {} })).toEqual({
      ok: true,
      value: { kind: 'pglite', dataDir: path.resolve('.miniglm/pglite') },
    });
    expect(resolveDbTarget({ env: { DATABASE_URL: '', MINIGLM_PGLITE_DIR: '/x/y' } })).toEqual({
      ok: true,
      value: { kind: 'pglite', dataDir: '/x/y' },
    });
    expect(resolveDbTarget({ pgliteDir: 'memory://', env: {} })).toEqual({
      ok: true,
      value: { kind: 'pglite', dataDir: 'memory://' },
    });
  });

  it('refuses a URL that is not postgres, without showing its password', async () => {
    const r = resolveDbTarget({ env: { DATABASE_URL: 'mysql://root:secret@h/db' } });
    expect(r).toEqual({
      ok: false,
      error: expect.stringContaining('DATABASE_URL must be a postgres:// or postgresql:// URL'),
    });
    expect(JSON.stringify(r)).not.toContain('secret');
    await expect(createDb({ url: 'mysql://h/db' })).rejects.toThrow(DbError);
  });
});

describe('migrate on a Postgres server', () => {
  const databases: TempDatabase[] = [];
  const dirs: string[] = [];
  let main: TempDatabase;
  beforeAll(async () => {
    main = await createTempDatabase('migrate');
    databases.push(main);
  });
  afterAll(async () => {
    for (const d of databases) await d.drop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('applies every migration once and records it the way Prisma does', async () => {
    const first = await migrate(main.url);
    expect(first).toEqual({ ok: true, value: { applied: names, alreadyApplied: [] } });
    expectPrismaBookkeeping(await pgRows(main.url));
    const tables = await pgRows(
      main.url,
      `SELECT tablename AS migration_name FROM pg_tables WHERE schemaname = 'public'`,
    );
    expect(tables.map((t) => t.migration_name)).toEqual(
      expect.arrayContaining([
        'Run',
        'Stage',
        'Dataset',
        'Checkpoint',
        'Alias',
        'Artifact',
        'ArtifactChunk',
        'MetricPoint',
        'Evaluation',
        'StageEvent',
      ]),
    );

    const second = await migrate(main.url);
    expect(second).toEqual({ ok: true, value: { applied: [], alreadyApplied: names } });
    expectPrismaBookkeeping(await pgRows(main.url));
  });

  it('is safe when two clients migrate the same database at once', async () => {
    const fresh = await createTempDatabase('migrate_race');
    databases.push(fresh);
    const db = await createDb({ url: fresh.url, env: {} });
    try {
      // One through a URL, one through an open Db: two sessions, one advisory lock.
      const results = await Promise.all([migrate(fresh.url), migrate(db), migrate(fresh.url)]);
      for (const r of results) expect(r.ok, r.ok ? '' : r.error).toBe(true);
      const applied = results.flatMap((r) => (r.ok ? r.value.applied : []));
      expect(applied.sort()).toEqual(names);
      expectPrismaBookkeeping(await pgRows(fresh.url));
    } finally {
      await db.close();
    }
  });

  it('refuses a migration edited after it was applied', async () => {
    const dir = copyMigrations();
    dirs.push(dir);
    fs.appendFileSync(path.join(dir, names[0]!, 'migration.sql'), '\n-- an afterthought\n');
    const r = await migrate(main.url, { migrationsDir: dir });
    expect(r).toEqual({
      ok: false,
      error: expect.stringContaining(`migration ${names[0]} was changed after it was applied`),
    });
  });

  it('rolls back a failing migration completely, records nothing, and applies the next fixed one', async () => {
    const dir = copyMigrations();
    dirs.push(dir);
    const broken = path.join(dir, '29990101000000_broken');
    fs.mkdirSync(broken);
    fs.writeFileSync(
      path.join(broken, 'migration.sql'),
      'CREATE TABLE "half" ("id" INTEGER);\nSELECT * FROM "no_such_table";\n',
    );
    const r = await migrate(main.url, { migrationsDir: dir });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toContain('migration 29990101000000_broken failed and was rolled back');
      expect(r.error).toContain('no_such_table');
    }
    expect(await pgRows(main.url, `SELECT to_regclass('public.half') AS migration_name`)).toEqual([
      { migration_name: null },
    ]);
    expectPrismaBookkeeping(await pgRows(main.url));

    fs.rmSync(broken, { recursive: true });
    const good = path.join(dir, '29990101000001_good');
    fs.mkdirSync(good);
    fs.writeFileSync(path.join(good, 'migration.sql'), 'CREATE TABLE "later" ("id" INTEGER);\n');
    expect(await migrate(main.url, { migrationsDir: dir })).toEqual({
      ok: true,
      value: { applied: ['29990101000001_good'], alreadyApplied: names },
    });
    const rows = await pgRows(main.url);
    expect(rows.find((x) => x.migration_name === '29990101000001_good')?.checksum).toBe(
      sha256(path.join(good, 'migration.sql')),
    );
  });

  it('stops at a migration that Prisma left failed, and says how to resolve it', async () => {
    const dir = copyMigrations();
    dirs.push(dir);
    const next = path.join(dir, '29990101000002_next');
    fs.mkdirSync(next);
    fs.writeFileSync(path.join(next, 'migration.sql'), 'SELECT 1;\n');
    const client = new pg.Client({ connectionString: main.url });
    await client.connect();
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs, started_at, applied_steps_count) VALUES ($1, $2, $3, 'boom', now(), 0)`,
      ['00000000-0000-4000-8000-000000000000', sha256(path.join(next, 'migration.sql')), '29990101000002_next'],
    );
    await client.end();
    const r = await migrate(main.url, { migrationsDir: dir });
    expect(r).toEqual({
      ok: false,
      error: expect.stringContaining('prisma migrate resolve --rolled-back 29990101000002_next'),
    });
  });

  it('reports an unreachable server as a value', async () => {
    const r = await migrate('postgresql://postgres:hunter2@127.0.0.1:1/none');
    expect(r).toEqual({
      ok: false,
      error: expect.stringContaining('cannot connect to postgresql://postgres:***@127.0.0.1:1/none'),
    });
    expect(await migrate('sqlite://file.db')).toMatchObject({
      ok: false,
      error: expect.stringContaining('postgres://'),
    });
  });
});

describe('migrate on PGlite', () => {
  let dir = '';
  let db: Db | undefined;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-pglite-migrate-'));
  });
  afterAll(async () => {
    await db?.close();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(`${dir}.lock`, { force: true });
  });

  it('applies the same migrations with the same bookkeeping, once, and keeps them on disk', async () => {
    db = await createDb({ pgliteDir: dir, env: { DATABASE_URL: '' } });
    expect(db.target).toEqual({ kind: 'pglite', dataDir: dir });
    expect(await migrate(db)).toEqual({ ok: true, value: { applied: names, alreadyApplied: [] } });
    expect(await migrate(db)).toEqual({ ok: true, value: { applied: [], alreadyApplied: names } });
    expectPrismaBookkeeping((await db.pglite!.query<Row>(ROWS)).rows);
    await db.close();
    await db.close(); // closing twice is harmless

    db = await createDb({ pgliteDir: dir, env: {} });
    expect(await migrate(db)).toEqual({ ok: true, value: { applied: [], alreadyApplied: names } });
    expect(await db.prisma.run.count()).toBe(0);
  });

  it('refuses to open a folder that is open already, and takes over a lock its dead owner left', async () => {
    // db from the test above is open: a second opener would corrupt the folder.
    await expect(createDb({ pgliteDir: dir, env: {} })).rejects.toThrow(/already open in this process/);
    await db!.close();
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    fs.writeFileSync(`${dir}.lock`, String(dead));
    db = await createDb({ pgliteDir: dir, env: {} });
    expect(fs.readFileSync(`${dir}.lock`, 'utf8')).toBe(String(process.pid));
    await db.close();
    expect(fs.existsSync(`${dir}.lock`)).toBe(false);
  });
});
