/**
 * Side by side comparison of runs: headline numbers, the curriculum settings that differ,
 * and loss histories aligned on one global step axis (stage offset + step, as in
 * GET /v1/runs/:id/metrics).
 */
import { curriculumOf, type Curriculum } from '@miniglm/core';
import type { PrismaClient, SqlExecutor } from '@miniglm/core/db';
import { isUuid } from '@miniglm/core/service';
import type { Static } from '@sinclair/typebox';
import { badRequest, notFound } from '../errors.ts';
import type { CompareView } from '../responses.ts';
import { metricHistories } from './metric-history.ts';

export const COMPARE_KEYS = ['trainLoss', 'valLoss'] as const;
export const MIN_COMPARE = 2;
export const MAX_COMPARE = 20;
/** Each run's share of a history's points is never below this, however many runs are compared. */
export const MIN_POINTS_PER_RUN = 10;

/** "a, b,,c" → ["a","b","c"], checked for count and duplicates. */
export function parseRunList(raw: string): string[] {
  const ids = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length < MIN_COMPARE || ids.length > MAX_COMPARE)
    throw badRequest(
      `query string /runs: name ${MIN_COMPARE} to ${MAX_COMPARE} run ids separated by commas, not ${ids.length}`,
    );
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw badRequest(`query string /runs: run "${id}" is named twice`);
    seen.add(id);
  }
  return ids;
}

/** Leaves of a JSON value by dotted path: { model: { dim: 64 }, stages: [{ lr: 1 }] } → model.dim, stages.0.lr. */
export function flatten(value: unknown, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    if (entries.length === 0) out.set(prefix, value);
    for (const [key, v] of entries) flatten(v, prefix ? `${prefix}.${key}` : key, out);
  } else if (prefix) {
    out.set(prefix, value);
  }
  return out;
}

