/**
 * What one run may ask of the service (service/capacity.ts): each limit refuses with a message
 * naming the field and the numbers; a stage no advertised worker can hold is refused; the
 * workers' advertisements go through a real Redis and expire.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { parseCurriculum, type Curriculum } from '../src/index.ts';
import {
  advertiseWorker,
  checkRunLimits,
  createRedis,
  DEFAULT_RUN_LIMITS,
  deleteKeysWithPrefix,
  readWorkerAds,
  runLimitsFromEnv,
  withdrawWorker,
  WORKER_AD_TTL_MS,
} from '../src/service/index.ts';

function curriculum(patch: (c: Record<string, any>) => void = () => {}): Curriculum {
  const c: Record<string, any> = {
    name: 'limits',
    tokenizer: { name: 'char', compactVocab: true },
    model: { kind: 'gpt', layers: 2, heads: 2, dim: 32, blockSize: 32 },
    stages: [
      { name: 'pre', kind: 'pretrain', dataset: { source: 'poetry:tang' }, iterations: 100, batchSize: 8 },
      { name: 'qa', kind: 'sft', dataset: { source: 'poetry-qa:tangshi300' }, iterations: 50, batchSize: 8 },
    ],
  };
  patch(c);
  const parsed = parseCurriculum(c);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

describe('checkRunLimits', () => {
  it('lets a small curriculum through', () => {
    expect(checkRunLimits(curriculum(), DEFAULT_RUN_LIMITS)).toBeUndefined();
  });

  it('refuses a model with more parameters than the limit, counted before the vocabulary is known', () => {
    // 96 layers of dim 8192: 77 billion parameters without any embedding (it overflowed `params Int`).
    const huge = curriculum((c) => Object.assign(c.model, { layers: 96, dim: 8192, heads: 64 }));
    expect(checkRunLimits(huge, DEFAULT_RUN_LIMITS)).toMatch(
      /^\/model: this model has at least 77,3\d\d,\d{3},\d{3} parameters, more than this service's limit of 1,000,000,000 \(MINIGLM_MAX_PARAMETERS\)/,
    );
  });

  it('refuses more training tokens than the limit, naming the largest stage', () => {
    const limits = { ...DEFAULT_RUN_LIMITS, trainingTokens: 30_000 };
    // 100 × 8 × 32 = 25,600 and 50 × 8 × 32 = 12,800 tokens.
    expect(checkRunLimits(curriculum(), limits)).toMatch(
      /^\/stages\/0\/iterations: the stages train on 38,400 tokens .* limit of 30,000 per run \(MINIGLM_MAX_TRAINING_TOKENS\); stage "pre" alone takes 25,600/,
    );
  });

  it('refuses a checkpoint so frequent that a stage would write more than the limit', () => {
    const every = curriculum((c) => Object.assign(c.stages[1], { iterations: 10_000, checkpointEvery: 1 }));
    expect(checkRunLimits(every, DEFAULT_RUN_LIMITS)).toBe(
      "/stages/1/checkpointEvery: 10000 iterations with a checkpoint every 1 write 10,000 checkpoints, more than this service's limit of 1,000 per stage (MINIGLM_MAX_CHECKPOINTS); checkpointEvery must be at least 10",
    );
  });

  it('refuses an evaluation that would generate more tokens than the limit', () => {
    const long = curriculum((c) => (c.evaluation = { rougeSamples: 100_000, maxNewTokens: 100_000 }));
    expect(checkRunLimits(long, DEFAULT_RUN_LIMITS)).toMatch(
      /^\/evaluation\/maxNewTokens: the evaluation would generate up to 10,001,000,000 tokens/,
    );
  });

  it('refuses a stage that no advertised worker can hold, naming the largest one; one that fits passes', () => {
    const big = curriculum((c) => Object.assign(c.model, { layers: 8, dim: 1024, heads: 8, blockSize: 512 }));
    const small = [
      { id: 'w-a', backend: 'wasm', memoryBytes: 4 * 1024 ** 3 },
      { id: 'w-b', backend: 'native', memoryBytes: 2 * 1024 ** 3 },
    ];
    expect(checkRunLimits(big, DEFAULT_RUN_LIMITS, small)).toMatch(
      /^\/stages\/0\/batchSize: training stage "pre" with batchSize 8 and blockSize 512 needs at least \d+\.\d GiB .* the largest, w-a, gives training 4\.0 GiB \(wasm\); use a smaller batchSize/,
    );
    const roomy = [...small, { id: 'w-c', backend: 'native', memoryBytes: 64 * 1024 ** 3 }];
    expect(checkRunLimits(big, DEFAULT_RUN_LIMITS, roomy)).toBeUndefined();
    // No worker known: not checked here (each worker checks again before it trains).
    expect(checkRunLimits(big, DEFAULT_RUN_LIMITS, [])).toBeUndefined();
  });
});

describe('runLimitsFromEnv', () => {
  it('reads MINIGLM_MAX_* and keeps the defaults for the rest', () => {
    expect(runLimitsFromEnv({ MINIGLM_MAX_CHECKPOINTS: '50', MINIGLM_MAX_PARAMETERS: '' })).toEqual({
      ...DEFAULT_RUN_LIMITS,
      checkpointsPerStage: 50,
    });
  });

  it('refuses a value that is no positive number, naming the variable', () => {
    expect(() => runLimitsFromEnv({ MINIGLM_MAX_EVAL_TOKENS: 'lots' })).toThrow(
      'MINIGLM_MAX_EVAL_TOKENS must be a positive number (got "lots")',
    );
  });
});

describe("workers' advertisements in Redis", () => {
  const prefix = `miniglm-test-capacity-${randomBytes(4).toString('hex')}`;
  let redis: Redis;
  beforeAll(() => {
    redis = createRedis(process.env.REDIS_URL || 'redis://127.0.0.1:6379');
  });
  afterAll(async () => {
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  });

  it('reads the fresh ones back, drops the stale and the withdrawn', async () => {
    expect(await readWorkerAds(redis, prefix)).toEqual([]);
    await advertiseWorker(redis, prefix, { id: 'w-1', backend: 'native', memoryBytes: 1000 });
    await advertiseWorker(redis, prefix, { id: 'w-2', backend: 'wasm', memoryBytes: 2000 });
    // A worker that stopped refreshing long ago.
    const stale = { id: 'w-3', backend: 'native', memoryBytes: 3000, at: Date.now() - WORKER_AD_TTL_MS - 1000 };
    await redis.hset(`${prefix}:workers`, 'w-3', JSON.stringify(stale));
    const ads = await readWorkerAds(redis, prefix);
    expect(ads?.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: 'w-1', backend: 'native', memoryBytes: 1000 },
      { id: 'w-2', backend: 'wasm', memoryBytes: 2000 },
    ]);
    await withdrawWorker(redis, prefix, 'w-1');
    expect(await readWorkerAds(redis, prefix)).toEqual([{ id: 'w-2', backend: 'wasm', memoryBytes: 2000 }]);
  });
});
