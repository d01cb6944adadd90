/**
 * DELETE /v1/runs/:id, /v1/checkpoints/:id and /v1/files/:id against the real Postgres and
 * Redis: what each removes (a run with everything of it, in one statement), the bytes that
 * are collected with it (artifacts and their chunks, unless another row shares them), every
 * 409 with its reason and nothing deleted (all tables compared), and the owner rules.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '@miniglm/core/db';
import { createApiKey } from '@miniglm/core/service';
import { openHarness, rowCounts, validCurriculum, type Harness } from './helpers.ts';

let h: Harness;
let store: ArtifactStore;
beforeAll(async () => {
  h = await openHarness('deletion');
  // Small chunks: every artifact here has several chunk rows, which must go with it.
  store = new ArtifactStore(h.db, { chunkSize: 16 });
});
afterAll(async () => {
  await h?.close();
});

type Res = Awaited<ReturnType<Harness['app']['inject']>>;
const del = (url: string, key?: string) =>
  h.app.inject({ method: 'DELETE', url, headers: key ? { authorization: `Bearer ${key}` } : {} });

function expectRefused(res: Res, status: number, message: RegExp) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.json().message).toMatch(message);
}

function expectDeleted(res: Res) {
  expect(res.statusCode, res.body).toBe(204);
  expect(res.body).toBe('');
}

/** Every table's row count: a refused delete changes none of them. */
const snapshot = () => rowCounts(h.db);

let made = 0;
const bytes = (what: string) => Buffer.from(`${what} #${++made}: ${'w'.repeat(40)}`);

interface FixtureRun {
  id: string;
  stages: string[];
  /** Per stage, its checkpoints' ids, by step. */
  checkpoints: string[][];
  datasets: string[];
  artifacts: string[];
}

/**
 * A run as workers leave it: two stages (the second started from the first's last
 * checkpoint), each with its own dataset, three checkpoints, metric points and events, and an
 * evaluation of the last checkpoint. `shared`: checkpoint bytes to reuse (content addressing).
 */
async function finishedRun(
  name: string,
  options: { status?: 'succeeded' | 'queued' | 'running' | 'cancelled'; ownerId?: string; shared?: Buffer } = {},
): Promise<FixtureRun> {
  const p = h.db.prisma;
  const status = options.status ?? 'succeeded';
  const run = await p.run.create({
    data: { name, curriculum: {}, seed: 1, status, ownerId: options.ownerId ?? null },
  });
  const fixture: FixtureRun = { id: run.id, stages: [], checkpoints: [], datasets: [], artifacts: [] };
  for (const index of [0, 1]) {
    const data = await store.put(bytes(`dataset of ${name}`), 'dataset');
    const dataset = await p.dataset.create({
      data: {
        contentHash: `${name}-${index}`,
        tokenizerHash: 't',
        kind: 'pretrain',
        source: 'poetry:tang',
        manifest: {},
        artifactSha256: data.sha256,
      },
    });
    const stage = await p.stage.create({
      data: {
        runId: run.id,
        index,
        name: `s${index}`,
        kind: 'pretrain',
        iterations: 30,
        status: status === 'queued' ? 'queued' : status === 'running' ? 'running' : 'succeeded',
        datasetId: dataset.id,
        parentCheckpointId: index === 1 ? fixture.checkpoints[0]!.at(-1) : null,
      },
    });
    const ids: string[] = [];
    for (const step of [10, 20, 30]) {
      const content = options.shared && index === 0 && step === 10 ? options.shared : bytes(`${name} ${index} ${step}`);
      const { sha256 } = await store.put(content, 'checkpoint');
      const checkpoint = await p.checkpoint.create({
        data: { stageId: stage.id, step, artifactSha256: sha256, metrics: { valLoss: 1 } },
      });
      ids.push(checkpoint.id);
      fixture.artifacts.push(sha256);
      await p.metricPoint.create({ data: { runId: run.id, stageId: stage.id, key: 'trainLoss', step, value: 1 } });
      await p.stageEvent.create({ data: { stageId: stage.id, type: 'checkpointed', step } });
    }
    fixture.stages.push(stage.id);
    fixture.checkpoints.push(ids);
    fixture.datasets.push(dataset.id);
    fixture.artifacts.push(data.sha256);
  }
  if (status === 'succeeded')
    await p.evaluation.create({
      data: { runId: run.id, checkpointId: fixture.checkpoints[1]!.at(-1)!, perplexity: 3 },
    });
  return fixture;
}

/** A run whose first stage starts from `parent` (initFrom), in the given state. */
async function branchFrom(parent: string, name: string, status: 'running' | 'succeeded') {
  const p = h.db.prisma;
  const run = await p.run.create({ data: { name, curriculum: {}, seed: 1, status } });
  await p.stage.create({
    data: { runId: run.id, index: 0, name: 's0', kind: 'pretrain', iterations: 1, status, parentCheckpointId: parent },
  });
  return run.id;
}

