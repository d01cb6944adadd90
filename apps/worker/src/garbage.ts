/**
 * The worker's garbage collection, on start and every `collectIntervalMs`:
 *
 * - in the database, what nothing refers to any more and is older than its grace period
 *   (core's sweepGarbage: datasets no stage trains on, artifacts no row names, uploads
 *   abandoned a day ago). Deletions collect their own bytes at once; the sweep catches what a
 *   writer that died between storing bytes and naming them left behind. Then a plain VACUUM
 *   of the chunk table: Postgres reuses the pages of deleted rows only once a vacuum has
 *   passed, and where autovacuum is off (or slow to come) a long run whose retention deletes a
 *   checkpoint for every one it writes would otherwise grow the file as if it kept them all.
 *   It takes no lock that blocks reads or writes, and skips pages with no dead rows;
 * - on this machine, the local copies whose rows are gone: cached artifacts
 *   (<workDir>/artifacts, also kept under `cacheBytes` by least-recent use as they are
 *   added), unpacked datasets (<workDir>/datasets/<id>) and uploaded files
 *   (<workDir>/files/<sha256>.<ext>). A copy whose row exists stays: it is what the next job
 *   of this worker reads instead of the database.
 *
 * A round that fails (the database is away) is logged and tried again at the next interval.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { sweepGarbage, type Collected } from '@miniglm/core/db';
import type { WorkerContext } from './context.ts';

export interface GarbageReport {
  /** What the database sweep removed. */
  database: Collected;
  /** Local copies removed, and their bytes. */
  local: { entries: number; bytes: number };
}

export interface GarbageCollector {
  /** One round now (also what the timer runs); a round already under way is joined. */
  collect(): Promise<GarbageReport | undefined>;
  close(): Promise<void>;
}

/** How many names one database look-up checks. */
const BATCH = 500;

export function startGarbageCollector(ctx: WorkerContext): GarbageCollector {
  let round: Promise<GarbageReport | undefined> | undefined;
  const collect = () =>
    (round ??= (async () => {
      try {
        const database = await sweepGarbage(ctx.db, { cache: ctx.store });
        await ctx.db.sql.query('VACUUM "ArtifactChunk"');
        const local = await pruneLocalCopies(ctx);
        if (database.artifacts + database.datasets + local.entries > 0)
          ctx.log(
            `garbage: ${database.artifacts} artifacts (${database.bytes} bytes) and ${database.datasets} datasets from the database, ${local.entries} local copies (${local.bytes} bytes)`,
          );
        return { database, local };
      } catch (error) {
        ctx.log(`collecting garbage: ${(error as Error).message} (trying again later)`);
        return undefined;
      }
    })().finally(() => (round = undefined)));

  void collect();
  const timer = setInterval(() => void collect(), ctx.settings.collectIntervalMs);
  timer.unref();
  return {
    collect,
    async close() {
      clearInterval(timer);
      await round;
    },
  };
}

/** Removes the local copies whose database rows are gone. */
export async function pruneLocalCopies(ctx: WorkerContext): Promise<{ entries: number; bytes: number }> {
  const { sql } = ctx.db;
  const removed = { entries: 0, bytes: 0 };
  const drop = async (entry: string) => {
    removed.bytes += await sizeOf(entry);
    await fs.rm(entry, { recursive: true, force: true });
    removed.entries++;
  };
  const gone = async (names: string[], query: string) => {
    const found = new Set<string>();
    for (let i = 0; i < names.length; i += BATCH) {
      const rows = await sql.query<{ name: string }>(query, [names.slice(i, i + BATCH)]);
      for (const r of rows) found.add(r.name);
    }
    return names.filter((n) => !found.has(n));
  };

  // Cached artifacts: <workDir>/artifacts/<sha256[0..2]>/<sha256>.
  const cacheDir = ctx.store.cacheDir;
  if (cacheDir) {
    const cached = new Map<string, string>();
    for (const dir of await list(cacheDir))
      if (/^[0-9a-f]{2}$/.test(dir))
        for (const sha256 of await list(path.join(cacheDir, dir))) cached.set(sha256, path.join(cacheDir, dir, sha256));
    const missing = await gone(
      [...cached.keys()],
      `SELECT "sha256" AS name FROM "Artifact" WHERE "sha256" = ANY($1::text[])`,
    );
    for (const sha256 of missing) await drop(cached.get(sha256)!);
  }

  // Unpacked datasets: <workDir>/datasets/<id> (a half-unpacked "<id>.tmp-..." is its unpacker's).
  const datasetsDir = path.join(ctx.workDir, 'datasets');
  const datasets = (await list(datasetsDir)).filter((name) => !name.includes('.tmp-'));
  for (const id of await gone(datasets, `SELECT "id" AS name FROM "Dataset" WHERE "id" = ANY($1::text[])`))
    await drop(path.join(datasetsDir, id));

  // Uploaded files: <workDir>/files/<sha256><.ext> (a "<...>.tmp" is being copied).
  const filesDir = path.join(ctx.workDir, 'files');
  const files = (await list(filesDir)).filter((name) => !name.endsWith('.tmp'));
  const bySha = new Map(files.map((name) => [name.split('.')[0]!, name]));
  const unused = await gone(
    [...bySha.keys()],
    `SELECT DISTINCT "artifactSha256" AS name FROM "DatasetFile" WHERE "artifactSha256" = ANY($1::text[])`,
  );
  for (const sha256 of unused) await drop(path.join(filesDir, bySha.get(sha256)!));
  return removed;
}

/** The names in a folder; none when it does not exist. */
async function list(dir: string): Promise<string[]> {
  return fs.readdir(dir).catch(() => []);
}

/** Bytes of a file, or of every file under a folder. */
async function sizeOf(entry: string): Promise<number> {
  const stat = await fs.stat(entry).catch(() => undefined);
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.size;
  let total = 0;
  for (const name of await list(entry)) total += await sizeOf(path.join(entry, name));
  return total;
}
