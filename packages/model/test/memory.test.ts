/**
 * The training-memory estimate (src/memory.ts): close to what a real training step holds on
 * wasm, and a model that cannot fit is refused with a MemoryLimitError that names the batch
 * size, the estimate and the limit.
 */
import * as tf from '@tensorflow/tfjs-core';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isUserError } from '../../data/src/errors.ts';
import {
  checkTrainingFits,
  createModel,
  estimateTrainingMemory,
  formatBytes,
  MemoryLimitError,
  memoryLimit,
  trainStage,
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
const tmp = useTempDir('memory');

/** The most tensor bytes tfjs holds during two training steps of the trainer. */
async function measuredPeak(config: ModelConfig, batchSize: number): Promise<number> {
  const model = createModel(config, 1);
  const sampler = new WindowSampler(cycleCorpus(config.vocabSize, 37, 4000), batchSize, config.blockSize, 3);
  const val = new WindowSampler(cycleCorpus(config.vocabSize, 37, 4000), batchSize, config.blockSize, 4).next();
  const info = await tf.profile(async () => {
    await trainStage({
      model,
      tokenizer: TOKENIZER,
      sampler,
      valBatches: () => [val],
      options: trainOptions({ iterations: 2 }),
      checkpointPath: path.join(tmp(), 'model.ckpt'),
    });
  });
  model.dispose();
  return info.peakBytes;
}

describe('estimateTrainingMemory', () => {
  it.each([
    { name: 'GPT', config: gptConfig({ layers: 2, heads: 4, dim: 64, blockSize: 64, vocabSize: 500 }), batchSize: 16 },
    {
      name: 'GPT-with-dropout',
      config: gptConfig({ layers: 2, heads: 2, dim: 128, blockSize: 64, vocabSize: 500, dropout: 0.2 }),
      batchSize: 8,
    },
    { name: 'LSTM', config: lstmConfig({ layers: 2, dim: 64, blockSize: 64, vocabSize: 500 }), batchSize: 16 },
  ])('is within a tenth of what a $name training step holds', async ({ config, batchSize }) => {
    const peak = await measuredPeak(config, batchSize);
    const estimate = estimateTrainingMemory(config, batchSize).total;
    expect(peak).toBeGreaterThan(50 * 2 ** 20); // big enough that activations dominate
    expect(Math.abs(estimate / peak - 1)).toBeLessThan(0.1);
  });

  it('grows with the batch, and counts 16 bytes a parameter', () => {
    const config = gptConfig({ layers: 4, heads: 4, dim: 128, blockSize: 128, vocabSize: 1000 });
    const one = estimateTrainingMemory(config, 1);
    const many = estimateTrainingMemory(config, 64);
    expect(many.parameters).toBe(one.parameters);
    expect(many.activations).toBeCloseTo(64 * one.activations, 0);
    expect(one.parameters).toBe(16 * 931_968);
    // On wasm: the share of counted bytes its heap holds (measured 86-88%, taken as 84%).
    expect(estimateTrainingMemory(config, 64, 'wasm').total).toBeCloseTo(0.84 * many.total, 0);
  });
});

describe('checkTrainingFits', () => {
  const big = gptConfig({ layers: 4, heads: 4, dim: 128, blockSize: 128, vocabSize: 1000 });

  it('lets through a model that fits, with its estimate', () => {
    const need = checkTrainingFits(big, 16, 'wasm');
    expect(need.total).toBeLessThan(memoryLimit('wasm').bytes);
  });

  it('refuses one that does not, naming the batch size, the estimate and the limit', () => {
    let error: unknown;
    try {
      checkTrainingFits(big, 80, 'wasm');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MemoryLimitError);
    expect(isUserError(error)).toBe(true);
    const e = error as MemoryLimitError;
    expect(e.name).toBe('MemoryLimitError');
    const need = estimateTrainingMemory(big, 80, 'wasm');
    expect(e.message).toContain('batchSize 80 and blockSize 128');
    expect(e.message).toContain(`needs about ${formatBytes(need.total)}`);
    expect(e.message).toContain('more than the 4.0 GiB the wasm backend can address');
    expect(e.message).not.toContain('\n');
  });

  it('holds other backends to the machine’s memory', () => {
    const huge = gptConfig({ layers: 24, heads: 8, dim: 1024, blockSize: 32, vocabSize: 1000 });
    expect(memoryLimit('cpu').bytes).toBe(os.totalmem());
    expect(() => checkTrainingFits(huge, 4096, 'cpu')).toThrow(
      `more than the ${formatBytes(os.totalmem())} this machine has (backend cpu)`,
    );
  });

  it('formats sizes with their unit', () => {
    expect(formatBytes(512)).toBe('512 bytes');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(4 * 1024 ** 3 - 64 * 1024)).toBe('4.0 GiB');
    expect(formatBytes(2.5 * 1024 ** 4)).toBe('2.5 TiB');
  });
});
