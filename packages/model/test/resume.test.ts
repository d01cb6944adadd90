/**
 * A stage stopped after step 6 (shouldStop writes a checkpoint) and resumed from that
 * checkpoint (weights, AdamW moments and step, sampler state) continues exactly like an
 * uninterrupted run: same per-step losses for steps 7..12, same final weights. Dropout is on,
 * so the per-step dropout seeds are covered too. On wasm, and on the native backend where it is
 * built (there also without dropout, where its fused kernels and pinned BLAS threads run).
 */
import * as tf from '@tensorflow/tfjs-core';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadNative } from '../../native/src/index.ts';
import {
  createModel,
  decays,
  initBackend,
  readCheckpoint,
  restoreModel,
  restoreOptimizer,
  trainStage,
  type LanguageModel,
  type ModelConfig,
  type TrainOptions,
} from '../src/index.ts';
import {
  cycleCorpus,
  gptConfig,
  lstmConfig,
  TOKENIZER,
  trainOptions,
  useTempDir,
  weightsOf,
  WindowSampler,
} from './helpers.ts';

const tmp = useTempDir('resume');

const VOCAB = 32;
const corpus = cycleCorpus(VOCAB, 20, 300);
const N = 12;
const STOP_AFTER = 6;

const gpt = (dropout: number) =>
  gptConfig({ vocabSize: VOCAB, blockSize: 12, layers: 2, heads: 2, dim: 16, dropout, bias: true });
const CASES: [string, ModelConfig, 'wasm' | 'native'][] = [
  ['gpt', gpt(0.2), 'wasm'],
  ['lstm', lstmConfig({ vocabSize: VOCAB, blockSize: 12, layers: 2, dim: 16, dropout: 0.2 }), 'wasm'],
  ...(('kernels' in loadNative()
    ? [
        ['gpt', gpt(0.2), 'native'],
        ['gpt-no-dropout', gpt(0), 'native'],
      ]
    : []) as [string, ModelConfig, 'native'][]),
];

const options: TrainOptions = trainOptions({
  iterations: N,
  gradAccum: 2,
  lr: 5e-3,
  minLr: 5e-4,
  warmup: 3,
  weightDecay: 0.1,
  gradClip: 0.5,
  evalEvery: 5,
  checkpointEvery: 4,
});

function stage(model: LanguageModel, sampler: WindowSampler, file: string, losses: Map<number, number>) {
  const val = new WindowSampler(corpus, 2, model.config.blockSize, 77);
  const valBatches = [val.next()];
  return {
    model,
    tokenizer: TOKENIZER,
    sampler,
    valBatches: () => valBatches,
    options,
    checkpointPath: file,
    onMetrics: (m: { step: number; trainLoss: number }) => losses.set(m.step, m.trainLoss),
  };
}

describe.each(CASES)('resume equivalence (%s on %s)', (kind, config, backend) => {
  beforeAll(async () => {
    expect(await initBackend(backend)).toBe(backend);
  });

  if (config.dropout > 0)
    it('dropout is active and seeded: same seed same logits, another seed other logits', () => {
      const model = createModel(config, 5);
      const x = tf.tensor2d([Array.from(corpus.subarray(0, 12))], [1, 12], 'int32');
      const run = (training: boolean, seed?: number) =>
        tf.tidy(() => model.logits(x, { training, seed }).dataSync() as Float32Array);
      expect(Array.from(run(true, 3))).toEqual(Array.from(run(true, 3)));
      expect(Array.from(run(true, 3))).not.toEqual(Array.from(run(true, 4)));
      expect(Array.from(run(true, 3))).not.toEqual(Array.from(run(false)));
      expect(Array.from(run(false, 3))).toEqual(Array.from(run(false, 4)));
      x.dispose();
      model.dispose();
    });

  it(`stopping after step ${STOP_AFTER} and resuming from the checkpoint gives the uninterrupted run's losses and weights`, async () => {
    // Uninterrupted.
    const straightLosses = new Map<number, number>();
    const straightModel = createModel(config, 5);
    const straight = await trainStage(
      stage(
        straightModel,
        new WindowSampler(corpus, 4, config.blockSize, 8),
        path.join(tmp(), `${kind}-${backend}-straight.ckpt`),
        straightLosses,
      ),
    );
    expect(straight.status).toBe('finished');
    expect([...straightLosses.keys()]).toEqual(Array.from({ length: N }, (_, i) => i + 1));

    // Interrupted: shouldStop turns true once step 6 is done.
    const firstLosses = new Map<number, number>();
    const file = path.join(tmp(), `${kind}-${backend}-interrupted.ckpt`);
    const firstModel = createModel(config, 5);
    const first = await trainStage({
      ...stage(firstModel, new WindowSampler(corpus, 4, config.blockSize, 8), file, firstLosses),
      shouldStop: () => firstLosses.size >= STOP_AFTER,
    });
    expect(first).toMatchObject({ status: 'stopped', step: STOP_AFTER, checkpoint: file });
    expect([...firstLosses.keys()]).toEqual([1, 2, 3, 4, 5, 6]);
    for (const [step, loss] of firstLosses) expect(loss).toBe(straightLosses.get(step));
    firstModel.dispose();

    // Resume in "another process": everything comes from the checkpoint file.
    const ckpt = await readCheckpoint(file);
    expect(ckpt.header.step).toBe(STOP_AFTER);
    expect(ckpt.header.sampler?.drawn).toBe(STOP_AFTER * options.gradAccum);
    const model = restoreModel(ckpt);
    const optimizer = restoreOptimizer(ckpt, (name) => decays(model.params.get(name)!));
    expect(optimizer).toBeDefined();
    expect(optimizer!.step).toBe(STOP_AFTER);
    const sampler = new WindowSampler(corpus, 4, config.blockSize, 12345); // a different seed: setState must win
    sampler.setState(ckpt.header.sampler!);
    const restLosses = new Map<number, number>();
    const rest = await trainStage({
      ...stage(model, sampler, file, restLosses),
      resume: { optimizer: optimizer!, step: ckpt.header.step },
    });
    expect(rest.status).toBe('finished');
    expect(rest.step).toBe(N);
    expect([...restLosses.keys()]).toEqual([7, 8, 9, 10, 11, 12]);
    for (const [step, loss] of restLosses) expect(Math.abs(loss - straightLosses.get(step)!)).toBeLessThanOrEqual(1e-6);

    const a = weightsOf(straightModel.params);
    const b = weightsOf(model.params);
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [name, values] of a) {
      let diff = 0;
      for (let i = 0; i < values.length; i++) diff = Math.max(diff, Math.abs(values[i]! - b.get(name)![i]!));
      expect(diff, name).toBeLessThanOrEqual(1e-6);
    }
    // The optimizer moments and step agree too (the straight run's final checkpoint holds them).
    const straightCkpt = await readCheckpoint(path.join(tmp(), `${kind}-${backend}-straight.ckpt`));
    expect(optimizer!.step).toBe(straightCkpt.header.optimizer!.step);
    for (const [prefix, moments] of [
      ['adam.m/', optimizer!.m],
      ['adam.v/', optimizer!.v],
    ] as const) {
      expect(moments.size).toBe(model.params.size);
      for (const [name, t] of moments)
        expect(Array.from(t.dataSync()), prefix + name).toEqual(
          Array.from(straightCkpt.tensors.get(prefix + name)!.data),
        );
    }
    straightModel.dispose();
    model.dispose();
    optimizer!.dispose();
  });
});
