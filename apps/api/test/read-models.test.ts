/**
 * The read models, on data written directly through Prisma as workers would write it:
 * run "base" (stages pre → qa, checkpoints, metrics, an evaluation) and run "branch", whose
 * only stage trains from base's pre@100 checkpoint. Also checkpoints, downloads, aliases
 * and generate (against a BullMQ worker of the test's own, on the same Redis).
 */
import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '@miniglm/core/db';
import { CHAR_EOT, CHAR_OFFSET, CHAR_SEP, createTokenizer } from '@miniglm/data';
import { QUEUE, createRedis, type GenerateJob, type GenerateResult } from '@miniglm/core/service';
import { REDIS_URL, openHarness, validCurriculum, type Harness } from './helpers.ts';

// A compact char vocabulary as prepare stores it: eot, sep, the 256 bytes, then 床 and 前.
const CHAR_SPEC = {
  name: 'char' as const,
  vocab: [CHAR_EOT, CHAR_SEP, ...Array.from({ length: 256 }, (_, i) => i), CHAR_OFFSET + 0x5e8a, CHAR_OFFSET + 0x524d],
};

let h: Harness;
const bytes = randomBytes(70_000); // two chunks of the test store below
const ids = {} as Record<
  'base' | 'branch' | 'pre' | 'qa' | 'b0' | 'pre50' | 'pre100' | 'qa50' | 'b020' | 'd1' | 'd2' | 'sha',
  string
>;

