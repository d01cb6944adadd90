/**
 * Continuing a run folder: what a rerun may and may not pick up from an earlier attempt.
 * Tiny model and corpus; the wasm backend, as in production.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CurriculumError, parseCurriculum, runCurriculum, type Curriculum } from '../src/index.ts';

let dir = '';
const corpus = Array.from(
  { length: 60 },
  (_, i) => `the cat ${i % 7} sat on the mat ${i % 5}.\nit was a good day.`,
).join('\n\n');

function curriculum(patch: (c: Record<string, any>) => void = () => {}): Curriculum {
  const c: Record<string, any> = {
    name: 'rerun',
    tokenizer: { name: 'char' },
    model: { kind: 'gpt', layers: 1, heads: 2, dim: 16, blockSize: 16 },
    stages: [
      {
        name: 'pre',
        kind: 'pretrain',
        dataset: { source: 'corpus.txt' },
        iterations: 6,
        batchSize: 4,
        evalEvery: 3,
        checkpointEvery: 3,
        warmup: 1,
      },
    ],
    evaluation: { valBatches: 1, rougeSamples: 0, maxNewTokens: 4, samples: 1 },
  };
  patch(c);
  const parsed = parseCurriculum(c);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

const run = (c: Curriculum, out: string) =>
  runCurriculum(c, { outDir: path.join(dir, out), baseDir: dir, dataDir: path.join(dir, 'datasets'), backend: 'wasm' });

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-local-run-'));
  fs.writeFileSync(path.join(dir, 'corpus.txt'), corpus);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('a rerun of a run folder', () => {
  it('refuses a changed model, batch size or hyper-parameter, and keeps the checkpoint', async () => {
    const first = await run(curriculum(), 'a');
    expect(first.status).toBe('succeeded');
    const ckpt = path.join(dir, 'a', 'stages', 'pre', 'model.ckpt');
    const before = fs.readFileSync(ckpt);
    await expect(
      run(
        curriculum((c) => (c.model.dim = 32)),
        'a',
      ),
    ).rejects.toThrow(/trained with another model \(dim 16 -> 32\)/);
    await expect(
      run(
        curriculum((c) => (c.stages[0].batchSize = 8)),
        'a',
      ),
    ).rejects.toThrow(/another batch setup \(batchSize 4 -> 8\)/);
    await expect(
      run(
        curriculum((c) => (c.stages[0].lr = 0.01)),
        'a',
      ),
    ).rejects.toThrow(CurriculumError);
    expect(fs.readFileSync(ckpt).equals(before)).toBe(true);
    const runJson = JSON.parse(fs.readFileSync(path.join(dir, 'a', 'run.json'), 'utf8')) as { status: string };
    expect(runJson.status).toBe('failed');
  });

  it('continues past a metrics line torn by a crash', async () => {
    const c = curriculum((x) => (x.stages[0].iterations = 3));
    expect((await run(c, 'b')).status).toBe('succeeded');
    // The process died mid-write of a line after the last checkpoint.
    const metrics = path.join(dir, 'b', 'stages', 'pre', 'metrics.jsonl');
    fs.appendFileSync(metrics, '{"stage":"pre","step":4,"trainL');
    expect((await run(c, 'b')).status).toBe('succeeded');
    const steps = fs
      .readFileSync(metrics, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual([1, 2, 3]);
  });

  it('says so when it resumes a checkpoint written on another backend', async () => {
    const c = curriculum((x) => (x.stages[0].checkpointEvery = 2));
    let steps = 0;
    const stopped = await runCurriculum(c, {
      outDir: path.join(dir, 'c'),
      baseDir: dir,
      dataDir: path.join(dir, 'datasets'),
      backend: 'wasm',
      events: { onMetrics: () => steps++ },
      shouldStop: () => steps >= 3,
    });
    expect(stopped.status).toBe('stopped');
    const notes: (string | undefined)[] = [];
    const resumed = await runCurriculum(c, {
      outDir: path.join(dir, 'c'),
      baseDir: dir,
      dataDir: path.join(dir, 'datasets'),
      backend: 'cpu',
      events: { onStageStart: (_stage, _index, _from, backendChange) => notes.push(backendChange) },
    });
    expect(resumed.status).toBe('succeeded');
    expect(notes).toEqual([
      "resumed at step 3 on cpu (1 thread); its checkpoint was written on wasm (1 thread), so losses from here on can differ from an uninterrupted run's in the last digits",
    ]);
    // The same backend again says nothing.
    notes.length = 0;
    await runCurriculum(c, {
      outDir: path.join(dir, 'c'),
      baseDir: dir,
      dataDir: path.join(dir, 'datasets'),
      backend: 'cpu',
      events: { onStageStart: (_stage, _index, _from, backendChange) => notes.push(backendChange) },
    });
    expect(notes).toEqual([undefined]);
  });
});
