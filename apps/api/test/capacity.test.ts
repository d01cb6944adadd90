/**
 * POST /v1/runs applies the service's limits, or the submitting key's own, and the workers'
 * advertised memory (core/service/capacity.ts): a run it cannot carry is a 400 naming the
 * field, and nothing is written. Real Postgres and Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advertiseWorker, createApiKey } from '@miniglm/core/service';
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

const submit = (body: unknown, key?: string) =>
  h.app.inject({
    method: 'POST',
    url: '/v1/runs',
    payload: body as object,
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
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

// Last: once a key exists, every request needs one.
describe("a key's own limits", () => {
  const made = async (name: string, quotas: object) => createApiKey(h.db.prisma, { name, role: 'member', quotas });
  /** 1,000 iterations with a checkpoint every 5: 200 checkpoints, over the service's 100. */
  const manyCheckpoints = validCurriculum({
    stages: [
      {
        name: 'tang',
        kind: 'pretrain',
        dataset: { source: 'poetry:tang' },
        iterations: 1000,
        batchSize: 4,
        checkpointEvery: 5,
      },
    ],
  });

  it("replaces the service's: below it, the 400 names the key's own limit and how to set it, and nothing is written", async () => {
    const small = await made('small', { maxParameters: 1000 });
    const other = await made('other', {});
    const before = await rows();
    const refused = await submit(validCurriculum(), small.key);
    expect(refused.statusCode, refused.body).toBe(400);
    expect(refused.json().message).toMatch(
      new RegExp(
        `^/model: this model has at least [\\d,]+ parameters, more than key ${small.id}'s own limit of 1,000 ` +
          `\\(miniglm keys set ${small.id} --max-parameters\\); use fewer layers or a smaller dim$`,
      ),
    );
    expect(await rows()).toEqual(before);

    const accepted = await submit(validCurriculum(), other.key);
    expect(accepted.statusCode, accepted.body).toBe(201);
  });

  it("may be above the service's: the key's run is accepted past the default, another key's is refused", async () => {
    const large = await made('large', { maxCheckpoints: 500 });
    const other = await made('other-2', {});
    const refused = await submit(manyCheckpoints, other.key);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).toMatch(
      /more than this service's limit of 100 per stage \(MINIGLM_MAX_CHECKPOINTS\)/,
    );

    const before = await rows();
    const accepted = await submit(manyCheckpoints, large.key);
    expect(accepted.statusCode, accepted.body).toBe(201);
    expect(await rows()).toEqual({ runs: before.runs + 1, stages: before.stages + 1 });
  });
});
