/**
 * No tensor leaks: tf.memory().numTensors is flat across training steps (with gradient
 * accumulation, clipping, evaluation and checkpoints in the loop), and sampling, evaluation,
 * checkpoint restore and model disposal leave it where it was.
 */
import * as tf from '@tensorflow/tfjs-core';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createModel,
  decays,
  evaluateLoss,
  generate,
  perplexity,
  readCheckpoint,
  restoreModel,
  restoreOptimizer,
  saveCheckpoint,
  trainStage,
  type LanguageModel,
  type ModelConfig,
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
const tmp = useTempDir('leaks');

const VOCAB = 32;
const corpus = cycleCorpus(VOCAB, 20, 300);

async function tensorsPerStep(model: LanguageModel, steps: number, name: string) {
  const counts = new Map<number, { tensors: number; bytes: number }>();
  const val = new WindowSampler(corpus, 2, model.config.blockSize, 4);
  const valBatches = [
    val.next(),
    { ...val.next(), mask: Float32Array.from({ length: 2 * model.config.blockSize }, (_, i) => i % 2) },
  ];
  const outcome = await trainStage({
    model,
    tokenizer: TOKENIZER,
    sampler: new WindowSampler(corpus, 4, model.config.blockSize, 3),
    valBatches: () => valBatches,
    // gradAccum 2 and a tiny clip norm: the accumulation and clipping paths run every step.
    options: trainOptions({
      iterations: steps,
      gradAccum: 2,
      gradClip: 1e-3,
      lr: 1e-3,
      evalEvery: 5,
      checkpointEvery: 10,
    }),
    checkpointPath: path.join(tmp(), `${name}.ckpt`),
    onMetrics: (m) => counts.set(m.step, { tensors: tf.memory().numTensors, bytes: tf.memory().numBytes }),
  });
  expect(outcome.status).toBe('finished');
  return counts;
}

describe('no tensor leaks in training', () => {
  it.each([
    ['gpt', gptConfig({ vocabSize: VOCAB, blockSize: 8, layers: 2, heads: 2, dim: 16, dropout: 0.1, bias: true })],
    ['lstm', lstmConfig({ vocabSize: VOCAB, blockSize: 8, layers: 2, dim: 16, dropout: 0.1 })],
  ] as [string, ModelConfig][])('%s: numTensors after step 5 equals numTensors after step 50', async (name, config) => {
    const model = createModel(config, 1);
    const counts = await tensorsPerStep(model, 50, name);
    const at5 = counts.get(5)!;
    expect(counts.get(50)).toEqual(at5);
    // Flat at every step in between, not just at the two ends.
    for (let step = 5; step <= 50; step++) expect(counts.get(step), `step ${step}`).toEqual(at5);
    model.dispose();
  });

  it('trainStage frees the optimizer it created: after the stage and model.dispose() nothing is left', async () => {
    const before = tf.memory().numTensors;
    const model = createModel(gptConfig({ vocabSize: VOCAB, blockSize: 8, layers: 1, heads: 2, dim: 16 }), 1);
    await tensorsPerStep(model, 2, 'own-optimizer');
    model.dispose();
    // The stage's AdamW moments (two per parameter) are unreachable once trainStage returns.
    expect(tf.memory().numTensors - before, 'tensors left behind by trainStage').toBe(0);
  });
});

describe('no tensor leaks elsewhere', () => {
  it('generate() leaves numTensors unchanged (gpt and lstm, cached and uncached, past the block size)', () => {
    for (const config of [
      gptConfig({ vocabSize: 64, blockSize: 8, layers: 2, dim: 16 }),
      lstmConfig({ vocabSize: 64, blockSize: 8, layers: 2, dim: 16 }),
    ]) {
      const model = createModel(config, 1);
      const before = tf.memory().numTensors;
      for (const useCache of [true, false]) {
        for (const temperature of [0, 1]) {
          generate(model, [1, 2, 3], {
            maxNewTokens: 20,
            temperature,
            topK: 5,
            topP: 0.9,
            samples: 2,
            seed: 1,
            eotId: -1,
            useCache,
          });
          expect(tf.memory().numTensors, `${config.kind} useCache=${useCache} T=${temperature}`).toBe(before);
        }
      }
      // Stopping early at eot releases the state too.
      const first = generate(model, [1, 2, 3], {
        maxNewTokens: 1,
        temperature: 0,
        topK: 0,
        topP: 1,
        samples: 1,
        seed: 1,
        eotId: -1,
      }).tokens[0]![0]!;
      generate(model, [1, 2, 3], {
        maxNewTokens: 10,
        temperature: 0,
        topK: 0,
        topP: 1,
        samples: 1,
        seed: 1,
        eotId: first,
      });
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    }
  });

  it('evaluation, checkpoint save/restore and dispose leave numTensors unchanged', async () => {
    const start = tf.memory().numTensors;
    const model = createModel(gptConfig({ vocabSize: VOCAB, blockSize: 8, layers: 1, dim: 16, heads: 2 }), 1);
    const withModel = tf.memory().numTensors;
    const sampler = new WindowSampler(corpus, 2, 8, 1);
    const batches = [sampler.next(), { ...sampler.next(), mask: new Float32Array(16).fill(1) }];
    evaluateLoss(model, batches);
    perplexity(model, batches);
    expect(tf.memory().numTensors).toBe(withModel);

    const file = path.join(tmp(), 'roundtrip.ckpt');
    await saveCheckpoint(file, { model, tokenizer: TOKENIZER, step: 0 });
    expect(tf.memory().numTensors).toBe(withModel);
    const restored = restoreModel(await readCheckpoint(file));
    restored.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(start);

    // restoreOptimizer creates exactly the saved moments, and its dispose frees them.
    const trained = createModel(gptConfig({ vocabSize: VOCAB, blockSize: 8, layers: 1, dim: 16, heads: 2 }), 1);
    await trainStage({
      model: trained,
      tokenizer: TOKENIZER,
      sampler: new WindowSampler(corpus, 2, 8, 1),
      valBatches: () => [],
      options: trainOptions({ iterations: 1 }),
      checkpointPath: path.join(tmp(), 'opt.ckpt'),
    });
    const ckpt = await readCheckpoint(path.join(tmp(), 'opt.ckpt'));
    const before = tf.memory().numTensors;
    const opt = restoreOptimizer(ckpt, (n) => decays(trained.params.get(n)!))!;
    expect(tf.memory().numTensors).toBe(before + 2 * trained.params.size);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    trained.dispose();
  });
});