beforeAll(async () => {
  h = await openHarness('read', { generateTimeoutMs: 400 });
  const prisma = h.db.prisma;
  const store = new ArtifactStore(h.db, { chunkSize: 64 * 1024 });
  ids.sha = (await store.put(bytes, 'checkpoint')).sha256;
  const data = await store.put(new TextEncoder().encode('shards'), 'dataset');
  const dataset = (source: string, kind: 'pretrain' | 'sft') =>
    prisma.dataset.create({
      data: { contentHash: source, tokenizerHash: 'char', kind, source, manifest: {}, artifactSha256: data.sha256 },
    });
  ids.d1 = (await dataset('poetry:tang', 'pretrain')).id;
  ids.d2 = (await dataset('poetry-qa:tangshi300', 'sft')).id;

  const t0 = new Date('2025-01-01T00:00:00Z');
  const at = (s: number) => new Date(t0.getTime() + s * 1000);
  const baseCurriculum = validCurriculum({
    name: 'base',
    tags: ['poetry', 'baseline'],
    stages: [
      { name: 'pre', kind: 'pretrain', dataset: { source: 'poetry:tang' }, iterations: 100, batchSize: 4, lr: 0.001 },
      {
        name: 'qa',
        kind: 'sft',
        dataset: { source: 'poetry-qa:tangshi300' },
        iterations: 50,
        batchSize: 4,
        lr: 0.0003,
      },
    ],
  });
  const base = await prisma.run.create({
    data: {
      name: 'base',
      status: 'succeeded',
      curriculum: baseCurriculum,
      seed: 1,
      tags: ['poetry', 'baseline'],
      params: 12345,
      tokenizer: CHAR_SPEC,
      createdAt: at(0),
      startedAt: at(0),
      finishedAt: at(90),
    },
  });
  ids.base = base.id;
  const pre = await prisma.stage.create({
    data: {
      runId: base.id,
      index: 0,
      name: 'pre',
      kind: 'pretrain',
      status: 'succeeded',
      iterations: 100,
      step: 100,
      tokensPerSec: 1000,
      backend: 'wasm',
      attempts: 1,
      workerId: 'w1',
      datasetId: ids.d1,
      startedAt: at(0),
      finishedAt: at(60),
    },
  });
  ids.pre = pre.id;
  ids.pre50 = (
    await prisma.checkpoint.create({
      data: { stageId: pre.id, step: 50, artifactSha256: ids.sha, metrics: { valLoss: 3 } },
    })
  ).id;
  ids.pre100 = (
    await prisma.checkpoint.create({
      data: { stageId: pre.id, step: 100, artifactSha256: ids.sha, metrics: { valLoss: 2.5 } },
    })
  ).id;
  const qa = await prisma.stage.create({
    data: {
      runId: base.id,
      index: 1,
      name: 'qa',
      kind: 'sft',
      status: 'succeeded',
      iterations: 50,
      step: 50,
      tokensPerSec: 500,
      backend: 'wasm',
      attempts: 2,
      parentCheckpointId: ids.pre100,
      datasetId: ids.d2,
      startedAt: at(60),
      finishedAt: at(90),
    },
  });
  ids.qa = qa.id;
  ids.qa50 = (await prisma.checkpoint.create({ data: { stageId: qa.id, step: 50, artifactSha256: ids.sha } })).id;
  await prisma.evaluation.create({
    data: {
      runId: base.id,
      checkpointId: ids.qa50,
      perplexity: 3.2,
      valLoss: 1.16,
      perStage: [{ stage: 'pre', loss: 2.4, perplexity: 11 }],
      rouge: { stage: 'qa', pairs: 10, mean: { precision: 0.5, recall: 0.3, f: 0.4 } },
      samples: [],
    },
  });

  const branch = await prisma.run.create({
    data: {
      name: 'branch',
      status: 'running',
      curriculum: validCurriculum({
        name: 'branch',
        tags: ['poetry'],
        initFrom: ids.pre100,
        stages: [
          {
            name: 'more',
            kind: 'pretrain',
            dataset: { source: 'poetry:tang' },
            iterations: 20,
            batchSize: 4,
            lr: 0.002,
          },
        ],
      }),
      seed: 1,
      tags: ['poetry'],
      createdAt: at(100),
      startedAt: at(100),
    },
  });
  ids.branch = branch.id;
  const b0 = await prisma.stage.create({
    data: {
      runId: branch.id,
      index: 0,
      name: 'more',
      kind: 'pretrain',
      status: 'running',
      iterations: 20,
      step: 10,
      tokensPerSec: 640,
      backend: 'cpu',
      attempts: 1,
      parentCheckpointId: ids.pre100,
      datasetId: ids.d1,
      startedAt: at(100),
    },
  });
  ids.b0 = b0.id;
  ids.b020 = (await prisma.checkpoint.create({ data: { stageId: b0.id, step: 10, artifactSha256: ids.sha } })).id;

  const points = (runId: string, stageId: string, key: string, steps: [number, number][]) =>
    steps.map(([step, value]) => ({ runId, stageId, key, step, value }));
  await prisma.metricPoint.createMany({
    data: [
      ...points(base.id, pre.id, 'trainLoss', [
        [10, 4],
        [50, 3],
        [100, 2.4],
      ]),
      ...points(base.id, pre.id, 'valLoss', [
        [50, 3.1],
        [100, 2.5],
      ]),
      ...points(base.id, pre.id, 'lr', [[100, 0.0001]]),
      ...points(base.id, qa.id, 'trainLoss', [
        [25, 1.5],
        [50, 1.2],
      ]),
      ...points(base.id, qa.id, 'valLoss', [
        [25, 1.4],
        [50, 1.16],
      ]),
      ...points(branch.id, b0.id, 'trainLoss', [
        [5, 2.3],
        [10, 2.2],
      ]),
      ...points(branch.id, b0.id, 'valLoss', [[10, 2.25]]),
    ],
  });
  await prisma.stageEvent.createMany({
    data: [
      { stageId: pre.id, type: 'queued', at: at(0) },
      { stageId: qa.id, type: 'queued', at: at(0.001) },
      { stageId: pre.id, type: 'started', workerId: 'w1', at: at(1) },
      { stageId: pre.id, type: 'finished', step: 100, at: at(60) },
      { stageId: qa.id, type: 'started', at: at(61) },
    ],
  });
});
afterAll(async () => {
  await h?.close();
});

const get = async (url: string) => {
  const res = await h.app.inject({ url });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
};

