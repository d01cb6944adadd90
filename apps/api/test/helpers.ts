/**
 * What every API test file shares: a migrated Postgres database of its own, a Redis key
 * prefix of its own (deleted afterwards), and an app built on them. Real services, no mocks.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Db } from '@miniglm/core/db';
import { createRedis, deleteKeysWithPrefix } from '@miniglm/core/service';
// The test database helper is not exported by @miniglm/core (it is test support); the core
// tests import it by path too.
import { openTestDb, type TestDb } from '../../../packages/core/src/db/testing.ts';
import { buildApi, type ApiOptions } from '../src/index.ts';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

export interface Harness {
  app: FastifyInstance;
  db: Db;
  redis: Redis;
  prefix: string;
  close(): Promise<void>;
}

export async function openHarness(name: string, options: Partial<ApiOptions> = {}): Promise<Harness> {
  const t: TestDb = await openTestDb('postgres', `api_${name}`);
  const redis = createRedis(REDIS_URL, { failFast: true });
  const prefix = `miniglm-test-api-${name}-${randomBytes(4).toString('hex')}`;
  let app: FastifyInstance | undefined;
  try {
    // A fail-fast client refuses commands until it is connected.
    if (redis.status !== 'ready')
      await new Promise((resolve, reject) => {
        redis.once('ready', resolve);
        setTimeout(
          () => reject(new Error(`Redis is not reachable at ${REDIS_URL}: the API tests need a real server`)),
          5000,
        ).unref();
      });
    app = await buildApi({ db: t.db, redis, prefix, ...options });
  } catch (error) {
    redis.disconnect();
    await t.cleanup();
    throw error;
  }
  return {
    app,
    db: t.db,
    redis,
    prefix,
    async close() {
      await app.close();
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
      await t.cleanup();
    },
  };
}

/** Every table's row count: a refused request changes none of them. */
export async function rowCounts(db: Db) {
  const p = db.prisma;
  return {
    runs: await p.run.count(),
    stages: await p.stage.count(),
    checkpoints: await p.checkpoint.count(),
    aliases: await p.alias.count(),
    artifacts: await p.artifact.count(),
    chunks: await p.artifactChunk.count(),
    files: await p.datasetFile.count(),
    datasets: await p.dataset.count(),
    metrics: await p.metricPoint.count(),
    evaluations: await p.evaluation.count(),
    events: await p.stageEvent.count(),
  };
}

/** A small curriculum the service accepts (bundled poetry, no files). */
export function validCurriculum(overrides: Record<string, unknown> = {}) {
  return {
    name: 'api-test',
    tags: ['api'],
    tokenizer: { name: 'char' },
    model: { layers: 1, heads: 2, dim: 16, blockSize: 16 },
    stages: [{ name: 'tang', kind: 'pretrain', dataset: { source: 'poetry:tang' }, iterations: 10, batchSize: 4 }],
    ...overrides,
  };
}

/** A deep copy with one change applied, for the bad-input tables. */
export function changed<T>(value: T, change: (copy: any) => void): T {
  const copy = structuredClone(value);
  change(copy);
  return copy;
}
