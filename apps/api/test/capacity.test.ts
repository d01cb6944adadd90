/**
 * POST /v1/runs applies the service's limits and the workers' advertised memory
 * (core/service/capacity.ts): a run it cannot carry is a 400 naming the field, and nothing is
 * written. Real Postgres and Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advertiseWorker } from '@miniglm/core/service';
import { openHarness, validCurriculum, type Harness } from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  // The limits come from the environment when the API starts.
  process.env.MINIGLM_MAX_CHECKPOINTS = '100';
  h = await openHarness('capacity');
});
afterAll(async () => {
  delete process.env.MINIGLM_MAX_CHECKPOINTS;
  await h?.close();
});

const submit = (body: unknown) => h.app.inject({ method: 'POST', url: '/v1/runs', payload: body as object });
const rows = async () => ({ runs: await h.db.prisma.run.count(), stages: await h.db.prisma.stage.count() });

describe('limits at submit', () => {
  it('refuses a checkpoint every step of a long stage, naming the field, and writes nothing', async () => {
    const before = await rows();
    const body = validCurriculum({
      stages: [
        {
          name: 'tang',
          kind: 'pretrain',
          dataset: { source: 'poetry:tang' },
          iterations: 10_000,
          batchSize: 4,
          checkpointEvery: 1,
        },
      ],
    });
    const res = await submit(body);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(
      /^\/stages\/0\/checkpointEvery: 10000 iterations with a checkpoint every 1 write 10,000 checkpoints, more than this service's limit of 100 per stage \(MINIGLM_MAX_CHECKPOINTS\); checkpointEvery must be at least 100$/,
    );
    expect(await rows()).toEqual(before);
  });

  it('refuses a model that no advertised worker can hold, and accepts one that fits', async () => {
    await advertiseWorker(h.redis, h.prefix, { id: 'tiny-worker', backend: 'wasm', memoryBytes: 64 * 1024 ** 2 });
    const before = await rows();
    const big = validCurriculum({ model: { layers: 4, heads: 4, dim: 256, blockSize: 256 } });
    const refused = await submit(big);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).toMatch(
      /^\/stages\/0\/batchSize: training stage "tang" with batchSize 4 and blockSize 256 needs at least .* the largest, tiny-worker, gives training 64\.0 MiB \(wasm\)/,
    );
    expect(await rows()).toEqual(before);

    const accepted = await submit(validCurriculum());
    expect(accepted.statusCode).toBe(201);
    expect((await rows()).runs).toBe(before.runs + 1);
  });
});
