/**
 * The service commands as a user types them, against an API and a worker this test starts
 * on the real Postgres and Redis: submit --watch, runs, compare, and their errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type StartedApi } from '@miniglm/api';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { createRedis, deleteKeysWithPrefix, DEFAULT_REDIS_URL } from '@miniglm/core/service';
import { startWorker, type RunningWorker } from '@miniglm/worker';
import { expectOneLineError, expectSuccess, runCli, useTempDir } from './helpers.ts';

const dir = useTempDir('client');
const prefix = `miniglm-test-cli-${process.pid}`;
const redisUrl = process.env.MINIGLM_TEST_REDIS_URL || DEFAULT_REDIS_URL;
let t: TestDb;
let api: StartedApi;
let worker: RunningWorker;
const redis = createRedis(redisUrl, { failFast: true });

beforeAll(async () => {
  t = await openTestDb('postgres', 'cli');
  worker = await startWorker({ db: t.db, redisUrl, prefix, workDir: path.join(dir(), 'worker'), log: () => {} });
  api = await startApi({ db: t.db, redis, prefix, port: 0, logger: false });
});

afterAll(async () => {
  await worker?.close();
  await api?.close();
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await t?.cleanup();
});

function curriculum(name: string, lr: number): string {
  const file = path.join(dir(), `${name}.yaml`);
  fs.writeFileSync(
    file,
    [
      `name: ${name}`,
      'seed: 2',
      'tags: [cli]',
      'tokenizer: { name: char }',
      'model: { layers: 1, heads: 2, dim: 16, blockSize: 16 }',
      'stages:',
      `  - { name: tang, kind: pretrain, dataset: { source: "poetry:tang", limit: 40 }, iterations: 6, batchSize: 4, lr: ${lr}, warmup: 1, evalEvery: 3, evalBatches: 1, checkpointEvery: 3 }`,
      'evaluation: { valBatches: 1, maxNewTokens: 4, samples: 1 }',
    ].join('\n'),
  );
  return file;
}

describe('miniglm submit, runs, watch and compare', () => {
  it('submits and follows two runs, lists them and compares them', async () => {
    const a = await runCli(['submit', '--config', curriculum('cli-a', 0.001), '--api', api.url, '--watch'], dir());
    expectSuccess(a);
    expect(a.stdout).toMatch(/submitted run cli-a: [0-9a-f-]{36} \(1 stages\)/);
    expect(a.stdout).toMatch(/cli-a: succeeded/);
    const b = await runCli(['submit', '--config', curriculum('cli-b', 0.003), '--api', api.url, '--watch'], dir());
    expectSuccess(b);
    const ids = [a, b].map((r) => /: ([0-9a-f-]{36})/.exec(r.stdout)![1]!);

    const list = await runCli(['runs', '--api', api.url, '--tag', 'cli'], dir());
    expectSuccess(list);
    expect(list.stdout).toMatch(/cli-b\s+succeeded/);
    expect(list.stdout).toMatch(/cli-a\s+succeeded/);

    const compared = await runCli(['compare', '--runs', ids.join(','), '--api', api.url], dir());
    expectSuccess(compared);
    expect(compared.stdout).toMatch(/val loss/);
    expect(compared.stdout).toMatch(/stages\.tang\.lr\s+0\.001\s+0\.003/);
  });

  it('reports what the API says is wrong, in one line', async () => {
    const bad = path.join(dir(), 'bad.yaml');
    fs.writeFileSync(
      bad,
      fs.readFileSync(curriculum('cli-bad', 0.001), 'utf8').replace('poetry:tang', 'data/corpus.txt'),
    );
    expectOneLineError(
      await runCli(['submit', '--config', bad, '--api', api.url], dir()),
      /400 \/stages\/0\/dataset\/source: .*POST \/v1\/files/,
    );
    expectOneLineError(
      await runCli(['compare', '--runs', '00000000-0000-4000-8000-000000000000,x', '--api', api.url], dir()),
      /404/,
    );
    expectOneLineError(
      await runCli(['runs', '--api', 'http://127.0.0.1:1'], dir()),
      /cannot reach the API at http:\/\/127\.0\.0\.1:1/,
    );
  });
});