describe('runs', () => {
  it('GET /v1/runs lists newest first, filters by status and tag', async () => {
    const all = (await get('/v1/runs')).runs;
    expect(all.map((r: { name: string }) => r.name)).toEqual(['branch', 'base']);
    expect(all[0]).toMatchObject({
      status: 'running',
      tags: ['poetry'],
      stage: { index: 0, name: 'more', status: 'running', step: 10, iterations: 20, progress: 0.5 },
      tokensPerSec: 640,
      bestValLoss: 2.25,
    });
    // 10 iterations left × (4 × 1 × 16 tokens per step) / 640 tokens/s = 1 s.
    expect(all[0].etaSeconds).toBeCloseTo(1, 6);
    expect(all[1]).toMatchObject({
      status: 'succeeded',
      bestValLoss: 1.16,
      etaSeconds: 0,
      stage: { name: 'qa', progress: 1 },
    });
    expect((await get('/v1/runs?status=succeeded')).runs.map((r: { name: string }) => r.name)).toEqual(['base']);
    expect((await get('/v1/runs?tag=baseline')).runs.map((r: { name: string }) => r.name)).toEqual(['base']);
    expect((await get('/v1/runs?tag=poetry&limit=1')).runs.map((r: { name: string }) => r.name)).toEqual(['branch']);
    expect((await get('/v1/runs?status=failed')).runs).toEqual([]);
  });

  it('GET /v1/runs/:id: the run, its stages with latest metrics and checkpoints, evaluation, aliases', async () => {
    await h.db.prisma.alias.create({ data: { name: 'base-qa', checkpointId: ids.qa50 } });
    try {
      const run = await get(`/v1/runs/${ids.base}`);
      expect(run).toMatchObject({
        id: ids.base,
        name: 'base',
        status: 'succeeded',
        params: 12345,
        tokenizer: { name: 'char', vocabSize: createTokenizer(CHAR_SPEC).vocabSize },
        error: null,
      });
      expect(run.tokenizer).not.toHaveProperty('vocab');
      expect(run.curriculum.stages[1].name).toBe('qa');
      expect(run.stages).toHaveLength(2);
      expect(run.stages[0]).toMatchObject({
        id: ids.pre,
        index: 0,
        name: 'pre',
        kind: 'pretrain',
        status: 'succeeded',
        step: 100,
        iterations: 100,
        progress: 1,
        etaSeconds: 0,
        tokensPerSec: 1000,
        backend: 'wasm',
        attempts: 1,
        workerId: 'w1',
        parentCheckpointId: null,
        datasetId: ids.d1,
        metrics: { trainLoss: 2.4, valLoss: 2.5, lr: 0.0001, gradNorm: null },
      });
      expect(run.stages[0].checkpoints.map((c: { id: string; step: number }) => [c.id, c.step])).toEqual([
        [ids.pre50, 50],
        [ids.pre100, 100],
      ]);
      expect(run.stages[1]).toMatchObject({
        parentCheckpointId: ids.pre100,
        metrics: { trainLoss: 1.2, valLoss: 1.16 },
      });
      expect(run.evaluation).toMatchObject({ checkpointId: ids.qa50, perplexity: 3.2, rouge: { mean: { f: 0.4 } } });
      expect(run.aliases).toEqual([{ name: 'base-qa', checkpointId: ids.qa50 }]);
    } finally {
      await h.db.prisma.alias.deleteMany({});
    }
    const res = await h.app.inject({ url: '/v1/runs/00000000-0000-4000-8000-000000000000' });
    expect(res.statusCode).toBe(404);
    expect(res.json().message).toMatch(/no run with id/);
    expect((await h.app.inject({ url: '/v1/runs/robert);DROP' })).statusCode).toBe(404);
  });

  it('GET /v1/runs/:id/events in time order with stage names', async () => {
    const { events } = await get(`/v1/runs/${ids.base}/events`);
    expect(events.map((e: { stage: string; type: string }) => `${e.stage}:${e.type}`)).toEqual([
      'pre:queued',
      'qa:queued',
      'pre:started',
      'pre:finished',
      'qa:started',
    ]);
    expect(events[3]).toMatchObject({ step: 100, stageIndex: 0 });
  });

  it('GET /v1/runs/:id/metrics: stage offsets and series by key and stage', async () => {
    const m = await get(`/v1/runs/${ids.base}/metrics?keys=trainLoss,valLoss`);
    expect(m.stages).toEqual([
      { id: ids.pre, index: 0, name: 'pre', iterations: 100, offset: 0 },
      { id: ids.qa, index: 1, name: 'qa', iterations: 50, offset: 100 },
    ]);
    expect(m.series).toEqual({
      trainLoss: {
        pre: [
          [10, 4],
          [50, 3],
          [100, 2.4],
        ],
        qa: [
          [25, 1.5],
          [50, 1.2],
        ],
      },
      valLoss: {
        pre: [
          [50, 3.1],
          [100, 2.5],
        ],
        qa: [
          [25, 1.4],
          [50, 1.16],
        ],
      },
    });
    expect((await get(`/v1/runs/${ids.base}/metrics?keys=lr,gradNorm`)).series).toEqual({
      lr: { pre: [[100, 0.0001]] },
      gradNorm: {},
    });
    expect(Object.keys((await get(`/v1/runs/${ids.base}/metrics`)).series)).toEqual(['trainLoss', 'valLoss']);
    expect((await h.app.inject({ url: `/v1/runs/${ids.base}/metrics?keys=a;b` })).statusCode).toBe(400);
  });

  it('GET /v1/runs/:id/lineage reaches descendants in other runs, and ancestors without their siblings', async () => {
    const base = await get(`/v1/runs/${ids.base}/lineage`);
    const nodeIds = (g: { nodes: { id: string; type: string }[] }, type: string) =>
      g.nodes
        .filter((n) => n.type === type)
        .map((n) => n.id)
        .sort();
    expect(nodeIds(base, 'run')).toEqual([ids.base, ids.branch].sort());
    expect(nodeIds(base, 'stage')).toEqual([ids.pre, ids.qa, ids.b0].sort());
    expect(nodeIds(base, 'checkpoint')).toEqual([ids.pre50, ids.pre100, ids.qa50, ids.b020].sort());
    expect(nodeIds(base, 'dataset')).toEqual([ids.d1, ids.d2].sort());
    const edge = (from: string, to: string, type: string) => ({ from, to, type });
    expect(base.edges).toEqual(
      expect.arrayContaining([
        edge(ids.d1, ids.pre, 'trained-on'),
        edge(ids.d2, ids.qa, 'trained-on'),
        edge(ids.d1, ids.b0, 'trained-on'),
        edge(ids.pre100, ids.qa, 'parent'),
        edge(ids.pre100, ids.b0, 'parent'),
        edge(ids.pre, ids.pre50, 'produced'),
        edge(ids.pre, ids.pre100, 'produced'),
        edge(ids.qa, ids.qa50, 'produced'),
        edge(ids.b0, ids.b020, 'produced'),
      ]),
    );
    expect(base.edges).toHaveLength(9);
    expect(base.nodes.find((n: { id: string }) => n.id === ids.b0)).toMatchObject({
      type: 'stage',
      label: 'branch/more',
      runId: ids.branch,
      status: 'running',
    });

    // From the branch: its ancestor stage (pre, in run base) is there, base's other stage is not.
    const branch = await get(`/v1/runs/${ids.branch}/lineage`);
    expect(nodeIds(branch, 'stage')).toEqual([ids.pre, ids.b0].sort());
    expect(nodeIds(branch, 'dataset')).toEqual([ids.d1]);
    expect(branch.edges).toEqual(
      expect.arrayContaining([edge(ids.pre100, ids.b0, 'parent'), edge(ids.pre, ids.pre100, 'produced')]),
    );
  });

  it('GET /v1/compare: results, differing settings, aligned histories', async () => {
    const c = await get(`/v1/compare?runs=${ids.base},${ids.branch}`);
    expect(c.runs[0]).toMatchObject({
      id: ids.base,
      name: 'base',
      status: 'succeeded',
      finalValLoss: 1.16,
      perplexity: 3.2,
      rouge: 0.4,
      params: 12345,
      wallSeconds: 90,
      backend: 'wasm',
    });
    expect(c.runs[0].tokensPerSec).toBeCloseTo((1000 * 100 + 500 * 50) / 150, 6);
    expect(c.runs[1]).toMatchObject({
      id: ids.branch,
      finalValLoss: 2.25,
      perplexity: null,
      rouge: null,
      params: null,
      tokensPerSec: 640,
      backend: 'cpu',
    });
    expect(c.runs[1].wallSeconds).toBeGreaterThan(0); // still running: now − startedAt

    const diff = Object.fromEntries(c.differences.map((d: { path: string; values: object }) => [d.path, d.values]));
    expect(diff['name']).toEqual({ [ids.base]: 'base', [ids.branch]: 'branch' });
    // Stages are matched by name: the branch's only stage is not compared with base's first,
    // and a stage only one run has is one difference holding the whole stage.
    expect(diff['stages.pre']).toEqual({
      [ids.base]: expect.objectContaining({ name: 'pre', lr: 0.001 }),
      [ids.branch]: null,
    });
    expect(diff['stages.more']).toEqual({
      [ids.base]: null,
      [ids.branch]: expect.objectContaining({ name: 'more', iterations: 20 }),
    });
    expect(diff['stages.qa']).toEqual({ [ids.base]: expect.objectContaining({ name: 'qa' }), [ids.branch]: null });
    expect(Object.keys(diff).filter((k) => k.startsWith('stages.pre.'))).toEqual([]);
    expect(diff['initFrom']).toEqual({ [ids.base]: null, [ids.branch]: ids.pre100 });
    expect(diff['tags.1']).toEqual({ [ids.base]: 'baseline', [ids.branch]: null });
    expect(diff).not.toHaveProperty('model.dim');
    expect(diff).not.toHaveProperty('tokenizer.name');

    // Global step = stage offset + step: qa's step 25 is step 125.
    expect(c.histories.valLoss).toEqual([
      { step: 10, values: { [ids.base]: null, [ids.branch]: 2.25 } },
      { step: 50, values: { [ids.base]: 3.1, [ids.branch]: null } },
      { step: 100, values: { [ids.base]: 2.5, [ids.branch]: null } },
      { step: 125, values: { [ids.base]: 1.4, [ids.branch]: null } },
      { step: 150, values: { [ids.base]: 1.16, [ids.branch]: null } },
    ]);
    expect(c.histories.trainLoss.map((r: { step: number }) => r.step)).toEqual([5, 10, 50, 100, 125, 150]);
    expect(c.histories.trainLoss[1].values).toEqual({ [ids.base]: 4, [ids.branch]: 2.2 });

    const bad = async (url: string, status: number, message: RegExp) => {
      const res = await h.app.inject({ url });
      expect(res.statusCode, res.body).toBe(status);
      expect(res.json().message).toMatch(message);
    };
    await bad(`/v1/compare?runs=${ids.base}`, 400, /2 to 20 run ids/);
    await bad(`/v1/compare?runs=${ids.base},${ids.base}`, 400, /named twice/);
    await bad(`/v1/compare?runs=${ids.base},nope`, 404, /no run with id "nope"/);
    await bad('/v1/compare', 400, /^query string \/runs: required/);
  });
});

