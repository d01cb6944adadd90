/**
 * The time floor between checkpoints (trainStage's minCheckpointSeconds): with a floor far
 * longer than the test, a stage that asks for a checkpoint every step writes only its first
 * one, its last one and the one at a stop; and resuming from a checkpoint it did write is
 * still exact (the floor changes what is saved, never what is trained).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createModel,
  decays,
  readCheckpoint,
  restoreModel,
  restoreOptimizer,
  trainStage,
  type LanguageModel,
} from '../src/index.ts';
import { cycleCorpus, gptConfig, TOKENIZER, trainOptions, useTempDir, useWasm, WindowSampler } from './helpers.ts';

useWasm();
const tmp = useTempDir('checkpoint-floor');

const VOCAB = 32;
const corpus = cycleCorpus(VOCAB, 20, 300);
const config = gptConfig({ vocabSize: VOCAB, blockSize: 12, layers: 1, heads: 2, dim: 16 });
const options = trainOptions({ iterations: 6, lr: 5e-3, checkpointEvery: 1 });
/** Far longer than this test runs: every periodic checkpoint after the first is passed over. */
const AN_HOUR = 3600;

/** Trains a fresh (or resumed) stage; each checkpoint written is copied aside under its step. */
async function train(
  name: string,
  over: { model?: LanguageModel; sampler?: WindowSampler; minCheckpointSeconds?: number; stopAfter?: number } = {},
  resume?: { optimizer: NonNullable<ReturnType<typeof restoreOptimizer>>; step: number },
) {
  const model = over.model ?? createModel(config, 5);
  const losses = new Map<number, number>();
  const written: number[] = [];
  const file = path.join(tmp(), `${name}.ckpt`);
  const outcome = await trainStage({
    model,
    tokenizer: TOKENIZER,
    sampler: over.sampler ?? new WindowSampler(corpus, 4, config.blockSize, 8),
    valBatches: () => [],
    options,
    checkpointPath: file,
    resume,
    minCheckpointSeconds: over.minCheckpointSeconds,
    onMetrics: (m) => losses.set(m.step, m.trainLoss),
    onCheckpoint: (step) => {
      written.push(step);
      fs.copyFileSync(file, path.join(tmp(), `${name}-${step}.ckpt`));
    },
    shouldStop: over.stopAfter === undefined ? undefined : () => losses.size >= over.stopAfter!,
  });
  return { outcome, model, losses, written };
}

describe('a floor between checkpoints', () => {
  it('without one, every step checkpointEvery names is written', async () => {
    const r = await train('no-floor');
    expect(r.written).toEqual([1, 2, 3, 4, 5, 6]);
    r.model.dispose();
  });

  it('writes the first checkpoint and the last step, and passes over the rest', async () => {
    const r = await train('floor', { minCheckpointSeconds: AN_HOUR });
    expect(r.outcome).toMatchObject({ status: 'finished', step: 6 });
    expect(r.written).toEqual([1, 6]);
    r.model.dispose();
  });

  it('still writes the checkpoint of a stop', async () => {
    const r = await train('floor-stop', { minCheckpointSeconds: AN_HOUR, stopAfter: 4 });
    expect(r.outcome).toMatchObject({ status: 'stopped', step: 4 });
    expect(r.written).toEqual([1, 4]);
    r.model.dispose();
  });

  it('resuming from a checkpoint it wrote gives the same losses and weights as the uninterrupted stage', async () => {
    const straight = await train('straight', { minCheckpointSeconds: AN_HOUR });
    const ckpt = await readCheckpoint(path.join(tmp(), 'straight-1.ckpt'));
    expect(ckpt.header.step).toBe(1);
    const model = restoreModel(ckpt);
    const optimizer = restoreOptimizer(ckpt, (name) => decays(model.params.get(name)!))!;
    const sampler = new WindowSampler(corpus, 4, config.blockSize, 999); // setState must win over the seed
    sampler.setState(ckpt.header.sampler!);
    const resumed = await train('resumed', { model, sampler, minCheckpointSeconds: AN_HOUR }, { optimizer, step: 1 });
    expect([...resumed.losses.keys()]).toEqual([2, 3, 4, 5, 6]);
    for (const [step, loss] of resumed.losses) expect(loss, `step ${step}`).toBe(straight.losses.get(step));
    for (const [name, v] of straight.model.params)
      expect(Array.from(model.params.get(name)!.dataSync()), name).toEqual(Array.from(v.dataSync()));
    optimizer.dispose();
    model.dispose();
    straight.model.dispose();
  });
});
