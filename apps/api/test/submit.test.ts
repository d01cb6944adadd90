/**
 * Writing through the API: submitting runs (the bad-input table, then a valid run whose
 * BullMQ flow must exist in Redis), cancelling, uploading corpora, and bad input for aliases
 * and generate. Bad input must leave no trace: row counts are compared before and after.
 */
import { parquetWriteBuffer } from 'hyparquet-writer';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE, createRedis, jobId } from '@miniglm/core/service';
import { REDIS_URL, changed, openHarness, validCurriculum, type Harness } from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  h = await openHarness('submit');
});
afterAll(async () => {
  await h?.close();
});

const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
const post = (url: string, body: unknown) =>
  h.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
const upload = (name: string, bytes: string | Uint8Array, contentType = 'application/octet-stream') =>
  h.app.inject({
    method: 'POST',
    url: `/v1/files?name=${encodeURIComponent(name)}`,
    headers: { 'content-type': contentType },
    payload: Buffer.from(bytes),
  });

/** Every error response has exactly this shape. */
function expectError(res: { statusCode: number; json(): any }, status: number, message: RegExp) {
  expect(res.statusCode, JSON.stringify(res.json())).toBe(status);
  const body = res.json();
  expect(Object.keys(body).sort()).toEqual(['error', 'message']);
  expect(body.message).toMatch(message);
}

describe('POST /v1/runs refuses bad input and writes nothing', () => {
  const base = validCurriculum();
  const table: [label: string, body: unknown, status: number, message: RegExp][] = [
    ['unknown top-level field', { ...base, epochs: 3 }, 400, /^\/epochs: /],
    [
      'unknown field inside a stage',
      changed(base, (c) => (c.stages[0].learningRate = 0.1)),
      400,
      /^\/stages\/0\/learningRate: /,
    ],
    [
      'iterations of the wrong type',
      changed(base, (c) => (c.stages[0].iterations = 'ten')),
      400,
      /^\/stages\/0\/iterations: Expected integer/,
    ],
    ['negative iterations', changed(base, (c) => (c.stages[0].iterations = -5)), 400, /^\/stages\/0\/iterations: /],
    [
      'iterations of 10^12',
      changed(base, (c) => (c.stages[0].iterations = 1e12)),
      400,
      /^\/stages\/0\/iterations: .*less or equal/,
    ],
    ['blockSize of 10^9', changed(base, (c) => (c.model.blockSize = 1e9)), 400, /^\/model\/blockSize: /],
    [
      'heads not dividing dim',
      changed(base, (c) => (c.model.heads = 3)),
      400,
      /^\/model\/dim: 16 is not divisible by heads=3/,
    ],
    [
      'unknown poetry collection',
      changed(base, (c) => (c.stages[0].dataset.source = 'poetry:no-such-collection')),
      400,
      /^\/stages\/0\/dataset\/source: /,
    ],
    [
      'a local file path as source',
      changed(base, (c) => (c.stages[0].dataset.source = '/data/news.jsonl')),
      400,
      /^\/stages\/0\/dataset\/source: .*POST \/v1\/files/,
    ],
    [
      'an unknown uploaded file',
      changed(base, (c) => (c.stages[0].dataset.source = 'file:00000000-0000-4000-8000-000000000000')),
      404,
      /^\/stages\/0\/dataset\/source: no uploaded file/,
    ],
    [
      'an unknown initFrom',
      { ...base, initFrom: 'no-such-checkpoint' },
      404,
      /^\/initFrom: no checkpoint or alias "no-such-checkpoint"/,
    ],
    [
      'an sft stage on poetry:tang',
      changed(base, (c) => (c.stages[0].kind = 'sft')),
      400,
      /^\/stages\/0\/dataset\/source: an sft stage needs Q&A/,
    ],
    ['no stages', { ...base, stages: [] }, 400, /^\/stages: /],
    [
      'duplicate stage names',
      changed(base, (c) => c.stages.push({ ...c.stages[0] })),
      400,
      /^\/stages\/1\/name: stage name "tang" is used twice/,
    ],
    ['a body that is not an object', [base], 400, /^\/: /],
  ];

  it.each(table)('%s', async (_label, body, status, message) => {
    const before = await h.db.prisma.run.count();
    expectError(await post('/v1/runs', body), status, message);
    expect(await h.db.prisma.run.count()).toBe(before);
    expect(await h.db.prisma.stage.count()).toBe(0);
  });

  it('malformed JSON, an empty JSON body, a wrong content type, a body too large', async () => {
    const send = (payload: string, contentType = 'application/json') =>
      h.app.inject({ method: 'POST', url: '/v1/runs', headers: { 'content-type': contentType }, payload });
    expectError(await send('{"name": "x",'), 400, /^the request body is not valid JSON/);
    expectError(await send(''), 400, /body is empty/);
    expectError(await send('name: x', 'text/plain'), 415, /content-type/);
    expectError(await send('name: x', 'application/yaml'), 415, /content-type/);
    expectError(await send(JSON.stringify({ ...base, name: 'x'.repeat(2 * 1024 * 1024) })), 413, /larger/);
    expect(await h.db.prisma.run.count()).toBe(0);
  });
});