describe('checkpoints and aliases', () => {
  it('GET /v1/checkpoints (of a run) and GET /v1/checkpoints/:id', async () => {
    const { checkpoints } = await get(`/v1/checkpoints?run=${ids.base}`);
    expect(checkpoints.map((c: { id: string }) => c.id).sort()).toEqual([ids.pre50, ids.pre100, ids.qa50].sort());
    expect((await get('/v1/checkpoints')).checkpoints).toHaveLength(4);
    const c = await get(`/v1/checkpoints/${ids.pre100}`);
    expect(c).toMatchObject({
      id: ids.pre100,
      step: 100,
      stage: { id: ids.pre, name: 'pre', index: 0, kind: 'pretrain' },
      run: { id: ids.base, name: 'base' },
      metrics: { valLoss: 2.5 },
      artifact: { sha256: ids.sha, size: bytes.length },
      aliases: [],
    });
    expect((await h.app.inject({ url: '/v1/checkpoints/nope' })).statusCode).toBe(404);
    expect((await h.app.inject({ url: '/v1/checkpoints?run=nope' })).statusCode).toBe(404);
  });

  it('GET /v1/checkpoints/:id/download streams the stored bytes', async () => {
    const res = await h.app.inject({ url: `/v1/checkpoints/${ids.qa50}/download` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.headers['content-length']).toBe(String(bytes.length));
    expect(res.headers['content-disposition']).toBe('attachment; filename="base-qa-50.ckpt"');
    expect(Buffer.compare(res.rawPayload, bytes)).toBe(0);
  });

  it('PUT / GET / DELETE /v1/aliases', async () => {
    const put = (name: string, checkpoint: string) =>
      h.app.inject({
        method: 'PUT',
        url: `/v1/aliases/${name}`,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ checkpoint }),
      });
    let res = await put('GuoJing', ids.qa50);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ name: 'GuoJing', checkpointId: ids.qa50 });
    // An alias may be given by another alias; moving an alias is a PUT again.
    res = await put('latest', 'GuoJing');
    expect(res.json()).toEqual({ name: 'latest', checkpointId: ids.qa50 });
    res = await put('latest', ids.pre100);
    expect(res.json()).toEqual({ name: 'latest', checkpointId: ids.pre100 });
    expect((await get('/v1/aliases/latest')).checkpointId).toBe(ids.pre100);
    expect((await get('/v1/aliases')).aliases.map((a: { name: string }) => a.name)).toEqual(['GuoJing', 'latest']);
    expect((await get(`/v1/checkpoints/${ids.qa50}`)).aliases).toEqual(['GuoJing']);

    expect((await h.app.inject({ method: 'DELETE', url: '/v1/aliases/latest' })).statusCode).toBe(204);
    expect((await h.app.inject({ url: '/v1/aliases/latest' })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'DELETE', url: '/v1/aliases/latest' })).statusCode).toBe(404);
  });
});

