/**
 * Redis is a queue, Postgres is the truth: with a Redis that hangs (a private redis-server
 * stopped with SIGSTOP: connected, never answering), a submission answers 503 naming Redis
 * and leaves no row behind, and a cancel still answers within its deadline, recorded in
 * Postgres.
 */
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, startLocalRedis, type LocalRedis } from '@miniglm/core/service';
import { buildApi } from '../src/index.ts';
import { openHarness, validCurriculum, type Harness } from './helpers.ts';

let h: Harness;
let local: LocalRedis;
let redis: Redis;
let app: FastifyInstance;
let stopped = false;

const hang = () => {
  process.kill(local.pid, 'SIGSTOP');
  stopped = true;
};
const resume = () => {
  if (stopped) process.kill(local.pid, 'SIGCONT');
  stopped = false;
};

beforeAll(async () => {
  h = await openHarness('redis_hung');
  local = await startLocalRedis();
  redis = createRedis(local.url, { failFast: true });
  await new Promise((resolve) => (redis.status === 'ready' ? resolve(undefined) : redis.once('ready', resolve)));
  app = await buildApi({ db: h.db, redis, prefix: h.prefix });
});

afterAll(async () => {
  if (local) resume();
  await app?.close();
  redis?.disconnect();
  await local?.stop();
  await h?.close();
});

const submit = (name: string) =>
  app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(validCurriculum({ name })),
  });

describe('with Redis hung', () => {
  it('a submission answers 503 naming Redis and keeps nothing; a cancel answers at once', async () => {
    const accepted = await submit('before-the-hang');
    expect(accepted.statusCode, accepted.body).toBe(201);
    const runId = accepted.json().id as string;
    const rows = async () => ({
      runs: await h.db.prisma.run.count(),
      stages: await h.db.prisma.stage.count(),
      events: await h.db.prisma.stageEvent.count(),
    });
    const before = await rows();
    expect(before.runs).toBe(1);

    hang();
    let started = Date.now();
    const refused = await submit('during-the-hang');
    const submitMs = Date.now() - started;
    expect(refused.statusCode, refused.body).toBe(503);
    expect(refused.json().message).toMatch(/^Redis did not take the run \(.*Redis did not answer within 5 s\)/);
    expect(refused.json().message).toMatch(/nothing was kept/);
    expect(submitMs).toBeLessThan(8_000);
    expect(await rows()).toEqual(before);

    started = Date.now();
    const cancelled = await app.inject({ method: 'POST', url: `/v1/runs/${runId}/cancel` });
    const cancelMs = Date.now() - started;
    expect(cancelled.statusCode, cancelled.body).toBe(202);
    expect(cancelMs).toBeLessThan(2_500);
    const run = await h.db.prisma.run.findUniqueOrThrow({ where: { id: runId }, include: { stages: true } });
    expect(run.status).toBe('cancelled');
    expect(run.stages.map((s) => s.status)).toEqual(['cancelled']);

    // Redis comes back and runs what it was sent: still nothing of the refused run in Postgres.
    resume();
    await redis.ping();
    expect((await rows()).runs).toBe(1);
    console.log(`redis-hung: submit refused after ${submitMs} ms, cancel answered after ${cancelMs} ms`);
  });
});