describe('a valid run', () => {
  it('is written, queued as a BullMQ flow, and can be cancelled once', async () => {
    const res = await post(
      '/v1/runs',
      validCurriculum({
        name: 'flow-run',
        stages: [
          { name: 'tang', kind: 'pretrain', dataset: { source: 'poetry:tang' }, iterations: 10, batchSize: 4 },
          { name: 'qa', kind: 'sft', dataset: { source: 'poetry-qa:tangshi300' }, iterations: 5, batchSize: 4 },
        ],
      }),
    );
    expect(res.statusCode, res.body).toBe(201);
    const run = res.json();
    expect(run).toMatchObject({ name: 'flow-run', status: 'queued', initFrom: null });
    expect(run.stages.map((s: { name: string }) => s.name)).toEqual(['tang', 'qa']);
    expect(run.curriculum.stages[0].lr).toBe(1e-3); // defaults filled in
    expect(res.headers.location).toBe(`/v1/runs/${run.id}`);

    const rows = await h.db.prisma.stage.findMany({
      where: { runId: run.id },
      orderBy: { index: 'asc' },
      include: { events: true },
    });
    expect(rows.map((s) => [s.name, s.status, s.events.map((e) => e.type)])).toEqual([
      ['tang', 'queued', ['queued']],
      ['qa', 'queued', ['queued']],
    ]);

    // The flow: prepare (deepest child) waits to be taken, evaluate (the root) waits for its children.
    const connection = { connection: h.redis, prefix: h.prefix };
    const prepare = new Queue(QUEUE.prepare, connection);
    const evaluate = new Queue(QUEUE.evaluate, connection);
    const train = new Queue(QUEUE.train, connection);
    try {
      expect(await (await prepare.getJob(jobId.prepare(run.id)))?.getState()).toBe('waiting');
      expect(await (await train.getJob(jobId.stage(run.id, 1)))?.getState()).toBe('waiting-children');
      expect(await (await evaluate.getJob(jobId.evaluate(run.id)))?.getState()).toBe('waiting-children');
    } finally {
      await Promise.all([prepare.close(), evaluate.close(), train.close()]);
    }

    const events = await h.app.inject({ url: `/v1/runs/${run.id}/events` });
    expect(
      events
        .json()
        .events.map((e: { stage: string; type: string }) => `${e.stage}:${e.type}`)
        .sort(),
    ).toEqual(['qa:queued', 'tang:queued']);

    // Workers hear of a cancel on the cancel channel.
    const listener = createRedis(REDIS_URL);
    const heard = new Promise<string>((resolve) => listener.on('message', (_channel, message) => resolve(message)));
    await listener.subscribe(`${h.prefix}:cancel`);
    try {
      const cancel = await h.app.inject({ method: 'POST', url: `/v1/runs/${run.id}/cancel` });
      expect(cancel.statusCode, cancel.body).toBe(202);
      expect(cancel.json()).toEqual({ id: run.id, status: 'cancelled' });
      expect(await heard).toBe(run.id);
    } finally {
      listener.disconnect();
    }
    const after = (await h.app.inject({ url: `/v1/runs/${run.id}` })).json();
    expect(after.status).toBe('cancelled');
    expect(after.stages.map((s: { status: string }) => s.status)).toEqual(['cancelled', 'cancelled']);
    // No worker held a job of it: the whole flow is gone from Redis, nothing will start it.
    const flowQueues = [QUEUE.prepare, QUEUE.train, QUEUE.evaluate].map((q) => new Queue(q, connection));
    try {
      const ids = [jobId.prepare(run.id), jobId.stage(run.id, 0), jobId.stage(run.id, 1), jobId.evaluate(run.id)];
      const left = await Promise.all(flowQueues.flatMap((q) => ids.map((id) => q.getJob(id))));
      expect(left.filter(Boolean)).toEqual([]);
    } finally {
      await Promise.all(flowQueues.map((q) => q.close()));
    }
    expectError(
      await h.app.inject({ method: 'POST', url: `/v1/runs/${run.id}/cancel` }),
      409,
      /already been cancelled/,
    );
    expectError(
      await h.app.inject({ method: 'POST', url: '/v1/runs/not-a-uuid/cancel' }),
      404,
      /no run with id "not-a-uuid"/,
    );
  });
});