const stored = async (sha256s: string[]) => ({
  artifacts: await h.db.prisma.artifact.count({ where: { sha256: { in: sha256s } } }),
  chunks: await h.db.prisma.artifactChunk.count({ where: { sha256: { in: sha256s } } }),
});

describe('DELETE /v1/runs/:id', () => {
  it('removes the run with its stages, checkpoints, metrics, evaluation and events, and collects its bytes', async () => {
    const keep = await finishedRun('bystander');
    const run = await finishedRun('doomed');
    expect((await stored(run.artifacts)).chunks).toBeGreaterThan(run.artifacts.length);
    const before = await snapshot();

    expectDeleted(await del(`/v1/runs/${run.id}`));

    const p = h.db.prisma;
    expect(await p.run.count({ where: { id: run.id } })).toBe(0);
    expect(await p.stage.count({ where: { runId: run.id } })).toBe(0);
    expect(await p.checkpoint.count({ where: { stageId: { in: run.stages } } })).toBe(0);
    expect(await p.metricPoint.count({ where: { runId: run.id } })).toBe(0);
    expect(await p.evaluation.count({ where: { runId: run.id } })).toBe(0);
    expect(await p.stageEvent.count({ where: { stageId: { in: run.stages } } })).toBe(0);
    expect(await p.dataset.count({ where: { id: { in: run.datasets } } })).toBe(0);
    expect(await stored(run.artifacts)).toEqual({ artifacts: 0, chunks: 0 });
    // Exactly the doomed run's rows went: 6 checkpoints, 2 stages, 2 datasets, 8 artifacts.
    const after = await snapshot();
    expect(before.checkpoints - after.checkpoints).toBe(6);
    expect(before.stages - after.stages).toBe(2);
    expect(before.datasets - after.datasets).toBe(2);
    expect(before.artifacts - after.artifacts).toBe(8);
    expect(await stored(keep.artifacts)).toMatchObject({ artifacts: 8 });
    expectRefused(await del(`/v1/runs/${run.id}`), 404, /no run with id/);
    expectRefused(await del('/v1/runs/not-a-uuid'), 404, /no run with id "not-a-uuid"/);
  });

  it('keeps an artifact another run shares (content addressing) until that run goes too', async () => {
    const same = bytes('weights two identical runs write');
    const [a, b] = [await finishedRun('twin-a', { shared: same }), await finishedRun('twin-b', { shared: same })];
    const shared = a.artifacts[0]!;
    expect(b.artifacts[0]).toBe(shared);
    expectDeleted(await del(`/v1/runs/${a.id}`));
    expect((await stored([shared])).artifacts).toBe(1);
    expect(Buffer.from((await new ArtifactStore(h.db).get(shared))!)).toEqual(same);
    expectDeleted(await del(`/v1/runs/${b.id}`));
    expect(await stored([shared])).toEqual({ artifacts: 0, chunks: 0 });
  });

  it('refuses a queued or running run (cancel first) and a cancelled one whose stage is still stopping', async () => {
    for (const status of ['queued', 'running'] as const) {
      const run = await finishedRun(`busy-${status}`, { status });
      const before = await snapshot();
      expectRefused(
        await del(`/v1/runs/${run.id}`),
        409,
        new RegExp(`is ${status}: cancel it first \\(POST /v1/runs/${run.id}/cancel\\)`),
      );
      expect(await snapshot()).toEqual(before);
    }
    const stopping = await finishedRun('stopping', { status: 'cancelled' });
    await h.db.prisma.stage.update({ where: { id: stopping.stages[1]! }, data: { status: 'running' } });
    const before = await snapshot();
    expectRefused(
      await del(`/v1/runs/${stopping.id}`),
      409,
      /is cancelled, but its stage "s1" is still running \(a worker is stopping it\); try again/,
    );
    expect(await snapshot()).toEqual(before);
  });

  it('refuses while an alias names one of its checkpoints, or another run started from one; nothing is deleted', async () => {
    const run = await finishedRun('pinned');
    await h.db.prisma.alias.create({ data: { name: 'GuoJing', checkpointId: run.checkpoints[0]![1]! } });
    let before = await snapshot();
    expectRefused(
      await del(`/v1/runs/${run.id}`),
      409,
      /has a checkpoint named by the alias "GuoJing": an alias keeps its model; move or delete it first \(DELETE \/v1\/aliases\/GuoJing\)/,
    );
    expect(await snapshot()).toEqual(before);
    expectDeleted(await h.app.inject({ method: 'DELETE', url: '/v1/aliases/GuoJing' }));

    const running = await branchFrom(run.checkpoints[0]![2]!, 'branch-running', 'running');
    before = await snapshot();
    expectRefused(
      await del(`/v1/runs/${run.id}`),
      409,
      new RegExp(
        `stage "s0" of run "branch-running" \\(${running}\\) starts from one of its checkpoints and is running: cancel that run or wait for its end, then delete it first`,
      ),
    );
    expect(await snapshot()).toEqual(before);
    await h.db.prisma.run.update({ where: { id: running }, data: { status: 'succeeded' } });
    await h.db.prisma.stage.updateMany({ where: { runId: running }, data: { status: 'succeeded' } });
    expectRefused(
      await del(`/v1/runs/${run.id}`),
      409,
      new RegExp(`run "branch-running" \\(${running}\\) started from one of its checkpoints; .*delete that run first`),
    );
    expect(await snapshot()).toEqual(before);
    // The branch first, then the run it came from.
    expectDeleted(await del(`/v1/runs/${running}`));
    expectDeleted(await del(`/v1/runs/${run.id}`));
  });
});

