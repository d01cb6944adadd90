/**
 * Quotas and rate limits, against the real Postgres and Redis: a key at a quota gets a 429
 * that names it and nothing is written (checked in the tables), other keys go on; concurrent
 * submissions and uploads at the edge do not pass it together; the submission rate limit
 * answers 429 with Retry-After and lets the client in again after the window; failed key
 * checks are limited per address before any hashing. The quotas are small here (ApiOptions).
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '@miniglm/core/db';
import { SettingError, createApiKey, quotasFromEnv } from '@miniglm/core/service';
import { buildApi, type ApiOptions } from '../src/index.ts';
import { rateFromEnv } from '../src/rate-limit.ts';
import { openHarness, validCurriculum, type Harness } from './helpers.ts';

const QUOTAS = { runningRuns: 2, queuedRuns: 3, storedBytes: 1000 };

let h: Harness;
const apps: FastifyInstance[] = [];
beforeAll(async () => {
  h = await openHarness('quotas', { quotas: QUOTAS, submitRate: null, authFailureRate: null });
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await h?.close();
});

/** Another API on the same database and Redis prefix, with its own options (a rate limit). */
async function apiWith(options: Partial<ApiOptions>): Promise<FastifyInstance> {
  const app = await buildApi({ db: h.db, redis: h.redis, prefix: h.prefix, quotas: QUOTAS, ...options });
  apps.push(app);
  return app;
}

type Res = Awaited<ReturnType<FastifyInstance['inject']>>;
const bearer = (key?: string): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {});
const submit = (key: string | undefined, name: string, app = h.app) =>
  app.inject({
    method: 'POST',
    url: '/v1/runs',
    headers: { ...bearer(key), 'content-type': 'application/json' },
    payload: JSON.stringify(validCurriculum({ name })),
  });
const upload = (key: string | undefined, name: string, bytes: string) =>
  h.app.inject({
    method: 'POST',
    url: `/v1/files?name=${name}`,
    headers: { ...bearer(key), 'content-type': 'application/octet-stream' },
    payload: Buffer.from(bytes),
  });

function expectError(res: Res, status: number, message: RegExp) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.json().message).toMatch(message);
}

const tables = async () => ({
  runs: await h.db.prisma.run.count(),
  stages: await h.db.prisma.stage.count(),
  events: await h.db.prisma.stageEvent.count(),
  files: await h.db.prisma.datasetFile.count(),
  artifacts: await h.db.prisma.artifact.count(),
});
const queuedOf = (ownerId: string | null) => h.db.prisma.run.count({ where: { ownerId, status: 'queued' } });
/** A text corpus of exactly `bytes` bytes (ASCII), different for each `seed`. */
const corpus = (seed: string, bytes: number) => `${seed}\n${'the moon before my bed\n'.repeat(bytes)}`.slice(0, bytes);

