/**
 * Read models of runs: the list row, the full run with its stages, its event log and its
 * metric histories. Everything here only reads Postgres.
 */
import { curriculumOf, type Curriculum } from '@miniglm/core';
import { createTokenizer, type TokenizerSpec } from '@miniglm/data';
import type { DbModels, PrismaClient, SqlExecutor } from '@miniglm/core/db';
import { isUuid, stageProgress } from '@miniglm/core/service';
import type { Static } from '@sinclair/typebox';
import { notFound } from '../errors.ts';
import { decodeCursor, olderThan, toPage } from '../pagination.ts';
import {
  CHECKPOINTS_PER_STAGE_VIEW,
  type RunEvent,
  type RunListItem,
  type RunMetrics,
  type RunView,
} from '../responses.ts';
import { metricHistories } from './metric-history.ts';

type StageRow = DbModels.Stage;
type RunRow = DbModels.Run;

/** Tokens one optimizer step consumes: what turns tokens/s into seconds per iteration. */
export function tokensPerStep(curriculum: Curriculum, index: number): number {
  const stage = curriculum.stages?.[index];
  if (!stage) return 0;
  return stage.batchSize * stage.gradAccum * curriculum.model.blockSize;
}

export function stageProgressOf(stage: StageRow, curriculum: Curriculum) {
  return stageProgress({ ...stage, tokensPerStep: tokensPerStep(curriculum, stage.index) });
}

/** The stage a person watching the run cares about: the running one, else the next queued, else the last. */
export function currentStage(stages: StageRow[]): StageRow | undefined {
  return stages.find((s) => s.status === 'running') ?? stages.find((s) => s.status === 'queued') ?? stages.at(-1);
}

/**
 * Time left for the whole run: every unfinished stage's remaining iterations at the speed
 * (tokens/s) of the stage running now. Null while no speed is known yet.
 */
export function runEtaSeconds(run: RunRow, stages: StageRow[]): number | null {
  if (run.status === 'succeeded') return 0;
  if (run.status !== 'running') return null;
  const speed = stages.find((s) => s.status === 'running')?.tokensPerSec;
  if (!speed || speed <= 0) return null;
  const curriculum = curriculumOf(run);
  let seconds = 0;
  for (const s of stages) {
    if (s.status !== 'running' && s.status !== 'queued') continue;
    seconds += (Math.max(0, s.iterations - s.step) * tokensPerStep(curriculum, s.index)) / speed;
  }
  return seconds;
}

/** A page of runs, newest first: keyset on (createdAt, id) descending (pagination.ts). */
export async function listRuns(
  prisma: PrismaClient,
  query: { status?: DbModels.RunStatus; tag?: string; limit: number; cursor?: string },
  /** A member's key: only its runs (ownership in ../auth.ts). */
  owner?: string,
): Promise<{ runs: Static<typeof RunListItem>[]; nextCursor: string | null }> {
  const after = query.cursor ? decodeCursor(query.cursor, '/v1/runs', ['date', 'uuid']) : undefined;
  const rows = await prisma.run.findMany({
    where: {
      status: query.status,
      ...(owner ? { ownerId: owner } : {}),
      ...(query.tag ? { tags: { has: query.tag } } : {}),
      ...(after ? olderThan(after[0] as Date, after[1] as string) : {}),
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: query.limit + 1,
    include: { stages: { orderBy: { index: 'asc' } } },
  });
  const { items: runs, nextCursor } = toPage(rows, query.limit, '/v1/runs', (r) => [r.createdAt, r.id]);
  const best = await prisma.metricPoint.groupBy({
    by: ['runId'],
    where: { runId: { in: runs.map((r) => r.id) }, key: 'valLoss' },
    _min: { value: true },
  });
  const bestByRun = new Map(best.map((b) => [b.runId, b._min.value]));
  return { runs: runs.map((run) => listItem(run, bestByRun.get(run.id) ?? null)), nextCursor };
}

function listItem(run: RunRow & { stages: StageRow[] }, bestValLoss: number | null): Static<typeof RunListItem> {
  const curriculum = curriculumOf(run);
  const stage = currentStage(run.stages);
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    tags: run.tags,
    createdAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    error: run.error,
    stage: stage
      ? {
          index: stage.index,
          name: stage.name,
          status: stage.status,
          step: stage.step,
          iterations: stage.iterations,
          progress: stageProgressOf(stage, curriculum).progress,
        }
      : null,
    tokensPerSec: stage?.tokensPerSec ?? null,
    etaSeconds: runEtaSeconds(run, run.stages),
    bestValLoss,
  };
}

