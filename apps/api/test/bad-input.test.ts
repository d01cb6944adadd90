/**
 * Bad input on every route that writes: NUL characters, lone UTF-16 surrogates, 10,000 levels
 * of nesting and absurd numbers, in JSON bodies, URL parameters, query strings and uploaded
 * files. Each must be a 400 whose message names the field (never a 500), and nothing may be
 * written: the rows of every table (and the alias that exists) and the Redis keys are
 * compared before and after each request. The NUL upload name used to leave an orphan
 * Artifact row; an upload whose row cannot be written must take its bytes back.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '@miniglm/core/db';
import { openHarness, rowCounts, validCurriculum, type Harness } from './helpers.ts';

let h: Harness;
let checkpointId = '';
let runId = '';
beforeAll(async () => {
  h = await openHarness('bad_input');
  // Something to aim at: a run with a checkpoint, and an alias "keep" on it.
  const { sha256 } = await new ArtifactStore(h.db).put(randomBytes(100), 'checkpoint');
  const run = await h.db.prisma.run.create({ data: { name: 'target', curriculum: {}, seed: 1 } });
  const stage = await h.db.prisma.stage.create({
    data: { runId: run.id, index: 0, name: 'tang', kind: 'pretrain', iterations: 10 },
  });
  const checkpoint = await h.db.prisma.checkpoint.create({
    data: { stageId: stage.id, step: 1, artifactSha256: sha256 },
  });
  await h.db.prisma.alias.create({ data: { name: 'keep', checkpointId: checkpoint.id } });
  runId = run.id;
  checkpointId = checkpoint.id;
});
afterAll(async () => {
  await h?.close();
});

/** Every table's row count, the alias rows as they are, and the Redis keys of this test. */
async function snapshot() {
  const p = h.db.prisma;
  return {
    ...(await rowCounts(h.db)),
    aliases: await p.alias.findMany({ orderBy: { name: 'asc' } }),
    runStatus: (await p.run.findUniqueOrThrow({ where: { id: runId } })).status,
    // A refused submission still counts against the submission rate limit (its counter, under
    // :rate:, is no data of the service): every other key must stay as it was.
    redisKeys: (await h.redis.keys(`${h.prefix}*`)).filter((k) => !k.startsWith(`${h.prefix}:rate:`)).sort(),
  };
}