describe('DELETE /v1/checkpoints/:id', () => {
  it('deletes a checkpoint of a finished run and collects its bytes; the run and the rest stay', async () => {
    const run = await finishedRun('thin-out');
    const [first] = run.checkpoints[0]!;
    const sha256 = (await h.db.prisma.checkpoint.findUniqueOrThrow({ where: { id: first! } })).artifactSha256;
    expectDeleted(await del(`/v1/checkpoints/${first}`));
    expect(await h.db.prisma.checkpoint.count({ where: { id: first! } })).toBe(0);
    expect(await stored([sha256])).toEqual({ artifacts: 0, chunks: 0 });
    expect(await h.db.prisma.checkpoint.count({ where: { stageId: { in: run.stages } } })).toBe(5);
    expect(await h.db.prisma.run.count({ where: { id: run.id } })).toBe(1);
    expectRefused(await del(`/v1/checkpoints/${first}`), 404, /no checkpoint with id/);
  });

  it('refuses, naming why: an alias, a stage that started from it, an evaluation, a run still training', async () => {
    const run = await finishedRun('refusals');
    const [, middle, last] = run.checkpoints[0]!;
    await h.db.prisma.alias.create({ data: { name: 'keeper', checkpointId: middle! } });
    const before = await snapshot();
    expectRefused(await del(`/v1/checkpoints/${middle}`), 409, /is named by the alias "keeper": .*move or delete it/);
    // The first stage's last checkpoint is where the second stage started.
    expectRefused(
      await del(`/v1/checkpoints/${last}`),
      409,
      new RegExp(
        `stage "s1" of the same run started from it, .*delete the whole run instead \\(DELETE /v1/runs/${run.id}\\)`,
      ),
    );
    expectRefused(
      await del(`/v1/checkpoints/${run.checkpoints[1]!.at(-1)}`),
      409,
      /is the model run "refusals" was evaluated on: .*delete the whole run instead/,
    );
    const other = await branchFrom(run.checkpoints[1]![0]!, 'from-refusals', 'succeeded');
    expectRefused(
      await del(`/v1/checkpoints/${run.checkpoints[1]![0]}`),
      409,
      new RegExp(`run "from-refusals" \\(${other}\\) started from it; .*lineage stays readable: delete that run first`),
    );
    expect((await snapshot()).checkpoints).toBe(before.checkpoints);

    const training = await finishedRun('training', { status: 'running' });
    expectRefused(
      await del(`/v1/checkpoints/${training.checkpoints[0]![0]}`),
      409,
      /belongs to a run that is running: while a run trains, its retention policy .* decides which checkpoints go/,
    );
  });
});

