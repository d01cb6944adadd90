/**
 * Backend selection (src/backend/select.ts): forced backends, unknown names, and that every
 * backend it offers can actually train: the cpu fallback included, and wasm again after it.
 */
import * as tf from '@tensorflow/tfjs-core';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { activeBackend, BackendError, createModel, initBackend, trainStage } from '../src/index.ts';
import { cycleCorpus, gptConfig, TOKENIZER, trainOptions, useTempDir, WindowSampler } from './helpers.ts';

const tmp = useTempDir('backend');
const corpus = cycleCorpus(32, 20, 200);

async function trainTwoSteps(name: string) {
  const model = createModel(gptConfig({ vocabSize: 32, blockSize: 8, layers: 1, heads: 2, dim: 16 }), 1);
  try {
    return await trainStage({
      model,
      tokenizer: TOKENIZER,
      sampler: new WindowSampler(corpus, 2, 8, 1),
      valBatches: () => [],
      options: trainOptions({ iterations: 2 }),
      checkpointPath: path.join(tmp(), `${name}.ckpt`),
    });
  } finally {
    model.dispose();
  }
}

describe('initBackend', () => {
  it('activeBackend() before any initBackend() says what to do', async () => {
    // Runs first in this file: nothing is initialised yet.
    expect(() => activeBackend()).toThrow(BackendError);
    expect(() => activeBackend()).toThrow(/initBackend/);
  });

  it('an unknown backend name is refused, listing the choices', async () => {
    await expect(initBackend('tpu')).rejects.toThrow(BackendError);
    await expect(initBackend('tpu')).rejects.toThrow(/unknown backend "tpu".*wasm.*cpu/);
  });

  it('the cpu backend, forced in a fresh process (MINIGLM_BACKEND=cpu), can train', async () => {
    // Runs before any wasm use in this file, as a worker started with MINIGLM_BACKEND=cpu would.
    expect(await initBackend('cpu')).toBe('cpu');
    expect(activeBackend()).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    // The tfjs debug switch that turns on per-kernel leak checks (and rejects customGrad's
    // saved intermediates in maskedCrossEntropy) stays off.
    expect(tf.env().getBool('IS_TEST')).toBe(false);
    const outcome = await trainTwoSteps('cpu');
    expect(outcome.status).toBe('finished');
  });

  it('forcing wasm afterwards selects wasm (case ignored), and wasm trains', async () => {
    expect(await initBackend('WASM')).toBe('wasm');
    expect(activeBackend()).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    const outcome = await trainTwoSteps('wasm');
    expect(outcome.status).toBe('finished');
  });

  it('switching back and forth works; without a preference the active backend stays', async () => {
    expect(await initBackend('cpu')).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(await initBackend('wasm')).toBe('wasm');
    expect(await initBackend('wasm')).toBe('wasm');
    const saved = process.env.MINIGLM_BACKEND;
    delete process.env.MINIGLM_BACKEND;
    try {
      expect(await initBackend()).toBe('wasm');
    } finally {
      if (saved !== undefined) process.env.MINIGLM_BACKEND = saved;
    }
    expect(tf.getBackend()).toBe('wasm');
  });
});
