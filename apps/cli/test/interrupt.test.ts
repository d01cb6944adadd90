/**
 * Ctrl-C during `miniglm train` writes a checkpoint and exits 130; the same command then
 * continues from it, and the finished stage is exactly what an uninterrupted run produces.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readCheckpoint } from '@miniglm/model';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  countLines,
  englishParagraphs,
  expectSuccess,
  range,
  readMetrics,
  runCli,
  startCli,
  useTempDir,
} from './helpers.ts';

const tmp = useTempDir('interrupt');
const file = (name: string) => path.join(tmp(), name);
const ITERATIONS = 60;

beforeAll(() => {
  fs.writeFileSync(file('corpus.txt'), englishParagraphs(150));
  // Evaluation on every step and 4 micro-batches per step keep one step at tens of
  // milliseconds, so the interrupt lands well before the end.
  const stage = {
    name: 'pre',
    kind: 'pretrain',
    dataset: { source: 'corpus.txt' },
    iterations: ITERATIONS,
    batchSize: 8,
    gradAccum: 4,
    lr: 0.005,
    warmup: 5,
    evalEvery: 1,
    evalBatches: 4,
    checkpointEvery: 5,
  };
  const curriculum = {
    name: 'interrupt',
    seed: 5,
    tokenizer: { name: 'char' },
    model: { kind: 'gpt', layers: 2, heads: 2, dim: 32, blockSize: 32 },
    stages: [stage],
    evaluation: { valBatches: 2, rougeSamples: 1, maxNewTokens: 4, samples: 1 },
  };
  fs.writeFileSync(file('c.yaml'), stringify(curriculum));
});

async function waitFor(condition: () => boolean, what: string, exited: () => boolean): Promise<void> {
  while (!condition()) {
    if (exited()) throw new Error(`miniglm exited before ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('miniglm train, interrupted and resumed', () => {
  it('stops on SIGINT with a checkpoint and exit code 130, then resumes to exactly one line per step', async () => {
    const metrics = file('run/stages/pre/metrics.jsonl');
    const run = startCli(['train', '--config', 'c.yaml', '--out', 'run'], tmp());
    let exited = false;
    void run.done.then(() => (exited = true));
    await waitFor(
      () => countLines(metrics) >= 10,
      'writing 10 metrics lines',
      () => exited,
    );
    run.child.kill('SIGINT');
    const stopped = await run.done;

    expect(stopped.signal, stopped.stderr).toBeNull();
    expect(stopped.code, `${stopped.stdout}\n${stopped.stderr}`).toBe(130);
    expect(stopped.stderr).toBe('');
    expect(stopped.stdout).toMatch(/stopping after this iteration/);
    expect(stopped.stdout).toMatch(/run the same command again to continue/);
    const runJson = JSON.parse(fs.readFileSync(file('run/run.json'), 'utf8')) as {
      status: string;
      stages: { status: string; steps: number }[];
    };
    expect(runJson.status).toBe('stopped');
    // The checkpoint was written at the step it stopped on (not only at a multiple of
    // checkpointEvery): every step that has a metrics line is in it.
    const stoppedAt = (await readCheckpoint(file('run/stages/pre/model.ckpt'))).header.step;
    expect(stoppedAt).toBeGreaterThanOrEqual(10);
    expect(stoppedAt).toBeLessThan(ITERATIONS);
    expect(runJson.stages).toEqual([expect.objectContaining({ status: 'stopped', steps: stoppedAt })]);
    expect(readMetrics(metrics).map((l) => l.step)).toEqual(range(1, stoppedAt));

    const resumed = await runCli(['train', '--config', 'c.yaml', '--out', 'run'], tmp());
    expectSuccess(resumed);
    expect(resumed.stdout).toContain(`resuming at step ${stoppedAt}`);
    expect(readMetrics(metrics).map((l) => l.step)).toEqual(range(1, ITERATIONS));
    expect((await readCheckpoint(file('run/stages/pre/model.ckpt'))).header.step).toBe(ITERATIONS);
    expect((JSON.parse(fs.readFileSync(file('run/run.json'), 'utf8')) as { status: string }).status).toBe('succeeded');
  });

  it('ends exactly where an uninterrupted run of the same curriculum ends', async () => {
    expectSuccess(await runCli(['train', '--config', 'c.yaml', '--out', 'reference'], tmp()));
    const losses = (dir: string) =>
      readMetrics(file(`${dir}/stages/pre/metrics.jsonl`)).map((l) => [l.step, l.trainLoss, l.valLoss]);
    expect(losses('run')).toEqual(losses('reference'));
    const a = await readCheckpoint(file('run/stages/pre/model.ckpt'));
    const b = await readCheckpoint(file('reference/stages/pre/model.ckpt'));
    expect(a.header.sampler).toEqual(b.header.sampler);
    expect([...a.tensors.keys()]).toEqual([...b.tensors.keys()]);
    for (const [name, t] of a.tensors) expect(t.data, name).toEqual(b.tensors.get(name)!.data);
  });
});