describe('DELETE /v1/files/:id', () => {
  const upload = (name: string, body: string) =>
    h.app.inject({
      method: 'POST',
      url: `/v1/files?name=${name}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: body,
    });

  it('deletes a file and its bytes, but keeps bytes another file shares', async () => {
    const text = '床前明月光\n疑是地上霜\n';
    const [a, b] = [(await upload('a.txt', text)).json(), (await upload('b.txt', text)).json()];
    expect(a.sha256).toBe(b.sha256);
    expectDeleted(await del(`/v1/files/${a.id}`));
    expect(await h.db.prisma.datasetFile.count({ where: { id: a.id } })).toBe(0);
    expect((await stored([a.sha256])).artifacts).toBe(1);
    expectDeleted(await del(`/v1/files/${b.id}`));
    expect(await stored([a.sha256])).toEqual({ artifacts: 0, chunks: 0 });
    expectRefused(await del(`/v1/files/${a.id}`), 404, /no uploaded file with id/);
  });

  it('refuses a file a queued or running run trains on, and deletes it once that run has ended', async () => {
    const file = (await upload('corpus.txt', '白日依山尽\n黄河入海流\n')).json();
    const run = await h.db.prisma.run.create({
      data: {
        name: 'reads-the-file',
        seed: 1,
        status: 'queued',
        curriculum: { stages: [{ name: 's', dataset: { source: `file: ${file.id}` } }] },
      },
    });
    const before = await snapshot();
    expectRefused(
      await del(`/v1/files/${file.id}`),
      409,
      new RegExp(`named as "file:${file.id}" by run "reads-the-file" \\(${run.id}, queued\\), which has not finished`),
    );
    expect(await snapshot()).toEqual(before);
    await h.db.prisma.run.update({ where: { id: run.id }, data: { status: 'cancelled' } });
    expectDeleted(await del(`/v1/files/${file.id}`));
  });
});

describe('a checkpoint deleted while a run naming it is submitted', () => {
  it('is a 409 naming the checkpoint, not a 500, and nothing of the run is written', async () => {
    const p = h.db.prisma;
    const source = await p.run.create({
      data: { name: 'source', curriculum: validCurriculum(), seed: 1, status: 'succeeded' },
    });
    const stage = await p.stage.create({
      data: { runId: source.id, index: 0, name: 'tang', kind: 'pretrain', iterations: 1, status: 'succeeded' },
    });
    const sha256 = (await store.put(bytes('branch point'), 'checkpoint')).sha256;
    const checkpoint = await p.checkpoint.create({ data: { stageId: stage.id, step: 1, artifactSha256: sha256 } });
    // What a DELETE or the source run's retention does between submit's lookup of initFrom
    // and its write: the run's row goes in, then the checkpoint is gone before its stage is.
    await p.$executeRawUnsafe(`CREATE FUNCTION drop_init_from() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN DELETE FROM "Checkpoint" WHERE "id" = NEW."curriculum"->>'initFrom'; RETURN NEW; END $$`);
    await p.$executeRawUnsafe(
      `CREATE TRIGGER drop_init_from AFTER INSERT ON "Run" FOR EACH ROW EXECUTE FUNCTION drop_init_from()`,
    );
    try {
      const before = await snapshot();
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/runs',
        payload: validCurriculum({ name: 'late branch', initFrom: checkpoint.id }),
      });
      expectRefused(res, 409, new RegExp(`^/initFrom: checkpoint ${checkpoint.id} was deleted while this run`));
      expect(await snapshot()).toEqual(before);
    } finally {
      await p.$executeRawUnsafe(`DROP TRIGGER drop_init_from ON "Run"`);
      await p.$executeRawUnsafe(`DROP FUNCTION drop_init_from()`);
    }
  });
});

describe('owners and roles', () => {
  const keys = { admin: '', alice: '', bob: '', viewer: '' };
  const ids = { alice: '', bob: '' };
  beforeAll(async () => {
    for (const [who, role] of [
      ['admin', 'admin'],
      ['alice', 'member'],
      ['bob', 'member'],
      ['viewer', 'viewer'],
    ] as const) {
      const made = await createApiKey(h.db.prisma, { name: who, role });
      keys[who] = made.key;
      if (who === 'alice' || who === 'bob') ids[who] = made.id;
    }
  });

  it("a member deletes its own; another member's run, checkpoint or file is a 404; a viewer gets 403; an admin deletes any", async () => {
    const alice = await finishedRun('alice-run', { ownerId: ids.alice });
    const bob = await finishedRun('bob-run', { ownerId: ids.bob });
    const { sha256 } = await store.put(bytes('alice file'), 'other');
    const file = await h.db.prisma.datasetFile.create({
      data: { name: 'a.txt', format: 'txt', size: 1n, records: 1, artifactSha256: sha256, ownerId: ids.alice },
    });
    const before = await snapshot();
    expectRefused(await del(`/v1/runs/${alice.id}`, keys.bob), 404, /no run with id/);
    expectRefused(await del(`/v1/checkpoints/${alice.checkpoints[0]![0]}`, keys.bob), 404, /no checkpoint/);
    expectRefused(await del(`/v1/files/${file.id}`, keys.bob), 404, /no uploaded file/);
    expectRefused(await del(`/v1/runs/${alice.id}`, keys.viewer), 403, /viewer key, which can only read/);
    expectRefused(await del(`/v1/runs/${alice.id}`), 401, /needs a key/);
    expect(await snapshot()).toEqual(before);

    expectDeleted(await del(`/v1/checkpoints/${alice.checkpoints[0]![0]}`, keys.alice));
    expectDeleted(await del(`/v1/files/${file.id}`, keys.alice));
    expectDeleted(await del(`/v1/runs/${alice.id}`, keys.alice));
    expectDeleted(await del(`/v1/runs/${bob.id}`, keys.admin));
    expect(await h.db.prisma.run.count({ where: { id: { in: [alice.id, bob.id] } } })).toBe(0);
  });
});
