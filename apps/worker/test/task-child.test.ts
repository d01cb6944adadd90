/**
 * The training child on its own (no queue, no database): what it reports, and the case of a
 * stop asked for right after a periodic checkpoint, where the trainer writes the same step
 * again. Each report must name a file of its own that stays until the worker removes it (a
 * shared name once made the worker lose the stage with ENOENT).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareDatasets, type Curriculum } from '@miniglm/core';
import { startTaskChild } from '../src/child.ts';
import type { ChildMessage } from '../src/child-protocol.ts';
import { tinyCurriculum } from './helpers.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniglm-child-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the training child', () => {
  it('reports each checkpoint in a file of its own, also when a stop repeats the last step', async () => {
    const full = tinyCurriculum('child');
    const curriculum: Curriculum = { ...full, stages: [{ ...full.stages[0]!, iterations: 40, checkpointEvery: 1 }] };
    const { tokenizer, datasets } = await prepareDatasets(curriculum, {
      dataDir: path.join(dir, 'data'),
      baseDir: dir,
    });

    const reports: ChildMessage[] = [];
    const files: { step: number; file: string; bytes: number }[] = [];
    const child = startTaskChild(
      {
        kind: 'train',
        curriculum,
        stageIndex: 0,
        datasetDir: datasets[0]!.dir,
        tokenizer,
        dir: path.join(dir, 'stage'),
        backend: 'wasm',
      },
      async (m) => {
        reports.push(m);
        if (m.type !== 'checkpoint') return;
        // Like the worker: stop once the first checkpoint arrives, read the file a little later.
        // With a checkpoint every step, the stop always repeats the step last checkpointed.
        if (m.step === 1) child.stop();
        await new Promise((r) => setTimeout(r, 50));
        files.push({ step: m.step, file: m.file, bytes: fs.statSync(m.file).size });
        fs.rmSync(m.file);
      },
    );
    const last = await child.done;
    expect(last.type).toBe('trained');
    if (last.type !== 'trained') return;
    expect(last.outcome.status).toBe('stopped');
    const stoppedAt = last.outcome.step;
    expect(stoppedAt).toBeLessThan(40);
    // Every step's periodic checkpoint, then the stop's checkpoint of the same last step: all
    // in files of their own, all readable when the worker got to them.
    expect(files.map((f) => f.step)).toEqual([...Array.from({ length: stoppedAt }, (_, i) => i + 1), stoppedAt]);
    expect(new Set(files.map((f) => f.file)).size).toBe(files.length);
    expect(files.every((f) => f.bytes > 0)).toBe(true);
    expect(reports.filter((m) => m.type === 'metrics').length).toBe(stoppedAt);
    expect(reports[0]).toMatchObject({ type: 'started', fromStep: 0, backend: 'wasm' });
  });

  it('trains on only once the worker has stored its checkpoint (backpressure)', async () => {
    const full = tinyCurriculum('child-backpressure');
    const curriculum: Curriculum = { ...full, stages: [{ ...full.stages[0]!, iterations: 12, checkpointEvery: 1 }] };
    const { tokenizer, datasets } = await prepareDatasets(curriculum, {
      dataDir: path.join(dir, 'data-bp'),
      baseDir: dir,
    });
    // A worker slower at storing checkpoints than the child is at training a step.
    let stored = 0;
    const aheadBy: number[] = [];
    const child = startTaskChild(
      {
        kind: 'train',
        curriculum,
        stageIndex: 0,
        datasetDir: datasets[0]!.dir,
        tokenizer,
        dir: path.join(dir, 'stage-bp'),
        backend: 'wasm',
      },
      async (m) => {
        if (m.type === 'metrics') aheadBy.push(m.metrics.step - stored);
        if (m.type !== 'checkpoint') return;
        await new Promise((r) => setTimeout(r, 150));
        fs.rmSync(m.file);
        stored = m.step;
      },
    );
    const last = await child.done;
    expect(last.type).toBe('trained');
    // Each step's metrics come after the previous step's checkpoint was stored: never further ahead.
    expect(aheadBy).toHaveLength(12);
    expect(Math.max(...aheadBy)).toBe(1);
  });
});