describe('uploaded files', () => {
  const corpus = '{"text": "床前明月光", "title": "静夜思"}\n\n{"text": "疑是地上霜", "title": "静夜思"}\n';

  it('round trip: upload a .jsonl, read it back, train on it; a field the file lacks is refused', async () => {
    const res = await upload('corpus.jsonl', corpus);
    expect(res.statusCode, res.body).toBe(201);
    const file = res.json();
    expect(file).toMatchObject({
      name: 'corpus.jsonl',
      format: 'jsonl',
      size: Buffer.byteLength(corpus),
      records: 2,
      fields: ['text', 'title'],
    });
    expect(file.source).toBe(`file:${file.id}`);
    const stored = await h.db.prisma.datasetFile.findUniqueOrThrow({
      where: { id: file.id },
      include: { artifact: true },
    });
    expect(stored.artifact.kind).toBe('other');
    expect((await h.app.inject({ url: `/v1/files/${file.id}` })).json()).toEqual(file);
    expect((await h.app.inject({ url: '/v1/files' })).json().files.map((f: { id: string }) => f.id)).toContain(file.id);

    const stage = {
      name: 'mine',
      kind: 'pretrain',
      dataset: { source: file.source, field: 'body' },
      iterations: 10,
      batchSize: 4,
    };
    const runsBefore = await h.db.prisma.run.count();
    expectError(
      await post('/v1/runs', validCurriculum({ stages: [stage] })),
      400,
      /^\/stages\/0\/dataset\/field: "body" is not a field of corpus\.jsonl \(its fields: text, title\)/,
    );
    expect(await h.db.prisma.run.count()).toBe(runsBefore);

    const ok = await post(
      '/v1/runs',
      validCurriculum({ name: 'from-file', stages: [{ ...stage, dataset: { source: file.source, field: 'text' } }] }),
    );
    expect(ok.statusCode, ok.body).toBe(201);
  });

  it('.txt and parquet uploads', async () => {
    const txt = await upload('poems.txt', 'one\ntwo\n\nthree\n');
    expect(txt.statusCode, txt.body).toBe(201);
    expect(txt.json()).toMatchObject({ format: 'txt', records: 2, fields: [] });

    const parquet = new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'id', data: [1, 2, 3], type: 'INT32' },
          { name: 'question', data: ['a?', 'b?', 'c?'], type: 'STRING' },
          { name: 'answer', data: ['a', 'b', 'c'], type: 'STRING' },
        ],
      }),
    );
    const res = await upload('qa.parquet', parquet);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({
      format: 'parquet',
      records: 3,
      fields: ['id', 'question', 'answer'],
      size: parquet.byteLength,
    });
  });

  it('refuses broken files and stores nothing', async () => {
    const files = await h.db.prisma.datasetFile.count();
    const artifacts = await h.db.prisma.artifact.count();
    expectError(
      await upload('broken.jsonl', '{"text": "fine"}\n{"text": oops}\n'),
      400,
      /broken\.jsonl:2: not valid JSON/,
    );
    expectError(await upload('fake.parquet', 'this is not parquet'), 400, /not a readable parquet file/);
    expectError(await upload('notes.docx', 'hello'), 400, /^query string \/name: .*\.docx.*\.txt .*\.jsonl.*\.parquet/);
    expectError(await upload('empty.jsonl', '\n\n'), 400, /holds no records/);
    expectError(await upload('nothing.txt', ''), 400, /empty/);
    expectError(
      await h.app.inject({
        method: 'POST',
        url: '/v1/files',
        headers: { 'content-type': 'application/octet-stream' },
        payload: 'x',
      }),
      400,
      /\/name/,
    );
    expectError(
      await h.app.inject({ method: 'POST', url: '/v1/files?name=a.jsonl', ...json({ text: 'x' }) }),
      415,
      /content-type/,
    );
    expect(await h.db.prisma.datasetFile.count()).toBe(files);
    expect(await h.db.prisma.artifact.count()).toBe(artifacts);
    expectError(await h.app.inject({ url: '/v1/files/nope' }), 404, /no uploaded file with id "nope"/);
  });
});

