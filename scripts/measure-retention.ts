/**
 * `npx tsx scripts/measure-retention.ts [iterations, default 1000]`: how much a long stage
 * with a checkpoint every 10 steps leaves in the database, measured. The same one-stage run
 * (a tiny GPT on bundled Tang poems) is trained by a worker in this process three times, each
 * in a throw-away database of its own on the test Postgres (MINIGLM_TEST_PG_URL) with the
 * test Redis (REDIS_URL): keeping every checkpoint (retention keepLast = iterations), with the
 * default retention, and with the default retention plus `miniglm worker`'s 5 s floor between
 * checkpoints. For each it prints the checkpoints written and kept, the bytes their artifacts
 * hold, and the database's size on disk (pg_database_size) as the run left it and after a
 * VACUUM FULL: deleted rows' pages are free for reuse once (auto)vacuum has passed, but the
 * file does not shrink by itself; the second figure is what the live rows take.
 */
import path from 'node:path';
import os from 'node:os';
import fs from 'node:fs';
import { FlowProducer } from 'bullmq';
import { parseCurriculum, type Curriculum } from '../packages/core/src/index.ts';
import { openTestDb } from '../packages/core/src/db/testing.ts';
import { createRedis, deleteKeysWithPrefix, submitRun } from '../packages/core/src/service/index.ts';
import { startWorker } from '../apps/worker/src/index.ts';

const iterations = Number(process.argv[2] ?? 1000);
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

function curriculum(keepLast?: number): Curriculum {
  const parsed = parseCurriculum({
    name: 'measure-retention',
    seed: 7,
    tokenizer: { name: 'char' },
    model: { layers: 1, heads: 2, dim: 16, blockSize: 16 },
    stages: [
      {
        name: 'tang',
        kind: 'pretrain',
        dataset: { source: 'poetry:tang', limit: 200 },
        iterations,
        batchSize: 4,
        warmup: 10,
        evalEvery: 50,
        evalBatches: 2,
        checkpointEvery: 10,
      },
    ],
    evaluation: { valBatches: 2, rougeSamples: 1, maxNewTokens: 4, samples: 1 },
    ...(keepLast ? { retention: { keepLast } } : {}),
  });
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

async function measure(label: string, c: Curriculum, minCheckpointSeconds: number) {
  const t = await openTestDb('postgres', 'measure_retention');
  const prefix = `miniglm-measure-retention-${process.pid}-${Date.now()}`;
  const redis = createRedis(redisUrl, { blocking: true });
  const flows = new FlowProducer({ connection: redis, prefix });
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-measure-retention-'));
  const worker = await startWorker({
    db: t.db,
    redisUrl,
    prefix,
    workDir,
    // A garbage round (and its VACUUM of the chunk table) every 5 s instead of every 10 min,
    // so that a run of a minute shows where the file settles.
    settings: { minCheckpointSeconds, collectIntervalMs: 5000 },
    log: () => {},
  });
  try {
    const started = performance.now();
    const submitted = await submitRun({ prisma: t.db.prisma, flows }, c);
    if (!submitted.ok) throw new Error(submitted.error);
    const runId = submitted.value.id;
    for (;;) {
      const run = await t.db.prisma.run.findUniqueOrThrow({ where: { id: runId } });
      if (run.status === 'succeeded') break;
      if (run.status !== 'queued' && run.status !== 'running') throw new Error(`run ${run.status}: ${run.error}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    const seconds = (performance.now() - started) / 1000;
    const written = await t.db.prisma.stageEvent.count({ where: { type: 'checkpointed' } });
    const kept = await t.db.prisma.checkpoint.count();
    const [{ bytes }] = await t.db.sql.query<{ bytes: string }>(
      `SELECT coalesce(sum(size), 0)::text AS bytes FROM "Artifact" WHERE kind = 'checkpoint'`,
    );
    const size = async () =>
      Number(
        (await t.db.sql.query<{ size: string }>('SELECT pg_database_size(current_database())::text AS size'))[0]!.size,
      );
    const left = await size();
    await t.db.sql.query('VACUUM FULL');
    const live = await size();
    console.log(
      `| ${label} | ${written} | ${kept} | ${mb(Number(bytes))} | ${mb(left)}, ${mb(live)} | ${seconds.toFixed(0)} s |`,
    );
  } finally {
    await worker.close();
    await flows.close();
    await deleteKeysWithPrefix(redis, prefix);
    await redis.quit();
    await t.cleanup();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

console.log(
  `${iterations} iterations, a checkpoint every 10; node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)}`,
);
console.log(
  '| retention | checkpoints written | kept | checkpoint bytes | database: as left, after VACUUM FULL | wall |',
);
console.log('| --- | --- | --- | --- | --- | --- |');
await measure(`keep all (keepLast ${iterations})`, curriculum(iterations), 0);
await measure('default (last 3, best 1)', curriculum(), 0);
await measure('default, 5 s floor', curriculum(), 5);
