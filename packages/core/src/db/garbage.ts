/**
 * Garbage collection of stored bytes: artifacts that no checkpoint, dataset or uploaded file
 * refers to any more, and prepared datasets that no stage trains on any more.
 *
 * - Targeted: whoever deletes rows (DELETE /v1/runs/:id, a retention pass) hands the
 *   artifacts and datasets those rows named to `collectArtifacts` / `collectDatasets`, which
 *   remove the ones nothing else refers to. Content addressing lets two rows share one
 *   artifact (the same file uploaded twice, two identical runs' checkpoints): a shared one
 *   stays as long as any row names it.
 * - Sweep: `sweepGarbage` finds what was orphaned otherwise (a writer that died between
 *   storing bytes and writing the row naming them), but only once it is older than a grace
 *   period, because a writer stores the bytes first and writes the row a moment later. An
 *   artifact still being uploaded (`completedAt` null) is left alone for a day.
 *
 * Each removal is one statement that checks again that nothing refers to the artifact or
 * dataset; a row written meanwhile makes the statement fail on its foreign key, and that
 * one is simply kept. A writer that reused stored bytes just as they were collected sees its
 * own foreign key fail and stores them again (ArtifactStore.putReferenced).
 */
import type { ArtifactStore } from './artifacts.ts';
import type { Db } from './client.ts';
import { isForeignKeyViolation } from './db-errors.ts';

/** What one collection removed. */
export interface Collected {
  artifacts: number;
  /** Total size of the removed artifacts. */
  bytes: number;
  datasets: number;
}

export interface SweepOptions {
  /** An unreferenced, completely stored artifact older than this is collected (default 1 hour). */
  completedGraceMs?: number;
  /** An artifact whose upload never completed, older than this, is collected (default 1 day). */
  uploadGraceMs?: number;
  /** An unreferenced dataset older than this is collected (default 1 hour). */
  datasetGraceMs?: number;
  /** Most artifacts and datasets looked at per sweep (default 1000); the next sweep takes the rest. */
  limit?: number;
}

const HOUR_MS = 3_600_000;
export const SWEEP_DEFAULTS: Required<SweepOptions> = {
  completedGraceMs: HOUR_MS,
  uploadGraceMs: 24 * HOUR_MS,
  datasetGraceMs: HOUR_MS,
  limit: 1000,
};

const NOTHING: Collected = { artifacts: 0, bytes: 0, datasets: 0 };

const add = (a: Collected, b: Collected): Collected => ({
  artifacts: a.artifacts + b.artifacts,
  bytes: a.bytes + b.bytes,
  datasets: a.datasets + b.datasets,
});

/** Nothing refers to the artifact `a`: no checkpoint, dataset or uploaded file. */
const UNREFERENCED_ARTIFACT = `
  NOT EXISTS (SELECT 1 FROM "Checkpoint" c WHERE c."artifactSha256" = a."sha256")
  AND NOT EXISTS (SELECT 1 FROM "Dataset" d WHERE d."artifactSha256" = a."sha256")
  AND NOT EXISTS (SELECT 1 FROM "DatasetFile" f WHERE f."artifactSha256" = a."sha256")`;

/**
 * Removes each of these artifacts (with its chunks) that nothing refers to any more. An
 * upload still in progress (younger than `uploadGraceMs`) is kept. `cache`: the store whose
 * local copies of the removed artifacts go too.
 */
export async function collectArtifacts(
  db: Pick<Db, 'sql'>,
  sha256s: Iterable<string>,
  options: { cache?: ArtifactStore; uploadGraceMs?: number } = {},
): Promise<Collected> {
  const staleUploadsBefore = new Date(Date.now() - (options.uploadGraceMs ?? SWEEP_DEFAULTS.uploadGraceMs));
  let collected = NOTHING;
  for (const sha256 of new Set(sha256s)) {
    const removed = await removeArtifact(db, sha256, staleUploadsBefore);
    if (removed === undefined) continue;
    options.cache?.dropCached(sha256);
    collected = add(collected, { artifacts: 1, bytes: removed, datasets: 0 });
  }
  return collected;
}

/** The removed artifact's size, or undefined when it is referenced, being uploaded or gone. */
async function removeArtifact(db: Pick<Db, 'sql'>, sha256: string, staleUploadsBefore: Date) {
  try {
    const [row] = await db.sql.query<{ size: string }>(
      `DELETE FROM "Artifact" a
       WHERE a."sha256" = $1 AND (a."completedAt" IS NOT NULL OR a."createdAt" < $2) AND ${UNREFERENCED_ARTIFACT}
       RETURNING a."size"::text AS size`,
      [sha256, staleUploadsBefore],
    );
    return row ? Number(row.size) : undefined;
  } catch (error) {
    if (isForeignKeyViolation(error)) return undefined; // a row named it meanwhile: it stays
    throw error;
  }
}

/**
 * Removes each of these prepared datasets that no stage trains on any more, then its
 * artifact unless something else refers to it.
 */
export async function collectDatasets(
  db: Pick<Db, 'sql'>,
  datasetIds: Iterable<string>,
  options: { cache?: ArtifactStore } = {},
): Promise<Collected> {
  const artifacts: string[] = [];
  let datasets = 0;
  for (const id of new Set(datasetIds)) {
    try {
      const [row] = await db.sql.query<{ artifactSha256: string }>(
        `DELETE FROM "Dataset" d
         WHERE d."id" = $1 AND NOT EXISTS (SELECT 1 FROM "Stage" s WHERE s."datasetId" = d."id")
         RETURNING d."artifactSha256" AS "artifactSha256"`,
        [id],
      );
      if (!row) continue;
      datasets++;
      artifacts.push(row.artifactSha256);
    } catch (error) {
      if (!isForeignKeyViolation(error)) throw error; // a stage took it meanwhile: it stays
    }
  }
  return add({ ...NOTHING, datasets }, await collectArtifacts(db, artifacts, options));
}

/**
 * Looks for what nothing refers to any more and is older than its grace period: datasets
 * first (their artifacts become unreferenced with them), then artifacts.
 */
export async function sweepGarbage(
  db: Pick<Db, 'sql'>,
  options: SweepOptions & { cache?: ArtifactStore } = {},
): Promise<Collected> {
  const o = { ...SWEEP_DEFAULTS, ...options };
  const now = Date.now();
  const datasets = await db.sql.query<{ id: string }>(
    `SELECT d."id" FROM "Dataset" d
     WHERE d."createdAt" < $1 AND NOT EXISTS (SELECT 1 FROM "Stage" s WHERE s."datasetId" = d."id")
     LIMIT $2`,
    [new Date(now - o.datasetGraceMs), o.limit],
  );
  const fromDatasets = await collectDatasets(
    db,
    datasets.map((d) => d.id),
    options,
  );
  const artifacts = await db.sql.query<{ sha256: string }>(
    `SELECT a."sha256" FROM "Artifact" a
     WHERE (a."completedAt" < $1 OR (a."completedAt" IS NULL AND a."createdAt" < $2)) AND ${UNREFERENCED_ARTIFACT}
     LIMIT $3`,
    [new Date(now - o.completedGraceMs), new Date(now - o.uploadGraceMs), o.limit],
  );
  const orphans = await collectArtifacts(
    db,
    artifacts.map((a) => a.sha256),
    { cache: options.cache, uploadGraceMs: o.uploadGraceMs },
  );
  return add(fromDatasets, orphans);
}
