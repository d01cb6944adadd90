/**
 * The whole service in one test process, against the real Postgres and Redis: the API and a
 * worker. A Q&A file is uploaded, a two-stage curriculum (Tang poems, then SFT on the file)
 * is submitted over REST and followed to its evaluation; its pretrained checkpoint is named
 * "GuoJing" and a variant branches from it; lineage shows the branch, compare shows the
 * difference, and both models answer POST /v1/generate.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from '@miniglm/worker';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REDIS_URL, openHarness, type Harness } from './helpers.ts';

let h: Harness;
let worker: RunningWorker;
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-e2e-'));

beforeAll(async () => {
  h = await openHarness('e2e', { generateTimeoutMs: 60_000 });
  worker = await startWorker({
    db: h.db,
    redisUrl: REDIS_URL,
    prefix: h.prefix,
    workDir,
    workerId: 'e2e-worker',
    log: () => {},
  });
});

afterAll(async () => {
  await worker?.close();
  await h?.close();
  fs.rmSync(workDir, { recursive: true, force: true });
});

async function call(method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown, expected = 200) {
  const res = await h.app.inject({ method, url, payload: payload as object });
  expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(expected);
  return res.json();
}

async function waitForRun(id: string): Promise<{ status: string; [k: string]: unknown }> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const run = await call('GET', `/v1/runs/${id}`);
    if (['succeeded', 'failed', 'cancelled'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run ${id} still ${run.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const qaLines = Array.from({ length: 80 }, (_, i) =>
  JSON.stringify({ question: `第${i}首诗的作者是谁？`, answer: ['李白', '杜甫', '王维', '白居易'][i % 4] }),
).join('\n');

const pretrain = {
  name: 'tang',
  kind: 'pretrain',
  dataset: { source: 'poetry:tang', limit: 60 },
  iterations: 12,
  batchSize: 4,
  warmup: 2,
  evalEvery: 4,
  evalBatches: 2,
  checkpointEvery: 6,
};
const sft = (source: string, lr: number) => ({
  name: 'qa',
  kind: 'sft',
  dataset: { source },
  iterations: 8,
  batchSize: 4,
  lr,
  warmup: 2,
  evalEvery: 4,
  evalBatches: 2,
  checkpointEvery: 4,
});
const model = { kind: 'gpt', layers: 1, heads: 2, dim: 16, blockSize: 24 };
const evaluation = { valBatches: 2, rougeSamples: 3, maxNewTokens: 6, samples: 2 };

describe('the service end to end', () => {
  it('trains an uploaded-file curriculum over REST, branches a variant from an alias, and shows lineage, compare and samples', async () => {
    const upload = await h.app.inject({
      method: 'POST',
      url: '/v1/files?name=qa.jsonl',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from(qaLines),
    });
    expect(upload.statusCode, upload.body).toBe(201);
    const file = upload.json();
    expect(file).toMatchObject({ format: 'jsonl', records: 80, fields: ['question', 'answer'] });

    const base = await call(
      'POST',
      '/v1/runs',
      {
        name: 'e2e-base',
        seed: 5,
        tags: ['e2e'],
        tokenizer: { name: 'char' },
        model,
        stages: [pretrain, sft(file.source, 0.001)],
        evaluation,
      },
      201,
    );
    const done = await waitForRun(base.id);
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    const run = await call('GET', `/v1/runs/${base.id}`);
    expect(
      run.stages.map((s: { status: string; step: number; progress: number }) => [s.status, s.step, s.progress]),
    ).toEqual([
      ['succeeded', 12, 1],
      ['succeeded', 8, 1],
    ]);
    expect(run.stages[0].checkpoints.map((c: { step: number }) => c.step)).toEqual([6, 12]);
    expect(run.stages[1].metrics.trainLoss).toBeGreaterThan(0);
    expect(run.evaluation.perplexity).toBeGreaterThan(1);
    expect(run.tokenizer.vocabSize).toBeGreaterThan(258);

    const metrics = await call('GET', `/v1/runs/${base.id}/metrics?keys=trainLoss`);
    expect(metrics.stages.map((s: { offset: number }) => s.offset)).toEqual([0, 12]);
    expect(metrics.series.trainLoss.tang).toHaveLength(12);
    expect(metrics.series.trainLoss.qa).toHaveLength(8);

    // Name the pretrained model and branch a variant from it: only the SFT stage, another lr.
    const pretrained = run.stages[0].checkpoints.at(-1).id;
    await call('PUT', '/v1/aliases/GuoJing', { checkpoint: pretrained });
    const variant = await call(
      'POST',
      '/v1/runs',
      {
        name: 'e2e-variant',
        seed: 5,
        tokenizer: { name: 'char' },
        model,
        initFrom: 'GuoJing',
        stages: [sft(file.source, 0.003)],
        evaluation,
      },
      201,
    );
    expect((await waitForRun(variant.id)).status).toBe('succeeded');
    const branched = await call('GET', `/v1/runs/${variant.id}`);
    expect(branched.stages[0].parentCheckpointId).toBe(pretrained);
    // Same file, same tokenizer (inherited from GuoJing's run): the prepared dataset is reused.
    expect(branched.stages[0].datasetId).toBe(run.stages[1].datasetId);

    const lineage = await call('GET', `/v1/runs/${base.id}/lineage`);
    const edges = lineage.edges as { from: string; to: string; type: string }[];
    const variantStage = branched.stages[0].id;
    expect(edges).toContainEqual(expect.objectContaining({ from: pretrained, to: variantStage }));
    for (const stage of [...run.stages, ...branched.stages])
      expect(edges).toContainEqual(expect.objectContaining({ from: stage.datasetId, to: stage.id }));
    expect(edges).toContainEqual(
      expect.objectContaining({ from: run.stages[0].checkpoints.at(-1).id, to: run.stages[1].id }),
    );

    const compared = await call('GET', `/v1/compare?runs=${base.id},${variant.id}`);
    expect(compared.runs.map((r: { perplexity: number | null }) => r.perplexity! > 1)).toEqual([true, true]);
    const paths = compared.differences.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['initFrom', 'stages.qa.lr', 'stages.tang']));
    expect(paths).not.toContain('stages.qa.iterations');
    expect(compared.histories.trainLoss.length).toBeGreaterThanOrEqual(20);

    // Both models answer; the second request finds the model already loaded.
    const first = await call('POST', '/v1/generate', { alias: 'GuoJing', prompt: '床前', maxTokens: 8 });
    expect(first.outputs).toHaveLength(5);
    expect(first.warm).toBe(false);
    const again = await call('POST', '/v1/generate', { alias: 'GuoJing', prompt: '床前', maxTokens: 8, seed: 1 });
    expect(again.warm).toBe(true);
    const answer = await call('POST', '/v1/generate', {
      checkpoint: run.stages[1].checkpoints.at(-1).id,
      prompt: '第3首诗的作者是谁？',
      samples: 3,
      maxTokens: 4,
    });
    expect(answer.outputs).toHaveLength(3);

    const download = await h.app.inject({ url: `/v1/checkpoints/${pretrained}/download` });
    expect(download.statusCode).toBe(200);
    expect(download.rawPayload.subarray(0, 8).toString()).toBe('MGLMCKPT');
  });
});
