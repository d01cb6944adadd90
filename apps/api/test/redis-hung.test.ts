/**
 * Redis is a queue, Postgres is the truth: with a Redis that hangs (a private redis-server
 * stopped with SIGSTOP: connected, never answering), a submission answers 503 naming Redis
 * and leaves no row behind, and a cancel still answers within its deadline, recorded in
 * Postgres. With the submission rate limit on (the default), the submission is refused
 * sooner, at the limit's check, before anything is written.
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
/** The same, with the submission rate limit on (rate-limit.ts), as an API runs by default. */
let limited: FastifyInstance;
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
  // Without the rate limit, whose check would refuse first: this app shows the rows of a
  // submission that Redis did not take being taken back.
  app = await buildApi({ db: h.db, redis, prefix: h.prefix, submitRate: null });
  limited = await buildApi({ db: h.db, redis, prefix: h.prefix, submitRate: { limit: 60, windowSeconds: 60 } });
});

afterAll(async () => {
  if (local) resume();
  await app?.close();
  await limited?.close();
  redis?.disconnect();
  await local?.stop();
  await h?.close();
});

const submit = (name: string, to = app) =>
  to.inject({
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

    const limitedAnswer = await submit('during-the-hang-with-a-rate-limit', limited);
    expect(limitedAnswer.statusCode, limitedAnswer.body).toBe(503);
    expect(limitedAnswer.json().message).toMatch(
      /^Redis did not answer the submission rate limit within 1 s; nothing was written/,
    );
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
