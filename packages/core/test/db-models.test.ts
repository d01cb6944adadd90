/**
 * The schema in use, on a Postgres server and on PGlite: a run with stages, dataset,
 * checkpoints, lineage, metrics, events, evaluation and alias round-trips; the unique keys
 * that keep retries from duplicating rows hold; deleting is as careful as the schema says.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore, type PrismaClient } from '../src/db/index.ts';
import { $Enums, Prisma } from '../src/db/generated/client/index.js';
import { openTestDb, type TestBackend, type TestDb } from '../src/db/testing.ts';

/** Prisma's "unique constraint failed" error code. */
const UNIQUE = { code: 'P2002' };

describe.each<TestBackend>(['postgres', 'pglite'])('models on %s', (backend) => {
  let t: TestDb;
  let prisma: PrismaClient;
  let store: ArtifactStore;
  beforeAll(async () => {
    t = await openTestDb(backend, 'models');
    prisma = t.db.prisma;
    store = new ArtifactStore(t.db, { chunkSize: 1024 });
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  /** A run of two stages; stage 1 trains from stage 0's checkpoint. */
  async function makeRun(name: string, tags: string[] = []) {
    const data = await store.put(new TextEncoder().encode(`tokens of ${name}`), 'dataset');
    const dataset = await prisma.dataset.upsert({
      where: { contentHash_tokenizerHash: { contentHash: `content-${name}`, tokenizerHash: 'char-v1' } },
      create: {
        contentHash: `content-${name}`,
        tokenizerHash: 'char-v1',
        kind: 'pretrain',
        source: 'poetry:tang',
        manifest: { shards: 1, tokens: 42 },
        artifactSha256: data.sha256,
      },
      update: {},
    });
    const run = await prisma.run.create({
      data: {
        name,
        seed: 1337,
        tags,
        curriculum: {
          name,
          stages: [
            { name: 'tang', iterations: 20 },
            { name: 'qa', iterations: 10 },
          ],
          model: { layers: 2 },
        },
        stages: {
          create: [
            { index: 0, name: 'tang', kind: 'pretrain', iterations: 20, datasetId: dataset.id },
            { index: 1, name: 'qa', kind: 'sft', iterations: 10, datasetId: dataset.id },
          ],
        },
      },
      include: { stages: { orderBy: { index: 'asc' } } },
    });
    return { run, dataset, stages: run.stages };
  }

  // A quick guard against editing schema.prisma without a migration (the full check,
  // `node prisma/new-migration.mjs --check`, replays the migrations through Prisma: ~20 s).
  it('has, after migrating, exactly the tables, columns and enum values the Prisma schema declares', async () => {
    const columns = await t.db.sql.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`,
    );
    const inDb = columns.map((c) => `${c.table_name}.${c.column_name}`).sort();
    const inSchema = Prisma.dmmf.datamodel.models
      .flatMap((m) =>
        m.fields
          .filter((f) => f.kind === 'scalar' || f.kind === 'enum')
          .map((f) => `${m.dbName ?? m.name}.${f.dbName ?? f.name}`),
      )
      .sort();
    expect(
      inDb,
      'prisma/schema.prisma and prisma/migrations disagree: run node prisma/new-migration.mjs <name>',
    ).toEqual(inSchema);

    const labels = await t.db.sql.query<{ typname: string; enumlabel: string }>(
      `SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid ORDER BY t.typname, e.enumsortorder`,
    );
    const enumsInDb: Record<string, string[]> = {};
    for (const l of labels) (enumsInDb[l.typname] ??= []).push(l.enumlabel);
    const enumsInSchema = Object.fromEntries(
      Object.entries($Enums).map(([name, values]) => [name, Object.values(values as Record<string, string>)]),
    );
    expect(enumsInDb).toEqual(enumsInSchema);
  });

  it('round-trips a run with stages, lineage, metrics, events, evaluation and alias', async () => {
    const { run, dataset, stages } = await makeRun('poetry', ['demo', 'tang']);
    const [s0, s1] = stages as [(typeof stages)[0], (typeof stages)[0]];
    const weights = await store.put(
      new Uint8Array(3000).map((_, i) => (i * 7) % 256),
      'checkpoint',
    );

    await prisma.stage.update({
      where: { id: s0.id },
      data: { status: 'running', attempts: 1, workerId: 'w-1', startedAt: new Date(), backend: 'wasm' },
    });
    await prisma.stageEvent.createMany({
      data: [
        { stageId: s0.id, type: 'queued' },
        { stageId: s0.id, type: 'started', workerId: 'w-1' },
      ],
    });
    await prisma.metricPoint.createMany({
      data: [0, 10, 20].flatMap((step) => [
        { runId: run.id, stageId: s0.id, key: 'trainLoss', step, value: 4 - step / 10 },
        { runId: run.id, stageId: s0.id, key: 'lr', step, value: 1e-3 },
      ]),
    });
    const ckpt = await prisma.checkpoint.create({
      data: { stageId: s0.id, step: 20, artifactSha256: weights.sha256, metrics: { trainLoss: 2, valLoss: 2.25 } },
    });
    await prisma.stageEvent.create({ data: { stageId: s0.id, type: 'checkpointed', step: 20, workerId: 'w-1' } });
    await prisma.stage.update({
      where: { id: s0.id },
      data: { status: 'succeeded', step: 20, tokensPerSec: 1234.5, finishedAt: new Date() },
    });
    await prisma.stageEvent.create({
      data: { stageId: s0.id, type: 'finished', step: 20, workerId: 'w-1', message: 'done' },
    });
    await prisma.stage.update({ where: { id: s1.id }, data: { parentCheckpointId: ckpt.id } });
    await prisma.evaluation.create({
      data: {
        runId: run.id,
        checkpointId: ckpt.id,
        perplexity: 9.5,
        valLoss: 2.25,
        rouge: { pairs: 2, mean: { f1: 0.5 } },
        samples: [{ prompt: '床前', completions: ['明月光'] }],
      },
    });
    await prisma.alias.upsert({
      where: { name: 'GuoJing' },
      create: { name: 'GuoJing', checkpointId: ckpt.id },
      update: { checkpointId: ckpt.id },
    });

    const back = await prisma.run.findUniqueOrThrow({
      where: { id: run.id },
      include: {
        stages: {
          orderBy: { index: 'asc' },
          include: {
            dataset: true,
            parentCheckpoint: true,
            checkpoints: { include: { artifact: true, aliases: true } },
            events: { orderBy: { id: 'asc' } },
            metrics: { orderBy: [{ key: 'asc' }, { step: 'asc' }] },
          },
        },
        evaluations: true,
      },
    });
    expect(back.curriculum).toEqual(run.curriculum);
    expect(back.tags).toEqual(['demo', 'tang']);
    expect(back.status).toBe('queued');
    const [b0, b1] = back.stages as [(typeof back.stages)[0], (typeof back.stages)[0]];
    expect(b0).toMatchObject({
      name: 'tang',
      kind: 'pretrain',
      status: 'succeeded',
      step: 20,
      attempts: 1,
      workerId: 'w-1',
      tokensPerSec: 1234.5,
      backend: 'wasm',
    });
    expect(b0.startedAt).toBeInstanceOf(Date);
    expect(b0.finishedAt!.getTime()).toBeGreaterThanOrEqual(b0.startedAt!.getTime());
    expect(b0.dataset).toMatchObject({ id: dataset.id, manifest: { shards: 1, tokens: 42 } });
    expect(b0.events.map((e) => e.type)).toEqual(['queued', 'started', 'checkpointed', 'finished']);
    expect(b0.events[3]).toMatchObject({ step: 20, workerId: 'w-1', message: 'done' });
    expect(b0.metrics.filter((m) => m.key === 'trainLoss').map((m) => [m.step, m.value])).toEqual([
      [0, 4],
      [10, 3],
      [20, 2],
    ]);
    expect(b0.checkpoints).toHaveLength(1);
    expect(b0.checkpoints[0]).toMatchObject({
      step: 20,
      metrics: { trainLoss: 2, valLoss: 2.25 },
      aliases: [{ name: 'GuoJing' }],
    });
    expect(b0.checkpoints[0]!.artifact).toMatchObject({
      sha256: weights.sha256,
      size: 3000n,
      kind: 'checkpoint',
      chunkSize: 1024,
      chunkCount: 3,
    });
    expect(b1.parentCheckpoint?.id).toBe(ckpt.id); // lineage: stage 1 trains from stage 0's checkpoint
    expect(back.evaluations[0]).toMatchObject({
      perplexity: 9.5,
      rouge: { mean: { f1: 0.5 } },
      samples: [{ prompt: '床前', completions: ['明月光'] }],
    });

    expect((await prisma.run.findMany({ where: { tags: { has: 'tang' } } })).map((r) => r.id)).toEqual([run.id]);
    expect(await prisma.run.count({ where: { tags: { has: 'other' } } })).toBe(0);
  });

  it('keeps one metric point per (stage, key, step): duplicates are refused, upserts and skipDuplicates keep one', async () => {
    const { run, stages } = await makeRun('metrics');
    const stageId = stages[0]!.id;
    const point = (step: number, value: number) => ({ runId: run.id, stageId, key: 'valLoss', step, value });
    await prisma.metricPoint.create({ data: point(100, 3.5) });
    await expect(prisma.metricPoint.create({ data: point(100, 3.4) })).rejects.toMatchObject(UNIQUE);

    // A retried stage logs steps 100..300 again after resuming from step 100's checkpoint.
    const retried = await prisma.metricPoint.createMany({
      data: [point(100, 9), point(200, 3.2), point(300, 3.0)],
      skipDuplicates: true,
    });
    expect(retried.count).toBe(2);
    await prisma.metricPoint.upsert({
      where: { stageId_key_step: { stageId, key: 'valLoss', step: 300 } },
      create: point(300, 2.9),
      update: { value: 2.9 },
    });
    const rows = await prisma.metricPoint.findMany({ where: { stageId, key: 'valLoss' }, orderBy: { step: 'asc' } });
    expect(rows.map((r) => [r.step, r.value])).toEqual([
      [100, 3.5],
      [200, 3.2],
      [300, 2.9],
    ]);
  });

  it('keeps one checkpoint per (stage, step) and one dataset per (content, tokenizer)', async () => {
    const { stages, dataset } = await makeRun('unique');
    const sha = (await store.put(new Uint8Array([1, 2, 3]), 'checkpoint')).sha256;
    await prisma.checkpoint.create({ data: { stageId: stages[0]!.id, step: 50, artifactSha256: sha } });
    await expect(
      prisma.checkpoint.create({ data: { stageId: stages[0]!.id, step: 50, artifactSha256: sha } }),
    ).rejects.toMatchObject(UNIQUE);
    await expect(
      prisma.dataset.create({
        data: {
          contentHash: dataset.contentHash,
          tokenizerHash: dataset.tokenizerHash,
          kind: 'pretrain',
          source: 'x',
          manifest: {},
          artifactSha256: dataset.artifactSha256,
        },
      }),
    ).rejects.toMatchObject(UNIQUE);
    // Prepared again by another run: the same row comes back.
    const again = await makeRun('unique-2');
    expect(again.dataset.id).not.toBe(dataset.id);
    expect((await makeRun('unique')).dataset.id).toBe(dataset.id);
  });

  it('deletes a run with everything it owns, but not a checkpoint that an alias or another run still uses', async () => {
    const a = await makeRun('parent');
    const b = await makeRun('child');
    const sha = (await store.put(new Uint8Array([9, 9, 9]), 'checkpoint')).sha256;
    const ckpt = await prisma.checkpoint.create({ data: { stageId: a.stages[1]!.id, step: 10, artifactSha256: sha } });
    await prisma.metricPoint.create({
      data: { runId: a.run.id, stageId: a.stages[0]!.id, key: 'trainLoss', step: 1, value: 1 },
    });
    await prisma.stageEvent.create({ data: { stageId: a.stages[0]!.id, type: 'queued' } });
    await prisma.alias.create({ data: { name: 'HuangRong', checkpointId: ckpt.id } });
    await prisma.stage.update({ where: { id: b.stages[0]!.id }, data: { parentCheckpointId: ckpt.id } }); // b branches from a

    await expect(prisma.run.delete({ where: { id: a.run.id } })).rejects.toThrow();
    await prisma.alias.delete({ where: { name: 'HuangRong' } });
    await expect(prisma.run.delete({ where: { id: a.run.id } })).rejects.toThrow(); // b still trains from it
    await prisma.run.delete({ where: { id: b.run.id } });
    await prisma.run.delete({ where: { id: a.run.id } });

    expect(await prisma.stage.count({ where: { runId: a.run.id } })).toBe(0);
    expect(await prisma.checkpoint.count({ where: { id: ckpt.id } })).toBe(0);
    expect(await prisma.metricPoint.count({ where: { runId: a.run.id } })).toBe(0);
    expect(await prisma.stageEvent.count({ where: { stageId: a.stages[0]!.id } })).toBe(0);
    expect(await store.has(sha)).toBe(true); // artifacts are shared by content and outlive runs
  });
});
