/**
 * A tiny GPT and a tiny LSTM each learn a repeating token cycle through trainStage: the
 * train loss falls from ≈ ln(vocab) to a small fraction of it. Also: parameter counts and
 * the stage outcome's bookkeeping.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  countParameters,
  createModel,
  parameterCount,
  readCheckpoint,
  trainStage,
  type ModelConfig,
  type StepMetrics,
} from '../src/index.ts';
import {
  cycleCorpus,
  gptConfig,
  lstmConfig,
  TOKENIZER,
  trainOptions,
  useTempDir,
  useWasm,
  WindowSampler,
} from './helpers.ts';

useWasm();
const tmp = useTempDir('train');

const VOCAB = 32;
const corpus = cycleCorpus(VOCAB, 20, 400);

async function learnCycle(config: ModelConfig, iterations: number, lr: number) {
  const model = createModel(config, 1);
  const sampler = new WindowSampler(corpus, 8, config.blockSize, 3);
  const val = new WindowSampler(corpus, 4, config.blockSize, 99);
  const valBatches = [val.next(), val.next()];
  const metrics: StepMetrics[] = [];
  const checkpoints: number[] = [];
  const started = performance.now();
  const outcome = await trainStage({
    model,
    tokenizer: TOKENIZER,
    sampler,
    valBatches: () => valBatches,
    options: trainOptions({
      iterations,
      lr,
      minLr: lr / 10,
      warmup: 5,
      weightDecay: 0.01,
      evalEvery: 20,
      checkpointEvery: 25,
    }),
    checkpointPath: path.join(tmp(), `${config.kind}.ckpt`),
    onMetrics: (m) => metrics.push(m),
    onCheckpoint: (step) => {
      checkpoints.push(step);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  model.dispose();
  return { outcome, metrics, checkpoints, seconds };
}

function expectLearned(r: Awaited<ReturnType<typeof learnCycle>>, iterations: number) {
  const { outcome, metrics } = r;
  expect(outcome.status).toBe('finished');
  expect(metrics.map((m) => m.step)).toEqual(Array.from({ length: iterations }, (_, i) => i + 1));
  const initial = metrics[0]!.trainLoss;
  // An untrained model is close to uniform over the vocabulary.
  expect(Math.abs(initial - Math.log(VOCAB))).toBeLessThan(0.5);
  const final = metrics.at(-1)!.trainLoss;
  expect(final).toBeLessThan(0.25 * initial);
  if (outcome.status !== 'finished') throw new Error('unreachable');
  expect(outcome.trainLoss).toBe(final);
  // Held-out windows of the same cycle are learned too; val loss is reported on eval steps only.
  expect(metrics.filter((m) => m.valLoss !== undefined).map((m) => m.step)).toEqual(
    Array.from({ length: iterations }, (_, i) => i + 1).filter((s) => s % 20 === 0 || s === iterations),
  );
  expect(outcome.valLoss).toBeLessThan(0.25 * initial);
  for (const m of metrics) {
    expect(m.backend).toBe('wasm');
    expect(Number.isFinite(m.gradNorm) && m.gradNorm > 0).toBe(true);
    expect(m.tokensPerSec).toBeGreaterThan(0);
  }
  // Checkpoints every 25 steps and at the end, at one path.
  expect(r.checkpoints).toEqual([
    ...Array.from({ length: Math.floor(iterations / 25) }, (_, i) => 25 * (i + 1)),
    ...(iterations % 25 ? [iterations] : []),
  ]);
  expect(fs.existsSync(outcome.checkpoint)).toBe(true);
}

describe('training on a repeating token cycle', () => {
  it('a tiny GPT drives its train loss below 25% of the initial loss', async () => {
    const r = await learnCycle(gptConfig({ vocabSize: VOCAB, layers: 1, dim: 32, heads: 2 }), 60, 1e-2);
    expectLearned(r, 60);
    const ckpt = await readCheckpoint(r.outcome.checkpoint!);
    expect(ckpt.header.step).toBe(60);
    expect(ckpt.header.meta.backend).toBe('wasm');
    expect(ckpt.header.meta.trainLoss).toBe(r.metrics.at(-1)!.trainLoss);
    expect(r.seconds).toBeLessThan(20);
  });

  it('a tiny LSTM drives its train loss below 25% of the initial loss', async () => {
    const r = await learnCycle(lstmConfig({ vocabSize: VOCAB, layers: 2, dim: 32 }), 80, 3e-2);
    expectLearned(r, 80);
    expect(r.seconds).toBeLessThan(20);
  });
});

describe('divergence', () => {
  it('a loss that becomes NaN stops the stage as diverged, keeping the last good checkpoint', async () => {
    const model = createModel(gptConfig({ vocabSize: VOCAB, layers: 1, dim: 16, heads: 2 }), 1);
    const file = path.join(tmp(), 'diverge.ckpt');
    const steps: number[] = [];
    // An absurd learning rate: every step moves every weight by ~1e30 until the forward overflows.
    const outcome = await trainStage({
      model,
      tokenizer: TOKENIZER,
      sampler: new WindowSampler(corpus, 2, 16, 1),
      valBatches: () => [],
      options: trainOptions({ iterations: 10, lr: 1e30, minLr: 1e30, gradClip: 0, weightDecay: 0, checkpointEvery: 1 }),
      checkpointPath: file,
      onMetrics: (m) => steps.push(m.step),
    });
    expect(outcome.status).toBe('diverged');
    if (outcome.status !== 'diverged') throw new Error('unreachable');
    // Steps before the bad one completed and were checkpointed; the bad one was not.
    const good = outcome.step;
    expect(good).toBeGreaterThanOrEqual(1);
    expect(steps).toEqual(Array.from({ length: good }, (_, i) => i + 1));
    expect(outcome.checkpoint).toBe(file);
    // Either the loss or, first, the gradient overflows; no update is applied in either case.
    expect(outcome.message).toMatch(new RegExp(`(loss|the gradient norm) became (NaN|-?Infinity) at step ${good + 1}`));
    expect(outcome.message).toContain(`last good checkpoint (step ${good}) at ${file}`);
    expect((await readCheckpoint(file)).header.step).toBe(good);
    model.dispose();
  });
});

describe('parameter counts', () => {
  it.each([
    ['gpt without bias', gptConfig()],
    ['gpt with bias', gptConfig({ bias: true, layers: 1 })],
    ['lstm', lstmConfig()],
    ['lstm, one layer', lstmConfig({ layers: 1, dim: 8 })],
  ] as [string, ModelConfig][])('countParameters equals the built model (%s)', (_, config) => {
    const model = createModel(config, 0);
    expect(parameterCount(model)).toBe(countParameters(config));
    model.dispose();
  });
});