/** The latest value of each metric key, per stage (one DISTINCT ON query for the whole run). */
async function latestMetrics(
  sql: SqlExecutor,
  runId: string,
  keys: string[],
): Promise<Map<string, Record<string, number>>> {
  const rows = await sql.query<{ stageId: string; key: string; value: number }>(
    `SELECT DISTINCT ON ("stageId", "key") "stageId", "key", "value"
       FROM "MetricPoint" WHERE "runId" = $1 AND "key" = ANY($2)
      ORDER BY "stageId", "key", "step" DESC`,
    [runId, keys],
  );
  const byStage = new Map<string, Record<string, number>>();
  for (const row of rows) {
    const entry = byStage.get(row.stageId) ?? {};
    entry[row.key] = Number(row.value);
    byStage.set(row.stageId, entry);
  }
  return byStage;
}

const LATEST_KEYS = ['trainLoss', 'valLoss', 'lr', 'gradNorm'];

/**
 * The tokenizer's name and vocabulary size. The Run's tokenizer column is filled by the
 * prepare job and may hold a whole compact vocabulary: only these two numbers are shown.
 */
function tokenizerSummary(run: RunRow, curriculum: Curriculum): { name: string; vocabSize: number | null } {
  if (!run.tokenizer) return { name: curriculum.tokenizer.name, vocabSize: null }; // not prepared yet
  const tokenizer = createTokenizer(run.tokenizer as unknown as TokenizerSpec);
  return { name: tokenizer.spec.name, vocabSize: tokenizer.vocabSize };
}

export async function getRun(
  prisma: PrismaClient,
  sql: SqlExecutor,
  id: string,
  owner?: string,
): Promise<Static<typeof RunView>> {
  const run = isUuid(id)
    ? await prisma.run.findUnique({
        where: { id, ...(owner ? { ownerId: owner } : {}) },
        include: {
          stages: {
            orderBy: { index: 'asc' },
            include: {
              // The latest few, not all: a run's view must not grow with its length.
              checkpoints: {
                orderBy: { step: 'desc' },
                take: CHECKPOINTS_PER_STAGE_VIEW,
                select: { id: true, step: true, createdAt: true },
              },
              _count: { select: { checkpoints: true } },
            },
          },
          evaluations: { orderBy: { createdAt: 'desc' }, take: 1 },
        },
      })
    : null;
  if (!run) throw notFound(`no run with id "${id}" (GET /v1/runs lists them)`);
  const curriculum = curriculumOf(run);
  const [metrics, aliases] = await Promise.all([
    latestMetrics(sql, id, LATEST_KEYS),
    prisma.alias.findMany({
      where: { checkpoint: { stage: { runId: id } }, ...(owner ? { ownerId: owner } : {}) },
      orderBy: { name: 'asc' },
      select: { name: true, checkpointId: true },
    }),
  ]);
  const evaluation = run.evaluations[0];
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    error: run.error,
    tags: run.tags,
    seed: run.seed,
    params: run.params,
    tokenizer: tokenizerSummary(run, curriculum),
    curriculum,
    createdAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    etaSeconds: runEtaSeconds(run, run.stages),
    stages: run.stages.map((stage) => {
      const latest = metrics.get(stage.id) ?? {};
      return {
        id: stage.id,
        index: stage.index,
        name: stage.name,
        kind: stage.kind,
        status: stage.status,
        step: stage.step,
        iterations: stage.iterations,
        ...stageProgressOf(stage, curriculum),
        tokensPerSec: stage.tokensPerSec,
        backend: stage.backend,
        attempts: stage.attempts,
        workerId: stage.workerId,
        parentCheckpointId: stage.parentCheckpointId,
        datasetId: stage.datasetId,
        metrics: {
          trainLoss: latest.trainLoss ?? null,
          valLoss: latest.valLoss ?? null,
          lr: latest.lr ?? null,
          gradNorm: latest.gradNorm ?? null,
        },
        checkpoints: [...stage.checkpoints].reverse(),
        checkpointCount: stage._count.checkpoints,
        startedAt: stage.startedAt,
        finishedAt: stage.finishedAt,
        error: stage.error,
      };
    }),
    evaluation: evaluation
      ? {
          id: evaluation.id,
          checkpointId: evaluation.checkpointId,
          perplexity: evaluation.perplexity,
          valLoss: evaluation.valLoss,
          perStage: evaluation.perStage,
          rouge: evaluation.rouge,
          samples: evaluation.samples,
          createdAt: evaluation.createdAt,
        }
      : null,
    aliases,
  };
}