// JSON text is built by hand where JSON.stringify cannot say it: -0, 1e400, 10,000 levels.
const curriculum = (change: Record<string, unknown> = {}) => JSON.stringify(validCurriculum(change));
const withField = (json: string, field: string, rawValue: string) => json.replace(/^\{/, `{"${field}":${rawValue},`);
const stageWith = (rawField: string) => curriculum().replace('"iterations":10', `"iterations":10,${rawField}`);
const deepArray = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
const deepObject = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
const DEEP = 10_000;

type Case = [label: string, method: 'POST' | 'PUT' | 'DELETE', url: () => string, json: string | null, message: RegExp];

const NUL = /contains the NUL character \(\\u0000, at index \d+\), which cannot be stored/;
const LONE = /contains a lone UTF-16 surrogate \(\\ud[89a-f][0-9a-f]{2}, at index \d+\), which is not valid Unicode/;
const at = (path: string, problem: RegExp) => new RegExp(`^${path}: ${problem.source}`);

const cases: Case[] = [
  // POST /v1/runs
  ['run: NUL in the name', 'POST', () => '/v1/runs', curriculum({ name: 'a\u0000b' }), at('/name', NUL)],
  ['run: NUL in a tag', 'POST', () => '/v1/runs', curriculum({ tags: ['ok', 'x\u0000'] }), at('/tags/1', NUL)],
  [
    'run: lone high surrogate in the name',
    'POST',
    () => '/v1/runs',
    curriculum({ name: 'a\ud800b' }),
    at('/name', LONE),
  ],
  [
    'run: lone low surrogate in a stage name',
    'POST',
    () => '/v1/runs',
    curriculum().replace('"name":"tang"', '"name":"t\\udc00"'),
    at('/stages/0/name', LONE),
  ],
  [
    'run: NUL in a field name',
    'POST',
    () => '/v1/runs',
    withField(curriculum(), 'na\\u0000me', '"x"'),
    /^\/: the field name "na\\u0000me" contains the NUL character/,
  ],
  [
    'run: a 10,000-deep array as the body',
    'POST',
    () => '/v1/runs',
    deepArray(DEEP),
    /^(\/0){32}: nests deeper than 32 levels/,
  ],
  [
    'run: a 10,000-deep object in a stage',
    'POST',
    () => '/v1/runs',
    stageWith(`"extra":${deepObject(DEEP)}`),
    /^\/stages\/0\/extra(\/a)+: nests deeper than 32 levels/,
  ],
  ['run: seed 1e308', 'POST', () => '/v1/runs', curriculum({ seed: 1e308 }), /^\/seed: 1e\+308 is out of range/],
  [
    'run: seed 1e400',
    'POST',
    () => '/v1/runs',
    withField(curriculum(), 'seed', '1e400'),
    /^\/seed: Infinity is not a finite number/,
  ],
  [
    'run: seed -0',
    'POST',
    () => '/v1/runs',
    withField(curriculum(), 'seed', '-0'),
    /^\/seed: -0 \(negative zero\) is not accepted/,
  ],
  ['run: seed "NaN"', 'POST', () => '/v1/runs', curriculum({ seed: 'NaN' }), /^\/seed: Expected integer/],
  [
    'run: seed 2^31 (an Int column)',
    'POST',
    () => '/v1/runs',
    curriculum({ seed: 2 ** 31 }),
    /^\/seed: Expected integer to be less or equal to 2147483647/,
  ],
  [
    'run: iterations 2^31 (an Int column)',
    'POST',
    () => '/v1/runs',
    curriculum().replace('"iterations":10', `"iterations":${2 ** 31}`),
    /^\/stages\/0\/iterations: Expected integer to be less or equal to/,
  ],
  ['run: lr "Infinity"', 'POST', () => '/v1/runs', stageWith('"lr":"Infinity"'), /^\/stages\/0\/lr: Expected number/],
  ['run: lr -0.0', 'POST', () => '/v1/runs', stageWith('"lr":-0.0'), /^\/stages\/0\/lr: -0 \(negative zero\)/],
  [
    'run: evalEvery 1e300',
    'POST',
    () => '/v1/runs',
    stageWith('"evalEvery":1e300'),
    /^\/stages\/0\/evalEvery: 1e\+300 is out of range/,
  ],

  // POST /v1/runs/:id/cancel
  ['cancel: NUL in the id', 'POST', () => `/v1/runs/${runId}%00/cancel`, null, at('URL /id', NUL)],
  [
    'cancel: a percent-encoded lone surrogate in the id',
    'POST',
    () => `/v1/runs/${runId}%ED%A0%80/cancel`,
    null,
    /is not a valid url component/,
  ],

  // PUT /v1/aliases/:name
  [
    'alias: NUL in the name',
    'PUT',
    () => '/v1/aliases/ke%00ep',
    JSON.stringify({ checkpoint: checkpointId }),
    at('URL /name', NUL),
  ],
  [
    'alias: a percent-encoded lone surrogate in the name',
    'PUT',
    () => '/v1/aliases/k%ED%B0%80',
    JSON.stringify({ checkpoint: checkpointId }),
    /is not a valid url component/,
  ],
  [
    'alias: NUL in the checkpoint',
    'PUT',
    () => '/v1/aliases/keep',
    JSON.stringify({ checkpoint: 'k\u0000' }),
    at('/checkpoint', NUL),
  ],
  [
    'alias: lone surrogate in the checkpoint',
    'PUT',
    () => '/v1/aliases/keep',
    JSON.stringify({ checkpoint: '\udbff' }),
    at('/checkpoint', LONE),
  ],
  [
    'alias: a 10,000-deep checkpoint',
    'PUT',
    () => '/v1/aliases/keep',
    `{"checkpoint":${deepArray(DEEP)}}`,
    /^\/checkpoint(\/0)+: nests deeper than 32 levels/,
  ],
  ['alias: checkpoint -0', 'PUT', () => '/v1/aliases/keep', '{"checkpoint":-0}', /^\/checkpoint: -0 \(negative zero\)/],

  // DELETE /v1/aliases/:name
  ['delete alias: NUL in the name', 'DELETE', () => '/v1/aliases/keep%00', null, at('URL /name', NUL)],

  // POST /v1/generate
  [
    'generate: NUL in the alias',
    'POST',
    () => '/v1/generate',
    JSON.stringify({ alias: 'ke\u0000ep', prompt: 'x' }),
    at('/alias', NUL),
  ],
  [
    'generate: NUL in the prompt',
    'POST',
    () => '/v1/generate',
    JSON.stringify({ alias: 'keep', prompt: '\u0000' }),
    at('/prompt', NUL),
  ],
  [
    'generate: lone surrogate in the prompt',
    'POST',
    () => '/v1/generate',
    JSON.stringify({ alias: 'keep', prompt: 'poem \ud83d' }),
    at('/prompt', LONE),
  ],
  [
    'generate: a 10,000-deep prompt',
    'POST',
    () => '/v1/generate',
    `{"alias":"keep","prompt":${deepObject(DEEP)}}`,
    /^\/prompt(\/a)+: nests deeper than 32 levels/,
  ],
  [
    'generate: seed 1e308',
    'POST',
    () => '/v1/generate',
    '{"alias":"keep","prompt":"x","seed":1e308}',
    /^\/seed: 1e\+308 is out of range/,
  ],
  [
    'generate: seed 2^31',
    'POST',
    () => '/v1/generate',
    `{"alias":"keep","prompt":"x","seed":${2 ** 31}}`,
    /^\/seed: Expected integer to be less or equal to 2147483647/,
  ],
  [
    'generate: temperature 1e400',
    'POST',
    () => '/v1/generate',
    '{"alias":"keep","prompt":"x","temperature":1e400}',
    /^\/temperature: Infinity is not a finite/,
  ],
  [
    'generate: temperature -0',
    'POST',
    () => '/v1/generate',
    '{"alias":"keep","prompt":"x","temperature":-0}',
    /^\/temperature: -0 \(negative zero\)/,
  ],
  [
    'generate: topK "NaN"',
    'POST',
    () => '/v1/generate',
    '{"alias":"keep","prompt":"x","topK":"NaN"}',
    /^\/topK: Expected integer/,
  ],
];

describe('every mutating route refuses bad input with a 400 naming the field, and writes nothing', () => {
  it.each(cases)('%s', async (_label, method, url, json, message) => {
    const before = await snapshot();
    const res = await h.app.inject({
      method,
      url: url(),
      ...(json === null ? {} : { headers: { 'content-type': 'application/json' }, payload: json }),
    });
    expect(res.statusCode, res.body).toBe(400);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['error', 'message']);
    expect(body.message).toMatch(message);
    expect(await snapshot()).toEqual(before);
  });
});