export async function compareRuns(
  prisma: PrismaClient,
  sql: SqlExecutor,
  ids: string[],
  maxPoints: number,
  /** A member's key: another key's run is not found. */
  owner?: string,
): Promise<Static<typeof CompareView>> {
  const runs = await prisma.run.findMany({
    where: { id: { in: ids.filter(isUuid) }, ...(owner ? { ownerId: owner } : {}) },
    include: {
      stages: { orderBy: { index: 'asc' } },
      evaluations: { orderBy: { createdAt: 'desc' }, take: 1 },
    },
  });
  const byId = new Map(runs.map((r) => [r.id, r]));
  const missing = ids.find((id) => !byId.has(id));
  if (missing) throw notFound(`query string /runs: no run with id "${missing}" (GET /v1/runs lists them)`);
  const ordered = ids.map((id) => byId.get(id)!);

  // Global step of a point = its stage's offset (sum of earlier stages' iterations) + step.
  const stages: { id: string; offset: number; owner: string }[] = [];
  for (const run of ordered) {
    let offset = 0;
    for (const s of run.stages) {
      stages.push({ id: s.id, offset, owner: run.id });
      offset += s.iterations;
    }
  }
  // Each run's history of a key on the global step axis, downsampled in SQL to its share of
  // maxPoints, on one bucket grid per key so that the runs' buckets line up.
  const [{ histories: byRun, downsampled }, lastValLoss] = await Promise.all([
    metricHistories(sql, {
      keys: [...COMPARE_KEYS],
      stages,
      maxPoints: Math.max(MIN_POINTS_PER_RUN, Math.floor(maxPoints / ids.length)),
      sharedGrid: true,
    }),
    latestValLoss(
      sql,
      ordered.flatMap((run) => (run.stages.length ? [run.stages.at(-1)!.id] : [])),
    ),
  ]);

  const now = Date.now();
  const summaries = ordered.map((run) => {
    const last = run.stages.at(-1);
    const lastVal = last ? lastValLoss.get(last.id) : undefined;
    const evaluation = run.evaluations[0];
    const rougeF = (evaluation?.rouge as { mean?: { f?: unknown } } | null)?.mean?.f;
    const timed = run.stages.filter((s) => s.tokensPerSec !== null && s.iterations > 0);
    const weight = timed.reduce((sum, s) => sum + s.iterations, 0);
    const backends = [...new Set(run.stages.map((s) => s.backend).filter((b): b is string => !!b))];
    return {
      id: run.id,
      name: run.name,
      status: run.status,
      finalValLoss: lastVal ?? null,
      perplexity: evaluation?.perplexity ?? null,
      rouge: typeof rougeF === 'number' ? rougeF : null,
      params: run.params,
      tokensPerSec: weight > 0 ? timed.reduce((sum, s) => sum + s.tokensPerSec! * s.iterations, 0) / weight : null,
      wallSeconds: run.startedAt ? ((run.finishedAt?.getTime() ?? now) - run.startedAt.getTime()) / 1000 : null,
      backend: backends.length ? backends.join(', ') : null,
    };
  });

  // Settings that differ: every leaf path of any curriculum whose values are not all equal.
  // A stage that only some runs have is one difference ("stages.tang": the stage or null),
  // not one per setting inside it.
  const curricula = ordered.map((run) => curriculumOf(run));
  const stageNames = [...new Set(curricula.flatMap((c) => (c.stages ?? []).map((st) => st.name)))];
  const partial = stageNames.filter((name) => !curricula.every((c) => c.stages?.some((st) => st.name === name)));
  const flat = curricula.map((c) =>
    flatten(byStageName({ ...c, stages: (c.stages ?? []).filter((st) => !partial.includes(st.name)) })),
  );
  const paths = [...new Set(flat.flatMap((f) => [...f.keys()]))].sort(comparePaths);
  const differences = [
    ...paths
      .map((path) => ({
        path,
        values: Object.fromEntries(ordered.map((run, i) => [run.id, flat[i]!.has(path) ? flat[i]!.get(path) : null])),
      }))
      .filter((d) => new Set(Object.values(d.values).map((v) => JSON.stringify(v))).size > 1),
    ...partial.map((name) => ({
      path: `stages.${name}`,
      values: Object.fromEntries(
        ordered.map((run, i) => [run.id, curricula[i]!.stages?.find((st) => st.name === name) ?? null]),
      ),
    })),
  ];

  // Histories aligned by global step: one row per step any run has, null where a run has none.
  const histories = Object.fromEntries(
    COMPARE_KEYS.map((key) => {
      const rows = new Map<number, Record<string, number | null>>();
      for (const [runId, points] of byRun.get(key)!) {
        for (const [step, value] of points) {
          let row = rows.get(step);
          if (!row) rows.set(step, (row = Object.fromEntries(ids.map((id) => [id, null]))));
          row[runId] = value;
        }
      }
      return [key, [...rows.entries()].sort((a, b) => a[0] - b[0]).map(([step, values]) => ({ step, values }))];
    }),
  );

  return { runs: summaries, differences, histories, maxPoints, downsampled };
}

/** The latest valLoss of each of these stages (by step), read by one DISTINCT ON query. */
async function latestValLoss(sql: SqlExecutor, stageIds: string[]): Promise<Map<string, number>> {
  if (stageIds.length === 0) return new Map();
  const rows = await sql.query<{ stageId: string; value: number }>(
    `SELECT DISTINCT ON ("stageId") "stageId", "value" FROM "MetricPoint"
      WHERE "stageId" = ANY($1::text[]) AND "key" = 'valLoss' ORDER BY "stageId", "step" DESC`,
    [stageIds],
  );
  return new Map(rows.map((r) => [r.stageId, Number(r.value)]));
}

/**
 * Stages keyed by name ("stages.qa.lr"), not position: a variant that branches from another
 * run's checkpoint and repeats only its last stage is compared stage for stage.
 */
function byStageName(c: Curriculum): unknown {
  return { ...c, stages: Object.fromEntries((c.stages ?? []).map((s) => [s.name, s])) };
}

/** Sorts "stages.10.lr" after "stages.2.lr": numeric segments compare as numbers. */
function comparePaths(a: string, b: string): number {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    const [m, n] = [Number(x[i]), Number(y[i])];
    if (Number.isInteger(m) && Number.isInteger(n)) return m - n;
    return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}