/** A 404 unless the run exists and (for a member's key, `owner`) is its own. */
export async function requireRun(prisma: PrismaClient, id: string, owner?: string) {
  const run = isUuid(id)
    ? await prisma.run.findUnique({ where: { id, ...(owner ? { ownerId: owner } : {}) }, select: { id: true } })
    : null;
  if (!run) throw notFound(`no run with id "${id}" (GET /v1/runs lists them)`);
}

/** A page of the run's events in time order: keyset on (at, id) ascending. */
export async function runEvents(
  prisma: PrismaClient,
  id: string,
  query: { limit: number; cursor?: string },
  owner?: string,
): Promise<{ events: Static<typeof RunEvent>[]; nextCursor: string | null }> {
  const list = '/v1/runs/:id/events';
  const after = query.cursor ? decodeCursor(query.cursor, list, ['date', 'int']) : undefined;
  await requireRun(prisma, id, owner);
  const rows = await prisma.stageEvent.findMany({
    where: {
      stage: { runId: id },
      ...(after
        ? { OR: [{ at: { gt: after[0] as Date } }, { at: after[0] as Date, id: { gt: after[1] as number } }] }
        : {}),
    },
    orderBy: [{ at: 'asc' }, { id: 'asc' }],
    take: query.limit + 1,
    include: { stage: { select: { name: true, index: true } } },
  });
  const { items, nextCursor } = toPage(rows, query.limit, list, (e) => [e.at, e.id]);
  return { events: items.map((e) => eventView(e)), nextCursor };
}

function eventView(e: DbModels.StageEvent & { stage: { name: string; index: number } }): Static<typeof RunEvent> {
  return {
    id: e.id,
    at: e.at,
    type: e.type,
    stageId: e.stageId,
    stage: e.stage.name,
    stageIndex: e.stage.index,
    workerId: e.workerId,
    step: e.step,
    message: e.message,
  };
}

/**
 * Metric histories by key and stage, each at most `maxPoints` long (metric-history.ts).
 * `offset` of a stage is the sum of the earlier stages' iterations, so a chart can draw
 * every stage on one x axis (global step = offset + step).
 */
export async function runMetrics(
  prisma: PrismaClient,
  sql: SqlExecutor,
  id: string,
  keys: string[],
  maxPoints: number,
  owner?: string,
): Promise<Static<typeof RunMetrics>> {
  await requireRun(prisma, id, owner);
  const stages = await prisma.stage.findMany({
    where: { runId: id },
    orderBy: { index: 'asc' },
    select: { id: true, index: true, name: true, iterations: true },
  });
  let offset = 0;
  const withOffsets = stages.map((s) => {
    const view = { ...s, offset };
    offset += s.iterations;
    return view;
  });
  const nameOf = new Map(stages.map((s) => [s.id, s.name]));
  const { histories, downsampled } = await metricHistories(sql, {
    keys,
    stages: stages.map((s) => ({ id: s.id, offset: 0, owner: s.id })),
    maxPoints,
  });
  // Stages in curriculum order within each key, as before.
  const series: Record<string, Record<string, [number, number][]>> = Object.fromEntries(
    keys.map((key) => {
      const byStage = histories.get(key)!;
      return [
        key,
        Object.fromEntries(stages.flatMap((s) => (byStage.has(s.id) ? [[nameOf.get(s.id)!, byStage.get(s.id)!]] : []))),
      ];
    }),
  );
  return { stages: withOffsets, series, maxPoints, downsampled };
}