describe('bad input elsewhere', () => {
  it('PUT /v1/aliases: unknown checkpoint 404, bad names 400, unknown fields 400', async () => {
    const put = (name: string, body: unknown) =>
      h.app.inject({ method: 'PUT', url: `/v1/aliases/${name}`, ...json(body) });
    expectError(
      await put('good', { checkpoint: '00000000-0000-4000-8000-000000000000' }),
      404,
      /^\/checkpoint: no checkpoint or alias/,
    );
    expectError(await put('bad%20name', { checkpoint: 'x' }), 400, /^URL \/name: "bad name" is not allowed/);
    expectError(await put('x'.repeat(65), { checkpoint: 'x' }), 400, /^URL \/name: /);
    expectError(await put('good', { checkpoint: 'x', note: 1 }), 400, /^\/note: unknown field/);
    expectError(await put('good', {}), 400, /^\/checkpoint: /);
    expect(await h.db.prisma.alias.count()).toBe(0);
  });

  it('POST /v1/generate: unknown alias 404, out-of-range and wrong-type fields 400', async () => {
    expectError(await post('/v1/generate', { alias: 'nobody', prompt: 'hi' }), 404, /^\/alias: no alias "nobody"/);
    expectError(
      await post('/v1/generate', { checkpoint: 'nope', prompt: 'hi' }),
      404,
      /^\/checkpoint: no checkpoint with id "nope"/,
    );
    expectError(
      await post('/v1/generate', { alias: 'a', prompt: 'hi', samples: 0 }),
      400,
      /^\/samples: Expected integer to be greater or equal to 1/,
    );
    expectError(
      await post('/v1/generate', { alias: 'a', prompt: 'hi', temperature: 'hot' }),
      400,
      /^\/temperature: Expected number/,
    );
    expectError(await post('/v1/generate', { alias: 'a', prompt: 'hi', maxTokens: 4096 }), 400, /^\/maxTokens: /);
    // A body is never coerced: "5" is not a number, even though it could be read as one.
    expectError(
      await post('/v1/generate', { alias: 'a', prompt: 'hi', samples: '5' }),
      400,
      /^\/samples: Expected integer/,
    );
    expectError(
      await post('/v1/generate', { alias: 'a', prompt: 'hi', samples: 5, tempreature: 1 }),
      400,
      /^\/tempreature: unknown field/,
    );
    expectError(await post('/v1/generate', { alias: 'a', prompt: 'x'.repeat(10_001) }), 400, /^\/prompt: /);
    expectError(await post('/v1/generate', { prompt: 'hi' }), 400, /exactly one of "checkpoint" .* or "alias"/);
    expectError(await post('/v1/generate', { alias: 'a', checkpoint: 'b', prompt: 'hi' }), 400, /exactly one/);
  });

  it('query strings are checked, not silently coerced or trimmed', async () => {
    expectError(await h.app.inject({ url: '/v1/runs?limit=ten' }), 400, /^query string \/limit: Expected integer/);
    expectError(await h.app.inject({ url: '/v1/runs?limit=501' }), 400, /^query string \/limit: /);
    expectError(
      await h.app.inject({ url: '/v1/runs?status=done' }),
      400,
      /^query string \/status: "done" is not one of queued, running/,
    );
    expectError(await h.app.inject({ url: '/v1/runs?stauts=queued' }), 400, /^query string \/stauts: unknown field/);
    expectError(await h.app.inject({ url: '/v1/nothing-here' }), 404, /no route GET \/v1\/nothing-here/);
  });
});
