/**
 * Identity: API keys, roles and owners, keyless loopback mode, and what a web page on
 * another site can make a browser send. Against the real Postgres and Redis: each refusal
 * is checked in the tables too (nothing cancelled, no alias moved, no run written).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '@miniglm/core/db';
import { createApiKey, revokeApiKey } from '@miniglm/core/service';
import { buildApi, startApi, KeylessExposureError } from '../src/index.ts';
import { openHarness, validCurriculum, type Harness } from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  h = await openHarness('identity');
});
afterAll(async () => {
  await h?.close();
});

type Res = Awaited<ReturnType<Harness['app']['inject']>>;

const bearer = (key?: string): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {});
const get = (url: string, key?: string) => h.app.inject({ method: 'GET', url, headers: bearer(key) });
const send = (method: 'POST' | 'PUT' | 'DELETE', url: string, key: string | undefined, body?: unknown) =>
  h.app.inject({
    method,
    url,
    headers: { ...bearer(key), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });

function expectError(res: Res, status: number, message: RegExp) {
  expect(res.statusCode, res.body).toBe(status);
  const body = res.json();
  expect(Object.keys(body).sort()).toEqual(['error', 'message']);
  expect(body.message).toMatch(message);
}

async function submit(key: string | undefined, name: string): Promise<string> {
  const res = await send('POST', '/v1/runs', key, validCurriculum({ name }));
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id;
}

/** A checkpoint of the run's first stage, with real stored bytes. */
async function checkpointOf(runId: string, step: number): Promise<string> {
  const stage = await h.db.prisma.stage.findFirstOrThrow({ where: { runId, index: 0 } });
  const { sha256 } = await new ArtifactStore(h.db).put(Buffer.from(`weights of ${runId} at ${step}`), 'checkpoint');
  const row = await h.db.prisma.checkpoint.create({ data: { stageId: stage.id, step, artifactSha256: sha256 } });
  return row.id;
}

const statusOf = async (id: string) => (await h.db.prisma.run.findUniqueOrThrow({ where: { id } })).status;

