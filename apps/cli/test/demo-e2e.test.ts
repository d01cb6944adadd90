/**
 * `miniglm demo` end to end on the embedded path: no DATABASE_URL (PGlite in a folder), no
 * REDIS_URL (a private redis-server), the API and a worker in one process, a small
 * curriculum plus the variant the demo branches from it, the compare table, then --exit.
 * Afterwards the PGlite folder is opened again to check what the service recorded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createDb } from '@miniglm/core/db';
import { expectSuccess, startCli, useTempDir } from './helpers.ts';

const dir = useTempDir('demo');

const curriculum = {
  name: 'demo-e2e',
  seed: 3,
  tokenizer: { name: 'char', compactVocab: true },
  model: { kind: 'gpt', layers: 1, heads: 2, dim: 16, blockSize: 16 },
  stages: [
    {
      name: 'tang',
      kind: 'pretrain',
      dataset: { source: 'poetry:tang', limit: 60 },
      iterations: 10,
      batchSize: 4,
      warmup: 2,
      evalEvery: 5,
      evalBatches: 2,
      checkpointEvery: 5,
    },
    {
      name: 'qa',
      kind: 'sft',
      dataset: { source: 'poetry-qa:tangshi300', limit: 60 },
      iterations: 8,
      batchSize: 4,
      warmup: 2,
      evalEvery: 4,
      evalBatches: 2,
      checkpointEvery: 4,
    },
  ],
  evaluation: { valBatches: 2, rougeSamples: 2, maxNewTokens: 6, samples: 2 },
};

describe('miniglm demo on PGlite and a private redis-server', () => {
  it('trains a run and a variant branched from it, names the models and prints the comparison', async () => {
    const config = path.join(dir(), 'demo.json');
    fs.writeFileSync(config, JSON.stringify(curriculum));
    const pglite = path.join(dir(), 'pglite');
    const r = await startCli(['demo', '--config', config, '--port', '0', '--exit'], dir(), 180_000, {
      DATABASE_URL: '',
      REDIS_URL: '',
      MINIGLM_PGLITE_DIR: pglite,
    }).done;
    expectSuccess(r);
    expect(r.stdout).toMatch(/redis: a private redis-server on port \d+/);
    expect(r.stdout).toMatch(/database: embedded PGlite/);
    expect(r.stdout).toMatch(/alias GuoJing -> the tang checkpoint/);
    expect(r.stdout).toMatch(/alias HuangRong -> the qa checkpoint/);
    expect(r.stdout).toMatch(/config fields that differ/);
    expect(r.stdout).toMatch(/dashboard: http:\/\/127\.0\.0\.1:\d+\//);

    const db = await createDb({ pgliteDir: pglite, env: {} });
    try {
      const runs = await db.prisma.run.findMany({
        orderBy: { createdAt: 'asc' },
        include: { stages: { orderBy: { index: 'asc' } } },
      });
      expect(runs.map((run) => [run.name, run.status])).toEqual([
        ['demo-e2e', 'succeeded'],
        ['demo-e2e-lr-x3', 'succeeded'],
      ]);
      const [main, variant] = runs;
      const guojing = await db.prisma.alias.findUniqueOrThrow({
        where: { name: 'GuoJing' },
        include: { checkpoint: true },
      });
      expect(guojing.checkpoint.stageId).toBe(main!.stages[0]!.id);
      // The variant's only stage starts from GuoJing: lineage across runs.
      expect(variant!.stages[0]!.parentCheckpointId).toBe(guojing.checkpointId);
      expect(await db.prisma.evaluation.count()).toBe(2);
      const points = await db.prisma.metricPoint.count({ where: { runId: main!.id, key: 'trainLoss' } });
      expect(points).toBe(18);
    } finally {
      await db.close();
    }
  });
});
