/**
 * Bounded reads: every list route pages by cursor (each item exactly once, even with rows
 * inserted between pages; limits enforced; a bad cursor is a 400 naming `cursor`), and
 * metric histories are downsampled in SQL (the global min and max survive, the answer's
 * size does not grow with the run, /healthz keeps answering meanwhile).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '@miniglm/core/db';
import { CHECKPOINTS_PER_STAGE_VIEW } from '../src/responses.ts';
import { openHarness, validCurriculum, type Harness } from './helpers.ts';
import { insertLongRun, type LongRun } from './metric-fixtures.ts';

let h: Harness;
const FIXTURES = 23; // items per list, so that pages of 5 end on a partial page
const t0 = new Date('2025-01-01T00:00:00Z');
// Three items per millisecond: pages must break ties by the key's other parts.
const tied = (i: number) => new Date(t0.getTime() + Math.floor(i / 3));
/** Older than every fixture, and older with each page: it sorts after any cursor of a newest-first walk. */
const older = (page: number) => new Date(Date.UTC(2020, 0, 1) - page * 1000);
const ids = { pagedRun: '', stage: '', checkpoint: '', sha: '' };
const long = {} as { a: LongRun; b: LongRun };

const get = async (url: string) => {
  const res = await h.app.inject({ url });
  return { status: res.statusCode, body: res.json(), size: res.body.length };
};

beforeAll(async () => {
  h = await openHarness('bounded');
  const prisma = h.db.prisma;
  ids.sha = (await new ArtifactStore(h.db).put(new TextEncoder().encode('bytes'), 'checkpoint')).sha256;
  for (let i = 0; i < FIXTURES; i++)
    await prisma.run.create({
      data: {
        name: `page-${i}`,
        status: 'succeeded',
        curriculum: validCurriculum(),
        seed: 1,
        tags: ['page'],
        createdAt: tied(i),
      },
    });
  const run = await prisma.run.create({
    data: { name: 'paged', status: 'succeeded', curriculum: validCurriculum(), seed: 1, tags: ['paged'] },
  });
  ids.pagedRun = run.id;
  const stage = await prisma.stage.create({
    data: { runId: run.id, index: 0, name: 'tang', kind: 'pretrain', status: 'succeeded', iterations: 100 },
  });
  ids.stage = stage.id;
  for (let i = 0; i < FIXTURES; i++) {
    const c = await prisma.checkpoint.create({
      data: { stageId: stage.id, step: i + 1, artifactSha256: ids.sha, createdAt: tied(i) },
    });
    ids.checkpoint = c.id;
    await prisma.stageEvent.create({ data: { stageId: stage.id, type: 'checkpointed', step: i + 1, at: tied(i) } });
    await prisma.datasetFile.create({
      data: { name: `f${i}.txt`, format: 'txt', size: 5n, records: 1, artifactSha256: ids.sha, createdAt: tied(i) },
    });
    await prisma.alias.create({ data: { name: `m${String(i).padStart(2, '0')}`, checkpointId: c.id } });
  }
  long.a = await insertLongRun(h.db, 'long-a', 200_000);
  long.b = await insertLongRun(h.db, 'long-b', 150_000);
}, 120_000);

afterAll(async () => {
  await h?.close();
});