describe('keyless mode: no key exists yet', () => {
  it('serves requests without a key on loopback, and records no owner', async () => {
    expect((await get('/v1/runs')).statusCode).toBe(200);
    const id = await submit(undefined, 'keyless-run');
    expect((await h.db.prisma.run.findUniqueOrThrow({ where: { id } })).ownerId).toBeNull();
  });

  it('refuses to start on 0.0.0.0, saying how to make a key', async () => {
    const error = await startApi({ db: h.db, redis: h.redis, prefix: h.prefix, host: '0.0.0.0', port: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KeylessExposureError);
    expect((error as Error).message).toMatch(
      /refusing to listen on 0\.0\.0\.0 without API keys.*miniglm keys create --name admin --role admin/,
    );
  });
});

describe('with keys', () => {
  const keys = { admin: '', alice: '', bob: '', viewer: '' };
  const ids = { admin: '', alice: '', bob: '', viewer: '' };
  let keylessRun = '';
  let aliceRun = '';
  let bobRun = '';

  beforeAll(async () => {
    keylessRun = (await h.db.prisma.run.findFirstOrThrow({ where: { name: 'keyless-run' } })).id;
    for (const [who, role] of [
      ['admin', 'admin'],
      ['alice', 'member'],
      ['bob', 'member'],
      ['viewer', 'viewer'],
    ] as const) {
      const made = await createApiKey(h.db.prisma, { name: who, role });
      keys[who] = made.key;
      ids[who] = made.id;
    }
  });

  it('needs a key on /v1/ and /metrics once one exists (401, WWW-Authenticate), but not on /healthz', async () => {
    const none = await get('/v1/runs');
    expectError(none, 401, /this API needs a key: send "Authorization: Bearer <key>".*miniglm keys create/);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expectError(await send('POST', '/v1/runs', undefined, validCurriculum()), 401, /needs a key/);
    expectError(await get('/metrics'), 401, /needs a key/);
    expect((await get('/healthz')).statusCode).toBe(200);
    expect((await get('/')).statusCode).toBe(200); // the dashboard's sign-in page

    expectError(await get('/v1/runs', 'not-a-key'), 401, /not "Bearer mgk_<id>_<secret>"/);
    const wrongSecret = `mgk_${ids.alice}_${'A'.repeat(43)}`;
    expect(wrongSecret).not.toBe(keys.alice);
    expectError(await get('/v1/runs', wrongSecret), 401, new RegExp(`not valid \\(no key ${ids.alice} with that`));
    expect((await get('/metrics', keys.viewer)).statusCode).toBe(200);
  });

  it('a member sees and changes only its own runs; another member gets 404 and changes nothing', async () => {
    aliceRun = await submit(keys.alice, 'alice-run');
    bobRun = await submit(keys.bob, 'bob-run');
    expect((await h.db.prisma.run.findUniqueOrThrow({ where: { id: aliceRun } })).ownerId).toBe(ids.alice);

    const bobList = (await get('/v1/runs', keys.bob)).json().runs.map((r: { id: string }) => r.id);
    expect(bobList).toEqual([bobRun]);
    for (const url of [
      `/v1/runs/${aliceRun}`,
      `/v1/runs/${aliceRun}/events`,
      `/v1/runs/${aliceRun}/metrics`,
      `/v1/runs/${aliceRun}/lineage`,
      `/v1/checkpoints?run=${aliceRun}`,
      `/v1/compare?runs=${bobRun},${aliceRun}`,
    ])
      expectError(await get(url, keys.bob), 404, new RegExp(aliceRun));
    expect((await get(`/v1/runs/${aliceRun}`, keys.alice)).statusCode).toBe(200);

    expectError(await send('POST', `/v1/runs/${aliceRun}/cancel`, keys.bob), 404, /no run with id/);
    expect(await statusOf(aliceRun)).toBe('queued');
    // A member cannot branch from another member's checkpoint either.
    const aliceCheckpoint = await checkpointOf(aliceRun, 1);
    expectError(
      await send('POST', '/v1/runs', keys.bob, validCurriculum({ name: 'steal', initFrom: aliceCheckpoint })),
      404,
      /^\/initFrom: no checkpoint or alias/,
    );
    expect(await h.db.prisma.run.count({ where: { name: 'steal' } })).toBe(0);
    expect((await send('POST', `/v1/runs/${bobRun}/cancel`, keys.bob)).statusCode).toBe(202);
    expect(await statusOf(bobRun)).toBe('cancelled');
  });

  it("a member cannot see, move or delete another member's alias or checkpoint", async () => {
    const aliceCheckpoint = await checkpointOf(aliceRun, 2);
    const bobCheckpoint = await checkpointOf(bobRun, 1);
    const put = await send('PUT', '/v1/aliases/alice-model', keys.alice, { checkpoint: aliceCheckpoint });
    expect(put.statusCode, put.body).toBe(200);
    expect((await h.db.prisma.alias.findUniqueOrThrow({ where: { name: 'alice-model' } })).ownerId).toBe(ids.alice);

    expectError(
      await send('PUT', '/v1/aliases/alice-model', keys.bob, { checkpoint: bobCheckpoint }),
      403,
      /the alias "alice-model" belongs to another key/,
    );
    expectError(await send('DELETE', '/v1/aliases/alice-model', keys.bob), 403, /belongs to another key/);
    expectError(
      await send('PUT', '/v1/aliases/bob-model', keys.bob, { checkpoint: aliceCheckpoint }),
      404,
      /^\/checkpoint: no checkpoint or alias/,
    );
    const alias = await h.db.prisma.alias.findUniqueOrThrow({ where: { name: 'alice-model' } });
    expect(alias.checkpointId).toBe(aliceCheckpoint);
    expect(await h.db.prisma.alias.count({ where: { name: 'bob-model' } })).toBe(0);

    expectError(await get('/v1/aliases/alice-model', keys.bob), 404, /no alias "alice-model"/);
    expect((await get('/v1/aliases', keys.bob)).json().aliases).toEqual([]);
    expectError(await get(`/v1/checkpoints/${aliceCheckpoint}`, keys.bob), 404, /no checkpoint/);
    expectError(await get(`/v1/checkpoints/${aliceCheckpoint}/download`, keys.bob), 404, /no checkpoint/);
    expect((await get('/v1/checkpoints', keys.bob)).json().checkpoints.map((c: { id: string }) => c.id)).toEqual([
      bobCheckpoint,
    ]);
    const download = await get(`/v1/checkpoints/${aliceCheckpoint}/download`, keys.alice);
    expect(download.statusCode).toBe(200);
    expect(download.body).toBe(`weights of ${aliceRun} at 2`);
  });

  it("a member's uploads are its own", async () => {
    const upload = (key: string) =>
      h.app.inject({
        method: 'POST',
        url: '/v1/files?name=mine.txt',
        headers: { ...bearer(key), 'content-type': 'application/octet-stream' },
        payload: 'one two three\n',
      });
    const res = await upload(keys.alice);
    expect(res.statusCode, res.body).toBe(201);
    const file = res.json();
    expect((await h.db.prisma.datasetFile.findUniqueOrThrow({ where: { id: file.id } })).ownerId).toBe(ids.alice);
    expectError(await get(`/v1/files/${file.id}`, keys.bob), 404, /no uploaded file/);
    expect((await get('/v1/files', keys.bob)).json().files).toEqual([]);
    const stage = { ...validCurriculum().stages[0], dataset: { source: file.source } };
    expectError(
      await send('POST', '/v1/runs', keys.bob, validCurriculum({ name: 'bob-file', stages: [stage] })),
      404,
      /^\/stages\/0\/dataset\/source: no uploaded file/,
    );
    expect((await get(`/v1/files/${file.id}`, keys.viewer)).statusCode).toBe(200);
  });

  it('a viewer reads everything and changes nothing (403)', async () => {
    const listed = (await get('/v1/runs', keys.viewer)).json().runs.map((r: { id: string }) => r.id);
    expect(listed).toEqual(expect.arrayContaining([keylessRun, aliceRun, bobRun]));
    expect((await get(`/v1/runs/${aliceRun}`, keys.viewer)).statusCode).toBe(200);
    expect((await get('/v1/aliases/alice-model', keys.viewer)).statusCode).toBe(200);

    const runs = await h.db.prisma.run.count();
    expectError(
      await send('POST', '/v1/runs', keys.viewer, validCurriculum({ name: 'viewer-run' })),
      403,
      new RegExp(`the key ${ids.viewer} \\("viewer"\\) is a viewer key, which can only read: POST /v1/runs`),
    );
    expectError(await send('POST', `/v1/runs/${aliceRun}/cancel`, keys.viewer), 403, /viewer key/);
    expectError(await send('DELETE', '/v1/aliases/alice-model', keys.viewer), 403, /viewer key/);
    expect(await h.db.prisma.run.count()).toBe(runs);
    expect(await statusOf(aliceRun)).toBe('queued');
    expect(await h.db.prisma.alias.count({ where: { name: 'alice-model' } })).toBe(1);
  });

  it('an admin sees and changes everything, keyless runs included', async () => {
    const listed = (await get('/v1/runs', keys.admin)).json().runs.map((r: { id: string }) => r.id);
    expect(listed).toEqual(expect.arrayContaining([keylessRun, aliceRun, bobRun]));
    expect((await get(`/v1/runs/${aliceRun}/lineage`, keys.admin)).statusCode).toBe(200);
    const bobCheckpoint = (await h.db.prisma.checkpoint.findFirstOrThrow({ where: { stage: { runId: bobRun } } })).id;
    const moved = await send('PUT', '/v1/aliases/alice-model', keys.admin, { checkpoint: bobCheckpoint });
    expect(moved.statusCode, moved.body).toBe(200);
    // Moved, and still alice's.
    expect(await h.db.prisma.alias.findUniqueOrThrow({ where: { name: 'alice-model' } })).toMatchObject({
      checkpointId: bobCheckpoint,
      ownerId: ids.alice,
    });
    expect((await send('POST', `/v1/runs/${aliceRun}/cancel`, keys.admin)).statusCode).toBe(202);
    expect(await statusOf(aliceRun)).toBe('cancelled');
  });

  it('a revoked key is refused at once (401), its rows stay its own', async () => {
    expect((await get('/v1/runs', keys.bob)).statusCode).toBe(200); // now in the verified cache
    await revokeApiKey(h.db.prisma, ids.bob);
    expectError(await get('/v1/runs', keys.bob), 401, new RegExp(`the API key ${ids.bob} \\("bob"\\) was revoked at`));
    expect((await h.db.prisma.run.findUniqueOrThrow({ where: { id: bobRun } })).ownerId).toBe(ids.bob);
  });

  it('starts on 0.0.0.0 once a key exists', async () => {
    const server = await startApi({ db: h.db, redis: h.redis, prefix: h.prefix, host: '0.0.0.0', port: 0 });
    try {
      const port = new URL(server.url).port;
      const res = await fetch(`http://127.0.0.1:${port}/v1/runs`);
      expect(res.status).toBe(401);
    } finally {
      await server.close();
    }
  });
});

describe('cross-site requests', () => {
  let admin = '';
  beforeAll(async () => {
    admin = (await createApiKey(h.db.prisma, { name: 'cross-site', role: 'admin' })).key;
  });

  it('refuses the content types a web page can send without a preflight (415), writing nothing', async () => {
    const runs = await h.db.prisma.run.count();
    const files = await h.db.prisma.datasetFile.count();
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      for (const url of ['/v1/runs', '/v1/files?name=x.txt']) {
        const res = await h.app.inject({
          method: 'POST',
          url,
          headers: { ...bearer(admin), 'content-type': type },
          payload: type.startsWith('text/') ? JSON.stringify(validCurriculum()) : 'a=b',
        });
        expectError(res, 415, /is refused on every route \(any web page can send it cross-site\)/);
      }
    }
    // A bodiless POST with a simple type is refused too (a cancel has no body).
    const run = await submit(admin, 'not-cancelled');
    const cancel = await h.app.inject({
      method: 'POST',
      url: `/v1/runs/${run}/cancel`,
      headers: { ...bearer(admin), 'content-type': 'text/plain' },
    });
    expectError(cancel, 415, /text\/plain/);
    expect(await statusOf(run)).toBe('queued');
    expect(await h.db.prisma.run.count()).toBe(runs + 1);
    expect(await h.db.prisma.datasetFile.count()).toBe(files);
  });

  it('refuses writes from a foreign Origin (403), takes them from its own', async () => {
    const run = await submit(admin, 'origin-test');
    for (const origin of ['https://evil.example', 'null', 'http://localhost.evil.example'])
      expectError(
        await h.app.inject({
          method: 'POST',
          url: `/v1/runs/${run}/cancel`,
          headers: { ...bearer(admin), origin },
        }),
        403,
        /from the web origin .* is refused/,
      );
    expect(await statusOf(run)).toBe('queued');
    // Reads are not refused (the browser keeps a cross-origin answer from the page anyway).
    expect(
      (await h.app.inject({ url: '/v1/runs', headers: { ...bearer(admin), origin: 'https://evil.example' } }))
        .statusCode,
    ).toBe(200);
    // inject sends Host: localhost:80; the dashboard's own origin is the same.
    const own = await h.app.inject({
      method: 'POST',
      url: `/v1/runs/${run}/cancel`,
      headers: { ...bearer(admin), origin: 'http://localhost' },
    });
    expect(own.statusCode, own.body).toBe(202);
  });

  it('answers only to loopback Host names on loopback (DNS rebinding), and to MINIGLM_ALLOWED_HOSTS', async () => {
    const withHost = (host: string, url = '/v1/runs') => h.app.inject({ url, headers: { ...bearer(admin), host } });
    expectError(await withHost('rebind.evil.example'), 403, /does not answer to the Host "rebind\.evil\.example"/);
    expectError(await withHost('rebind.evil.example:8080', '/'), 403, /DNS rebinding/);
    expect((await withHost('rebind.evil.example', '/healthz')).statusCode).toBe(200);
    for (const host of ['localhost:8080', '127.0.0.1:8080', '[::1]:8080', 'LOCALHOST'])
      expect((await withHost(host)).statusCode, host).toBe(200);

    const exposed = await buildApi({
      db: h.db,
      redis: h.redis,
      prefix: h.prefix,
      listenHost: '0.0.0.0',
      allowedHosts: ['ml.example.com'],
    });
    try {
      const at = (host: string) => exposed.inject({ url: '/v1/runs', headers: { ...bearer(admin), host } });
      expect((await at('ml.example.com:8080')).statusCode).toBe(200);
      expectError(await at('other.example.com'), 403, /MINIGLM_ALLOWED_HOSTS/);
    } finally {
      await exposed.close();
    }
  });
});
