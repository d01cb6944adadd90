/**
 * Long runs for the bounded-reads test and scripts/measure-reads.ts: a run whose stage has
 * as many metric points as asked, written by one INSERT ... SELECT generate_series in
 * Postgres (a million points in seconds, never through the API process).
 */
import type { Db } from '@miniglm/core/db';
import { validCurriculum } from './helpers.ts';

export interface LongRun {
  runId: string;
  stageId: string;
  /** Where the spikes were put: the history's global maximum and minimum. */
  spike: { step: number; value: number };
  dip: { step: number; value: number };
}

/**
 * A succeeded run with one stage of `steps` iterations and a point per step for each key:
 * a slowly falling loss with noise, one spike up (the global max) and one dip (the global
 * min) at steps that no bucket boundary is likely to hit.
 */
export async function insertLongRun(db: Db, name: string, steps: number, keys = ['trainLoss']): Promise<LongRun> {
  const run = await db.prisma.run.create({
    data: { name, status: 'succeeded', curriculum: validCurriculum({ name }), seed: 1, tags: ['long'] },
  });
  const stage = await db.prisma.stage.create({
    data: {
      runId: run.id,
      index: 0,
      name: 'long',
      kind: 'pretrain',
      status: 'succeeded',
      iterations: steps,
      step: steps,
    },
  });
  const spike = { step: Math.floor(steps * 0.6173) + 1, value: 50 };
  const dip = { step: Math.floor(steps * 0.3141) + 1, value: -5 };
  await db.sql.query(
    `INSERT INTO "MetricPoint" ("runId", "stageId", "key", "step", "value")
     SELECT $1, $2, k, s,
            CASE WHEN s = $4 THEN $5::float8 WHEN s = $6 THEN $7::float8
                 ELSE 4.0 - 2.0 * s / $3::float8 + 0.1 * sin(s * 0.37) END
       FROM generate_series(1, $3::int) AS s, unnest($8::text[]) AS k`,
    [run.id, stage.id, steps, spike.step, spike.value, dip.step, dip.value, keys],
  );
  await db.sql.query('ANALYZE "MetricPoint"');
  return { runId: run.id, stageId: stage.id, spike, dip };
}