describe('generate', () => {
  it('without a worker: 503 after the timeout, and the job is not left behind', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/generate',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ checkpoint: ids.pre100, prompt: '床前' }),
    });
    expect(res.statusCode, res.body).toBe(503);
    expect(res.json()).toEqual({
      error: 'Service Unavailable',
      message: 'no worker answered within 0.4 s; is a worker running?',
    });
    expect(await h.app.inject({ url: '/metrics' }).then((r) => r.body)).toMatch(
      /miniglm_jobs\{queue="miniglm-generate",state="waiting"\} 0/,
    );
  });

  it('with a worker: the job carries the defaults and the answer comes back', async () => {
    const connection = createRedis(REDIS_URL, { blocking: true });
    const seen: GenerateJob[] = [];
    const worker = new Worker<GenerateJob, GenerateResult>(
      QUEUE.generate,
      async (job) => {
        seen.push(job.data);
        return {
          checkpointId: job.data.checkpointId,
          outputs: [`${job.data.prompt}!`],
          tokens: 1,
          tokensPerSec: 10,
          seconds: 0.1,
          workerId: 'test',
          warm: false,
        };
      },
      { connection, prefix: h.prefix },
    );
    try {
      await worker.waitUntilReady();
      const generate = (body: object) =>
        h.app.inject({
          method: 'POST',
          url: '/v1/generate',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify(body),
        });
      await h.db.prisma.alias.create({ data: { name: 'qa-model', checkpointId: ids.qa50 } });
      let res = await generate({ alias: 'qa-model', prompt: '静夜思的作者是谁？' });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ checkpointId: ids.qa50, outputs: ['静夜思的作者是谁？!'], workerId: 'test' });
      expect(seen[0]).toEqual({
        checkpointId: ids.qa50,
        prompt: '静夜思的作者是谁？',
        mode: 'answer',
        temperature: 0.8,
        topK: 0,
        topP: 1,
        maxTokens: 128,
        samples: 5,
      });

      res = await generate({
        checkpoint: ids.pre100,
        prompt: '床前',
        temperature: 0,
        topK: 5,
        topP: 0.9,
        maxTokens: 16,
        samples: 2,
        seed: 7,
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(seen[1]).toEqual({
        checkpointId: ids.pre100,
        prompt: '床前',
        mode: 'completion',
        temperature: 0,
        topK: 5,
        topP: 0.9,
        maxTokens: 16,
        samples: 2,
        seed: 7,
      });
    } finally {
      await worker.close();
      connection.disconnect();
      await h.db.prisma.alias.deleteMany({});
    }
  });
});