describe('keyless mode: the defaults apply to the one anonymous owner', () => {
  it('refuses the submission past the queued runs quota with a 429 naming it, and writes nothing', async () => {
    for (let i = 0; i < QUOTAS.queuedRuns; i++) expect((await submit(undefined, `keyless-${i}`)).statusCode).toBe(201);
    const before = await tables();
    expectError(
      await submit(undefined, 'keyless-over'),
      429,
      /^queued runs quota: keyless use \(every run and file without a key\) has 3 runs queued, and its limit is 3 \(MINIGLM_QUOTA_QUEUED_RUNS, the service's default\); submit again when one has started, or cancel one$/,
    );
    expect(await tables()).toEqual(before);
  });

  it('limits submissions per client address, answering 429 with Retry-After', async () => {
    const app = await apiWith({ submitRate: { limit: 1, windowSeconds: 60 }, quotas: { ...QUOTAS, queuedRuns: 100 } });
    expect((await submit(undefined, 'rate-1', app)).statusCode).toBe(201);
    const before = await tables();
    const refused = await submit(undefined, 'rate-2', app);
    expectError(
      refused,
      429,
      /^submission rate limit: the address 127\.0\.0\.1 \(no key\) may submit 1 in 60 s \(MINIGLM_SUBMIT_RATE\) and has; submit again in \d+ s \(Retry-After\)$/,
    );
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(await tables()).toEqual(before);
  });
});

describe('with keys', () => {
  const keys = { admin: '', alice: '', bob: '', carol: '', dave: '', erin: '' };
  const ids = { ...keys };

  beforeAll(async () => {
    const make = async (name: keyof typeof keys, role: 'admin' | 'member', quotas = {}) => {
      const made = await createApiKey(h.db.prisma, { name, role, quotas });
      keys[name] = made.key;
      ids[name] = made.id;
    };
    await make('admin', 'admin');
    await make('alice', 'member', { maxQueuedRuns: 2 });
    await make('bob', 'member');
    await make('carol', 'member');
    await make('dave', 'member');
    await make('erin', 'member');
  });

  it('a key at its own queued runs quota gets 429 and no Run or Stage row; another key is unaffected', async () => {
    for (const name of ['a-1', 'a-2']) expect((await submit(keys.alice, name)).statusCode).toBe(201);
    const before = await tables();
    expectError(
      await submit(keys.alice, 'a-3'),
      429,
      new RegExp(
        `^queued runs quota: key ${ids.alice} \\("alice"\\) has 2 runs queued, and its limit is 2 \\(this key's own limit, set by miniglm keys set ${ids.alice} --max-queued-runs\\)`,
      ),
    );
    expect(await tables()).toEqual(before);
    expect((await submit(keys.bob, 'b-1')).statusCode).toBe(201);
  });

  it('runs running do not refuse a submission: the workers cap them, and queued runs are what a submission counts', async () => {
    await h.db.prisma.run.updateMany({ where: { ownerId: ids.alice }, data: { status: 'running' } });
    // Alice runs 2, her limit (the API's default here), and has none queued: accepted, to wait.
    expect((await submit(keys.alice, 'a-4')).statusCode).toBe(201);
    expect(await queuedOf(ids.alice)).toBe(1);
  });

  it('concurrent submissions at the edge do not pass the quota together', async () => {
    expect(await queuedOf(ids.bob)).toBe(1);
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => submit(keys.bob, `b-race-${i}`)));
    const statuses = answers.map((a) => a.statusCode).sort();
    expect(statuses).toEqual([201, 201, 429, 429, 429, 429, 429, 429]);
    expect(await queuedOf(ids.bob)).toBe(QUOTAS.queuedRuns);
    expect(await h.db.prisma.stage.count({ where: { run: { ownerId: ids.bob } } })).toBe(QUOTAS.queuedRuns);
  });

  it('admin keys are not subject to quotas', async () => {
    for (let i = 0; i <= QUOTAS.queuedRuns; i++) expect((await submit(keys.admin, `admin-${i}`)).statusCode).toBe(201);
    expect(await queuedOf(ids.admin)).toBe(QUOTAS.queuedRuns + 1);
  });

  it('refuses an upload past the stored bytes quota, leaving no Artifact or DatasetFile row; content the key holds costs nothing again', async () => {
    const first = corpus('first', 600);
    expect((await upload(keys.carol, 'first.txt', first)).statusCode).toBe(201);
    expect((await upload(keys.carol, 'again.txt', first)).statusCode).toBe(201);
    const before = await tables();
    expectError(
      await upload(keys.carol, 'second.txt', corpus('second', 600)),
      429,
      new RegExp(
        `^stored bytes quota: key ${ids.carol} \\("carol"\\) stores 600 bytes \\(its uploaded files and its runs' checkpoints\\); this file of 600 bytes would make 1,200 bytes \\(1\\.2 KiB\\), over its limit of 1,000 bytes \\(MINIGLM_QUOTA_STORED_BYTES, the service's default`,
      ),
    );
    expect(await tables()).toEqual(before);
  });

  it("counts the checkpoints of the key's runs: over the quota, it can submit nothing more", async () => {
    const accepted = await submit(keys.carol, 'c-1');
    expect(accepted.statusCode).toBe(201);
    const stage = await h.db.prisma.stage.findFirstOrThrow({ where: { runId: accepted.json().id } });
    const { sha256 } = await new ArtifactStore(h.db).put(Buffer.from(corpus('weights', 500)), 'checkpoint');
    await h.db.prisma.checkpoint.create({ data: { stageId: stage.id, step: 5, artifactSha256: sha256 } });
    const before = await tables();
    expectError(
      await submit(keys.carol, 'c-2'),
      429,
      /^stored bytes quota: key \w+ \("carol"\) stores 1,100 bytes \(1\.1 KiB\) \(its uploaded files and its runs' checkpoints\), and its limit is 1,000 bytes/,
    );
    expect(await tables()).toEqual(before);
  });

  it('concurrent uploads at the edge: one is stored, the other refused, and no bytes of it are left', async () => {
    const before = await tables();
    const answers = await Promise.all([
      upload(keys.dave, 'one.txt', corpus('one', 600)),
      upload(keys.dave, 'two.txt', corpus('two', 600)),
    ]);
    expect(answers.map((a) => a.statusCode).sort()).toEqual([201, 429]);
    const after = await tables();
    expect(after.files).toBe(before.files + 1);
    expect(after.artifacts).toBe(before.artifacts + 1);
  });

  it('the submission rate limit is per key, answers 429 with Retry-After, and lets the key in after the window', async () => {
    const app = await apiWith({ submitRate: { limit: 2, windowSeconds: 1 }, quotas: { ...QUOTAS, queuedRuns: 100 } });
    for (const name of ['e-1', 'e-2']) expect((await submit(keys.erin, name, app)).statusCode).toBe(201);
    const before = await tables();
    const refused = await submit(keys.erin, 'e-3', app);
    expectError(
      refused,
      429,
      new RegExp(
        `^submission rate limit: key ${ids.erin} may submit 2 in 1 s \\(MINIGLM_SUBMIT_RATE\\) and has; submit again in 1 s`,
      ),
    );
    expect(refused.headers['retry-after']).toBe('1');
    expect(await tables()).toEqual(before);
    // Another key has an allowance of its own.
    expect((await submit(keys.dave, 'd-1', app)).statusCode).toBe(201);
    // What a client does: wait as long as Retry-After says.
    await new Promise((resolve) => setTimeout(resolve, 1000 * Number(refused.headers['retry-after'])));
    expect((await submit(keys.erin, 'e-4', app)).statusCode).toBe(201);
  });

  it('failed key checks are limited per address, before any hashing; keys checked before keep working', async () => {
    const app = await apiWith({ authFailureRate: { limit: 3, windowSeconds: 60 } });
    const get = (key: string, remoteAddress = '10.0.0.1') =>
      app.inject({ method: 'GET', url: '/v1/runs?limit=1', headers: bearer(key), remoteAddress });
    const wrong = (key: string) => key.slice(0, -4) + (key.endsWith('AAAA') ? 'BBBB' : 'AAAA');

    // A right key's check is given back: it does not count as a failure.
    expect((await get(keys.bob)).statusCode).toBe(200);
    for (let i = 0; i < 3; i++) expectError(await get(wrong(keys.bob)), 401, /the API key is not valid/);
    const refused = await get(wrong(keys.bob));
    expectError(
      refused,
      429,
      /^too many failed API-key checks from 10\.0\.0\.1: the limit is 3 in 60 s \(MINIGLM_AUTH_FAILURE_RATE\); try again in \d+ s/,
    );
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Refused before its secret is checked: a right key this API has not checked yet is refused too.
    expectError(await get(keys.carol), 429, /too many failed API-key checks/);
    // A key checked before (cached) still works from that address; other addresses are not limited.
    expect((await get(keys.bob)).statusCode).toBe(200);
    expectError(await get(wrong(keys.bob), '10.0.0.2'), 401, /the API key is not valid/);
  });
});