/** Follows nextCursor from the first page to the last; `between` runs after each page but the last. */
async function walk(path: string, field: string, limit: number, between?: (page: number) => Promise<void>) {
  const items: any[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const query = `${path.includes('?') ? '&' : '?'}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { status, body } = await get(`${path}${query}`);
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body[field].length).toBeLessThanOrEqual(limit);
    expect(body).toHaveProperty('nextCursor');
    items.push(...body[field]);
    pages++;
    cursor = body.nextCursor;
    if (cursor && between) await between(pages);
  } while (cursor);
  return { items, pages };
}

/** Every expected item exactly once, nothing else. */
function expectEachOnce(seen: string[], expected: string[]) {
  expect(new Set(seen).size).toBe(seen.length);
  expect([...seen].sort()).toEqual([...expected].sort());
}

describe('cursor pagination', () => {
  it('GET /v1/runs walks every run once; newer runs inserted meanwhile stay off the later pages, older ones come once', async () => {
    const prisma = h.db.prisma;
    const expected = (await prisma.run.findMany({ where: { tags: { has: 'page' } } })).map((r) => r.id);
    const { items, pages } = await walk('/v1/runs?tag=page', 'runs', 5, async (page) => {
      const data = { status: 'queued' as const, curriculum: validCurriculum(), seed: 1, tags: ['page'] };
      await prisma.run.create({ data: { ...data, name: `newer-${page}` } }); // before the cursor: a new first page
      const old = await prisma.run.create({ data: { ...data, name: `older-${page}`, createdAt: older(page) } });
      expected.push(old.id); // after the cursor: read once, on a later page
    });
    expect(pages).toBe(Math.ceil(expected.length / 5));
    expectEachOnce(
      items.map((r) => r.id),
      expected,
    );
    // Newest first, ties broken by id.
    const keys = items.map((r) => `${r.createdAt}|${r.id}`);
    expect(keys).toEqual([...keys].sort().reverse());
  });

  it('GET /v1/checkpoints?run= walks every checkpoint once, ties in time broken by step', async () => {
    const prisma = h.db.prisma;
    const expected = (await prisma.checkpoint.findMany({ where: { stageId: ids.stage } })).map((c) => c.id);
    let step = 1000;
    const { items } = await walk(`/v1/checkpoints?run=${ids.pagedRun}`, 'checkpoints', 4, async (page) => {
      await prisma.checkpoint.create({ data: { stageId: ids.stage, step: step++, artifactSha256: ids.sha } });
      const old = await prisma.checkpoint.create({
        data: { stageId: ids.stage, step: step++, artifactSha256: ids.sha, createdAt: older(page) },
      });
      expected.push(old.id);
    });
    expectEachOnce(
      items.map((c) => c.id),
      expected,
    );
    const steps = items.filter((c) => c.createdAt === tied(0).toISOString()).map((c) => c.step);
    expect(steps).toEqual([3, 2, 1]);
  });

  it('GET /v1/files walks every file once', async () => {
    const prisma = h.db.prisma;
    const expected = (await prisma.datasetFile.findMany()).map((f) => f.id);
    const { items } = await walk('/v1/files', 'files', 5, async (page) => {
      const data = { format: 'txt', size: 5n, records: 1, artifactSha256: ids.sha };
      await prisma.datasetFile.create({ data: { ...data, name: `newer-${page}.txt` } });
      const old = await prisma.datasetFile.create({
        data: { ...data, name: `older-${page}.txt`, createdAt: older(page) },
      });
      expected.push(old.id);
    });
    expectEachOnce(
      items.map((f) => f.id),
      expected,
    );
  });

  it("GET /v1/runs/:id/events walks the run's events once in time order, events appended meanwhile included", async () => {
    const prisma = h.db.prisma;
    const expected = (await prisma.stageEvent.findMany({ where: { stageId: ids.stage } })).map((e) => e.id);
    const { items } = await walk(`/v1/runs/${ids.pagedRun}/events`, 'events', 5, async (page) => {
      const e = await prisma.stageEvent.create({ data: { stageId: ids.stage, type: 'retried', step: page } });
      expected.push(e.id); // newer than every page read so far: it comes at the end
    });
    expectEachOnce(
      items.map((e) => String(e.id)),
      expected.map(String),
    );
    const keys = items.map((e) => `${e.at}|${String(e.id).padStart(8, '0')}`);
    expect(keys).toEqual([...keys].sort());
  });

  it('GET /v1/aliases walks every alias once by name; names inserted behind the cursor are not read', async () => {
    const prisma = h.db.prisma;
    const expected = (await prisma.alias.findMany()).map((a) => a.name);
    const { items } = await walk('/v1/aliases', 'aliases', 5, async (page) => {
      await prisma.alias.create({ data: { name: `a-before-${page}`, checkpointId: ids.checkpoint } });
      await prisma.alias.create({ data: { name: `z-after-${page}`, checkpointId: ids.checkpoint } });
      expected.push(`z-after-${page}`);
    });
    expectEachOnce(
      items.map((a) => a.name),
      expected,
    );
  });

  it('limits: the default page size, the maximum, and nextCursor null on the last page', async () => {
    await h.db.prisma.run.createMany({
      data: Array.from({ length: 55 }, (_, i) => ({
        name: `many-${i}`,
        status: 'queued' as const,
        curriculum: validCurriculum(),
        seed: 1,
        tags: ['many'],
      })),
    });
    const first = await get('/v1/runs?tag=many');
    expect(first.body.runs).toHaveLength(50); // the documented default
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const rest = await get(`/v1/runs?tag=many&cursor=${encodeURIComponent(first.body.nextCursor)}`);
    expect(rest.body.runs).toHaveLength(5);
    expect(rest.body.nextCursor).toBeNull();
    expect((await get('/v1/aliases?limit=5')).body.nextCursor).toEqual(expect.any(String));

    for (const path of ['/v1/runs', '/v1/checkpoints', '/v1/files', '/v1/aliases', `/v1/runs/${ids.pagedRun}/events`]) {
      for (const limit of ['0', '501', 'ten']) {
        const { status, body } = await get(`${path}?limit=${limit}`);
        expect(status, `${path}?limit=${limit}`).toBe(400);
        expect(body.message).toContain('/limit');
      }
      expect((await get(`${path}?limit=500`)).status).toBe(200);
    }
  });

  it('a cursor that is not one of the list is a 400 naming cursor', async () => {
    const aliasCursor = (await get('/v1/aliases?limit=1')).body.nextCursor as string;
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const bad = [
      'garbage!',
      aliasCursor, // another list's
      forged({ l: '/v1/runs', k: ['not a date', '00000000-0000-4000-8000-000000000000'] }),
      forged({ l: '/v1/runs', k: [t0.toISOString()] }),
      forged([1, 2]),
    ];
    for (const path of ['/v1/runs', '/v1/checkpoints', '/v1/files', `/v1/runs/${ids.pagedRun}/events`]) {
      for (const cursor of bad) {
        const { status, body } = await get(`${path}?cursor=${encodeURIComponent(cursor)}`);
        expect(status, `${path} ${cursor}`).toBe(400);
        expect(body.message).toMatch(/^query string \/cursor: /);
      }
    }
    const { status, body } = await get(`/v1/aliases?cursor=${forged({ l: '/v1/aliases', k: [7] })}`);
    expect(status).toBe(400);
    expect(body.message).toContain('/cursor');
  });
});

describe('a run view', () => {
  it("GET /v1/runs/:id shows a stage's latest checkpoints by step and counts them all", async () => {
    const stored = await h.db.prisma.checkpoint.findMany({ where: { stageId: ids.stage }, orderBy: { step: 'asc' } });
    expect(stored.length).toBeGreaterThan(CHECKPOINTS_PER_STAGE_VIEW);
    const { status, body } = await get(`/v1/runs/${ids.pagedRun}`);
    expect(status).toBe(200);
    const [stage] = body.stages;
    expect(stage.checkpointCount).toBe(stored.length);
    expect(stage.checkpoints.map((c: { step: number }) => c.step)).toEqual(
      stored.slice(-CHECKPOINTS_PER_STAGE_VIEW).map((c) => c.step),
    );
  });
});

describe('downsampled metric histories', () => {
  it('keeps the global min and max, the first and last point, and at most maxPoints points', async () => {
    const { status, body } = await get(`/v1/runs/${long.a.runId}/metrics?keys=trainLoss&maxPoints=200`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ maxPoints: 200, downsampled: true });
    const points: [number, number][] = body.series.trainLoss.long;
    expect(points.length).toBeLessThanOrEqual(200);
    expect(points.length).toBeGreaterThan(150);
    expect(points).toContainEqual([long.a.spike.step, long.a.spike.value]);
    expect(points).toContainEqual([long.a.dip.step, long.a.dip.value]);
    expect(points[0]![0]).toBe(1);
    expect(points.at(-1)![0]).toBe(200_000);
    const steps = points.map((p) => p[0]);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(new Set(steps).size).toBe(steps.length);
  });

  it('answers a short history whole, and applies the default maximum when maxPoints is absent', async () => {
    const prisma = h.db.prisma;
    await prisma.metricPoint.createMany({
      data: Array.from({ length: 30 }, (_, i) => ({
        runId: long.a.runId,
        stageId: long.a.stageId,
        key: 'valLoss',
        step: (i + 1) * 1000,
        value: 3 - i / 100,
      })),
    });
    const { body, size } = await get(`/v1/runs/${long.a.runId}/metrics?keys=trainLoss,valLoss`);
    expect(body.maxPoints).toBe(1000);
    expect(body.series.valLoss.long).toHaveLength(30);
    expect(body.series.valLoss.long[0]).toEqual([1000, 3]);
    expect(body.series.trainLoss.long.length).toBeLessThanOrEqual(1000);
    expect(size).toBeLessThan(64 * 1024); // 200,000 points would be about 5 MB
    const bad = await get(`/v1/runs/${long.a.runId}/metrics?maxPoints=5`);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toContain('/maxPoints');
  });

  it('GET /v1/compare downsamples each run on one grid, keeping both spikes', async () => {
    const { status, body, size } = await get(`/v1/compare?runs=${long.a.runId},${long.b.runId}&maxPoints=400`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ maxPoints: 400, downsampled: true });
    const rows: { step: number; values: Record<string, number | null> }[] = body.histories.trainLoss;
    expect(rows.length).toBeLessThanOrEqual(400);
    for (const run of [long.a, long.b]) {
      const own = rows.filter((r) => r.values[run.runId] !== null);
      expect(own.length).toBeLessThanOrEqual(200); // its share
      expect(own.find((r) => r.step === run.spike.step)?.values[run.runId]).toBe(run.spike.value);
      expect(own.find((r) => r.step === run.dip.step)?.values[run.runId]).toBe(run.dip.value);
      expect(own.at(-1)!.step).toBe(run === long.a ? 200_000 : 150_000);
    }
    expect(size).toBeLessThan(100 * 1024);
  });

  it('/healthz answers while a long history is read', async () => {
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const address = h.app.server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    let done = false;
    const reads = Promise.all([
      fetch(`${base}/v1/runs/${long.a.runId}/metrics?keys=trainLoss&maxPoints=10000`).then((r) => r.text()),
      fetch(`${base}/v1/compare?runs=${long.a.runId},${long.b.runId}`).then((r) => r.text()),
    ]).finally(() => (done = true));
    const latencies: number[] = [];
    do {
      const started = performance.now();
      const res = await fetch(`${base}/healthz`);
      expect(res.status).toBe(200);
      latencies.push(performance.now() - started);
    } while (!done);
    const [metrics, compare] = await reads;
    expect(metrics.length).toBeLessThan(400 * 1024); // 10,000 points
    expect(compare.length).toBeLessThan(200 * 1024);
    // Generous: the machine may be busy; scripts/measure-reads.ts reports the real figures.
    expect(Math.max(...latencies)).toBeLessThan(1000);
  });
});