describe('POST /v1/files', () => {
  const upload = (name: string, bytes: string) =>
    h.app.inject({
      method: 'POST',
      url: `/v1/files?name=${name}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from(bytes, 'utf8'),
    });

  const files: [label: string, name: string, content: string, message: RegExp][] = [
    [
      'NUL in the file name (it used to leave an orphan Artifact)',
      'poems%00.txt',
      'a line\n',
      at('query string /name', NUL),
    ],
    [
      'NUL in a field name of the first record',
      'qa.jsonl',
      '{"te\\u0000xt": "a poem"}\n',
      /^qa\.jsonl: the first record's field name "te\\u0000xt" contains the NUL character/,
    ],
    [
      'a lone surrogate as a field name of the first record',
      'qa.jsonl',
      '{"\\ud800": "a poem"}\n',
      /^qa\.jsonl: the first record's field name "\\ud800" contains a lone UTF-16 surrogate/,
    ],
  ];

  it.each(files)('refuses %s with a 400 and stores nothing', async (_label, name, content, message) => {
    const before = await snapshot();
    const res = await upload(name, content);
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().message).toMatch(message);
    expect(await snapshot()).toEqual(before);
  });

  it('takes the stored bytes back when the row naming them cannot be written', async () => {
    // A database that refuses the DatasetFile row after the artifact went in (as a lost
    // connection or a full disk would): the artifact must not stay behind, orphaned.
    await h.db.sql.query(
      `CREATE FUNCTION refuse_files() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no rows today'; END $$`,
    );
    await h.db.sql.query(
      `CREATE TRIGGER refuse_files BEFORE INSERT ON "DatasetFile" FOR EACH ROW EXECUTE FUNCTION refuse_files()`,
    );
    const content = `a corpus of its own ${randomBytes(8).toString('hex')}\n`;
    try {
      const before = await snapshot();
      const res = await upload('orphan.txt', content);
      expect(res.statusCode).toBe(500);
      expect(await snapshot()).toEqual(before);
    } finally {
      await h.db.sql.query(`DROP TRIGGER refuse_files ON "DatasetFile"`);
      await h.db.sql.query(`DROP FUNCTION refuse_files()`);
    }
    // The same upload, with the database willing: stored, with exactly one artifact more.
    const artifacts = await h.db.prisma.artifact.count();
    const res = await upload('orphan.txt', content);
    expect(res.statusCode, res.body).toBe(201);
    expect(await h.db.prisma.artifact.count()).toBe(artifacts + 1);
  });
});