describe('configuration and documentation', () => {
  it('reads the defaults from the environment, and names a bad value', () => {
    expect(quotasFromEnv({})).toEqual({ runningRuns: 20, queuedRuns: 100, storedBytes: 100 * 1024 ** 3 });
    expect(
      quotasFromEnv({
        MINIGLM_QUOTA_QUEUED_RUNS: '5',
        MINIGLM_QUOTA_STORED_BYTES: '2GiB',
        MINIGLM_QUOTA_RUNNING_RUNS: '0',
      }),
    ).toEqual({ runningRuns: 0, queuedRuns: 5, storedBytes: 2 * 1024 ** 3 });
    expect(() => quotasFromEnv({ MINIGLM_QUOTA_STORED_BYTES: 'lots' })).toThrow(
      'MINIGLM_QUOTA_STORED_BYTES must be a size such as 50GiB, 500MB or 1048576 (bytes), got "lots"',
    );
    // A UserError: miniglm api prints its one line, not an internal error.
    expect(() => quotasFromEnv({ MINIGLM_QUOTA_STORED_BYTES: 'lots' })).toThrow(SettingError);
    expect(() => quotasFromEnv({ MINIGLM_QUOTA_QUEUED_RUNS: '2.5' })).toThrow(
      'MINIGLM_QUOTA_QUEUED_RUNS must be a whole number of runs from 0 to 2147483647, got "2.5"',
    );
    const fallback = { limit: 60, windowSeconds: 60 };
    expect(rateFromEnv('R', fallback, {})).toBe(fallback);
    expect(rateFromEnv('R', fallback, { R: '10/1s' })).toEqual({ limit: 10, windowSeconds: 1 });
    expect(rateFromEnv('R', fallback, { R: 'off' })).toBeNull();
    expect(() => rateFromEnv('R', fallback, { R: '10 per minute' })).toThrow(SettingError);
    expect(() => rateFromEnv('R', fallback, { R: '0/60' })).toThrow(
      'R must be N/SECONDS (e.g. 60/60: 60 in a minute) or off, got "0/60"',
    );
  });

  it('the OpenAPI document lists the 429s, with Retry-After', async () => {
    const doc = (await h.app.inject({ url: '/docs/json' })).json();
    for (const [path, method] of [
      ['/v1/runs', 'post'],
      ['/v1/files', 'post'],
      ['/v1/runs', 'get'],
    ] as const) {
      const answer = doc.paths[path][method].responses['429'];
      expect(answer, `${method} ${path}`).toBeDefined();
      expect(answer.headers['retry-after'].schema.type).toBe('integer');
    }
    expect(doc.paths['/v1/runs'].post.responses['429'].description).toMatch(/quota/);
    expect(doc.paths['/healthz'].get.responses).not.toHaveProperty('429');
  });
});
